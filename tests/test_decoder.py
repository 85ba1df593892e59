"""Decoders: greedy continuation, causal capture, targets, every method, on tiny random models of every
listed family (GPT-2, Llama with and without grouped-query attention, Qwen2, Mistral, Phi, OPT, GPT-NeoX)."""

from __future__ import annotations

import pytest
import torch
from conftest import DECODER_TINY_MODELS

import explain

PROMPT = "The cat sat on the mat. The dog lay on the"
METHODS = ("attention", "rollout", "gradient-rollout")


@pytest.fixture(scope="module")
def decoders(tiny_loaded):
    return {name: tiny_loaded(name) for name in DECODER_TINY_MODELS}


@pytest.mark.parametrize("name", DECODER_TINY_MODELS)
def test_every_family_captures_causal_attention_and_explains(decoders, name):
    loaded = decoders[name]
    assert loaded.spec.kind.name == "decoder" and (loaded.spec.layers, loaded.spec.heads) == (2, 2)
    capture = explain.capture_decoder(loaded, PROMPT, generate=4, with_gradients=True)
    length = len(capture.tokens)
    assert capture.attentions.shape == (2, 2, length, length)
    assert length == capture.prompt_length + 4 or capture.token_ids[-1] == loaded.tokenizer.eos_token_id
    # masked self-attention: exactly zero above the diagonal, rows sum to 1
    assert torch.equal(torch.triu(capture.attentions, diagonal=1), torch.zeros_like(capture.attentions))
    torch.testing.assert_close(capture.attentions.sum(-1), torch.ones(2, 2, length))
    for method in METHODS:
        relevance = explain.explain_capture(capture, method).relevance
        assert relevance.shape == (length,) and torch.isfinite(relevance).all()
    # the gradient-weighted attention kept by the capture (weighted in place) equals weighting the raw gradients
    torch.testing.assert_close(capture.weighted, explain.gradient_weighted(capture.attentions, capture.gradients),
                               rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", ["gpt2", "llama"])
def test_relevance_is_zero_after_the_target_and_identical_on_the_prefix(decoders, name):
    loaded = decoders[name]
    whole = explain.capture_decoder(loaded, PROMPT, generate=5)
    for position in (2, whole.prompt_length - 1, len(whole.token_ids) - 2):
        target = whole.token_ids[position + 1]
        full = explain.capture_decoder(loaded, whole.token_ids, position=position, target=target)
        prefix = explain.capture_decoder(loaded, whole.token_ids[: position + 1], target=target)
        assert prefix.target_position == position
        for method in METHODS:
            on_full = explain.explain_capture(full, method).relevance
            on_prefix = explain.explain_capture(prefix, method).relevance
            assert torch.equal(on_full[position + 1:], torch.zeros(len(on_full) - position - 1))
            torch.testing.assert_close(on_full[: position + 1], on_prefix, rtol=1e-4, atol=1e-6)


def test_gradients_are_the_models_own_and_paired_by_layer(decoders):
    loaded = decoders["llama"]
    capture = explain.capture_decoder(loaded, PROMPT, position=5, with_gradients=True)
    ids = torch.tensor([capture.token_ids])
    out = loaded.model(input_ids=ids, output_attentions=True)
    target_id = capture.token_ids[6]
    grads = torch.autograd.grad(out.logits[0, 5, target_id], list(out.attentions))
    for layer, gradient in enumerate(grads):
        torch.testing.assert_close(capture.gradients[layer], gradient[0], rtol=1e-5, atol=1e-8)
    assert capture.target_label == loaded.tokenizer.decode([target_id])
    # nothing after the target position is touched by the gradient
    assert torch.equal(capture.gradients[:, :, 6:], torch.zeros_like(capture.gradients[:, :, 6:]))


def test_greedy_continuation_matches_generate_and_default_target_is_the_prediction(decoders):
    loaded = decoders["gpt2"]
    capture = explain.capture_decoder(loaded, PROMPT, generate=3)
    prompt_ids = loaded.tokenizer(PROMPT)["input_ids"]
    generated = loaded.model.generate(torch.tensor([prompt_ids]), max_new_tokens=3, do_sample=False)
    assert capture.token_ids == generated[0].tolist()
    assert capture.token_ids[: capture.prompt_length] == prompt_ids
    # default: the top prediction after the last position, which is the first of the scores
    out = loaded.model(input_ids=torch.tensor([capture.token_ids]))
    assert capture.target_label == loaded.tokenizer.decode([int(out.logits[0, -1].argmax())])
    assert capture.target_index == 0 and capture.scores[0] == capture.scores.max()
    assert capture.target_position == len(capture.token_ids) - 1


def test_generated_relevance_rows_equal_one_capture_per_token(decoders):
    loaded = decoders["qwen2"]
    capture = explain.capture_decoder(loaded, PROMPT, generate=3)
    table = explain.generated_relevance(loaded, capture)
    assert table.shape == (len(capture.token_ids) - capture.prompt_length, len(capture.token_ids))
    for n in range(table.shape[0]):
        position = capture.prompt_length - 1 + n
        single = explain.capture_decoder(loaded, capture.token_ids, position=position, with_gradients=True)
        torch.testing.assert_close(table[n], explain.explain_capture(single, "gradient-rollout").relevance,
                                   rtol=1e-5, atol=1e-7)
    rollout = explain.generated_relevance(loaded, capture, "rollout")  # every row from the same attention maps
    matrix = explain.explain_capture(capture, "rollout").matrix
    torch.testing.assert_close(rollout, matrix[capture.prompt_length - 1:-1])


def test_targets_by_text_or_id_and_clear_errors(decoders):
    loaded = decoders["gpt2"]
    tokenizer = loaded.tokenizer
    by_text = explain.capture_decoder(loaded, PROMPT, target="the")  # " the" is one token of the tiny BPE
    assert by_text.target_label == " the"
    the_id = tokenizer.convert_tokens_to_ids("Ġthe")
    by_id = explain.capture_decoder(loaded, PROMPT, target=the_id)
    assert by_id.target_value == pytest.approx(by_text.target_value)
    assert by_text.score_labels[by_text.target_index] == " the"
    assert explain.resolve_token(tokenizer, "Ġthe") == the_id  # a vocabulary entry as written
    assert explain.resolve_token(tokenizer, str(the_id)) == the_id
    with pytest.raises(ValueError, match="not one token"):
        explain.capture_decoder(loaded, PROMPT, target="mat")  # "m" + "at" in this vocabulary
    with pytest.raises(ValueError, match="out of range"):
        explain.capture_decoder(loaded, PROMPT, target=10**6)
    with pytest.raises(ValueError, match="prompt is empty"):
        explain.capture_decoder(loaded, "   ")
    with pytest.raises(ValueError, match="0 to 256"):
        explain.capture_decoder(loaded, PROMPT, generate=1000)
    with pytest.raises(ValueError, match="outside the sequence"):
        explain.capture_decoder(loaded, PROMPT, position=500)


def test_long_prompts_keep_their_end(decoders):
    loaded = decoders["llama"]  # 64 positions
    long_prompt = " ".join(["the cat sat on the mat"] * 30)
    capture = explain.capture_decoder(loaded, long_prompt, generate=4)
    assert len(capture.token_ids) <= loaded.spec.max_length
    assert capture.dropped_tokens > 0
    full = loaded.tokenizer(long_prompt)["input_ids"]
    kept = capture.token_ids[: capture.prompt_length]
    assert kept == full[len(full) - len(kept):]
