"""Unique value and node names within one graph: the one name generator the builder, the
rewriter of passes and the ONNX exporter share."""
from __future__ import annotations

from typing import Iterable


class NameGen:
    """Hands out names no one in the graph holds yet.

    ``fresh("relu")`` gives ``relu`` + ``sep`` + a counter; ``sep`` differs per user so that
    generated names cannot collide with the ones another stage made (the builder's
    ``relu_3``, a pass's ``relu_3_1``, the exporter's ``relu_3__1``). ``reserve`` keeps names
    that a later stage will claim away from :meth:`fresh`."""

    def __init__(self, taken: Iterable[str] = (), sep: str = ""):
        self.sep = sep
        self._taken: set[str] = set(taken)
        self._reserved: set[str] = set()
        self._counter = 0

    def is_taken(self, name: str) -> bool:
        return name in self._taken

    def fresh(self, prefix: str, claim: bool = True) -> str:
        """A name not yet taken (nor reserved); ``claim=False`` leaves it free to be claimed
        by a rename later."""
        while True:
            self._counter += 1
            name = f"{prefix}{self.sep}{self._counter}"
            if name not in self._taken and name not in self._reserved:
                if claim:
                    self._taken.add(name)
                return name

    def claim(self, name: str) -> bool:
        """Takes ``name``; False (and nothing changes) when it was already taken."""
        if name in self._taken:
            return False
        self._taken.add(name)
        return True

    def release(self, name: str) -> None:
        self._taken.discard(name)

    def reserve(self, names: Iterable[str]) -> None:
        self._reserved.update(names)
