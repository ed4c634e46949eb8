"""Keep freed memory out of the files Chroma writes: glibc's M_PERTURB, set once per process.

Chroma's HNSW index (its hnswlib fork, in its Rust bindings) allocates the level-0 buffer with
`malloc` and persists all of it, the unused elements too. Without this, whatever the process
heap held before (another user's words, a forgotten user's id) can land in any collection's
`data_level0.bin` and stays there after forgetting. With `M_PERTURB` glibc zeroes every fresh
allocation (`FREED_BYTE ^ 0xff`) and overwrites every freed one with `FREED_BYTE`.

Limits: glibc only (elsewhere `scrub_freed_memory` returns False); small chunks that glibc keeps
in its per-thread cache (<= 1032 bytes) are neither filled nor overwritten, which does not
touch the index buffers (a level-0 buffer is kilobytes; hnswlib zeroes the link lists itself);
memory freed before the call keeps its bytes until it is handed out again. So the command line
calls this first thing, and the local vector store before Chroma loads.
"""

from __future__ import annotations

import ctypes
import sys
from functools import cache

M_PERTURB = -6  # glibc's malloc.h
FREED_BYTE = 0xFF  # fresh allocations get FREED_BYTE ^ 0xff: zeros, like calloc


def perturb(byte: int) -> bool:
    """Set glibc's M_PERTURB to `byte` (0 turns it off); return whether it took."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl has mallopt but ignores M_PERTURB)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_PERTURB, byte))


@cache
def scrub_freed_memory() -> bool:
    """Have glibc zero fresh heap memory and overwrite freed memory; return whether it took."""
    return perturb(FREED_BYTE)
