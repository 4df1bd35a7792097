"""Keeping freed memory in the process for the next step, as onnxruntime's arena and other
frameworks' caching allocators do.

A training step in the interpreter frees and allocates the same large arrays every step (im2col
columns, conv outputs, gradients of activations: megabytes each). glibc's malloc hands blocks
above its mmap threshold back to the OS when they are freed, and trims the top of its heap, so
the next step's allocation gets fresh pages whose first touch page-faults and zeroes them: about
10% of a CIFAR ResNet step (batch 32, one thread: kept / handed back 0.89 in ``python
benchmarks/bench_interp_kernels.py``). :func:`keep_freed_memory` raises both thresholds once per process (mmap threshold
to glibc's maximum, 32 MiB on 64-bit; trimming above 1 GiB), so those blocks are reused instead.

The cost is that the process's resident size does not shrink after a large computation. It is
process-wide, so it is done once, only on glibc, and ``GRAPHDL_KEEP_FREED_MEMORY=0`` in the
environment turns it off.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

#: mallopt parameters (glibc's malloc.h)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
#: glibc's largest mmap threshold on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX: 4 MiB * sizeof(long))
MMAP_THRESHOLD = 32 * 1024 * 1024
TRIM_THRESHOLD = 1024 * 1024 * 1024
ENV = "GRAPHDL_KEEP_FREED_MEMORY"

_applied: bool | None = None  # the process-wide outcome, decided once


def keep_freed_memory() -> bool:
    """Raises glibc's mmap and trim thresholds (once per process); whether they are raised."""
    global _applied
    if _applied is None:
        _applied = _apply()
    return _applied


def _apply() -> bool:
    if os.environ.get(ENV, "1").strip() in ("0", "false", "no", "off"):
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    path = ctypes.util.find_library("c")
    if path is None:
        return False
    mallopt = ctypes.CDLL(path).mallopt
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # the mmap threshold first: setting either one turns glibc's dynamic threshold off
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and \
        bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
