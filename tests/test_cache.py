"""The byte-bounded cache behind the app's models and captures (issue: memory grew without bound)."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from ui.cache import ByteBudgetCache, budget_mb


def test_evicts_least_recently_used_entries_to_stay_within_bytes():
    cache = ByteBudgetCache(100)
    for key in "abc":
        cache.put(key, key.upper(), 40)  # 120 bytes offered: "a" must go
    assert cache.get("a") == (False, None)
    assert cache.get("b") == (True, "B") and cache.get("c") == (True, "C")
    assert cache.stats().bytes == 80 and cache.stats().evictions == 1
    cache.get("b")  # b is now the most recently used: c goes next
    cache.put("d", "D", 40)
    assert cache.get("c") == (False, None) and cache.get("b") == (True, "B")
    assert cache.stats().bytes <= 100


def test_an_entry_larger_than_the_budget_is_returned_but_not_kept():
    cache = ByteBudgetCache(100)
    value = cache.get_or_compute("big", lambda: "huge", lambda v: 1000)
    assert value == "huge"
    assert cache.get("big") == (False, None) and cache.stats().bytes == 0


def test_exceptions_are_not_cached_and_the_next_call_computes_again():
    cache = ByteBudgetCache(100)
    calls = []

    def failing():
        calls.append(1)
        raise ValueError("bad input")

    for _ in range(2):
        with pytest.raises(ValueError):
            cache.get_or_compute("k", failing, len)
    assert len(calls) == 2 and cache.stats().entries == 0


def test_concurrent_requests_for_one_key_compute_it_once():
    cache = ByteBudgetCache(10**6)
    calls = []

    def slow():
        calls.append(1)
        time.sleep(0.2)
        return torch.zeros(10)

    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get_or_compute("x", slow, lambda t: 40)))
               for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and len(results) == 4 and all(r is results[0] for r in results)


def test_budget_from_the_environment(monkeypatch):
    monkeypatch.setenv("EXPLAIN_CACHE_MB", "256")
    assert budget_mb("EXPLAIN_CACHE_MB", 1024) == 256
    for bad in ("", "lots", "-5", "0"):
        monkeypatch.setenv("EXPLAIN_CACHE_MB", bad)
        assert budget_mb("EXPLAIN_CACHE_MB", 1024) == 1024
    with pytest.raises(ValueError, match="positive"):
        ByteBudgetCache(0)


def test_many_long_texts_stay_within_the_budget(minilm):
    """Captures as the app caches them (display form) for distinct long texts never exceed the budget,
    and a ~500-token capture costs what the views need: float16 attentions plus (L, T, T) weights."""
    import explain

    budget = 48 * 2**20
    cache = ByteBudgetCache(budget)
    words = "the cat sat on the mat and the dog lay on the rug while it rained outside".split()
    sizes = []
    for number in range(6):
        text = f"text {number} " + " ".join(words[(i + number) % len(words)] for i in range(500))
        capture = cache.get_or_compute(
            text, lambda: explain.capture_text(minilm, text, target="A dog.").for_display(), lambda c: c.nbytes)
        sizes.append(capture.nbytes)
        assert cache.stats().bytes <= budget
    tokens = len(capture.tokens)
    assert tokens > 500
    full = 6 * 12 * tokens * tokens
    # attentions in float16 (2 bytes) + gradient-weighted attention (L, T, T) float32; raw gradients dropped
    assert sizes[-1] == pytest.approx(2 * full + 4 * 6 * tokens * tokens, rel=0.01)
    assert sizes[-1] < 0.3 * (8 * full)  # the float32 attention + gradient stacks it replaced
    assert cache.stats().evictions >= 3


def test_evictions_hand_freed_memory_back():
    calls = []
    cache = ByteBudgetCache(100, on_evict=lambda: calls.append(1))
    cache.put("a", 1, 60)
    assert calls == []
    cache.put("b", 2, 60)  # evicts "a"
    assert calls == [1]
    from models.runtime import release_free_memory

    release_free_memory()  # glibc's malloc_trim here; must never raise
