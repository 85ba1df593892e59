"""Word merging, hiding tokens and per-head statistics on hand-written attention."""

from __future__ import annotations

import math

import torch

from explain import capture_text
from explain.head_stats import head_statistics, token_positions
from explain.tokens import (
    continue_word_ids,
    hide_tokens,
    merge_attention,
    readable,
    spaced,
    token_text,
    word_groups,
    words_of,
)


def test_word_groups_merge_word_pieces(minilm):
    capture = capture_text(minilm, "unbelievably tokenization works")
    assert capture.tokens == ["[CLS]", "un", "##bel", "##ie", "##va", "##bly", "token", "##ization", "works", "[SEP]"]
    groups, labels = word_groups(capture.tokens, capture.word_ids, capture.sequence_ids)
    assert labels == ["[CLS]", "unbelievably", "tokenization", "works", "[SEP]"]
    assert groups == [0, 1, 1, 1, 1, 1, 2, 2, 3, 4]


def test_merge_attention_by_hand():
    matrix = torch.tensor([[0.2, 0.3, 0.5], [0.6, 0.1, 0.3], [0.4, 0.4, 0.2]])
    # rows: group 1 = mean of rows 1, 2 = [.5, .25, .25]; columns: group 1 = sum of columns 1, 2
    expected = torch.tensor([[0.2, 0.8], [0.5, 0.5]])
    merged = merge_attention(matrix, [0, 1, 1])
    torch.testing.assert_close(merged, expected)
    torch.testing.assert_close(merged.sum(-1), torch.ones(2))


def test_hide_tokens_drops_and_renormalises():
    matrix = torch.tensor([[0.2, 0.3, 0.5], [0.6, 0.1, 0.3], [0.4, 0.4, 0.2]])
    kept = hide_tokens(matrix, torch.tensor([False, True, True]))
    torch.testing.assert_close(kept, torch.tensor([[0.25, 0.75], [2 / 3, 1 / 3]]))
    raw = hide_tokens(matrix, torch.tensor([False, True, True]), renormalize=False)
    torch.testing.assert_close(raw, torch.tensor([[0.1, 0.3], [0.4, 0.2]]))


def _stats(attention: torch.Tensor, special=None, positions=None) -> dict:
    tokens = attention.shape[-1]
    special = torch.zeros(tokens, dtype=torch.bool) if special is None else special
    positions = token_positions(tokens) if positions is None else positions
    return {k: v[0, 0].item() for k, v in head_statistics(attention[None, None], special, positions).items()}


def test_uniform_and_identity_attention():
    uniform = _stats(torch.full((3, 3), 1 / 3))
    assert math.isclose(uniform["entropy"], math.log(3), rel_tol=1e-6)
    # distances: query 0 -> (0+1+2)/3, query 1 -> 2/3, query 2 -> 1; mean 8/9
    assert math.isclose(uniform["distance"], 8 / 9, rel_tol=1e-6)
    identity = _stats(torch.eye(4))
    assert identity["entropy"] == 0 and identity["self"] == 1 and identity["previous"] == 0
    assert identity["special"] == 0 and identity["distance"] == 0
    special = _stats(torch.full((4, 4), 0.25), special=torch.tensor([True, False, False, True]))
    assert math.isclose(special["special"], 0.5, rel_tol=1e-6)


def test_previous_token_pattern():
    attention = torch.zeros(4, 4)
    attention[0, 0] = 1
    for q in range(1, 4):
        attention[q, q - 1] = 1
    stats = _stats(attention)
    assert math.isclose(stats["previous"], 1.0, rel_tol=1e-6)  # every query t >= 1 attends to t - 1
    assert math.isclose(stats["self"], 1 / 4, rel_tol=1e-6)
    assert math.isclose(stats["distance"], 3 / 4, rel_tol=1e-6)  # distances 0, 1, 1, 1
    assert stats["entropy"] == 0


def test_image_positions_and_grid_distance():
    positions = token_positions(5, prefix_tokens=1, grid=(2, 2))
    assert torch.isnan(positions[0]).all()
    assert torch.equal(positions[1:], torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]))
    attention = torch.zeros(5, 5)
    attention[0] = 0.2
    attention[1, 4] = 1  # (0,0) -> (1,1): sqrt 2
    attention[2, 3] = 1  # (0,1) -> (1,0): sqrt 2
    attention[3, 0] = 0.5  # half to the prefix token (no position), half to (1,1): distance 1
    attention[3, 4] = 0.5
    attention[4, 4] = 1  # self: 0
    stats = _stats(attention, special=torch.tensor([True, False, False, False, False]), positions=positions)
    assert math.isclose(stats["distance"], (2 * math.sqrt(2) + 1) / 4, rel_tol=1e-5)


def test_spaced_reads_word_pieces_and_space_markers():
    texts, spaces = spaced(["[CLS]", "play", "##ing", "[SEP]"], [True, False, False, True])
    assert texts == ["[CLS]", "play", "ing", "[SEP]"] and spaces == [False, True, False, True]
    # byte-level BPE: only marked pieces follow a space; a bare piece after a special token starts a word
    texts, spaces = spaced(["<s>", "Hello", "Ġworld", "!", "</s>"], [True, False, False, False, True])
    assert texts == ["<s>", "Hello", "world", "!", "</s>"] and spaces == [False, True, True, False, True]
    # no markers at all (a word-level or character vocabulary): every piece is a word
    assert spaced(["the", "cat"], [False, False])[1] == [False, True]


def test_token_text_drops_markers_and_shows_whitespace():
    tokens = ["##ing", "Ġcat", "▁cat", "Ġ", " ", "Ċ", "cat", "##", "ĠĠ"]
    assert [token_text(t) for t in tokens] == ["ing", "cat", "cat", "·", "·", "⏎", "cat", "##", "·"]
    assert readable(["a", " ", "b"]) == ["a", "·", "b"]


def test_generated_tokens_continue_the_word_ids():
    # the prompt's word ids come from the tokenizer; generated tokens start a word at a space marker
    tokens = ["<s>", "Ġthe", "Ġcat", "Ġsat", "ting", "Ġon", "</s>"]
    words = continue_word_ids(tokens, [None, 0, 1], [True, False, False, False, False, False, True])
    assert words == [None, 0, 1, 2, 2, 3, None]
    # without markers every generated token is a word
    assert continue_word_ids(["<bos>", "the", "cat", "sat"], [None, 0], [True, False, False, False]) == [None, 0, 1, 2]


def test_words_of_joins_pieces_and_leaves_special_tokens_out():
    words, members = words_of(["[CLS]", "un", "##bel", "token", "[SEP]"], [None, 0, 0, 1, None])
    assert words == ["unbel", "token"] and members == [[1, 2], [3]]
    words, members = words_of(["<s>", "Ġapple", "Ġre", "leased"], [None, 0, 1, 1])
    assert words == ["apple", "released"] and members == [[1], [2, 3]]
