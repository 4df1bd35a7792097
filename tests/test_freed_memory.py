"""The interpreter keeps freed memory for reuse (graphdl/engine/freed_memory.py): a freed
20 MB array stays in the process (its pages are not handed back to the OS) once a Plan has
been made, and is handed back without it or with GRAPHDL_KEEP_FREED_MEMORY=0. Each case runs
in a fresh interpreter process, since the setting is process-wide."""
from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.system() != "Linux" or
                                platform.libc_ver()[0] != "glibc",
                                reason="mallopt thresholds are glibc's")

SCRIPT = r"""
import os, sys
import numpy as np
import graphdl as gd
from graphdl.engine.interpreter import Plan

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

if sys.argv[1] == "plan":
    b = gd.GraphBuilder("g")
    x = b.input("x", [2])
    Plan(b.build({"y": x + 1.0}))
a = np.ones(20 * 2**20 // 8)  # 20 MiB, every page touched
before = rss()
del a
print(before - rss())
"""


def _released(mode: str, **env: str) -> int:
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True,
                         env={**os.environ, **env}, check=True)
    return int(out.stdout.strip())


def test_a_plan_keeps_freed_blocks_in_the_process():
    assert _released("plan") < 2**20  # under 1 MiB of the 20 given back


def test_without_a_plan_or_when_turned_off_freed_blocks_go_back():
    assert _released("none") > 19 * 2**20
    assert _released("plan", GRAPHDL_KEEP_FREED_MEMORY="0") > 19 * 2**20


def test_keep_freed_memory_reports_the_outcome():
    from graphdl.engine.freed_memory import keep_freed_memory

    assert keep_freed_memory() is (os.environ.get("GRAPHDL_KEEP_FREED_MEMORY", "1") != "0")
