"""Native engines (token level) behind ``core.protocol``: torch (CPU/CUDA) and furiosa (RNGD)."""
