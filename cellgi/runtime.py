"""Process-wide runtime settings that the ``cellgi`` command applies before it runs a command.

The host allocator: PyTorch's CPU tensors come from ``malloc``. glibc serves a large block with a fresh
``mmap`` and returns it with ``munmap`` on free, and trims the heap top back to the kernel; at yeast scale a
layer's activations (``[N * (B+1), H]``, 15 MB at B=8, 56 MB at B=32) are exactly such blocks, so every
one is page-faulted in again on each use. Measured on 2 CPU cores (docs/performance.md, "The host
allocator"): at B=32, training 2.7x and inference 2.3x faster when the blocks are kept and reused, at the
cost of a higher peak RSS (15.2 instead of 10.7 GiB); at B=8 no difference beyond noise after warm-up.

:func:`tune_host_allocator` raises glibc's mmap threshold (1 GiB) and trim threshold (512 MiB) through
``mallopt``. It acts only on Linux with glibc, only in the ``cellgi`` command (importing cellgi as a
library changes nothing), and ``CELLGI_HOST_ALLOCATOR=default`` turns it off.
"""

from __future__ import annotations

import ctypes
import os
import sys

__all__ = ["HOST_ALLOCATOR_ENV", "SCORING_COMMANDS", "host_allocator_state", "passive_omp_wait_for",
           "tune_host_allocator"]

#: commands that score many gene sets in batches of small operations (see :func:`passive_omp_wait_for`)
SCORING_COMMANDS = ("predict", "evaluate", "screen")


def passive_omp_wait_for(argv: list[str]) -> bool:
    """For the scoring commands (:data:`SCORING_COMMANDS`), let OpenMP threads sleep instead of spin
    while they wait (``OMP_WAIT_POLICY=PASSIVE``), unless the variable is set already or torch is loaded.

    Why: scoring gene sets with a wildtype-only model is many short operations; with spinning waits, a
    core shared with other processes stalls every parallel region of the other thread. Measured on the
    shared 2-core machine (docs/performance.md, "Scoring gene sets"): 3,600-6,400 pairs/s with the
    default policy and 2 threads, 62,000-71,000 with PASSIVE. Returns whether it set the variable."""
    if not argv or argv[0] not in SCORING_COMMANDS or "OMP_WAIT_POLICY" in os.environ or "torch" in sys.modules:
        return False
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return True

#: environment variable: ``tuned`` (default) or ``default`` (leave malloc as the C library set it)
HOST_ALLOCATOR_ENV = "CELLGI_HOST_ALLOCATOR"
_CHOICES = ("tuned", "default")
_M_TRIM_THRESHOLD = -1  # mallopt parameters, <malloc.h>
_M_MMAP_THRESHOLD = -3
_state = "default"


def _requested() -> str:
    value = os.environ.get(HOST_ALLOCATOR_ENV, "tuned").strip().lower()
    if value not in _CHOICES:
        raise ValueError(
            f"{HOST_ALLOCATOR_ENV}={os.environ[HOST_ALLOCATOR_ENV]!r} is not one of {', '.join(_CHOICES)}"
        )
    return value


def tune_host_allocator(mmap_threshold: int = 1 << 30, trim_threshold: int = 1 << 29) -> bool:
    """Keep large freed blocks in the process for reuse (see the module docs). Returns whether the settings
    were applied: False when ``CELLGI_HOST_ALLOCATOR=default``, off Linux/glibc, or when glibc refuses a
    value. Raises ``ValueError`` for an unknown ``CELLGI_HOST_ALLOCATOR`` value."""
    global _state
    if _requested() == "default" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 - glibc only: musl has other malloc semantics
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold)) == 1
    ok = mallopt(_M_TRIM_THRESHOLD, int(trim_threshold)) == 1 and ok
    if ok:
        _state = f"tuned (glibc mallopt: mmap threshold {mmap_threshold >> 20} MiB, trim {trim_threshold >> 20} MiB)"
    return ok


def host_allocator_state() -> str:
    """``default`` or a description of what :func:`tune_host_allocator` set in this process."""
    return _state
