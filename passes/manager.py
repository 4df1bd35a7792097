"""Passes as small functional objects, run in an explicit order by a PassManager that verifies
the IR after each and names the failing pass in any error."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from graphdl.errors import GraphError, PassError
from graphdl.ir import Graph
from graphdl.verify import verify


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


@dataclass
class PassManager:
    """Runs ``passes`` in order, verifying after each; ``fixed_point`` repeats until none changes."""

    passes: Sequence[Pass]
    fixed_point: bool = False
    max_iterations: int = 10
    trace: list[tuple[str, int, int, bool]] = field(default_factory=list)

    def run(self, g: Graph) -> PassResult:
        changed_any = False
        for _ in range(self.max_iterations if self.fixed_point else 1):
            changed = []
            for p in self.passes:
                before = len(g.nodes)
                try:
                    res = p.run(g)
                    verify(res.graph)
                except GraphError as e:
                    raise PassError(f"pass {p!r} failed: {e}") from e
                self.trace.append((repr(p), before, len(res.graph.nodes), res.changed))
                if res.changed:
                    changed.append(repr(p))
                g = res.graph
            changed_any = changed_any or bool(changed)
            if not changed:
                return PassResult(g, changed_any)
        if self.fixed_point:
            raise PassError(f"no fixed point after {self.max_iterations} rounds; still changing: "
                            f"{', '.join(changed)}")
        return PassResult(g, changed_any)
