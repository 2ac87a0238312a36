"""glibc's malloc, kept from handing freed memory back to the OS between two calls.

A convolution allocates its output and, for some algorithms, work arrays of a few MB, and
frees them when done. glibc's malloc serves such sizes from its heap once it has seen them
freed (its mmap threshold rises to the largest block freed, up to 32 MiB), but it gives
the heap's free top back to the OS whenever that top passes its trim threshold (twice the
mmap threshold). Whether that happens depends on what else the process holds: the same
call in a loop can pay a page fault for every 4 KiB it touches, call after call, or none.
Measured (2 cores under KVM, where a fault costs about 1.3 us): resnet18's 7x7 stem on
1x224x224x3 took 3.7-4.3 ms with about 1,400 faults a call in one script and 1.9-2.2 ms with
none in another that had only allocated two more arrays first; with the thresholds below
both took 1.9-2.2 ms, without faults. Whole networks through :mod:`convlayer.onnx` did not
fault either way (their many arrays keep the heap's top in use).

So :func:`keep_freed_memory` fixes the mmap threshold at :data:`MMAP_THRESHOLD` (glibc's
own ceiling for it, 32 MiB) and the trim threshold at :data:`TRIM_THRESHOLD`: a heap keeps
up to 256 MiB of freed memory for the next call rather than returning it. It also turns
mmap off for single blocks (``M_MMAP_MAX`` 0): a block above 32 MiB came from the OS and
went back to it on every call, and the OS hands out zeroed pages, so a batch-8 layer's
38.5 MB output (8x112x112x96, mobilenet_v2's and efficientnet_b0's widest) cost 4.4 ms of
faults and zeroing a call (the 1x1 layer that writes it: 6.7 ms with a fresh output, 2.3
ms into a kept one). Such blocks now come from the heap and return to it. Through
:mod:`convlayer.onnx`, same process, mmap on -> off, two rounds: mobilenet_v2 batch 8 71.4,
73.5 -> 64.9, 64.5 ms; efficientnet_b0 batch 8 104.4, 99.9 -> 99.4, 93.6; resnet18 batch 8
(no block above 32 MiB) 152 either way; peak memory the same (371 MB). A thread's arena
that cannot hold a block (above 64 MiB) passes it to the main heap, as glibc does.

That is done once, at ``import convlayer``, on glibc only (Linux), and not at all where the
user set ``CONVLAYER_MALLOC=glibc`` (glibc's own, moving thresholds) or any of glibc's
``MALLOC_*`` variables (theirs; note that setting any one of them fixes every threshold
glibc would otherwise move). The process's memory then stays at its peak until the end,
plus at most 256 MiB of free heap per arena (a freed block below the heap's top stays
with the process until the blocks above it are freed too).
"""

from __future__ import annotations

import ctypes
import os

MMAP_THRESHOLD = 2**25  # bytes; glibc refuses more (its DEFAULT_MMAP_THRESHOLD_MAX on 64 bits)
TRIM_THRESHOLD = 2**28

# mallopt's parameter numbers (glibc's malloc.h) and the variables that set them
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -3, -4
VARIABLES = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_")
OPT_OUT = "CONVLAYER_MALLOC"  # =glibc: leave glibc's thresholds as glibc moves them

# What keep_freed_memory did, for convlayer bench's report.
status = {"done": "not yet"}


def keep_freed_memory() -> str:
    """Set glibc's mmap and trim thresholds where the user has not; return (and keep in
    :data:`status`) what was done, in words."""
    if os.environ.get(OPT_OUT, "").lower() == "glibc":
        return _say(f"left to glibc ({OPT_OUT}=glibc)")
    chosen = [name for name in VARIABLES if name in os.environ]
    if chosen:
        return _say(f"left as set in the environment ({', '.join(chosen)})")
    mallopt = _glibc_mallopt()
    if mallopt is None:
        return _say("left alone: not glibc's malloc")
    if mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) != 1 or mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) != 1:
        return _say("left alone: mallopt refused the thresholds")
    if mallopt(_M_MMAP_MAX, 0) != 1:
        return _say(f"mmap threshold {MMAP_THRESHOLD >> 20} MiB, trim threshold {TRIM_THRESHOLD >> 20} MiB")
    return _say(f"trim threshold {TRIM_THRESHOLD >> 20} MiB, every block from the heap (no mmap)")


def _say(done: str) -> str:
    status["done"] = done
    return done


def _glibc_mallopt():
    """glibc's ``mallopt``, or None where the process's C library is another one."""
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # glibc only: musl's mallopt accepts nothing
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):  # Windows has no CDLL(None)
        return None
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt
