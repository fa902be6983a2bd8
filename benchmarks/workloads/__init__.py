"""One module per workload; each has ``run(settings) -> list[Row]`` and its contenders'
factories (called inside the worker processes)."""

WORKLOADS = (
    "chat_throughput",
    "mixed_lengths",
    "latency_under_load",
    "prefix_reuse",
    "embeddings",
    "llama_index",
    "cold_start",
    "adapter_overhead",
    "constraints",
    "served",
    "rerank",
    "conversation_cache",
    "single_user",
    "sampling",
)
