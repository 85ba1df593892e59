"""Saliency, input x gradient and integrated gradients on the input embeddings.

Checked three ways: closed forms on a linear and a quadratic "model" whose answers are known; parity
with Captum's maps on the same model and target, both on the embedding function and, where the model's
own embedding layer can be hooked, through Captum's layer methods on the model's normal forward pass
(independent of explain.embeddings); completeness of integrated gradients on tiny and bundled models.
"""

from __future__ import annotations

import math

import pytest
import torch
from attribution_examples import bundled_example, close, example, logit, summed_model
from captum.attr import (
    InputXGradient,
    IntegratedGradients,
    LayerGradientXActivation,
    LayerIntegratedGradients,
    Saliency,
)

from explain.embeddings import forward_from_embeddings, input_embeddings
from explain.methods.gradients import (
    DEFAULT_STEPS,
    DEFAULT_TOLERANCE,
    adaptive_path,
    input_x_gradient,
    integrated_gradients,
    panel_weights,
    path_terms,
    saliency,
)

PARITY_MODELS = ["bert", "bert-classifier", "vit", "deit-distilled", "llama", "gpt2", "bart", "t5"]
# Models whose own embedding layer is called once per forward pass (an encoder-decoder's shared table is
# also read by its decoder), so Captum's layer methods can hook it on the model's normal path.
LAYER_MODELS = ["bert", "bert-classifier", "vit", "deit-distilled", "llama", "gpt2"]


def embedding_function(loaded, inputs, score):  # noqa: ANN001, ANN201
    """f(E) = score of the forward pass from embeddings (B, T, D) -> (B,): what Captum attributes."""
    return lambda embeddings: score(forward_from_embeddings(loaded, inputs, embeddings))


def model_function(loaded, inputs, score):  # noqa: ANN001, ANN201
    """(f(model input) on the model's normal forward pass, the model input): ids or pixels, batched by Captum."""
    key = "pixel_values" if "pixel_values" in inputs else "input_ids"
    others = {name: value for name, value in inputs.items() if name != key}

    def forward(source: torch.Tensor) -> torch.Tensor:
        expanded = {name: value.expand(len(source), *value.shape[1:]) for name, value in others.items()}
        return score(loaded.model(**{key: source}, **expanded))

    return forward, inputs[key]


# Closed forms -------------------------------------------------------------------------------------------


def test_linear_model_closed_forms():
    loaded, inputs, weights, token_terms = summed_model(power=1)  # f(E) = sum_t w . e_t
    torch.testing.assert_close(saliency(loaded, inputs, logit), weights.norm().expand(5))
    torch.testing.assert_close(input_x_gradient(loaded, inputs, logit), token_terms)
    for rule in ("adaptive", "gausslegendre"):
        relevance, gap, _ = integrated_gradients(loaded, inputs, logit, rule=rule)
        torch.testing.assert_close(relevance, token_terms)  # IG = input x gradient for a linear f
        assert gap < 1e-6


def test_quadratic_model_closed_forms():
    """f(E) = s^2 with s = sum_t w . e_t: IxG_t = 2 s (w . e_t); IG_t = s (w . e_t), summing to f(E) - f(0)."""
    loaded, inputs, _, token_terms = summed_model(power=2)
    total = float(token_terms.sum())
    torch.testing.assert_close(input_x_gradient(loaded, inputs, logit), 2 * total * token_terms)
    relevance, gap, _ = integrated_gradients(loaded, inputs, logit, steps=1, rule="gausslegendre")  # one node at 1/2
    torch.testing.assert_close(relevance, total * token_terms)
    assert gap < 1e-6
    # the adaptive rule: trapezoid panels are exact for a linear integrand; only the panel at the baseline
    # (right-end rule) errs, and geometric splits shrink it 16-fold per node
    relevance, gap, _ = integrated_gradients(loaded, inputs, logit, tolerance=1e-6, batch_size=4)
    torch.testing.assert_close(relevance, total * token_terms, rtol=1e-5, atol=1e-5)
    assert gap <= 1e-6


def test_adaptive_rule_spends_its_nodes_on_a_sharp_transition():
    """S(a) = tanh(100 (a - 0.3)): one 1-D 'token'; the integral is S(1) - S(0) and the nodes gather at 0.3."""

    def evaluate(alphas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        values = torch.tanh(100 * (alphas - 0.3))
        return values, (100 * (1 - values ** 2))[:, None]  # (K,), (K, 1)

    alphas, _, terms = adaptive_path(evaluate, steps=192, tolerance=1e-2, batch_size=8)
    integral = float((panel_weights(alphas) * terms[:, 0]).sum())
    exact = math.tanh(70) - math.tanh(-30)
    assert abs(integral - exact) <= 1e-2 * exact
    assert len(alphas) - 1 < 192  # stopped on the tolerance
    near = ((alphas > 0.25) & (alphas < 0.35)).sum()
    assert near > (len(alphas) - 16) / 2  # most refinements went to the transition (15 + 1 even nodes first)


def test_adaptive_rule_follows_a_transition_towards_the_baseline():
    """S(a) = a / (a + 1e-6) (a norm waking up near zero embeddings): geometric splits reach a ~ 1e-6."""

    def evaluate(alphas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return alphas / (alphas + 1e-6), (1e-6 / (alphas + 1e-6) ** 2)[:, None]

    alphas, values, terms = adaptive_path(evaluate, steps=192, tolerance=1e-2, batch_size=16)
    integral = float((panel_weights(alphas) * terms[:, 0]).sum())
    assert abs(integral - float(values[-1] - values[0])) <= 1e-2
    assert float(alphas[1]) < 1e-6


# Parity with Captum on tiny models of every kind --------------------------------------------------------


@pytest.mark.parametrize("name", PARITY_MODELS)
def test_saliency_and_input_x_gradient_match_captum(tiny_loaded, name):
    loaded = tiny_loaded(name)
    inputs, score = example(loaded)
    embeddings = input_embeddings(loaded, inputs).requires_grad_()
    function = embedding_function(loaded, inputs, score)
    gradient = Saliency(function).attribute(embeddings, abs=False)[0]  # (T, D) signed gradient
    ours_saliency = saliency(loaded, inputs, score)
    close(ours_saliency, gradient.norm(dim=-1))
    close(input_x_gradient(loaded, inputs, score), InputXGradient(function).attribute(embeddings)[0].sum(-1))
    assert ours_saliency.shape == (embeddings.shape[1],) and ours_saliency.min() >= 0
    assert not torch.allclose(ours_saliency, ours_saliency.mean().expand_as(ours_saliency))


@pytest.mark.parametrize("name", LAYER_MODELS)
def test_gradients_match_captum_layer_methods_on_the_models_own_forward(tiny_loaded, name):
    """Captum hooks the model's embedding layer on its normal forward pass: no explain.embeddings involved."""
    loaded = tiny_loaded(name)
    inputs, score = example(loaded)
    forward, source = model_function(loaded, inputs, score)
    layer = loaded.model.get_input_embeddings()
    gradient = LayerGradientXActivation(forward, layer, multiply_by_inputs=False).attribute(source)[0]  # (T, D)
    product = LayerGradientXActivation(forward, layer).attribute(source)[0]
    close(saliency(loaded, inputs, score), gradient.norm(dim=-1))
    close(input_x_gradient(loaded, inputs, score), product.sum(-1))


@pytest.mark.parametrize("name", PARITY_MODELS)
def test_gauss_legendre_integrated_gradients_match_captum(tiny_loaded, name):
    loaded = tiny_loaded(name)
    inputs, score = example(loaded)
    embeddings = input_embeddings(loaded, inputs)
    expected = IntegratedGradients(embedding_function(loaded, inputs, score)).attribute(
        embeddings, baselines=torch.zeros_like(embeddings), n_steps=24, method="gausslegendre", internal_batch_size=7)
    relevance, _, _ = integrated_gradients(loaded, inputs, score, steps=24, batch_size=5, rule="gausslegendre")
    close(relevance, expected[0].sum(-1))


@pytest.mark.parametrize("name", ["bert", "bert-classifier", "llama"])
def test_integrated_gradients_match_captum_layer_ig_on_the_models_own_forward(tiny_loaded, name):
    """The padding token's embedding row is zero in these models, so Captum's LayerIntegratedGradients from
    all-padding ids integrates from zero embeddings on the model's normal forward pass."""
    loaded = tiny_loaded(name)
    inputs, score = example(loaded)
    forward, ids = model_function(loaded, inputs, score)
    layer = loaded.model.get_input_embeddings()
    pad = loaded.tokenizer.pad_token_id
    assert float(layer.weight[pad].abs().max()) == 0.0
    expected = LayerIntegratedGradients(forward, layer).attribute(
        ids, baselines=torch.full_like(ids, pad), n_steps=24, method="gausslegendre")
    relevance, _, _ = integrated_gradients(loaded, inputs, score, steps=24, rule="gausslegendre")
    close(relevance, expected[0].sum(-1))


@pytest.mark.parametrize("name", ["bert-classifier", "vit", "bart"])
def test_adaptive_rule_agrees_with_captum_at_many_steps(tiny_loaded, name):
    """Where Gauss-Legendre has converged (Captum's own convergence delta), the default rule gives the same map."""
    loaded = tiny_loaded(name)
    inputs, score = example(loaded)
    embeddings = input_embeddings(loaded, inputs)
    expected, delta = IntegratedGradients(embedding_function(loaded, inputs, score)).attribute(
        embeddings, baselines=torch.zeros_like(embeddings), n_steps=256, method="gausslegendre",
        internal_batch_size=64, return_convergence_delta=True)
    expected = expected[0].sum(-1)
    assert abs(float(delta)) < 1e-4 * float(expected.abs().sum())
    relevance, gap, _ = integrated_gradients(loaded, inputs, score)
    assert gap <= DEFAULT_TOLERANCE
    close(relevance, expected, share=0.02)


# Completeness ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", PARITY_MODELS)
def test_integrated_gradients_completeness_on_tiny_models(tiny_loaded, name):
    """The map sums to f(E) - f(0) within the gap it reports; f(E) from the model's own forward pass."""
    loaded = tiny_loaded(name)
    inputs, score = example(loaded)
    relevance, gap, _ = integrated_gradients(loaded, inputs, score)
    with torch.no_grad():
        at_input = float(score(loaded.model(**inputs))[0])
        embeddings = input_embeddings(loaded, inputs)
        at_zero = float(score(forward_from_embeddings(loaded, inputs, torch.zeros_like(embeddings)))[0])
    difference = at_input - at_zero
    independent = abs(float(relevance.sum()) - difference) / abs(difference)
    assert gap == pytest.approx(independent, abs=1e-4)
    assert independent < 0.02


def test_batching_does_not_change_the_path(tiny_loaded):
    loaded = tiny_loaded("gpt2")
    inputs, score = example(loaded)
    embeddings = input_embeddings(loaded, inputs)
    alphas = torch.linspace(0, 1, 9, dtype=torch.float64)
    together = path_terms(loaded, inputs, score, embeddings, alphas, batch_size=9)
    alone = path_terms(loaded, inputs, score, embeddings, alphas, batch_size=1)
    for a, b in zip(together, alone):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    ig_batched, _, _ = integrated_gradients(loaded, inputs, score, steps=16, batch_size=16, rule="gausslegendre")
    ig_single, _, _ = integrated_gradients(loaded, inputs, score, steps=16, batch_size=1, rule="gausslegendre")
    torch.testing.assert_close(ig_batched, ig_single, rtol=1e-5, atol=1e-6)


def test_bad_scores_steps_and_rules_are_refused(tiny_loaded):
    loaded = tiny_loaded("bert-classifier")
    inputs, score = example(loaded)
    with pytest.raises(ValueError, match="one value per example"):
        saliency(loaded, inputs, lambda outputs: outputs.logits)  # (B, C), not (B,)
    with pytest.raises(ValueError, match="at least one step"):
        integrated_gradients(loaded, inputs, score, steps=0)
    with pytest.raises(ValueError, match="Unknown integration rule"):
        integrated_gradients(loaded, inputs, score, rule="simpson")


# Bundled models ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["minilm", "shapes-vit", "induction-lm", "iso-dates"])
def test_bundled_models_complete_within_two_percent(name):
    loaded, inputs, score = bundled_example(name)
    relevance, gap, _ = integrated_gradients(loaded, inputs, score)
    assert DEFAULT_STEPS == 192
    assert gap < 0.02
    assert torch.isfinite(relevance).all()


def test_bundled_minilm_matches_captum():
    loaded, inputs, score = bundled_example("minilm")
    embeddings = input_embeddings(loaded, inputs).requires_grad_()
    function = embedding_function(loaded, inputs, score)
    close(saliency(loaded, inputs, score), Saliency(function).attribute(embeddings, abs=False)[0].norm(dim=-1))
    close(input_x_gradient(loaded, inputs, score), InputXGradient(function).attribute(embeddings)[0].sum(-1))
    expected = IntegratedGradients(function).attribute(
        embeddings.detach(), baselines=torch.zeros_like(embeddings), n_steps=16, method="gausslegendre",
        internal_batch_size=16)
    relevance, _, _ = integrated_gradients(loaded, inputs, score, steps=16, rule="gausslegendre")
    close(relevance, expected[0].sum(-1))
