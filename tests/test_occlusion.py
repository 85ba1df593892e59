"""Occlusion on the input embeddings: S(E) - S(E with token j's embedding zeroed), every j, batched.

Checked against a closed form (a linear "model": occlusion_j = w . e_j), against Captum's FeatureAblation
(one feature per token, baseline 0) and Occlusion (a one-token window over the whole hidden dimension) on
the same model and target, and, where a padding id has a zero embedding row, against the model's normal
forward pass with token j replaced by padding (no explain.embeddings involved).
"""

from __future__ import annotations

import pytest
import torch
from attribution_examples import bundled_example, close, example, logit, summed_model
from captum.attr import FeatureAblation, Occlusion

from explain.embeddings import forward_from_embeddings, input_embeddings
from explain.methods.occlusion import occlusion


def embedding_function(loaded, inputs, score):  # noqa: ANN001, ANN201
    return lambda embeddings: score(forward_from_embeddings(loaded, inputs, embeddings))


def test_linear_model_occlusion_is_each_tokens_term():
    loaded, inputs, _, token_terms = summed_model(power=1)  # f(E) = sum_t w . e_t
    torch.testing.assert_close(occlusion(loaded, inputs, logit), token_terms)


def test_quadratic_model_occlusion_in_closed_form():
    loaded, inputs, _, token_terms = summed_model(power=2)  # f(E) = s^2, s = sum_t w . e_t
    total = token_terms.sum()
    torch.testing.assert_close(occlusion(loaded, inputs, logit, batch_size=2), total ** 2 - (total - token_terms) ** 2)


@pytest.mark.parametrize("name", ["bert", "bert-classifier", "vit", "deit-distilled", "llama", "gpt2", "bart", "t5"])
def test_occlusion_matches_captum_feature_ablation(tiny_loaded, name):
    loaded = tiny_loaded(name)
    inputs, score = example(loaded)
    embeddings = input_embeddings(loaded, inputs)  # (1, T, D)
    tokens = embeddings.shape[1]
    mask = torch.arange(tokens)[None, :, None].expand_as(embeddings)  # one feature per token
    with torch.no_grad():
        expected = FeatureAblation(embedding_function(loaded, inputs, score)).attribute(
            embeddings, baselines=0.0, feature_mask=mask, perturbations_per_eval=5)
    relevance = occlusion(loaded, inputs, score, batch_size=4)
    assert relevance.shape == (tokens,)
    close(relevance, expected[0, :, 0])
    assert not torch.allclose(relevance, torch.zeros_like(relevance))


@pytest.mark.parametrize("name", ["bert-classifier", "vit", "llama"])
def test_occlusion_matches_captum_sliding_window(tiny_loaded, name):
    loaded = tiny_loaded(name)
    inputs, score = example(loaded)
    embeddings = input_embeddings(loaded, inputs)
    hidden = embeddings.shape[-1]
    with torch.no_grad():
        expected = Occlusion(embedding_function(loaded, inputs, score)).attribute(
            embeddings, sliding_window_shapes=(1, hidden), strides=(1, hidden), baselines=0.0, perturbations_per_eval=8)
    close(occlusion(loaded, inputs, score), expected[0, :, 0])


@pytest.mark.parametrize("name", ["bert-classifier", "llama"])
def test_occlusion_equals_replacing_the_token_by_padding(tiny_loaded, name):
    """The padding row of these embedding tables is zero: zeroing token j's embedding is the model's own
    forward pass with id j replaced by padding (positions, token types and mask unchanged)."""
    loaded = tiny_loaded(name)
    inputs, score = example(loaded)
    pad = loaded.tokenizer.pad_token_id
    assert float(loaded.model.get_input_embeddings().weight[pad].abs().max()) == 0.0
    ids = inputs["input_ids"]
    with torch.no_grad():
        reference = float(score(loaded.model(**inputs))[0])
        expected = []
        for j in range(ids.shape[1]):
            occluded = ids.clone()
            occluded[0, j] = pad
            expected.append(reference - float(score(loaded.model(**{**inputs, "input_ids": occluded}))[0]))
    close(occlusion(loaded, inputs, score, batch_size=3), torch.tensor(expected))


def test_batch_size_does_not_change_occlusion(tiny_loaded):
    loaded = tiny_loaded("deit-distilled")
    inputs, score = example(loaded)
    together = occlusion(loaded, inputs, score, batch_size=64)
    torch.testing.assert_close(occlusion(loaded, inputs, score, batch_size=1), together, rtol=1e-5, atol=1e-6)
    assert together.shape == (16,)  # one value per patch of the 4x4 grid


def test_occlusion_refuses_a_bad_batch_size_and_score(tiny_loaded):
    loaded = tiny_loaded("bert-classifier")
    inputs, score = example(loaded)
    with pytest.raises(ValueError, match="batch size"):
        occlusion(loaded, inputs, score, batch_size=0)
    with pytest.raises(ValueError, match="one value per example"):
        occlusion(loaded, inputs, lambda outputs: outputs.logits.sum())


def test_bundled_vit_occlusion_matches_captum():
    loaded, inputs, score = bundled_example("shapes-vit")
    embeddings = input_embeddings(loaded, inputs)  # (1, 64, 128): an 8x8 patch grid
    mask = torch.arange(embeddings.shape[1])[None, :, None].expand_as(embeddings)
    with torch.no_grad():
        expected = FeatureAblation(embedding_function(loaded, inputs, score)).attribute(
            embeddings, baselines=0.0, feature_mask=mask, perturbations_per_eval=32)
    close(occlusion(loaded, inputs, score), expected[0, :, 0])
