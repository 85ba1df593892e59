"""Small rules that a mutation sample showed no test watched: each test here fails when the rule is changed."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

import explain
from explain.generation import pad_id
from explain.head_stats import cross_statistics
from models import TEXT
from viz.heatmaps import attention_heatmap
from viz.plotting import unique_labels


def test_gradient_rollout_start_layer_through_the_capture_the_app_keeps():
    """The app keeps only the gradient-weighted attention (display form): the start layer must act on it."""
    weighted = torch.tensor([[[0.5, 0.2], [0.5, 0.5]], [[0.5, 0.5], [0.5, 0.0]]])  # Abar_0, Abar_1
    capture = explain.Capture(kind=TEXT, tokens=["[CLS]", "a"], attentions=torch.full((2, 1, 2, 2), 0.5),
                              special=torch.tensor([True, False]), pooling_weights=torch.tensor([1.0, 0.0]),
                              weighted=weighted)
    # from layer 0: R = (I + A1)(I + A0) = [[2.5, 1.05], [1.25, 1.6]]; from layer 1: R = I + A1
    full = explain.explain_capture(capture, "gradient-rollout")
    later = explain.explain_capture(capture, "gradient-rollout", start_layer=1)
    torch.testing.assert_close(full.matrix, torch.tensor([[2.5, 1.05], [1.25, 1.6]]))
    torch.testing.assert_close(later.matrix, torch.tensor([[1.5, 0.5], [0.5, 1.0]]))
    torch.testing.assert_close(later.relevance, torch.tensor([0.5, 0.5]))  # row 0 of R - I
    with pytest.raises(ValueError, match="Start layer 2 is out of range"):
        explain.explain_capture(capture.for_display(), "gradient-rollout", start_layer=2)


def test_cross_attention_statistics_by_hand():
    # one layer, one head, two outputs x three sources; source 0 is special
    attention = torch.tensor([[[[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]]]])
    stats = cross_statistics(attention, torch.tensor([True, False, False]))
    # entropy: row 0 is 0, row 1 is ln 2; mean ln(2)/2. Special share: 1 and 0, mean 0.5
    torch.testing.assert_close(stats["entropy"], torch.tensor([[np.log(2) / 2]], dtype=torch.float32))
    torch.testing.assert_close(stats["special"], torch.tensor([[0.5]]))
    assert set(stats) == set(explain.CROSS_STATISTICS)


def test_decoder_stack_flags_its_start_token_and_shifted_special_outputs(tiny_loaded):
    loaded = tiny_loaded("bart")
    eos = loaded.tokenizer.eos_token_id
    output = [eos] + loaded.tokenizer("2026-11-24", add_special_tokens=False)["input_ids"] + [eos]
    capture = explain.capture_seq2seq(loaded, "24 November 2026", output=output)
    view, cross = capture.stack_view("decoder")
    assert cross is None and view.tokens == capture.decoder_tokens
    # decoder input j is output j - 1 (the special first output is flagged at input 1), input 0 the start token
    assert capture.output_special.tolist() == [True] + [False] * (len(output) - 2) + [True]
    assert view.special.tolist() == [True, True] + [False] * (len(output) - 2)
    assert view.attentions.shape[-1] == len(capture.decoder_tokens)
    view, cross = capture.stack_view("cross")
    assert torch.equal(cross, capture.special) and view.attentions.shape[-2:] == (len(capture.output_ids), len(capture.tokens))


def test_reduced_cells_are_masked_only_when_every_entry_is():
    tokens = 300  # over MAX_HEATMAP_CELLS: reduced in groups of 2
    matrix = np.tril(np.ones((tokens, tokens))) / np.arange(1, tokens + 1)[:, None]
    masked = np.triu(np.ones((tokens, tokens), dtype=bool), k=1)
    figure = attention_heatmap(matrix, [str(i) for i in range(tokens)], [str(i) for i in range(tokens)], masked=masked)
    grey = np.asarray(figure.data[1].z, dtype=float)
    # a 2x2 block on the diagonal holds one future entry (row 0, col 1): partly masked, so drawn, not grey
    assert np.isnan(grey[0, 0]) and not np.isnan(np.asarray(figure.data[0].z, dtype=float)[0, 0])
    assert grey[0, 1] == 1.0  # rows 0-1 x cols 2-3: all in the future
    assert np.isnan(grey[1, 0])  # rows 2-3 x cols 0-1: all seen


def test_pad_id_falls_back_to_the_end_token_then_zero():
    assert pad_id(SimpleNamespace(pad_token_id=5, eos_token_id=2)) == 5
    assert pad_id(SimpleNamespace(pad_token_id=None, eos_token_id=2)) == 2
    assert pad_id(SimpleNamespace(pad_token_id=None, eos_token_id=None)) == 0
    assert pad_id(SimpleNamespace()) == 0


def test_labels_are_deduplicated_and_kept_apart():
    from ui.widgets import parse_labels

    assert parse_labels("animals, food,, animals\nfood , travel") == ("animals", "food", "travel")
    assert parse_labels(" ,\n ") == ()
    assert unique_labels(["the", "cat", "the"]) == ["#0 the", "#1 cat", "#2 the"]


def test_a_decoders_generated_tokens_get_word_ids(tiny_loaded):
    loaded = tiny_loaded("gpt2")
    capture = explain.capture_decoder(loaded, "The cat sat on the", generate=4)
    prompt_words = loaded.tokenizer("The cat sat on the").word_ids()
    assert capture.word_ids[: capture.prompt_length] == prompt_words
    # after the prompt, a word starts exactly at each token with a space marker
    last = max(w for w in prompt_words if w is not None)
    for token, word, special in zip(capture.tokens[capture.prompt_length:], capture.word_ids[capture.prompt_length:],
                                    capture.special[capture.prompt_length:].tolist()):
        if special:
            assert word is None
            continue
        last += 1 if token.startswith("Ġ") else 0
        assert word == last
