"""CPU training speed: keep freed tensor memory in the process (glibc malloc settings).

glibc serves every allocation above its mmap threshold (128 KiB to 32 MiB, adjusted on the fly)
with a fresh ``mmap`` and returns it with ``munmap`` when freed. A training step allocates and
frees the same large activations and gradients every time, so each one costs a page fault per
4 KiB on first touch: on a 2-core machine about 15 % of a full PConv U-Net step at 256x256, and
more than half the time of a single large convolution (``benchmarks/RESULTS.md``). Raising the
thresholds keeps that memory mapped and reuses it. The price is that the process keeps its peak
memory until it exits, which a training process reaches in its first step anyway.

CUDA tensors use PyTorch's own caching allocator and are unaffected.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

__all__ = ["keep_freed_memory"]

logger = logging.getLogger(__name__)

# mallopt parameters from glibc's malloc.h
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3

# (parameter, values to try in order): glibc before 2.35 caps the mmap threshold at 32 MiB on
# 64-bit systems and rejects larger values.
_SETTINGS = (
    (_M_MMAP_THRESHOLD, (1 << 30, 1 << 25)),  # allocations up to 1 GiB (or 32 MiB) from the heap
    (_M_TRIM_THRESHOLD, ((1 << 31) - 1,)),    # never give free heap memory back to the OS
    (_M_TOP_PAD, (1 << 26,)),                 # grow the heap 64 MiB at a time
)


def keep_freed_memory(libc: ctypes.CDLL | None = None) -> bool:
    """Tell glibc's malloc to keep and reuse freed memory (see the module docstring).

    Args:
        libc: the C library to configure (default: the process's own); for tests.

    Returns:
        True when every setting was applied; False on a platform without glibc's ``mallopt``
        (macOS, Windows, musl), where nothing changes.
    """
    if libc is None:
        if not sys.platform.startswith("linux"):
            return False
        name = ctypes.util.find_library("c")
        if name is None:
            return False
        libc = ctypes.CDLL(name)
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None or getattr(libc, "gnu_get_libc_version", None) is None:
        return False  # not glibc: other allocators have other knobs
    if isinstance(mallopt, ctypes._CFuncPtr):  # declare the C signature (int, int) -> int
        mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        mallopt.restype = ctypes.c_int
    # every setting is tried, whatever became of the others
    results = [any(mallopt(parameter, value) == 1 for value in values)
               for parameter, values in _SETTINGS]
    applied = all(results)
    if not applied:
        logger.warning("glibc rejected a malloc setting; CPU training may be slower")
    return applied
