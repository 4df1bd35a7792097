"""onnxruntime session settings for running graphdl's exported models, with defaults chosen for
training steps on small machines.

:class:`OrtOptions` names the four settings that matter for a training step (threads, spinning,
graph optimisation level, profiling) and turns them into an ``onnxruntime.SessionOptions``;
anywhere graphdl takes one (``OrtRunner``, ``Trainer(engine="ort")``) it also takes a
``SessionOptions`` of the caller's own, used as given.

Why spinning is off by default with more than one thread: onnxruntime's intra-op workers spin
(busy-wait) between parallel sections. A training step runs hundreds of small nodes serially on
the calling thread between the large parallel ones, so a spinning worker burns a core the whole
time; on a 2-core machine it competes with the calling thread itself, with the caller's Python
and with other processes, and 2 threads came out slower than 1 (median 1.34x on the LSTM step,
single rounds up to 2.5x; the issue saw the ResNet step swing from 64 to 185 ms). Workers that
block instead cost one wake-up per parallel section: 2 threads were then faster than 1 (median
0.66x LSTM, 0.84x MLP) in the same runs (benchmarks/realistic_lstm.py reports this per round).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core.errors import GraphError

LEVELS = ("disable", "basic", "extended", "all")


@dataclass(frozen=True)
class OrtOptions:
    """``threads``: intra-op threads (None: onnxruntime's default, one per physical core);
    ``spinning``: whether idle workers busy-wait (None: only with one thread, where there are
    no workers); ``optimization``: the graph optimisation level, one of LEVELS; ``profile``: a
    file prefix that turns on onnxruntime's profiler (``session.end_profiling()`` writes the
    JSON trace, see graphdl/profile.py)."""

    threads: int | None = None
    spinning: bool | None = None
    optimization: str = "all"
    profile: str | None = None

    def __post_init__(self) -> None:
        if self.threads is not None and (not isinstance(self.threads, int) or self.threads < 1):
            raise GraphError(f"OrtOptions: threads must be an int >= 1 or None, "
                             f"got {self.threads!r}")
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
        spin = self.spinning if self.spinning is not None else self.threads == 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
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
