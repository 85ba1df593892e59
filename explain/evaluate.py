"""Measure an image model on generated scenes whose object masks are known.

For each held-out scene (``training.scenes``, evaluation seed range >= 10**6) this
runs one forward + backward pass per object class through the project's own
capture (``explain.capture_image``), and scores:

* classification: macro F1 and exact match at threshold 0.5;
* the pointing game for gradient rollout (targeted at each object's class),
  attention rollout and raw attention (last layer's [CLS] row, heads averaged;
  both class-agnostic, the same map for every object of a scene);
* class sensitivity of gradient rollout on scenes with two or more objects;
* a random-pointer baseline.

Geometry (patch grid, prefix tokens, input size) is read from the model's spec.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from PIL import Image

import explain
import models
from explain.metrics.classification import macro_f1
from models import LoadedModel
from training.scenes import CLASS_NAMES, EVAL_SEED, GENERATOR_VERSION, make_scenes
from training.seeds import check_seed

THRESHOLD = 0.5


def patch_masks(masks: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """Object masks at patch resolution: a patch counts if any of its pixels is in the object.

    Args:
        masks: (K, H, W) bool pixel masks; H and W must be multiples of the grid.
        grid: (rows, cols) patch grid.

    Returns:
        (K, rows, cols) bool.
    """
    k, height, width = masks.shape
    rows, cols = grid
    if height % rows or width % cols:
        raise ValueError(f"A {height}x{width} mask does not split into a {rows}x{cols} patch grid.")
    blocks = masks.reshape(k, rows, height // rows, cols, width // cols)
    return blocks.any(axis=(2, 4))


def dilate(patch_mask: np.ndarray) -> np.ndarray:
    """Grow patch masks by one patch in the 8-neighbourhood.

    Args:
        patch_mask: (..., rows, cols) bool.

    Returns:
        (..., rows, cols) bool.
    """
    padded = np.pad(patch_mask, [(0, 0)] * (patch_mask.ndim - 2) + [(1, 1), (1, 1)])
    rows, cols = patch_mask.shape[-2:]
    grown = np.zeros_like(patch_mask)
    for dr in range(3):
        for dc in range(3):
            grown |= padded[..., dr:dr + rows, dc:dc + cols]
    return grown


def top_patch(relevance: np.ndarray) -> tuple[int, int]:
    """(row, col) of the highest-relevance patch of a (rows, cols) map (first in row-major order on ties)."""
    flat = int(np.argmax(relevance))
    return divmod(flat, relevance.shape[1])


def patch_distance(patch: tuple[int, int], patch_mask: np.ndarray) -> int:
    """Chebyshev distance, in patches, from ``patch`` to the nearest patch of a (rows, cols) mask.

    0 means the patch touches the object; 1 means it is in the one-patch dilation.
    """
    rows, cols = np.nonzero(patch_mask)
    if len(rows) == 0:
        raise ValueError("An object with an empty patch mask cannot be scored.")
    return int(np.min(np.maximum(np.abs(rows - patch[0]), np.abs(cols - patch[1]))))


def is_class_sensitive(patch: tuple[int, int], object_index: int, object_patches: np.ndarray) -> bool:
    """Whether a top patch points at object ``object_index`` rather than at the scene's other objects.

    The patch is sensitive iff it lies within one patch of that object (the pointing
    game's tolerance) and strictly closer to it than to every other object, distance
    being ``patch_distance``. Ties and patches near no object count as not sensitive.

    Args:
        patch: (row, col) of the explanation's top patch.
        object_index: index k of the targeted object.
        object_patches: (K, rows, cols) undilated patch masks of all the scene's objects, K >= 2.
    """
    distances = [patch_distance(patch, mask) for mask in object_patches]
    own = distances.pop(object_index)
    return own <= 1 and all(own < other for other in distances)


def _rate(hits: list[bool]) -> float | None:
    return float(np.mean(hits)) if hits else None


def evaluate(model_name: str = "shapes-vit", n_scenes: int = 2000, seed: int = EVAL_SEED, perturbation: bool = True) -> dict:
    """Classification and localisation figures of an image model on held-out generated scenes.

    Per scene: one ``capture_image`` per object, targeted at the object's class (forward +
    backward); the attention maps of the first one serve attention rollout and raw attention,
    its class scores serve classification. Maps are (rows, cols) patch relevances from
    ``explain.image_relevance``.

    Pointing game: for object k, the explanation's top patch is a hit if it lies in k's patch
    mask (patches holding any pixel of k) dilated by one patch in the 8-neighbourhood.

    Class sensitivity (scenes with 2+ objects): for each object k, gradient rollout targeted at
    k's class is sensitive if its top patch is within one patch of k and strictly closer to k
    than to every other object (Chebyshev distance in patches to the nearest patch of each
    object); ties and patches near no object are not sensitive. The rate is over all such
    (scene, object) pairs.

    Random pointer: expected hit rate of a uniformly random patch, i.e. the mean over objects
    of |dilated patch mask| / (rows * cols); likewise for class sensitivity.

    Args:
        model_name: a registered image model (or checkpoint directory) trained on ``CLASS_NAMES``.
        n_scenes: number of scenes.
        seed: scene seed, >= 10**6 (never used by training); default ``EVAL_SEED``.

    Returns:
        A JSON-serialisable dict::

            {"model", "n_scenes", "seed", "generator_version", "seconds",
             "n_objects": {"single", "multi"},
             "classification": {"macro_f1", "exact_match", "threshold", "per_class_f1": {name: f1}},
             "pointing_game": {method: {"single", "multi", "all"}} for gradient_rollout,
                              attention_rollout, raw_attention,
             "class_sensitivity": {"gradient_rollout", "random_pointer", "n_objects"},
             "random_pointer": {"single", "multi", "all"},
             "faithfulness": {method: {"deletion_auc", "insertion_auc", "negative_perturbation_auc",
                                       "pixel_accuracy", "mean_iou", "average_precision"}}
                 for gradient_rollout, attention_rollout, raw_attention and random}

        Faithfulness (unless `perturbation` is False): per object, its class's probability under
        deletion, insertion and negative perturbation of each method's map (explain.faithfulness) and
        the map's localisation against the object's mask; "random" is the random-ranking baseline (10
        seeded permutations) and a seeded random map; all averaged over objects.

        A rate is None when its split holds no objects.

    Raises:
        ValueError: a seed in the training range, a non-image model, or one whose labels are not
            the generator's classes.
    """
    check_seed(seed, "eval")
    if n_scenes < 1:
        raise ValueError(f"n_scenes must be at least 1, got {n_scenes}.")
    loaded = models.load(model_name, allow_download=False)
    spec = loaded.spec
    if spec.kind != "image" or spec.patch_grid is None or spec.image_size is None:
        raise ValueError(f"'{spec.name}' is not an image model: evaluate a ViT trained on the generated scenes.")
    if tuple(spec.labels) != CLASS_NAMES:
        raise ValueError(f"'{spec.name}' predicts {list(spec.labels)}, not the scene classes {list(CLASS_NAMES)}.")
    height, width = spec.image_size
    if height != width:
        raise ValueError(f"Scenes are square; '{spec.name}' takes {height}x{width} inputs.")

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one small image at a time: extra threads only spin, badly on shared cores
    try:
        return _evaluate_scenes(loaded, n_scenes, seed, perturbation)
    finally:
        torch.set_num_threads(threads)


FAITHFULNESS_KEYS = ("deletion_auc", "insertion_auc", "negative_perturbation_auc", "pixel_accuracy", "mean_iou",
                     "average_precision")


def _evaluate_scenes(loaded: LoadedModel, n_scenes: int, seed: int, perturbation: bool = True) -> dict:
    """The body of ``evaluate`` once the model is loaded and checked; same return value."""
    from explain import faithfulness as fx

    spec = loaded.spec
    height = spec.image_size[0]
    grid = spec.patch_grid
    n_patches = grid[0] * grid[1]
    start = time.perf_counter()
    probs, labels = [], []
    hits: dict[str, dict[str, list[bool]]] = {
        m: {"single": [], "multi": []} for m in ("gradient_rollout", "attention_rollout", "raw_attention")
    }
    random_hits: dict[str, list[float]] = {"single": [], "multi": []}
    sensitive: list[bool] = []
    random_sensitive: list[float] = []
    faithful: dict[str, list[dict[str, float]]] = {m: [] for m in ("gradient_rollout", "attention_rollout",
                                                                   "raw_attention", "random")}
    all_patches = [(r, c) for r in range(grid[0]) for c in range(grid[1])]
    scores = fx.class_scores(loaded.model, spec.multi_label)
    for number, scene in enumerate(make_scenes(n_scenes, seed=seed, size=height)):
        image = Image.fromarray(scene.image)
        split = "multi" if len(scene.classes) >= 2 else "single"
        objects = patch_masks(scene.masks, grid)  # (K, rows, cols)
        grown = dilate(objects)
        for k, class_index in enumerate(scene.classes.tolist()):
            capture = explain.capture_image(loaded, image, target=int(class_index))
            if k == 0:  # attentions and scores do not depend on the target
                probs.append(capture.scores.numpy())
                labels.append(scene.labels)
                rollout = explain.image_relevance(explain.attention_rollout(capture.attentions), spec)
                raw = explain.image_relevance(explain.layer_attention(capture.attentions), spec)
                agnostic = {"attention_rollout": top_patch(rollout.numpy()),
                            "raw_attention": top_patch(raw.numpy())}
                if perturbation:
                    # The class-agnostic maps and the random rankings perturb the same images for every object
                    # of the scene: one pass gives every class's probability for all of them.
                    pixel_values = loaded.processor(images=image, return_tensors="pt")["pixel_values"]
                    agnostic_maps = {"attention_rollout": rollout.numpy(), "raw_attention": raw.numpy()}
                    shared = fx.forward_in_chunks(scores, torch.cat(
                        [fx.curve_batch(pixel_values, m, grid) for m in agnostic_maps.values()]
                        + [fx.random_batch(pixel_values, grid, seed=seed + number)])).numpy()
            matrix = explain.gradient_rollout(capture.attentions, capture.gradients)
            relevance = explain.image_relevance(matrix, spec, subtract_identity=True).numpy()
            if perturbation:
                mask, block = scene.masks[k], 3 * (fx.STEPS + 1)
                own = fx.forward_in_chunks(scores, fx.curve_batch(pixel_values, relevance, grid)).numpy()[:, class_index]
                rows = {"gradient_rollout": (fx.curves_from(own), relevance)}
                for i, (method, grid_map) in enumerate(agnostic_maps.items()):
                    rows[method] = (fx.curves_from(shared[i * block:(i + 1) * block, class_index]), grid_map)
                random_map = np.random.default_rng(seed + 1000 * number + k).random(grid)
                rows["random"] = (fx.random_curves_from(shared[len(agnostic_maps) * block:, class_index]), random_map)
                for method, (curves, grid_map) in rows.items():
                    faithful[method].append({f"{name}_auc": value for name, value in curves.aucs.items()}
                                            | fx.localisation_scores(grid_map, mask))
            gradient_top = top_patch(relevance)
            hits["gradient_rollout"][split].append(bool(grown[k][gradient_top]))
            for method, patch in agnostic.items():
                hits[method][split].append(bool(grown[k][patch]))
            random_hits[split].append(float(grown[k].sum()) / n_patches)
            if split == "multi":
                sensitive.append(is_class_sensitive(gradient_top, k, objects))
                random_sensitive.append(
                    float(np.mean([is_class_sensitive(p, k, objects) for p in all_patches])))

    probs_array, labels_array = np.stack(probs), np.stack(labels)
    macro, per_class = macro_f1(probs_array, labels_array)
    exact = float(np.mean(np.all((probs_array >= THRESHOLD) == (labels_array > 0.5), axis=1)))

    def splits(values: dict[str, list]) -> dict[str, float | None]:
        return {"single": _rate(values["single"]), "multi": _rate(values["multi"]),
                "all": _rate(values["single"] + values["multi"])}

    return {
        "model": spec.name,
        "n_scenes": n_scenes,
        "seed": seed,
        "generator_version": GENERATOR_VERSION,
        "seconds": round(time.perf_counter() - start, 1),
        "n_objects": {"single": len(random_hits["single"]), "multi": len(random_hits["multi"])},
        "classification": {"macro_f1": macro, "exact_match": exact, "threshold": THRESHOLD,
                           "per_class_f1": dict(zip(CLASS_NAMES, per_class))},
        "pointing_game": {method: splits(values) for method, values in hits.items()},
        "class_sensitivity": {"gradient_rollout": _rate(sensitive), "random_pointer": _rate(random_sensitive),
                              "n_objects": len(sensitive)},
        "random_pointer": splits(random_hits),
        **({"faithfulness": {method: {key: float(np.nanmean([row[key] for row in rows])) for key in FAITHFULNESS_KEYS}
                             for method, rows in faithful.items()}} if perturbation else {}),
    }


def error_breakdown(model_name: str = "shapes-vit", n_scenes: int = 1000, seed: int = EVAL_SEED + 7,
                    threshold: float = THRESHOLD) -> dict:
    """Where a scene classifier's mistakes are: misses by class, object size and object count, false
    alarms by class and by what else is in the scene, and how close the wrong scores were to the threshold.

    One batched forward pass per 256 scenes (no explanations). An object is missed when its class scores
    below `threshold`; sizes are visible-pixel areas split at the terciles of all objects.

    Returns:
        A JSON-serialisable dict: {"n_scenes", "n_objects", "exact_match", "macro_f1", "per_class_f1",
        "missed": {"by_class", "by_size", "by_count"} (miss rates), "false_alarms": {"by_class",
        "digit_swaps"}, "near_threshold": share of wrong decisions with scores in [0.3, 0.7]}.
    """
    check_seed(seed, "eval")
    loaded = models.load(model_name, allow_download=False)
    height = loaded.spec.image_size[0]
    scenes = make_scenes(n_scenes, seed=seed, size=height)
    probs = []
    with torch.no_grad():
        for start in range(0, n_scenes, 256):
            batch = scenes[start:start + 256]
            pixels = loaded.processor(images=[Image.fromarray(s.image) for s in batch], return_tensors="pt")["pixel_values"]
            logits = loaded.model(pixel_values=pixels).logits
            probs.append((torch.sigmoid(logits) if loaded.spec.multi_label else torch.softmax(logits, -1)).numpy())
    probs_array = np.concatenate(probs)
    labels = np.stack([s.labels for s in scenes])
    predicted = probs_array >= threshold
    areas = np.array([int(m.sum()) for s in scenes for m in s.masks])
    cuts = np.quantile(areas, [1 / 3, 2 / 3])
    missed: dict[str, dict[str, list[bool]]] = {"by_class": {}, "by_size": {}, "by_count": {}}
    index = 0
    for i, scene in enumerate(scenes):
        for class_index in scene.classes.tolist():
            miss = not predicted[i, class_index]
            size = "small" if areas[index] < cuts[0] else "medium" if areas[index] < cuts[1] else "large"
            for group, key in (("by_class", CLASS_NAMES[class_index]), ("by_size", size),
                               ("by_count", f"{len(scene.classes)} objects")):
                missed[group].setdefault(key, []).append(miss)
            index += 1
    truth = labels > 0.5
    false_alarm = predicted & ~truth
    names = list(CLASS_NAMES)
    swaps = {}
    if "digit_3" in names and "digit_7" in names:
        three, seven = names.index("digit_3"), names.index("digit_7")
        swaps = {"digit_7 seen where only a 3 is": int((false_alarm[:, seven] & truth[:, three]).sum()),
                 "digit_3 seen where only a 7 is": int((false_alarm[:, three] & truth[:, seven]).sum())}
    wrong = predicted != truth
    macro, per_class = macro_f1(probs_array, labels, threshold)
    return {
        "n_scenes": n_scenes, "n_objects": int(len(areas)), "seed": seed, "generator": GENERATOR_VERSION,
        "area_terciles_px": [float(c) for c in cuts],
        "exact_match": float(np.mean(~wrong.any(axis=1))), "macro_f1": macro,
        "per_class_f1": dict(zip(names, per_class)),
        "missed": {group: {key: float(np.mean(v)) for key, v in sorted(values.items())} for group, values in missed.items()},
        "false_alarms": {"by_class": dict(zip(names, (false_alarm.sum(0) / n_scenes).tolist())), "digit_swaps": swaps},
        "near_threshold": float(np.mean(np.abs(probs_array[wrong] - 0.5) <= 0.2)) if wrong.any() else None,
    }
