"""Architectural rules that code review alone would let slip."""
import pkgutil
import subprocess
import sys

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
