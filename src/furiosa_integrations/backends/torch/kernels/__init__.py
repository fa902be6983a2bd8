"""Native CPU kernels of our own, compiled on the user's machine at first use (``build``).

``grouped_linear`` is the linear layer over GGUF's grouped 4- and 8-bit weights; it always
has a reference kernel, so code that calls it runs (and TorchScript compiles it) where the
native one could not be built.
"""
