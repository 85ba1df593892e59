"""How models run in this process: the allocator settings that make captures cheaper, and giving freed memory
back to the system. Every program (the app, the command line, training) calls `tune_allocator` once at start.

Eager attention allocates several T x T temporaries per layer, and the backward pass as many again. glibc
hands blocks over its mmap threshold straight back to the system when they are freed, so every capture
faults its pages in anew: at 512 tokens MiniLM's gradient rollout took 1.4 million page faults. Raising the
threshold to glibc's maximum (32 MB) and keeping up to 256 MB of freed heap makes later captures reuse the
same pages (about 100 thousand faults). The byte-bounded caches still give evicted memory back
(`release_free_memory`).
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 * 2**20   # glibc's largest allowed value on 64-bit systems
TRIM_THRESHOLD_BYTES = 256 * 2**20

_tuned = False


def tune_allocator() -> bool:
    """Keep freed heap memory for reuse (glibc only; elsewhere nothing happens). Returns whether it applied."""
    global _tuned
    if _tuned:
        return True
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        mallopt = getattr(libc, "mallopt", None)
    except OSError:
        return False
    if mallopt is None:
        return False
    _tuned = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
    return _tuned


def release_free_memory() -> None:
    """Return freed heap memory to the operating system (glibc's malloc_trim; nothing elsewhere).

    Evicted captures are large blocks; glibc keeps freed blocks in its per-thread arenas (Streamlit runs every
    session in its own thread), so without this a server's resident memory stays near its peak. The benchmark
    calls it before measuring a peak, so that memory an earlier call freed is not silently reused.
    """
    import gc

    gc.collect()
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        if libc is not None and hasattr(libc, "malloc_trim"):
            libc.malloc_trim(0)
    except OSError:
        pass


# The thread policy: one intra-op thread per model run, in every program (the app, the command line, the benchmark,
# evaluation). torch starts as many threads as cores, and on a machine whose cores are busy elsewhere, or with several
# sessions running models at once, its threads wait on each other: MiniLM's 128-token capture took 115 ms with two
# threads beside two busy processes against 31 ms on a quiet machine (3.7x; 10x and more beside three), but 82 ms
# against 61 ms with one thread (1.35x). The app runs at most one model run per core at a time (a bounded pool), so
# one thread each keeps every core busy without oversubscribing it. An operator of a dedicated machine can raise it.
THREADS_VARIABLE = "EXPLAIN_THREADS"


def thread_count() -> int:
    """Intra-op threads per model run: EXPLAIN_THREADS when set to a positive whole number, else 1."""
    import os

    raw = os.environ.get(THREADS_VARIABLE, "").strip()
    return int(raw) if raw.isdigit() and int(raw) > 0 else 1


def apply_thread_policy() -> int:
    """Set this thread's torch intra-op threads to the policy's count (cheap when already set); returns it.

    torch keeps the count per thread once set (new threads start from the process's), so the app calls this in
    every script run, the programs once at start.
    """
    import torch

    count = thread_count()
    if torch.get_num_threads() != count:
        torch.set_num_threads(count)
    return count
