"""Faithfulness scores: hand-computed AUCs on a toy model of the patches, invariants on a tiny ViT, the
batched path against one image at a time, localisation and ERASER by hand, and the text scorers of every
model kind on tiny models."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explain.metrics.faithfulness import (
    FRACTIONS,
    class_scores,
    image_curves,
    perturbed_batch,
    random_curves,
    random_text_scores,
    text_perturbation,
    text_scores,
    trapezoid_auc,
)
from explain.metrics.localisation import localisation_scores, upsample_relevance

WEIGHTS = torch.tensor([[0.4, 0.3], [0.2, 0.1]])  # per patch of a 2x2 grid


def toy_probability(pixel_values: torch.Tensor) -> torch.Tensor:
    """sum over patches of weight * mean pixel value of the patch: 1.0 on an all-ones image."""
    patches = pixel_values.mean(1).unfold(1, 2, 2).unfold(2, 2, 2).mean((-1, -2))  # (B, 2, 2)
    return (patches * WEIGHTS).sum((-1, -2))


def test_toy_deletion_and_reversed_ranking_by_hand():
    image = torch.ones(1, 3, 4, 4)
    ideal = image_curves(toy_probability, image, WEIGHTS, (2, 2))
    # patches removed at 0%..100% of 4: round(f * 4) = 0,0,1,1,2,2,2,3,3,4,4 -> 1, .6, .3, .1, 0 left
    np.testing.assert_allclose(ideal.curves["deletion"], [1, 1, .6, .6, .3, .3, .3, .1, .1, 0, 0], atol=1e-6)
    assert ideal.aucs["deletion"] == pytest.approx(0.38)
    reversed_ = image_curves(toy_probability, image, -WEIGHTS, (2, 2))
    np.testing.assert_allclose(reversed_.curves["deletion"], [1, 1, .9, .9, .7, .7, .7, .4, .4, 0, 0], atol=1e-6)
    assert reversed_.aucs["deletion"] == pytest.approx(0.62)
    # insertion restores the most relevant first: 0, .4, .7, .9, 1
    np.testing.assert_allclose(ideal.curves["insertion"], [0, 0, .4, .4, .7, .7, .7, .9, .9, 1, 1], atol=1e-6)
    # negative perturbation of the ideal ranking is deletion of the reversed one
    np.testing.assert_allclose(ideal.curves["negative_perturbation"], reversed_.curves["deletion"], atol=1e-6)
    chance = random_curves(toy_probability, image, (2, 2), seed=1)
    assert ideal.aucs["deletion"] < chance.aucs["deletion"] < reversed_.aucs["deletion"]
    assert ideal.aucs["insertion"] > chance.aucs["insertion"] > reversed_.aucs["insertion"]


def test_every_ranking_is_between_the_ideal_and_the_reversed():
    image = torch.ones(1, 3, 4, 4)
    best, worst = (image_curves(toy_probability, image, s * WEIGHTS, (2, 2)).aucs["deletion"] for s in (1, -1))
    for seed in range(20):
        relevance = torch.rand(2, 2, generator=torch.Generator().manual_seed(seed))
        assert best - 1e-9 <= image_curves(toy_probability, image, relevance, (2, 2)).aucs["deletion"] <= worst + 1e-9


def test_trapezoid_auc_by_hand():
    assert trapezoid_auc([0, 1], [0, 1]) == pytest.approx(0.5)
    assert trapezoid_auc(np.ones(11)) == pytest.approx(1.0)
    assert len(FRACTIONS) == 11


@pytest.fixture(scope="module")
def tiny_vit(tiny_loaded):
    return tiny_loaded("vit")


def test_curve_invariants_and_batched_equals_one_at_a_time_on_a_vit(tiny_vit):
    torch.manual_seed(0)
    pixels = torch.randn(1, 3, 32, 32)
    probability = lambda images: class_scores(tiny_vit.model, multi_label=False)(images)[:, 1]  # noqa: E731
    relevance = torch.rand(4, 4, generator=torch.Generator().manual_seed(2))
    result = image_curves(probability, pixels, relevance, (4, 4))
    clean = float(probability(pixels)[0])
    assert result.curves["deletion"][0] == pytest.approx(clean, abs=1e-6)
    assert result.curves["insertion"][-1] == pytest.approx(clean, abs=1e-6)
    assert result.curves["negative_perturbation"][-1] == pytest.approx(result.curves["deletion"][-1], abs=1e-6)
    assert result.curves["insertion"][0] == pytest.approx(result.curves["deletion"][-1], abs=1e-6)  # all-mean image
    # insertion at f is negative perturbation at 1 - f: the same images, so the same area
    np.testing.assert_allclose(result.curves["insertion"], result.curves["negative_perturbation"][::-1], atol=1e-6)
    assert result.aucs["insertion"] == pytest.approx(result.aucs["negative_perturbation"], abs=1e-6)
    batch = perturbed_batch(pixels, np.argsort(-relevance.numpy().ravel(), kind="stable"), (4, 4), "deletion")
    one_by_one = [float(probability(image[None])[0]) for image in batch]
    np.testing.assert_allclose(result.curves["deletion"], one_by_one, rtol=1e-5, atol=1e-6)
    # 10% of 16 patches is 2 (1.6 rounded): the two most relevant patches' pixels are exactly 0, the rest untouched
    second = batch[1]
    removed = (second == 0).all(0)
    assert removed.sum() == 2 * 8 * 8 and torch.equal(second[:, ~removed], pixels[0][:, ~removed])


def test_localisation_by_hand():
    relevance = np.array([[4, 3, 0, 0], [2, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]], dtype=float)
    mask = np.zeros((4, 4), bool)
    mask[:2, :3] = True
    scores = localisation_scores(relevance, mask)  # same size: no interpolation; mean 0.625 -> top-left 2x2
    assert scores["pixel_accuracy"] == pytest.approx(14 / 16)
    assert scores["mean_iou"] == pytest.approx((4 / 6 + 10 / 12) / 2)
    # ranked: four object pixels first (precision 1 up to recall 4/6), then a tie of 12 with 2 positives
    assert scores["average_precision"] == pytest.approx(4 / 6 + (2 / 6) * (6 / 16))


def test_upsampling_matches_the_overlays():
    from viz.overlay import upsample_grid

    grid = np.random.default_rng(3).random((4, 5))
    np.testing.assert_allclose(upsample_relevance(grid, (32, 40)).numpy(), upsample_grid(grid, 32, 40), atol=1e-6)


def toy_text_probability(masks: torch.Tensor) -> torch.Tensor:
    weights = torch.tensor([0.0, 0.4, 0.3, 0.2, 0.1, 0.0])  # [CLS] four words [SEP]
    return (masks.float() * weights).sum(-1)


def test_eraser_by_hand():
    removable = [False, True, True, True, True, False]
    relevance = [9.0, 0.4, 0.3, 0.2, 0.1, 9.0]  # specials' relevance is ignored
    scores = text_scores(toy_text_probability, relevance, removable)
    # ceil(k * 4) tokens for k = 1, 5, 10, 20, 50%: 1, 1, 1, 1, 2
    assert scores.comprehensiveness == pytest.approx({0.01: 0.4, 0.05: 0.4, 0.10: 0.4, 0.20: 0.4, 0.50: 0.7})
    assert scores.sufficiency == pytest.approx({0.01: 0.6, 0.05: 0.6, 0.10: 0.6, 0.20: 0.6, 0.50: 0.3})
    assert scores.aopc_comprehensiveness == pytest.approx(0.46) and scores.aopc_sufficiency == pytest.approx(0.54)
    chance = random_text_scores(toy_text_probability, removable, seed=0)
    assert chance.aopc_comprehensiveness < scores.aopc_comprehensiveness
    assert chance.aopc_sufficiency > scores.aopc_sufficiency
    with pytest.raises(ValueError, match="only special tokens"):
        text_scores(toy_text_probability, relevance, [False] * 6)


def test_encoder_scorers_delete_tokens_and_keep_specials(minilm):
    import explain

    capture = explain.capture_text(minilm, "The cat sat on the mat.", labels=["animals", "food"])
    task = text_perturbation(capture, minilm)
    assert task.length == len(capture.token_ids) and task.removable == [False] + [True] * 7 + [False]
    probability = task.probability
    full = float(probability(torch.ones(1, len(capture.token_ids), dtype=torch.bool))[0])
    assert full == pytest.approx(float(torch.softmax(capture.scores / 0.05, -1)[capture.target_index]), abs=1e-5)
    drop_cat = torch.ones(1, len(capture.token_ids), dtype=torch.bool)
    drop_cat[0, capture.tokens.index("cat")] = False
    assert float(probability(drop_cat)[0]) != pytest.approx(full, abs=1e-4)
    with_probe = explain.capture_text(minilm, "The cat sat on the mat.", target="A dog lay on the rug.")
    probe = text_perturbation(with_probe, minilm).probability
    assert float(probe(torch.ones(1, len(capture.token_ids), dtype=torch.bool))[0]) == pytest.approx(with_probe.target_value, abs=1e-5)


def test_decoder_and_seq2seq_scorers_on_tiny_models(tiny_loaded):
    import explain

    decoder = tiny_loaded("llama")
    the = decoder.tokenizer.convert_tokens_to_ids("Ġthe")
    capture = explain.capture_decoder(decoder, "The cat sat on the mat. The cat sat on the", target=the)
    task = text_perturbation(capture, decoder)
    assert task.length == len(capture.token_ids)
    probability = task.probability
    everything = torch.ones(3, len(capture.token_ids), dtype=torch.bool)
    everything[1, 2] = everything[2, 1:4] = False
    values = probability(everything)
    with torch.no_grad():  # the reference forwards: no graph (the explained model's embeddings start one)
        logits = decoder.model(input_ids=torch.tensor([capture.token_ids])).logits[0, -1]
        shorter = [i for j, i in enumerate(capture.token_ids) if j != 2]
        direct = torch.softmax(decoder.model(input_ids=torch.tensor([shorter])).logits[0, -1], -1)
    assert float(values[0]) == pytest.approx(float(torch.softmax(logits, -1)[the]), rel=1e-4)
    assert float(values[1]) == pytest.approx(float(direct[the]), rel=1e-4)

    seq2seq = tiny_loaded("bart")
    result = explain.capture_seq2seq(seq2seq, "24 November 2026", output="2026-11-24", target=3)
    probability = text_perturbation(result, seq2seq).probability
    full = float(probability(torch.ones(1, len(result.source_ids), dtype=torch.bool))[0])
    assert full == pytest.approx(float(result.output_probabilities[3]), rel=1e-4)
    some = torch.ones(2, len(result.source_ids), dtype=torch.bool)
    some[1, 1] = False
    assert probability(some).shape == (2,)


def test_text_deletion_curves_and_their_area_by_hand():
    """Four removable tokens between two specials; the toy probability is the kept share of weights."""
    weights = torch.tensor([0.0, 0.4, 0.3, 0.2, 0.1, 0.0])
    probability = lambda masks: (masks.float() * weights).sum(-1)  # noqa: E731
    removable = [False, True, True, True, True, False]
    scores = text_scores(probability, weights.numpy(), removable)
    # deleted round(f * 4) tokens at f = 0, .1, ..., 1: 0,0,1,1,2,2,2,3,3,4,4
    np.testing.assert_allclose(scores.most_first, [1, 1, .6, .6, .3, .3, .3, .1, .1, 0, 0], atol=1e-6)
    np.testing.assert_allclose(scores.least_first, [1, 1, .9, .9, .7, .7, .7, .4, .4, 0, 0], atol=1e-6)
    assert scores.abpc == pytest.approx(trapezoid_auc(scores.least_first) - trapezoid_auc(scores.most_first))
    assert scores.abpc > 0
    reversed_scores = text_scores(probability, -weights.numpy(), removable)
    assert reversed_scores.abpc == pytest.approx(-scores.abpc)
    chance = random_text_scores(probability, removable, seed=0, rankings=50)
    assert abs(chance.abpc) < 0.05  # a random order's two curves lie on top of each other on average
