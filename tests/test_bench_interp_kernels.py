"""The interpreter-kernel benchmark (benchmarks/bench_interp_kernels.py) as a smoke run: every
pair of kernels it times agrees on its outputs (the script stops with OutputsDiffer
otherwise) and every pair prints a positive ratio. No timing targets are asserted."""
from __future__ import annotations

import re
import subprocess
import sys

from tests.test_benchmarks_harness import ROOT


def test_quick_run_checks_and_times_every_pair():
    proc = subprocess.run([sys.executable, "benchmarks/bench_interp_kernels.py", "--quick"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    ratios = re.findall(r"= (\d+\.\d+)", proc.stdout)
    # conv blocks, conv columns and weight gradient for 6 shapes, 3 more convs,
    # ConvTranspose for 4 + 2, matmul, freed memory
    assert len(ratios) == 3 * 6 + 3 + 4 + 2 + 1 + 1
    assert all(float(r) > 0 for r in ratios)
