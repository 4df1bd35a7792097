"""The batch-norm export benchmark (benchmarks/bench_bn_export.py) as a smoke run: the two
exports it times agree on y, the running statistics and the gradients for every layer shape
(the script stops with OutputsDiffer otherwise) and each prints a positive ratio. No timing
target is asserted."""
from __future__ import annotations

import re
import subprocess
import sys

from tests.test_benchmarks_harness import ROOT


def test_quick_run_checks_and_times_every_layer():
    proc = subprocess.run([sys.executable, "benchmarks/bench_bn_export.py", "--quick"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    ratios = re.findall(r"= (\d+\.\d+)", proc.stdout)
    assert len(ratios) == 3 and all(float(r) > 0 for r in ratios)
