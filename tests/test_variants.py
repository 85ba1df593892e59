"""Attention variants against plain re-computations from the head's own q, k and hidden states; the ridge fits
by hand; the sqrt(d) growth of dot products and the saturation of an unscaled softmax."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from explain.qkv import head_internals
from explain.variants import (
    VARIANTS,
    attention_variants,
    centred_rows,
    head_scaling,
    ridge,
    scaling_experiment,
)

SENTENCE = "The cat sat on the mat. The dog lay on the rug."


def test_ridge_by_hand_in_both_forms():
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    y = torch.tensor([1.0, 2.0, 3.0])
    torch.testing.assert_close(ridge(x, y, strength=0.0), torch.tensor([1.0, 2.0], dtype=torch.float64))
    # lambda = strength * mean ||x||^2 = 0.5 * (1 + 1 + 2) / 3; (X^T X + lambda I)^-1 X^T y written out
    lam = 0.5 * 4 / 3
    expected = np.linalg.solve(np.array([[2, 1], [1, 2]]) + lam * np.eye(2), np.array([4, 5]))
    np.testing.assert_allclose(ridge(x, y, strength=0.5).numpy(), expected)
    # more features than rows: the dual form gives the same solution as the primal one
    wide = torch.randn(3, 5, generator=torch.Generator().manual_seed(0))
    primal = np.linalg.solve(wide.T.double().numpy() @ wide.double().numpy() + 0.1 * float((wide ** 2).sum(-1).mean())
                             * np.eye(5), wide.T.double().numpy() @ y.double().numpy())
    np.testing.assert_allclose(ridge(wide, y, strength=0.1).numpy(), primal, rtol=1e-6)


def test_centred_rows_ignore_masked_keys():
    values = torch.tensor([[1.0, 3.0, 100.0], [2.0, 4.0, 6.0]], dtype=torch.float64)
    mask = torch.tensor([[False, False, True], [False, False, False]])
    assert centred_rows(values, mask).tolist() == [[-1.0, 1.0, 0.0], [-2.0, 0.0, 2.0]]


def plain(step, token):  # noqa: ANN001, ANN201 - the head's numbers recomputed here
    hidden = step.hidden.double()
    return {
        "dot": hidden @ hidden[token],
        "cosine": torch.nn.functional.cosine_similarity(hidden, hidden[token][None], dim=-1),
        "qk": step.q.double()[token] @ step.k.double().T,
    }


def test_every_variant_on_minilm_against_a_plain_recomputation(minilm):
    layer, head, token = 2, 3, 4
    result = attention_variants(minilm, text=SENTENCE, layer=layer, head=head, token=token)
    step = head_internals(minilm, text=SENTENCE, layer=layer, head=head, token=token)
    expected = plain(step, token)
    assert [v.name for v in result.variants] == list(VARIANTS)
    scaled = result.variant("scaled")
    torch.testing.assert_close(scaled.weights, step.model_weights, rtol=0, atol=1e-5)  # the model's own
    torch.testing.assert_close(result.model_weights, step.model_weights, rtol=0, atol=1e-6)
    torch.testing.assert_close(scaled.scores.double(), expected["qk"] / math.sqrt(32), rtol=1e-5, atol=1e-5)
    # general with W_a = W_q^T W_k (biases appended): the head's q.k before scaling (BERT has no rotation)
    torch.testing.assert_close(result.variant("general").scores.double(), expected["qk"], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(result.variant("dot").scores.double(), expected["dot"], rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(result.variant("cosine").scores.double(), expected["cosine"], rtol=1e-5, atol=1e-6)
    additive = result.variant("additive")
    assert additive.fitted.shape == (32,) and 0.0 < additive.fit <= 1.0
    recomputed = torch.tanh(step.q.double()[token] + step.k.double()) @ additive.fitted.double()
    torch.testing.assert_close(additive.scores.double(), recomputed, rtol=1e-4, atol=1e-4)
    location = result.variant("location")
    torch.testing.assert_close(location.scores.double(), location.fitted.double() @ step.hidden.double()[token],
                               rtol=1e-4, atol=1e-4)
    assert location.fit > additive.fit  # one W_a row per position on one input fits closer than d numbers
    for variant in result.variants:
        assert variant.weights.sum().item() == pytest.approx(1.0, abs=1e-6)
    # general is q.k without the 1/sqrt(d): a sharper softmax than the model's
    assert result.variant("general").weights.max() > scaled.weights.max()


@pytest.mark.parametrize("name", ["gpt2", "vit"])
def test_general_includes_the_query_and_key_biases(tiny_loaded, name):
    loaded = tiny_loaded(name)
    inputs = {"image": Image.new("RGB", (32, 32), (200, 30, 30))} if name == "vit" else {"text": SENTENCE}
    result = attention_variants(loaded, **inputs, layer=1, head=1, token=3)
    step = head_internals(loaded, **inputs, layer=1, head=1, token=3)
    assert step.q.abs().sum() > 0 and not result.rotary
    torch.testing.assert_close(result.variant("general").scores.double(), plain(step, 3)["qk"], rtol=1e-4, atol=1e-5)


def test_decoder_keys_chosen_and_the_future_masked(tiny_loaded):
    loaded = tiny_loaded("llama")
    result = attention_variants(loaded, text=SENTENCE, layer=0, head=1, token=3, keys=[0, 2, 3, 5, 6])
    assert result.keys == [0, 2, 3, 5, 6] and result.rotary
    assert result.mask.tolist() == [False, False, False, True, True]
    step = head_internals(loaded, text=SENTENCE, layer=0, head=1, token=3)
    visible = step.model_weights[[0, 2, 3]]
    torch.testing.assert_close(result.variant("scaled").weights[:3], visible / visible.sum(), rtol=0, atol=1e-6)
    for variant in result.variants:
        assert (variant.weights[3:] == 0).all(), variant.name
    with pytest.raises(ValueError, match="none of the chosen keys"):
        attention_variants(loaded, text=SENTENCE, layer=0, head=1, token=3, keys=[5, 6])


def test_dot_products_spread_as_sqrt_d_and_the_unscaled_softmax_saturates():
    curve = scaling_experiment(keys=16, trials=512)
    ratio = curve.spread / curve.dims.float().sqrt()
    assert ((ratio > 0.93) & (ratio < 1.07)).all(), ratio
    # unscaled: entropy falls and the top weight rises with d; scaled: both stay put
    assert (curve.entropy[1:] < curve.entropy[:-1]).all()
    assert curve.top_weight[-1] > 0.9 and curve.entropy[-1] < 0.3
    assert float(curve.entropy_scaled.max() - curve.entropy_scaled.min()) < 0.1
    assert (curve.top_weight_scaled < 0.3).all() and (curve.entropy_scaled < math.log(16)).all()


def test_model_heads_scaling_measures(minilm):
    measures = head_scaling(minilm, text=SENTENCE)
    assert measures.spread.shape == (6, 12) and measures.head_dim == 32
    assert measures.max_difference < 1e-5  # the scaled weights recomputed are the model's attentions
    # a softmax at a lower inverse temperature has higher entropy: scaling flattens every head
    assert (measures.entropy_scaled >= measures.entropy - 1e-6).all()
    assert (measures.top_weight_scaled <= measures.top_weight + 1e-6).all()
    step = head_internals(minilm, text=SENTENCE, layer=4, head=7, token=0)
    dots = step.q.double() @ step.k.double().T
    assert measures.spread[4, 7].item() == pytest.approx(dots.std().item(), rel=1e-4)
    assert measures.prefix_dims.tolist() == [1, 2, 4, 8, 16, 32]
    torch.testing.assert_close(measures.prefix_spread[..., -1], measures.unit_spread)
    # the partial dot products spread more as more coordinates are summed
    assert (measures.prefix_spread.mean((0, 1))[1:] > measures.prefix_spread.mean((0, 1))[:-1]).all()


def test_decoder_heads_scaling_uses_the_causal_mask(tiny_loaded):
    measures = head_scaling(tiny_loaded("llama"), text=SENTENCE)
    assert measures.max_difference < 1e-5
    tokens = head_internals(tiny_loaded("llama"), text=SENTENCE, layer=0, head=0, token=0).tokens
    assert measures.visible_keys == pytest.approx((len(tokens) + 1) / 2)


# The page, through AppTest (offline: the bundled models).


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_the_page_compares_every_variant_with_the_models_weights(offline, minilm) -> None:
    from test_app_pages import array, assert_clean, figure, start

    import models

    at = start("app_pages/learn_variants.py")
    weights = figure(at, "lv_weights")["data"][0]
    z = array(weights["z"])
    assert weights["y"][-1] == "the model's own attention" and z.shape == (7, 9)
    step = head_internals(minilm, text="The cat sat on the mat.", layer=5, head=0, token=3)
    np.testing.assert_allclose(z[-1], step.model_weights.numpy(), atol=1e-5)
    np.testing.assert_allclose(z[weights["y"].index(VARIANTS["scaled"][0])], step.model_weights.numpy(), atol=1e-5)
    scaling = figure(at, "lv_scaling")
    random = next(trace for trace in scaling["data"] if trace["name"] == "random unit-variance q, k")
    np.testing.assert_allclose(array(random["y"]), scaling_experiment(keys=16).spread.numpy(), rtol=1e-5)
    at.multiselect(key="lv_keys").select("#1 the").select("#2 cat").select("#5 the").run()
    assert_clean(at)
    shown = figure(at, "lv_weights")["data"][0]
    assert array(shown["z"]).shape == (7, 3) and list(shown["x"]) == ["#1 the", "#2 cat", "#5 the"]
    # a decoder: the query's future keys get weight 0 in every row
    at.radio(key="lv_kind").set_value("decoder").run()
    assert_clean(at)
    z = array(figure(at, "lv_weights")["data"][0]["z"])
    assert (z[:, 4:] == 0).all() and np.allclose(z.sum(1), 1, atol=1e-5)
    decoder = models.load("induction-lm")
    prompt = "please buy an apple and i love red pizza . please buy an apple and i love"
    step = head_internals(decoder, text=prompt, layer=1, head=0, token=3)
    np.testing.assert_allclose(z[-1], step.model_weights.numpy(), atol=1e-5)
    at.radio(key="lv_kind").set_value("image").run()
    assert_clean(at)
    assert figure(at, "lv_heads")["data"][1]["type"] == "scatter"


def test_long_inputs_are_measured_on_a_seeded_sample_of_rows():
    from explain.variants import fit_rows

    assert fit_rows(10, 3, limit=64).tolist() == list(range(10))
    rows = fit_rows(300, 250, limit=64)
    assert len(rows) == 64 and 250 in rows.tolist() and (rows[1:] > rows[:-1]).all()
    assert torch.equal(rows, fit_rows(300, 250, limit=64))  # the same rows every time
    assert len(fit_rows(300, limit=256)) == 256


def test_variants_on_an_input_longer_than_the_fit_rows(tiny_loaded, monkeypatch):
    from explain import variants

    monkeypatch.setattr(variants, "MAX_FIT_ROWS", 5)
    monkeypatch.setattr(variants, "MAX_SCALING_ROWS", 6)
    loaded = tiny_loaded("llama")
    result = variants.attention_variants(loaded, text=SENTENCE, layer=0, head=0, token=9)
    step = head_internals(loaded, text=SENTENCE, layer=0, head=0, token=9)
    torch.testing.assert_close(result.variant("scaled").weights, step.model_weights, rtol=0, atol=1e-6)
    additive = result.variant("additive")
    torch.testing.assert_close(additive.scores.double(), torch.tanh(step.q.double()[9] + step.k.double())
                               @ additive.fitted.double(), rtol=1e-4, atol=1e-5)
    import re

    pairs = int(re.search(r"on (\d+) visible", additive.parameters).group(1))
    assert pairs <= 5 * len(step.tokens) < len(step.tokens) * (len(step.tokens) + 1) // 2  # 5 rows, not all of them
    measures = variants.head_scaling(loaded, text=SENTENCE)
    assert measures.max_difference < 1e-5


def test_a_list_in_the_url_keeps_parts_that_hold_commas():
    from ui.url import join_list, split_list

    assert join_list(["#2 ,", "#3 it"]) == "#2 \\,,#3 it"
    for parts in (["#2 ,", "#3 it"], ["a\\b", ",", "plain"], ["one"]):
        assert split_list(join_list(parts)) == parts
    assert split_list("#1 the,#2 cat") == ["#1 the", "#2 cat"]  # links made before escaping read the same


def test_picked_keys_with_a_comma_survive_the_url(offline):
    from test_app_pages import array, assert_clean, figure, start
    from ui.url import join_list

    at = start("app_pages/learn_variants.py", {"text": "Yes, it ran.", "lv_keys": join_list(["#2 ,", "#3 it"])})
    assert_clean(at)
    assert at.multiselect(key="lv_keys").value == ["#2 ,", "#3 it"]
    shown = figure(at, "lv_weights")["data"][0]
    assert list(shown["x"]) == ["#2 ,", "#3 it"] and array(shown["z"]).shape == (7, 2)
