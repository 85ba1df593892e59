"""A process-wide cache bounded by bytes, not by entry count.

Streamlit's own caches are bounded by the number of entries, and one 512-token text capture holds about
150 MB (the full attention and gradient stacks), so twenty long texts took a server to 5 GB. This cache
evicts the least recently used entries once the total size passes its budget, and hands out the same
object to every session (no pickling copy per call): cached values must not be modified by callers.

Budgets (megabytes) come from the environment, read once per process:
    EXPLAIN_CACHE_MB        captures and other computed results (default 1024)
    EXPLAIN_MODEL_CACHE_MB  loaded models' parameters (default 4096)
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Hashable

from models.settings import MODEL_CACHE_DEFAULT_MB

DEFAULT_RESULTS_MB = 1024
DEFAULT_MODELS_MB = MODEL_CACHE_DEFAULT_MB  # the operator's settings read the same variable (models/settings.py)


def budget_mb(variable: str, default: int) -> int:
    """A budget in MB from the environment variable `variable`, or `default` when unset or not a positive number."""
    raw = os.environ.get(variable, "").strip()
    try:
        value = int(float(raw))
    except ValueError:
        return default
    return value if value > 0 else default


@dataclass
class CacheStats:
    entries: int
    bytes: int
    budget_bytes: int
    hits: int
    misses: int
    evictions: int


class ByteBudgetCache:
    """Least-recently-used cache whose entries' total size stays within `max_bytes`.

    An entry larger than the whole budget is computed and returned but not kept. Concurrent requests for
    the same missing key compute it once: the others wait for it.
    """

    def __init__(self, max_bytes: int, on_evict: Callable[[], None] | None = None) -> None:
        if max_bytes <= 0:
            raise ValueError(f"A cache budget must be positive, not {max_bytes} bytes.")
        self.max_bytes = int(max_bytes)
        self._on_evict = on_evict
        self._entries: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._computing: dict[Hashable, threading.Lock] = {}
        self._hits = self._misses = self._evictions = 0

    def get(self, key: Hashable) -> tuple[bool, Any]:
        """(True, value) when cached (and marked as recently used), else (False, None)."""
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                self._hits += 1
                return True, self._entries[key][0]
        return False, None

    def get_or_compute(self, key: Hashable, compute: Callable[[], Any], size_of: Callable[[Any], int]) -> Any:
        """The cached value of `key`, or `compute()` stored under it. Exceptions are not cached."""
        found, value = self.get(key)
        if found:
            return value
        with self._lock:
            gate = self._computing.setdefault(key, threading.Lock())
        with gate:
            found, value = self.get(key)
            if found:
                return value
            try:
                value = compute()
                self.put(key, value, size_of(value))
            finally:
                with self._lock:
                    self._computing.pop(key, None)
        return value

    def make_room(self, nbytes: int) -> None:
        """Evict the least recently used entries until `nbytes` more fit in the budget (before a large value is
        computed, so that the old entries and the new one are not in memory together)."""
        evicted = False
        with self._lock:
            while self._entries and self._bytes + nbytes > self.max_bytes:
                _, (_, dropped) = self._entries.popitem(last=False)
                self._bytes -= dropped
                self._evictions += 1
                evicted = True
        if evicted and self._on_evict is not None:
            self._on_evict()

    def put(self, key: Hashable, value: Any, size: int) -> None:
        """Store `value` as `size` bytes, evicting the least recently used entries to stay within budget."""
        evicted = self._evictions
        self._store(key, value, size)
        if self._on_evict is not None and self._evictions != evicted:
            self._on_evict()

    def _store(self, key: Hashable, value: Any, size: int) -> None:
        with self._lock:
            self._misses += 1
            if key in self._entries:
                self._bytes -= self._entries.pop(key)[1]
            if size > self.max_bytes:
                return
            self._entries[key] = (value, size)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, (_, dropped) = self._entries.popitem(last=False)
                self._bytes -= dropped
                self._evictions += 1

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(len(self._entries), self._bytes, self.max_bytes, self._hits, self._misses, self._evictions)
