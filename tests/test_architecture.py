"""Architectural rules that code review alone would let slip."""
import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import networkx as nx

import graphdl


def test_the_library_never_imports_passes():
    """Every graphdl module but the command line imports without pulling in ``passes``."""
    mods = [m.name for m in pkgutil.walk_packages(graphdl.__path__, "graphdl.")
            if m.name not in ("graphdl.tools.cli", "graphdl.__main__")]
    code = "; ".join([f"import {m}" for m in mods] +
                     ["import sys", "print(sorted(m for m in sys.modules if m == 'passes' "
                      "or m.startswith('passes.')))"])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
    assert len(mods) > 40  # the walk really found the package's modules


# -- the layers ------------------------------------------------------------------------------

ROOT = Path(graphdl.__file__).resolve().parent.parent
#: graphdl's subpackages, lowest layer first; a module imports only from its own layer or below
LAYERS = {"core": 0, "ops": 1, "nn": 2, "optim": 2, "engine": 3, "onnx": 3, "training": 4,
          "tools": 5}
TOP = 6  # graphdl/__init__.py and the other top-level modules: the public face, above all


def _modules(pkg: str) -> dict[str, Path]:
    base = ROOT / pkg
    out = {}
    for p in base.rglob("*.py"):
        parts = list(p.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _imports(mod: str, path: Path) -> list[tuple[str, int, bool]]:
    """(imported module, line, at module level) for every import in the file, function-local
    ones included; ``from pkg import name`` counts as importing ``pkg.name`` where that is a
    module."""
    pkg = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    top = {id(n) for n in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")[: len(pkg.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [f"{target}.{a.name}" for a in node.names]
            subs = [n for n in names if _is_module(n)]
            for t in subs or [target]:
                found.append((t, node.lineno, id(node) in top))
        elif isinstance(node, ast.Import):
            found += [(a.name, node.lineno, id(node) in top) for a in node.names]
    return found


def _is_module(name: str) -> bool:
    path = ROOT / Path(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def _layer(mod: str) -> int:
    parts = mod.split(".")
    return LAYERS.get(parts[1], TOP) if len(parts) > 1 else TOP


def test_graphdl_top_level_holds_at_most_ten_modules():
    tops = sorted(p.name for p in (ROOT / "graphdl").glob("*.py"))
    assert len(tops) <= 10, tops
    subpackages = {p.name for p in (ROOT / "graphdl").iterdir() if (p / "__init__.py").exists()}
    assert set(LAYERS) <= subpackages


def test_no_module_imports_a_higher_layer():
    """core <- ops <- nn, optim <- engine, onnx <- training <- tools: function-local imports
    count too. Only the command line (graphdl.tools.cli) imports passes."""
    upward = []
    for mod, path in _modules("graphdl").items():
        for target, line, _ in _imports(mod, path):
            if target.split(".")[0] == "passes" and mod != "graphdl.tools.cli":
                upward.append(f"{mod}:{line} imports {target}")
            if target.startswith("graphdl.") and _layer(target) > _layer(mod):
                upward.append(f"{mod}:{line} imports {target}")
    assert upward == []


def test_the_layers_have_no_import_cycle():
    """Between subpackages, and between modules at module level (function-local imports inside
    one layer, such as a VJP rule calling another op family, are not cycles at import)."""
    pkgs = nx.DiGraph()
    mods = nx.DiGraph()
    for mod, path in {**_modules("graphdl"), **_modules("passes")}.items():
        for target, _, top in _imports(mod, path):
            if not target.startswith(("graphdl.", "passes")):
                continue
            a, b = mod.split(".")[:2], target.split(".")[:2]
            if a != b and len(a) > 1 and len(b) > 1 and a[0] == b[0] == "graphdl":
                pkgs.add_edge(a[1], b[1])
            if top and _is_module(target) and target != mod:
                mods.add_edge(mod, target)
    assert list(nx.simple_cycles(pkgs)) == []
    # a package's __init__ importing its own submodules is how it registers them
    cycles = [c for c in nx.simple_cycles(mods)
              if not any(x.startswith(y + ".") for x in c for y in c)]
    assert cycles == []


def _function_local_imports(mod: str, path: Path) -> list[tuple[str, int]]:
    """(imported module, line) for every import inside a function, method or lambda."""
    local = set()
    for fn in ast.walk(ast.parse(path.read_text())):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            local.update(n.lineno for n in ast.walk(fn)
                         if isinstance(n, (ast.Import, ast.ImportFrom)))
    return [(t, line) for t, line, _ in _imports(mod, path) if line in local]


def test_op_families_import_each_other_at_module_level():
    """Inside graphdl/ops no function imports another ops module: the families form an
    acyclic order at import time (common < elementwise < shape < reduce, scatter, pad < slice <
    gather < ...). Where two rules are each other's adjoints, one side names the op through the
    registry (``b.apply1("reduce_sum", ...)``) or a Tensor method that the owning module
    registers (``TENSOR_METHODS``), instead of hiding a cycle in a function body."""
    ops = _modules("graphdl/ops")
    assert len(ops) > 30  # the walk found the op modules
    local = [f"{mod}:{line} imports {target}" for mod, path in sorted(ops.items())
             for target, line in _function_local_imports(mod, path)
             if target.startswith("graphdl.ops.") or target == "graphdl.ops"]
    assert local == []


# -- no private reaching ---------------------------------------------------------------------

#: documented CPython functions whose names start with an underscore
ALLOWED_PRIVATE = {"_getframe"}


def _own_attrs(tree: ast.AST) -> set[str]:
    """Underscore names a module defines itself: its functions, classes, methods and the
    attributes its classes assign (self._x = ...)."""
    own = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            own.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            own.add(node.attr)
        elif isinstance(node, ast.ClassDef):
            own.update(t.id for s in node.body if isinstance(s, ast.AnnAssign)
                       for t in [s.target] if isinstance(t, ast.Name))
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for s in node.body:
                if isinstance(s, (ast.AnnAssign, ast.Assign)):
                    targets = [s.target] if isinstance(s, ast.AnnAssign) else s.targets
                    own.update(t.id for t in targets if isinstance(t, ast.Name))
                if isinstance(s, ast.Assign) and any(isinstance(t, ast.Name) and
                                                     t.id == "__slots__" for t in s.targets):
                    own.update(ast.literal_eval(s.value))
    return own


def _private_reaches(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    own = _own_attrs(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            found += [f"imports {a.name} from {node.module}" for a in node.names
                      if a.name.startswith("_") and not a.name.startswith("__")]
        elif isinstance(node, ast.Attribute):
            name = node.attr
            if not name.startswith("_") or name.startswith("__") or name in ALLOWED_PRIVATE:
                continue
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                continue
            if name not in own:
                found.append(f"line {node.lineno}: reaches {ast.unparse(node)}")
    return found


def test_no_module_reaches_another_modules_private_names():
    """No ``from x import _name`` and no ``obj._attr`` of a class defined elsewhere."""
    found = {}
    for pkg in ("graphdl", "passes"):
        for mod, path in _modules(pkg).items():
            reaches = _private_reaches(path)
            if reaches:
                found[mod] = reaches
    assert found == {}
