"""`python -m explain evaluate`: an image model on generated scenes whose object masks are known.

For each held-out scene (``training.scenes``, evaluation seed range >= 10**6) this runs the project's own
capture (``explain.capture_image``) per object class and every chosen method of the registry, and scores
(explain.metrics):

* classification: macro F1 and exact match at threshold 0.5;
* the pointing game of every method (those that explain a class targeted at each object's class; the others,
  such as attention, rollout, ALTI and value zeroing, the same map for every object of a scene);
* class sensitivity of the methods that explain a class, on scenes with two or more objects;
* a random-pointer baseline;
* perturbation curves (deletion, insertion, negative perturbation, the area between them) and localisation.

Geometry (patch grid, prefix tokens, input size) is read from the model's spec.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from PIL import Image

import explain
import models
from explain.metrics import faithfulness as fx
from explain.metrics.classification import THRESHOLD, macro_f1
from explain.metrics.localisation import dilate, is_class_sensitive, localisation_scores, patch_masks, top_patch
from models import LoadedModel
from training.scenes import CLASS_NAMES, EVAL_SEED, GENERATOR_VERSION, make_scenes
from training.seeds import check_seed

def _rate(hits: list[bool]) -> float | None:
    return float(np.mean(hits)) if hits else None


def evaluate(model_name: str = "shapes-vit", n_scenes: int = 2000, seed: int = EVAL_SEED, perturbation: bool = True,
             methods: tuple[str, ...] = ()) -> dict:
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
        methods: registered method names (default: every one that applies to the model).

    Returns:
        A JSON-serialisable dict::

            {"model", "n_scenes", "seed", "generator_version", "seconds",
             "n_objects": {"single", "multi"},
             "classification": {"macro_f1", "exact_match", "threshold", "per_class_f1": {name: f1}},
             "pointing_game": {method: {"single", "multi", "all"}} for every method, by its registered name,
             "class_sensitivity": {method: rate} for every method that explains a class, and
                                  "random_pointer", "n_objects",
             "random_pointer": {"single", "multi", "all"},
             "seconds_per_map": {method: mean seconds},
             "faithfulness": {method: {"deletion_auc", "insertion_auc", "negative_perturbation_auc", "abpc",
                                       "pixel_accuracy", "mean_iou", "average_precision"}}
                 for every method and "random"}

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
    if not spec.kind.reads_images or spec.patch_grid is None or spec.image_size is None:
        raise ValueError(f"'{spec.name}' is not an image model: evaluate a ViT trained on the generated scenes.")
    if tuple(spec.labels) != CLASS_NAMES:
        raise ValueError(f"'{spec.name}' predicts {list(spec.labels)}, not the scene classes {list(CLASS_NAMES)}.")
    height, width = spec.image_size
    if height != width:
        raise ValueError(f"Scenes are square; '{spec.name}' takes {height}x{width} inputs.")

    chosen = [explain.get_method(name) for name in methods]
    return _evaluate_scenes(loaded, n_scenes, seed, perturbation, chosen)


FAITHFULNESS_KEYS = ("deletion_auc", "insertion_auc", "negative_perturbation_auc", "abpc", "pixel_accuracy",
                     "mean_iou", "average_precision")


def _evaluate_scenes(loaded: LoadedModel, n_scenes: int, seed: int, perturbation: bool = True,
                     chosen: list | None = None) -> dict:
    """The body of ``evaluate`` once the model is loaded and checked; same return value.

    Per scene, the maps of the methods that explain no class (attention, rollout, ALTI, value zeroing...) are made
    once and scored against every object; the others are made per object, targeted at its class. Each map's
    perturbed images go through the model in one pass that gives every class's probability.
    """
    spec = loaded.spec
    height = spec.image_size[0]
    grid = spec.patch_grid
    n_patches = grid[0] * grid[1]
    start = time.perf_counter()
    probs, labels = [], []
    hits: dict[str, dict[str, list[bool]]] = {}
    random_hits: dict[str, list[float]] = {"single": [], "multi": []}
    sensitive: dict[str, list[bool]] = {}
    random_sensitive: list[float] = []
    faithful: dict[str, list[dict[str, float]]] = {}
    seconds: dict[str, list[float]] = {}
    all_patches = [(r, c) for r in range(grid[0]) for c in range(grid[1])]
    scores = fx.class_scores(loaded.model, spec.multi_label)
    block = 3 * (fx.STEPS + 1)

    def explained(capture, method) -> np.ndarray:  # noqa: ANN001
        explanation = explain.explain_capture(capture, method.name, loaded)
        seconds.setdefault(method.name, []).append(explanation.seconds)
        return explanation.grid.float().numpy()

    for number, scene in enumerate(make_scenes(n_scenes, seed=seed, size=height)):
        image = Image.fromarray(scene.image)
        split = "multi" if len(scene.classes) >= 2 else "single"
        objects = patch_masks(scene.masks, grid)  # (K, rows, cols)
        grown = dilate(objects)
        first = explain.capture_image(loaded, image, target=int(scene.classes[0]))
        methods = chosen or explain.methods_for(first, loaded)
        probs.append(first.scores.numpy())
        labels.append(scene.labels)
        # maps that explain no class: one per scene; their perturbed images (and the random rankings') share a pass
        agnostic = {method.name: explained(first, method) for method in methods if not method.needs_target}
        if perturbation:
            pixel_values = first.inputs["pixel_values"]
            shared = fx.forward_in_chunks(scores, torch.cat(
                [fx.curve_batch(pixel_values, m, grid) for m in agnostic.values()]
                + [fx.random_batch(pixel_values, grid, seed=seed + number)])).numpy()
        for k, class_index in enumerate(scene.classes.tolist()):
            capture = first if k == 0 else explain.capture_image(loaded, image, target=int(class_index))
            maps = dict(agnostic)
            maps.update({method.name: explained(capture, method) for method in methods if method.needs_target})
            if perturbation:
                rows = {}
                for i, (name, grid_map) in enumerate(agnostic.items()):
                    rows[name] = (fx.curves_from(shared[i * block:(i + 1) * block, class_index]), grid_map)
                targeted = [name for name in maps if name not in agnostic]
                if targeted:
                    own = fx.forward_in_chunks(scores, torch.cat(
                        [fx.curve_batch(pixel_values, maps[name], grid) for name in targeted])).numpy()[:, class_index]
                    for i, name in enumerate(targeted):
                        rows[name] = (fx.curves_from(own[i * block:(i + 1) * block]), maps[name])
                random_map = np.random.default_rng(seed + 1000 * number + k).random(grid)
                rows["random"] = (fx.random_curves_from(shared[len(agnostic) * block:, class_index]), random_map)
                for name, (curves, grid_map) in rows.items():
                    faithful.setdefault(name, []).append(
                        {f"{curve}_auc": value for curve, value in curves.aucs.items()} | {"abpc": curves.abpc}
                        | localisation_scores(grid_map, scene.masks[k]))
            for name, grid_map in maps.items():
                patch = top_patch(grid_map)
                hits.setdefault(name, {"single": [], "multi": []})[split].append(bool(grown[k][patch]))
                if split == "multi" and name not in agnostic:
                    sensitive.setdefault(name, []).append(is_class_sensitive(patch, k, objects))
            random_hits[split].append(float(grown[k].sum()) / n_patches)
            if split == "multi":
                random_sensitive.append(float(np.mean([is_class_sensitive(p, k, objects) for p in all_patches])))

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
        "class_sensitivity": {**{method: _rate(values) for method, values in sensitive.items()},
                              "random_pointer": _rate(random_sensitive), "n_objects": len(random_sensitive)},
        "random_pointer": splits(random_hits),
        "seconds_per_map": {method: float(np.mean(values)) for method, values in seconds.items()},
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


def ood_calibration(model_name: str = "shapes-vit", n_scenes: int = 2000, seed: int = EVAL_SEED + 5,
                    quantile: float = 0.01) -> dict:
    """The distribution of the model's largest logit on held-out scenes, and the threshold below which an input is
    called unlike them: its `quantile` (1%: one held-out scene in a hundred would be flagged). Written beside the
    bundled model as ood.json, which the image page reads.

    Returns:
        {"score": "max_logit", "threshold", "quantile", "quantiles": {percent: value}, "scenes", "seed", "command"}.
    """
    from explain.metrics.classification import max_logit

    check_seed(seed, "eval")
    loaded = models.load(model_name, allow_download=False)
    scenes = make_scenes(n_scenes, seed=seed, size=loaded.spec.image_size[0])
    values = []
    with torch.no_grad():
        for start in range(0, n_scenes, 256):
            pixels = loaded.processor(images=[Image.fromarray(s.image) for s in scenes[start:start + 256]],
                                      return_tensors="pt")["pixel_values"]
            values.append(max_logit(loaded.model(pixel_values=pixels).logits))
    scores = torch.cat(values).numpy()
    percents = (0.1, 1, 5, 50)
    return {"score": "max_logit", "threshold": float(np.quantile(scores, quantile)), "quantile": quantile,
            "quantiles": {f"{p:g}%": float(np.quantile(scores, p / 100)) for p in percents},
            "scenes": n_scenes, "seed": seed, "command": f"python -m explain evaluate --model {model_name} --ood --json"}
