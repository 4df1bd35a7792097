"""The lowest layer: dtypes and symbolic dims, the IR, the op registry, the builder DSL, and the
checks and rewrites every other layer uses. Nothing here imports another graphdl layer."""
