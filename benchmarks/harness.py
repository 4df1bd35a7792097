"""The machinery every section of ``python -m benchmarks`` shares: one interleaved-rounds timer
(thread CPU time), medians of same-round ratios, an output-equality check run before any timing,
and the result rows rendered as a Markdown table or JSON."""
from __future__ import annotations

import json
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Callable, Mapping

import numpy as np

Clock = Callable[[], float]
FAILED = "failed:"  # a row note starting so marks the row failed


class OutputsDiffer(Exception):
    """Two contenders disagree: the section is reported as failed instead of timed, so a
    wrong-but-fast kernel cannot win."""


def same_outputs(name: str, got: Mapping, want: Mapping, rtol: float = 1e-4) -> None:
    """Raises OutputsDiffer when an output of ``want`` differs in ``got`` by more than ``rtol``
    relative to the output's largest magnitude."""
    for key, ref in want.items():
        ref = np.asarray(ref, np.float64)
        val = np.asarray(got[key], np.float64)
        if val.shape != ref.shape:
            raise OutputsDiffer(f"{name}: {key} has shape {val.shape}, expected {ref.shape}")
        err = float(np.max(np.abs(val - ref), initial=0.0)) / (float(np.max(np.abs(ref),
                                                                            initial=0.0)) + 1e-12)
        if not err <= rtol:
            raise OutputsDiffer(f"{name}: {key} differs by {err:.1e} (relative; limit {rtol})")


def _seconds(fn: Callable[[], object], reps: int, clock: Clock) -> float:
    t0 = clock()
    for _ in range(reps):
        fn()
    return (clock() - t0) / reps


def interleaved(fns: Mapping[str, Callable[[], object]], rounds: int, chunk_s: float = 0.02,
                clock: Clock = time.thread_time, warmup: int = 2, settle_s: float = 0.0
                ) -> dict[str, list[float]]:
    """Seconds per call of each contender, one entry per round. Every round times every
    contender once (``reps`` calls in a row, sized so the fastest takes about ``chunk_s``);
    the order alternates round by round so neither always runs first. Thread CPU time by
    default: on a shared machine, wall time would also count other processes' load.
    ``settle_s``: a pause before each contender's calls, so that the worker threads the last
    one left spinning (OpenBLAS's spin for about 0.1 s after a product, OpenMP's and
    onnxruntime's for less) are asleep again and do not take the cores it is timed on."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    fastest = min(_seconds(fn, 1, clock) for fn in fns.values())
    reps = max(1, int(chunk_s / max(fastest, 1e-6)))
    names = list(fns)
    times: dict[str, list[float]] = {k: [] for k in names}
    for r in range(rounds):
        for k in names if r % 2 == 0 else names[::-1]:
            time.sleep(settle_s)
            times[k].append(_seconds(fns[k], reps, clock))
    return times


def print_results(res: Mapping[str, object], as_json: bool) -> None:
    """A script's flat results: JSON, or one ``key=value`` line each (floats to 3 places)."""
    if as_json:
        print(json.dumps(res, indent=1))
        return
    for k, v in res.items():
        print(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}")


def median_ratio(times: Mapping[str, list[float]], num: str, den: str) -> float:
    """The median over rounds of ``num``'s time / ``den``'s time in the same round."""
    return statistics.median(a / b for a, b in zip(times[num], times[den]))


def medians_us(times: Mapping[str, list[float]]) -> dict[str, float]:
    return {k: statistics.median(v) * 1e6 for k, v in times.items()}


@dataclass
class Row:
    """One line of the results table. ``target`` is ("<=", 1.1) or (">=", 2.0) or None;
    ``measured`` is None when the row could not be measured, ``note`` then says why."""

    section: str
    metric: str
    measured: float | None
    target: tuple[str, float] | None = None
    unit: str = "x"
    note: str = ""

    @property
    def met(self) -> bool | None:
        if self.measured is None:
            return False if self.note.startswith(FAILED) else None
        if self.target is None:
            return None
        op, bound = self.target
        return self.measured <= bound if op == "<=" else self.measured >= bound

    def as_dict(self) -> dict:
        d = asdict(self)
        d["target"] = list(self.target) if self.target else None
        d["met"] = self.met
        return d


def _fmt(value: float, unit: str) -> str:
    if unit == "%":
        return f"{value * 100:.0f}%"
    if unit == "x":
        return f"{value:.2f}x"
    return f"{value:.2f} {unit}" if unit else f"{value:g}"


def markdown(rows: list[Row]) -> str:
    """The rows as a Markdown table: metric | measured | target | met."""
    lines = ["| metric | measured | target | met |", "|---|---|---|---|"]
    for r in rows:
        measured = r.note if r.measured is None else _fmt(r.measured, r.unit)
        if r.measured is not None and r.note:
            measured += f" ({r.note})"
        target = f"{r.target[0]} {_fmt(r.target[1], r.unit)}" if r.target else "-"
        met = {True: "yes", False: "no", None: "-"}[r.met]
        cells = (r.metric, measured, target, met)
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)
