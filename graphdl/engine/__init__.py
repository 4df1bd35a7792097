"""Running graphs: the NumPy interpreter (a compiled plan and its buffers), one entry to both
engines (runtime), numerics checks, and the runners that repeat a training step."""
