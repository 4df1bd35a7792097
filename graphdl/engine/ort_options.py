"""onnxruntime session settings for running graphdl's exported models, with defaults chosen for
training steps on small machines.

:class:`OrtOptions` names the four settings that matter for a training step (threads, spinning,
graph optimisation level, profiling) and turns them into an ``onnxruntime.SessionOptions``;
anywhere graphdl takes one (``OrtRunner``, ``Trainer(engine="ort")``) it also takes a
``SessionOptions`` of the caller's own, used as given.

Why idle workers spin during a run and stop when it ends (``session.force_spinning_stop``):
a training step alternates hundreds of small serial nodes on the calling thread with large
parallel ones; a worker that blocks between them pays a wake-up per parallel section. On this
2-core machine (``python benchmarks/ort_threads.py``, idle box, 9 rounds) 2 blocking threads
took 0.75x the time of 1 on the MLP step, 0.93x on the LSTM and 1.09x on the ResNet (some
rounds slower than 1 thread on both), 2 spinning threads 0.59x, 0.71x and 0.74x (no round
slower; the slowest 0.63x, 0.76x, 0.94x). Spinning after the run would take a core from
whatever the process does between steps, so it stops there. What spinning cannot survive is
another thread busy on the same cores: NumPy's OpenBLAS workers spin for about 0.1 s after a
product, so a process that alternates interpreter and onnxruntime steps at 2 threads each (an
earlier measurement of this module's defaults did) saw 2 spinning threads at 1.6-2x the time of
1; ``OrtOptions(spinning=False)`` is the setting for that case.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core.errors import GraphError

LEVELS = ("disable", "basic", "extended", "all")


@dataclass(frozen=True)
class OrtOptions:
    """``threads``: intra-op threads (None: onnxruntime's default, one per physical core);
    ``spinning``: whether idle workers busy-wait between the parallel sections of a run (they
    stop at its end either way); ``optimization``: the graph optimisation level, one of
    LEVELS; ``profile``: a file prefix that turns on onnxruntime's profiler
    (``session.end_profiling()`` writes the JSON trace, see graphdl/tools/profiling.py)."""

    threads: int | None = None
    spinning: bool = True
    optimization: str = "all"
    profile: str | None = None

    def __post_init__(self) -> None:
        if self.threads is not None and (not isinstance(self.threads, int) or self.threads < 1):
            raise GraphError(f"OrtOptions: threads must be an int >= 1 or None, "
                             f"got {self.threads!r}")
        if not isinstance(self.spinning, bool):
            raise GraphError(f"OrtOptions: spinning must be True or False, "
                             f"got {self.spinning!r}")
        if self.optimization not in LEVELS:
            raise GraphError(f"OrtOptions: optimization must be one of {LEVELS}, "
                             f"got {self.optimization!r}")

    def session_options(self) -> Any:
        """These settings as an ``onnxruntime.SessionOptions``."""
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        if self.threads:
            opts.intra_op_num_threads = self.threads
        opts.add_session_config_entry("session.intra_op.allow_spinning",
                                      "1" if self.spinning else "0")
        opts.add_session_config_entry("session.force_spinning_stop", "1")
        level = ort.GraphOptimizationLevel
        opts.graph_optimization_level = {
            "disable": level.ORT_DISABLE_ALL, "basic": level.ORT_ENABLE_BASIC,
            "extended": level.ORT_ENABLE_EXTENDED, "all": level.ORT_ENABLE_ALL,
        }[self.optimization]
        if self.profile:
            opts.enable_profiling = True
            opts.profile_file_prefix = self.profile
        return opts


def session_options(options: Any = None, threads: int | None = None) -> Any:
    """An ``onnxruntime.SessionOptions`` from ``options`` (an OrtOptions, a SessionOptions used
    as given, or None for the defaults) and a ``threads`` shorthand (which sets the thread
    count of an OrtOptions or of the defaults; with a SessionOptions, give one or the other)."""
    import onnxruntime as ort

    if isinstance(options, ort.SessionOptions):
        if threads:
            raise GraphError("give the thread count in the SessionOptions "
                             "(intra_op_num_threads) or as threads=, not both")
        return options
    if options is None:
        options = OrtOptions()
    if not isinstance(options, OrtOptions):
        raise GraphError(f"expected graphdl.engine.ort_options.OrtOptions or "
                         f"onnxruntime.SessionOptions, got {type(options).__name__}")
    if threads:
        options = OrtOptions(threads, options.spinning, options.optimization, options.profile)
    return options.session_options()
