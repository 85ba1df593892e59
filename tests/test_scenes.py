"""Tests of the scene generator: ground truth consistency, determinism, balance, speed."""

from __future__ import annotations

import time

import numpy as np
import pytest

from training.scenes import CLASS_NAMES, EVAL_SEED, make_scene, make_scenes
from training.seeds import TRAIN_SEED_LIMIT, check_seed


@pytest.fixture(scope="module")
def scenes() -> list:
    return make_scenes(2000, seed=12345)


def test_at_least_eight_classes() -> None:
    assert len(CLASS_NAMES) >= 8
    assert len(set(CLASS_NAMES)) == len(CLASS_NAMES)


def test_labels_agree_with_masks(scenes: list) -> None:
    for scene in scenes:
        assert scene.image.shape == (64, 64, 3) and scene.image.dtype == np.uint8
        assert scene.labels.dtype == np.float32 and scene.labels.shape == (len(CLASS_NAMES),)
        assert scene.masks.dtype == bool and scene.masks.shape[1:] == (64, 64)
        assert len(scene.masks) == len(scene.classes)
        assert all(mask.sum() >= 20 for mask in scene.masks)  # non-empty, visible objects
        assert sorted(scene.classes.tolist()) == np.flatnonzero(scene.labels).tolist()
        assert set(np.unique(scene.labels).tolist()) <= {0.0, 1.0}


def test_objects_do_not_overlap(scenes: list) -> None:
    for scene in scenes:
        assert scene.masks.sum(0).max() <= 1


def test_objects_have_their_own_colour() -> None:
    """Every object's pixels differ from the background right next to it."""
    for scene in make_scenes(200, seed=7):
        image = scene.image.astype(float)
        for mask in scene.masks:
            inside = image[mask].mean(0)
            ys, xs = np.nonzero(mask)
            box = np.zeros_like(mask)
            box[max(ys.min() - 3, 0):ys.max() + 4, max(xs.min() - 3, 0):xs.max() + 4] = True
            ring = box & ~scene.masks.any(0)
            assert np.linalg.norm(inside - np.median(image[ring], 0)) > 30


def test_determinism_by_seed() -> None:
    a, b, c = make_scenes(20, seed=3), make_scenes(20, seed=3), make_scenes(20, seed=4)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.image, y.image)
        np.testing.assert_array_equal(x.masks, y.masks)
        np.testing.assert_array_equal(x.labels, y.labels)
        np.testing.assert_array_equal(x.classes, y.classes)
    assert any(not np.array_equal(x.image, z.image) for x, z in zip(a, c))
    assert not np.array_equal(a[0].image, c[0].image)


def test_class_balance(scenes: list) -> None:
    frequency = np.stack([s.labels for s in scenes]).mean(0)  # share of scenes holding each class
    # Expected: mean object count (2.0) / 8 classes = 0.25 per class.
    assert frequency.min() > 0.20 and frequency.max() < 0.30, frequency


def test_multi_object_share_and_distinct_classes(scenes: list) -> None:
    counts = np.array([len(s.classes) for s in scenes])
    assert set(counts.tolist()) == {1, 2, 3}
    assert (counts >= 2).mean() >= 0.5
    for scene in scenes:
        assert len(set(scene.classes.tolist())) == len(scene.classes)


def test_n_objects_argument() -> None:
    rng = np.random.default_rng(0)
    for n in (1, 2, 3):
        assert len(make_scene(rng, n_objects=n).classes) == n
    with pytest.raises(ValueError, match="n_objects"):
        make_scene(rng, n_objects=4)


def test_other_sizes() -> None:
    scene = make_scene(np.random.default_rng(0), size=96)
    assert scene.image.shape == (96, 96, 3) and scene.masks.shape[1:] == (96, 96)


def test_seed_split_is_enforced() -> None:
    assert check_seed(0, "train") == 0
    assert check_seed(EVAL_SEED, "eval") == EVAL_SEED
    assert EVAL_SEED >= TRAIN_SEED_LIMIT
    with pytest.raises(ValueError, match="reserved for evaluation"):
        check_seed(EVAL_SEED, "train")
    with pytest.raises(ValueError, match="never overlap training"):
        check_seed(42, "eval")


def test_speed() -> None:
    make_scenes(10, seed=0)  # warm the digit glyph cache
    start = time.perf_counter()
    make_scenes(1000, seed=1)
    assert time.perf_counter() - start < 5.0
