"""How models run in a process (models/runtime.py): the allocator setting that spares captures their page
faults, and the thread policy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CODE = """
import ctypes, sys
sys.path.insert(0, {root!r})
libc = ctypes.CDLL("libc.so.6")
class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
if {tuned}:
    from models.runtime import tune_allocator
    assert tune_allocator()
before = libc.mallinfo2()
block = libc.malloc(16 << 20)  # one of eager attention's temporaries at 512 tokens is about this size
mapped = libc.mallinfo2().hblkhd - before.hblkhd
libc.free(block)
print(mapped, libc.mallinfo2().fordblks - before.fordblks)
"""


def allocator(tuned: bool) -> tuple[int, int]:
    """(bytes newly mmapped while a 16 MB block is held, free bytes the heap gains after freeing it)."""
    result = subprocess.run([sys.executable, "-c", CODE.format(root=str(ROOT), tuned=tuned)], capture_output=True,
                            text=True, check=True)
    mapped, kept = result.stdout.split()
    return int(mapped), int(kept)


def test_the_allocator_keeps_large_freed_blocks_for_reuse():
    """What the setting controls, read from glibc itself (mallinfo2), not from page-fault counts that vary with the
    machine's load: untuned, a 16 MB block is mmapped and handed back to the system when freed, so the next
    capture faults its pages in again; tuned, it comes from the heap and stays there for reuse. (Measured at 512
    tokens: 300-370 thousand page faults per four gradient captures untuned, 46-88 thousand tuned.)"""
    mapped, kept = allocator(tuned=False)
    assert mapped >= 16 << 20 and kept < 1 << 20
    mapped, kept = allocator(tuned=True)
    assert mapped == 0 and kept >= 15 << 20  # the block, less what the heap had free before and reused


def test_thread_policy_is_one_thread_unless_the_operator_says_otherwise(monkeypatch):
    import torch

    from models.runtime import THREADS_VARIABLE, apply_thread_policy, thread_count

    monkeypatch.delenv(THREADS_VARIABLE, raising=False)
    assert thread_count() == 1
    for raw, expected in (("2", 2), ("0", 1), ("-3", 1), ("many", 1), (" 3 ", 3)):
        monkeypatch.setenv(THREADS_VARIABLE, raw)
        assert thread_count() == expected, raw
    monkeypatch.setenv(THREADS_VARIABLE, "2")
    assert apply_thread_policy() == 2 and torch.get_num_threads() == 2
    monkeypatch.delenv(THREADS_VARIABLE)
    assert apply_thread_policy() == 1 and torch.get_num_threads() == 1
