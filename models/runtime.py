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
import os
import threading
from collections import deque
from contextlib import contextmanager
from typing import Callable, Iterator

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
# against 61 ms with one thread (1.35x). The app runs its heavy requests (captures with gradients, the methods that
# run the model again, faithfulness scoring) in a bounded pool of cores / threads slots (`heavy_slot`), so one thread
# each keeps every core busy without oversubscribing it. An operator of a dedicated machine can raise it.
THREADS_VARIABLE = "EXPLAIN_THREADS"


def thread_count() -> int:
    """Intra-op threads per model run: EXPLAIN_THREADS when set to a positive whole number, else 1."""
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


class SlotPool:
    """A first-come, first-served pool of `slots` places, reentrant per thread, that tells a waiter where it stands.

    `with pool.slot(on_wait):` takes a place, waiting in line when all are taken; `on_wait(ahead)` is called (in the
    waiting thread, outside the pool's lock) when it has to wait and whenever the number of requests ahead of it
    (running ones included) changes, so a page can show "2 requests ahead". A thread that already holds a place
    enters again without waiting (a heavy request that runs another), and a waiter whose callback raises (a
    Streamlit rerun) leaves the line.
    """

    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError(f"A pool needs at least one slot, not {slots}.")
        self.slots = slots
        self._condition = threading.Condition()
        self._line: deque[object] = deque()
        self._holders: dict[int, int] = {}  # thread id -> how many times it entered

    @property
    def busy(self) -> int:
        """Places taken now."""
        with self._condition:
            return len(self._holders)

    @property
    def waiting(self) -> int:
        """Requests waiting in line now."""
        with self._condition:
            return len(self._line)

    def acquire(self, on_wait: Callable[[int], None] | None = None) -> None:
        """Take a place, waiting in line (and telling `on_wait` how many requests are ahead) when none is free."""
        me = threading.get_ident()
        ticket = object()
        with self._condition:
            if me in self._holders:
                self._holders[me] += 1
                return
            self._line.append(ticket)
        told = None
        try:
            while True:
                with self._condition:
                    position = self._line.index(ticket)
                    if position == 0 and len(self._holders) < self.slots:
                        self._line.popleft()
                        self._holders[me] = 1
                        self._condition.notify_all()  # the next in line may fit too
                        return
                    ahead = len(self._holders) + position
                    if on_wait is None or ahead == told:
                        self._condition.wait()
                        continue
                told = ahead
                on_wait(ahead)
        except BaseException:
            with self._condition:
                if ticket in self._line:
                    self._line.remove(ticket)
                    self._condition.notify_all()
            raise

    def release(self) -> None:
        """Give back this thread's place (once per acquire)."""
        me = threading.get_ident()
        with self._condition:
            if me not in self._holders:
                raise RuntimeError("This thread holds no place in the pool.")
            self._holders[me] -= 1
            if not self._holders[me]:
                del self._holders[me]
                self._condition.notify_all()

    @contextmanager
    def slot(self, on_wait: Callable[[int], None] | None = None) -> Iterator[None]:
        """Hold a place for the block (see `acquire`)."""
        self.acquire(on_wait)
        try:
            yield
        finally:
            self.release()

    def __enter__(self) -> "SlotPool":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


# Heavy requests: captures with gradients, the methods that run the model again, faithfulness scoring. Each takes a
# place in one process-wide pool, so that eight visitors at once queue instead of each holding a backward pass's
# memory: cores / threads per run places (EXPLAIN_HEAVY_SLOTS sets another number).
_heavy_pool: SlotPool | None = None
_heavy_pool_lock = threading.Lock()


def heavy_slot_count() -> int:
    """Places in the heavy-request pool: the operator's heavy_slots, else the cores divided by the threads per run."""
    from models.settings import read_settings

    configured = read_settings().heavy_slots
    return configured if configured else max(1, (os.cpu_count() or 1) // thread_count())


def heavy_pool() -> SlotPool:
    """The process's pool of heavy-request places (sized once, at first use)."""
    global _heavy_pool
    with _heavy_pool_lock:
        if _heavy_pool is None:
            _heavy_pool = SlotPool(heavy_slot_count())
        return _heavy_pool


@contextmanager
def heavy_slot(on_wait: Callable[[int], None] | None = None) -> Iterator[None]:
    """Run the block in a place of the heavy-request pool, waiting in line when all are taken (see SlotPool)."""
    with heavy_pool().slot(on_wait):
        yield
