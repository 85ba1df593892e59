"""Evaluation: hand-computed geometry, and a small real run on the bundled ViT."""

from __future__ import annotations

import json

import numpy as np
import pytest

from explain.evaluate import dilate, evaluate, is_class_sensitive, patch_distance, patch_masks, top_patch
from training.scenes import CLASS_NAMES, EVAL_SEED


def test_patch_masks_count_any_pixel() -> None:
    masks = np.zeros((1, 8, 8), dtype=bool)
    masks[0, 1, 1] = True  # patch (0, 0) of a 2x2 grid of 4x4 patches
    masks[0, 4, 7] = True  # patch (1, 1)
    np.testing.assert_array_equal(patch_masks(masks, (2, 2))[0], [[True, False], [False, True]])
    with pytest.raises(ValueError, match="patch grid"):
        patch_masks(masks, (3, 3))


def test_dilate_is_eight_neighbourhood() -> None:
    mask = np.zeros((5, 5), dtype=bool)
    mask[0, 0] = True
    mask[3, 3] = True
    expected = np.zeros((5, 5), dtype=bool)
    expected[0:2, 0:2] = True
    expected[2:5, 2:5] = True
    np.testing.assert_array_equal(dilate(mask), expected)
    np.testing.assert_array_equal(dilate(mask[None])[0], expected)  # leading dimensions kept


def test_top_patch_and_distance() -> None:
    relevance = np.array([[0.0, 0.1, 0.0], [0.2, 0.9, 0.0], [0.0, 0.0, 0.9]])
    assert top_patch(relevance) == (1, 1)  # first of the tied maxima in row-major order
    mask = np.zeros((3, 3), dtype=bool)
    mask[0, 2] = True
    assert patch_distance((0, 2), mask) == 0
    assert patch_distance((1, 1), mask) == 1
    assert patch_distance((2, 0), mask) == 2


def test_class_sensitivity_rule() -> None:
    objects = np.zeros((2, 6, 6), dtype=bool)
    objects[0, 0, 0] = True
    objects[1, 0, 3] = True
    assert is_class_sensitive((0, 0), 0, objects)  # on object 0
    assert is_class_sensitive((1, 1), 0, objects)  # one patch away from 0, two from 1
    assert not is_class_sensitive((0, 2), 0, objects)  # nearer object 1
    objects[1, 0, 2] = True
    assert not is_class_sensitive((0, 1), 0, objects)  # tie: distance 1 to both
    assert not is_class_sensitive((5, 5), 0, objects)  # near neither


def test_training_seeds_are_refused() -> None:
    with pytest.raises(ValueError, match="never overlap training"):
        evaluate(n_scenes=2, seed=0)


@pytest.fixture(scope="module")
def result() -> dict:
    return evaluate("shapes-vit", n_scenes=40, seed=EVAL_SEED, perturbation=False)


def test_faithfulness_of_each_method_against_random() -> None:
    """Six scenes with the perturbation curves and localisation: every key, and gradient rollout ahead of a
    random ranking on deletion, insertion and average precision."""
    scored = evaluate("shapes-vit", n_scenes=6, seed=EVAL_SEED + 11)
    json.dumps(scored)
    faithful = scored["faithfulness"]
    assert set(faithful) == {"gradient_rollout", "attention_rollout", "raw_attention", "random"}
    for rows in faithful.values():
        assert set(rows) == {"deletion_auc", "insertion_auc", "negative_perturbation_auc", "pixel_accuracy",
                             "mean_iou", "average_precision"}
        assert all(0.0 <= value <= 1.0 for value in rows.values())
        assert rows["insertion_auc"] == pytest.approx(rows["negative_perturbation_auc"], abs=1e-6)
    ours, chance = faithful["gradient_rollout"], faithful["random"]
    assert ours["deletion_auc"] < chance["deletion_auc"] and ours["insertion_auc"] > chance["insertion_auc"]
    assert ours["average_precision"] > chance["average_precision"] and ours["mean_iou"] > chance["mean_iou"]
    assert "faithfulness" not in evaluate("shapes-vit", n_scenes=1, seed=EVAL_SEED, perturbation=False)


def test_small_evaluation_returns_every_field(result: dict) -> None:
    json.dumps(result)  # JSON-serialisable
    assert result["model"] == "shapes-vit" and result["n_scenes"] == 40 and result["seed"] == EVAL_SEED
    classification = result["classification"]
    assert set(classification["per_class_f1"]) == set(CLASS_NAMES)
    rates = [classification["macro_f1"], classification["exact_match"], *classification["per_class_f1"].values()]
    for method in ("gradient_rollout", "attention_rollout", "raw_attention"):
        assert set(result["pointing_game"][method]) == {"single", "multi", "all"}
        rates += result["pointing_game"][method].values()
    rates += [result["class_sensitivity"]["gradient_rollout"], result["class_sensitivity"]["random_pointer"]]
    rates += result["random_pointer"].values()
    assert all(rate is not None and 0.0 <= rate <= 1.0 for rate in rates)
    assert result["n_objects"]["multi"] == result["class_sensitivity"]["n_objects"] > 0


def test_gradient_rollout_beats_random_pointer(result: dict) -> None:
    assert result["pointing_game"]["gradient_rollout"]["multi"] > result["random_pointer"]["multi"]
    sensitivity = result["class_sensitivity"]
    assert sensitivity["gradient_rollout"] > sensitivity["random_pointer"]


def test_classification_is_good(result: dict) -> None:
    """The issue's targets: macro F1 >= 0.95 and every class's F1 >= 0.9 (0.994 and 0.981 on 2,000 scenes,
    model card; 1.000 on these 40)."""
    assert result["classification"]["macro_f1"] >= 0.95
    assert min(result["classification"]["per_class_f1"].values()) >= 0.9


def test_gradient_rollout_meets_the_pointing_target(result: dict) -> None:
    """The issue's localisation target (>= 0.9 on 2+-object scenes); 0.986 on 2,000 scenes (0.988 on these 40),
    class sensitivity 0.984 (0.988)."""
    assert result["pointing_game"]["gradient_rollout"]["multi"] >= 0.9
    assert result["class_sensitivity"]["gradient_rollout"] >= 0.9
