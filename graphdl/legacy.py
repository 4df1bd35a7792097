"""The module paths of graphdl's first, flat layout (``graphdl.trainer``, ``graphdl.viz``, ...)
as aliases of where those modules live now, so code and documents written against them keep
working: ``import graphdl.trainer`` gives the module ``graphdl.training.trainer`` itself."""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from types import ModuleType

#: old module (under graphdl) -> its module now
MOVED = {
    "errors": "core.errors", "types": "core.types", "ir": "core.ir", "registry": "core.registry",
    "builder": "core.builder", "verify": "core.verify", "rewrite": "core.rewrite",
    "paths": "core.paths", "feeds": "core.feeds", "limits": "core.limits",
    "fileio": "core.fileio", "printing": "core.printing",
    "interpreter": "engine.interpreter", "plan_buffers": "engine.buffers",
    "runtime": "engine.runtime", "numerics": "engine.numerics",
    "step_runner": "training.step_runner",
    "onnx_export": "onnx.export", "ort_coverage": "onnx.coverage",
    "onnx_import": "onnx.importer", "onnx_importers": "onnx.importers",
    "onnx_boundary": "onnx.boundary", "onnx_checks": "onnx.checks",
    "external_data": "onnx.external_data", "onnx_listing": "onnx.listing",
    "train_step": "training.step", "trainer": "training.trainer",
    "progress": "training.progress", "train": "training.minibatch",
    "summary": "core.summary", "viz": "tools.viz", "explain": "tools.explain",
    "cli": "tools.cli",
}


class _Alias(importlib.abc.Loader):
    def __init__(self, target: str):
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        sys.modules[module.__name__] = importlib.import_module(self.target)


class _Finder(importlib.abc.MetaPathFinder):
    """Finds ``graphdl.OLD`` (and ``graphdl.OLD.sub``) for every OLD in MOVED."""

    def find_spec(self, name: str, path=None, target=None):
        head, _, rest = name.partition(".")
        if head != "graphdl" or not rest:
            return None
        old, _, sub = rest.partition(".")
        if old not in MOVED:
            return None
        new = f"graphdl.{MOVED[old]}" + (f".{sub}" if sub else "")
        return importlib.machinery.ModuleSpec(name, _Alias(new))


def install() -> None:
    """Puts the alias finder on ``sys.meta_path`` once."""
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())  # before an editable install's own finder
