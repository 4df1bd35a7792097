"""Passes as small functional objects, run in an explicit order by a PassManager that verifies
the IR after each, records what each did, and names the failing pass in any error."""
from __future__ import annotations

import gc
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Sequence

from graphdl.core.errors import PassError
from graphdl.core.ir import Graph
from graphdl.core.verify import verify


@dataclass(frozen=True)
class PassResult:
    graph: Graph
    changed: bool


class Pass:
    """``run(graph) -> PassResult``; a pass never mutates its input graph."""

    name: str = ""

    def run(self, g: Graph) -> PassResult:  # pragma: no cover - interface
        raise NotImplementedError

    def __repr__(self) -> str:
        return self.name or type(self).__name__


@dataclass(frozen=True)
class TraceEntry:
    """What one pass run did: node counts before and after, op counts added and removed,
    and its wall time (the IR check after it excluded)."""

    name: str
    round: int
    before: int
    after: int
    changed: bool
    seconds: float
    ops_removed: tuple[tuple[str, int], ...] = ()
    ops_added: tuple[tuple[str, int], ...] = ()

    def __str__(self) -> str:
        diff = " ".join([f"-{n}x{op}" for op, n in self.ops_removed]
                        + [f"+{n}x{op}" for op, n in self.ops_added])
        what = (diff or "rewired") if self.changed else "unchanged"
        return (f"{self.name:<30} round {self.round}  nodes {self.before:>6} -> {self.after:<6} "
                f"{self.seconds * 1e3:8.2f} ms  {what}")


def _op_diff(a: Graph, b: Graph) -> tuple[tuple, tuple]:
    ca, cb = Counter(n.op for n in a.nodes), Counter(n.op for n in b.nodes)
    return tuple(sorted((ca - cb).items())), tuple(sorted((cb - ca).items()))


@dataclass
class PassManager:
    """Runs ``passes`` in order, verifying the IR after each (``verify_each``).

    ``trace`` gets one :class:`TraceEntry` per pass run. With ``fixed_point`` the list repeats
    until no pass changes the graph; PassError names the passes still changing it after
    ``max_iterations`` rounds. Any exception inside a pass is re-raised as PassError naming it.
    ``clock`` times the passes (``time.thread_time`` for benchmarks on a loaded machine).
    """

    passes: Sequence[Pass]
    fixed_point: bool = False
    max_iterations: int = 10
    verify_each: bool = True
    trace: list[TraceEntry] = field(default_factory=list)
    clock: Callable[[], float] = time.perf_counter

    def run(self, g: Graph) -> PassResult:
        changed_any = False
        changed: list[str] = []
        for rnd in range(self.max_iterations if self.fixed_point else 1):
            changed = []
            for p in self.passes:
                g, did = self._run_one(p, g, rnd)
                if did:
                    changed.append(repr(p))
            changed_any = changed_any or bool(changed)
            if not changed:
                return PassResult(g, changed_any)
        if self.fixed_point:
            raise PassError(f"no fixed point after {self.max_iterations} rounds; still changing: "
                            f"{', '.join(changed)}")
        return PassResult(g, changed_any)

    def _run_one(self, p: Pass, g: Graph, rnd: int) -> tuple[Graph, bool]:
        """One pass, with Python's cyclic GC paused: passes allocate many small objects and
        create no cycles, and on 100k-node graphs the collector's repeated scans of the live
        graph cost 5-10x the pass itself (superlinear time)."""
        enabled = gc.isenabled()
        gc.disable()
        try:
            return self._run_one_timed(p, g, rnd)
        finally:
            if enabled:
                gc.enable()

    def _run_one_timed(self, p: Pass, g: Graph, rnd: int) -> tuple[Graph, bool]:
        t0 = self.clock()
        try:
            res = p.run(g)
        except Exception as e:
            raise PassError(f"pass {p!r} failed: {type(e).__name__}: {e}") from e
        seconds = self.clock() - t0
        if self.verify_each:
            try:
                verify(res.graph)
            except Exception as e:
                raise PassError(f"pass {p!r} failed: it left an invalid graph: {e}") from e
        removed, added = _op_diff(g, res.graph) if res.changed else ((), ())
        self.trace.append(TraceEntry(repr(p), rnd, len(g.nodes), len(res.graph.nodes),
                                     res.changed, seconds, removed, added))
        return res.graph, res.changed

    def format_trace(self) -> str:
        """The trace as one line per pass run."""
        return "\n".join(str(t) for t in self.trace)
