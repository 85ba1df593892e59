"""Is an explanation faithful? Perturbation curves for images, localisation against ground-truth masks,
and ERASER's comprehensiveness and sufficiency for text. Relevance comes in already computed: scoring
runs only the perturbed forward passes, never the explanation again.

Images (Chefer et al. 2021's perturbation tests; RISE's insertion, Petsiuk et al. 2018): rank the patches
by relevance; at 0%, 10%, ..., 100% of the patches, replace the most relevant first ("deletion", positive
perturbation) or the least relevant first ("negative perturbation") by the normaliser's mean (0 after
normalisation), or start from the all-mean image and restore the most relevant first ("insertion"); the
target class's probability at each step gives a curve, its area by the trapezoid rule over the fraction
perturbed. The images of a curve are scored in one batched forward pass (11 images; several curves share
a pass). A faithful map has a low deletion AUC and high insertion and negative-perturbation AUCs; the
baseline is a random ranking (mean of 10 seeded permutations). Insertion at fraction f shows the same
image as negative perturbation at 1 - f (the round(f * P) most relevant patches kept), so with the same
baseline value their AUCs are equal; their curves run in opposite directions.

Localisation (synthetic scenes with masks; Chefer et al.'s segmentation test): the relevance map,
upsampled bilinearly to pixels, thresholded at its mean, against the object's mask: pixel accuracy, mean
IoU of object and background, and the average precision of the continuous map.

Text (ERASER, DeYoung et al. 2020): comprehensiveness = p(full) - p(without the top k% tokens), sufficiency
= p(full) - p(only the top k% tokens), averaged over k in {1, 5, 10, 20, 50}% (AOPC); top k% means
ceil(k * n) of the n removable tokens (at least one). Special tokens are never removed. "Removed" means
deleted from the sequence (as ERASER does), for every kind of model: encoders re-read the shorter text,
decoders the shorter prompt (target: the same token after it), encoder-decoders the shorter source
(target: the same output token after the same output prefix, teacher-forced).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

STEPS = 10  # curves at 0%, 10%, ..., 100%
FRACTIONS = np.linspace(0.0, 1.0, STEPS + 1)
ERASER_KS = (0.01, 0.05, 0.10, 0.20, 0.50)
RANDOM_RANKINGS = 10
# Zero-shot labels of an embedding model become probabilities as softmax(similarity / 0.05): the
# temperature of contrastive sentence-embedding training (SimCSE, Gao et al. 2021); at 1 the five labels'
# cosine similarities, a few hundredths apart, would give near-uniform probabilities.
ZERO_SHOT_TEMPERATURE = 0.05
CURVES = ("deletion", "insertion", "negative_perturbation")


def trapezoid_auc(values: Sequence[float], fractions: Sequence[float] = FRACTIONS) -> float:
    """Area under a curve sampled at `fractions` (trapezoid rule)."""
    values, fractions = np.asarray(values, dtype=np.float64), np.asarray(fractions, dtype=np.float64)
    return float(np.sum((values[1:] + values[:-1]) * np.diff(fractions)) / 2)


def patch_ranking(relevance: torch.Tensor | np.ndarray) -> np.ndarray:
    """Patch indices (row-major) from the most to the least relevant; ties keep row-major order."""
    flat = np.asarray(relevance, dtype=np.float64).reshape(-1)
    return np.argsort(-flat, kind="stable")


def _patch_masks(order: np.ndarray, counts: Sequence[int], grid: tuple[int, int], size: tuple[int, int]) -> torch.Tensor:
    """(len(counts), 1, H, W) bool: pixels of the first counts[i] patches of `order`."""
    rows, cols = grid
    height, width = size
    chosen = torch.zeros(len(counts), rows * cols, dtype=torch.bool)
    for i, count in enumerate(counts):
        chosen[i, torch.as_tensor(np.ascontiguousarray(order[:count]), dtype=torch.long)] = True
    grid_masks = chosen.view(len(counts), 1, rows, cols).float()
    return F.interpolate(grid_masks, size=(height, width), mode="nearest").bool()


def perturbed_batch(pixel_values: torch.Tensor, order: np.ndarray, grid: tuple[int, int], curve: str,
                    baseline: float = 0.0) -> torch.Tensor:
    """The 11 images of one curve: (STEPS + 1, 3, H, W).

    Args:
        pixel_values: (1, 3, H, W) normalised model input.
        order: patch indices, most relevant first.
        grid: (rows, cols) patch grid; H and W must be multiples of it.
        curve: "deletion" (most relevant replaced first), "negative_perturbation" (least relevant first)
            or "insertion" (from the all-baseline image, most relevant restored first).
        baseline: the value a removed pixel takes (0: the normaliser's mean).
    """
    if curve not in CURVES:
        raise ValueError(f"Unknown curve '{curve}': choose one of {', '.join(CURVES)}.")
    height, width = pixel_values.shape[-2:]
    if height % grid[0] or width % grid[1]:
        raise ValueError(f"A {height}x{width} input does not split into a {grid[0]}x{grid[1]} patch grid.")
    patches = grid[0] * grid[1]
    counts = [round(f * patches) for f in FRACTIONS]
    ranking = np.ascontiguousarray(order[::-1] if curve == "negative_perturbation" else order)
    masks = _patch_masks(np.asarray(ranking), counts, grid, (height, width))  # (11, 1, H, W)
    images = pixel_values.expand(len(counts), -1, -1, -1)
    filler = torch.full_like(images, baseline)
    if curve == "insertion":
        return torch.where(masks, images, filler)
    return torch.where(masks, filler, images)


@dataclass
class Curves:
    """Perturbation curves of one method (or the random baseline) for one image and target.

    Attributes:
        curves: name -> (STEPS + 1,) target probability at each fraction.
        aucs: name -> area under that curve.
    """

    curves: dict[str, np.ndarray]
    aucs: dict[str, float]


def curve_batch(pixel_values: torch.Tensor, relevance: torch.Tensor | np.ndarray, grid: tuple[int, int],
                baseline: float = 0.0) -> torch.Tensor:
    """The images of a map's three curves (deletion, insertion, negative perturbation): (3 * 11, 3, H, W)."""
    order = patch_ranking(relevance)
    return torch.cat([perturbed_batch(pixel_values, order, grid, curve, baseline) for curve in CURVES])


def curves_from(probabilities: np.ndarray) -> Curves:
    """Curves and AUCs from the target probabilities of a `curve_batch`, (3 * 11,)."""
    values = np.asarray(probabilities, dtype=np.float64).reshape(len(CURVES), STEPS + 1)
    curves = dict(zip(CURVES, values))
    return Curves(curves, {name: trapezoid_auc(v) for name, v in curves.items()})


def random_batch(pixel_values: torch.Tensor, grid: tuple[int, int], seed: int = 0, rankings: int = RANDOM_RANKINGS,
                 baseline: float = 0.0) -> torch.Tensor:
    """The images of the random baseline: `rankings` seeded permutations x 3 curves x 11, in that order."""
    generator = np.random.default_rng(seed)
    orders = [generator.permutation(grid[0] * grid[1]) for _ in range(rankings)]
    return torch.cat([perturbed_batch(pixel_values, order, grid, curve, baseline) for order in orders for curve in CURVES])


def random_curves_from(probabilities: np.ndarray, rankings: int = RANDOM_RANKINGS) -> Curves:
    """The random baseline's curves (each averaged over the rankings) from a `random_batch`'s probabilities."""
    values = np.asarray(probabilities, dtype=np.float64).reshape(rankings, len(CURVES), STEPS + 1).mean(0)
    curves = dict(zip(CURVES, values))
    return Curves(curves, {name: trapezoid_auc(v) for name, v in curves.items()})


def forward_in_chunks(score: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, chunk: int = 352) -> torch.Tensor:
    """`score` over many images in passes of at most `chunk` (a curve's 11 images always share a pass)."""
    with torch.no_grad():
        return torch.cat([score(images[i:i + chunk]).float().cpu() for i in range(0, len(images), chunk)])


def image_curves(probability: Callable[[torch.Tensor], torch.Tensor], pixel_values: torch.Tensor,
                 relevance: torch.Tensor | np.ndarray, grid: tuple[int, int], baseline: float = 0.0) -> Curves:
    """Deletion, insertion and negative-perturbation curves of one relevance map (33 images, one pass).

    Args:
        probability: (B, 3, H, W) -> (B,) the target class's probability.
        pixel_values: (1, 3, H, W).
        relevance: (rows, cols).
    """
    return curves_from(forward_in_chunks(probability, curve_batch(pixel_values, relevance, grid, baseline)).numpy())


def random_curves(probability: Callable[[torch.Tensor], torch.Tensor], pixel_values: torch.Tensor,
                  grid: tuple[int, int], seed: int = 0, rankings: int = RANDOM_RANKINGS, baseline: float = 0.0) -> Curves:
    """The random-ranking baseline: each curve averaged over `rankings` seeded permutations of the patches."""
    images = random_batch(pixel_values, grid, seed, rankings, baseline)
    return random_curves_from(forward_in_chunks(probability, images).numpy(), rankings)


def class_scores(model: torch.nn.Module, multi_label: bool) -> Callable[[torch.Tensor], torch.Tensor]:
    """(B, 3, H, W) -> (B, C) every class's probability (sigmoid when multi-label, else softmax)."""
    parameter = next(model.parameters())

    @torch.no_grad()
    def scores(pixel_values: torch.Tensor) -> torch.Tensor:
        logits = model(pixel_values=pixel_values.to(parameter.device, parameter.dtype)).logits.float()
        return torch.sigmoid(logits) if multi_label else torch.softmax(logits, dim=-1)

    return scores


def class_probability(model: torch.nn.Module, target: int, multi_label: bool) -> Callable[[torch.Tensor], torch.Tensor]:
    """(B, 3, H, W) -> (B,) probability of class `target` of an image classifier (sigmoid when multi-label)."""
    scores = class_scores(model, multi_label)
    return lambda pixel_values: scores(pixel_values)[:, target]


# ----------------------------------------------------------------------------- localisation


def upsample_relevance(relevance: torch.Tensor | np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """(rows, cols) -> (H, W) bilinear with pixel-centre alignment (as the overlays draw it)."""
    grid = torch.as_tensor(np.asarray(relevance, dtype=np.float32))[None, None]
    return F.interpolate(grid, size=size, mode="bilinear", align_corners=False)[0, 0]


def localisation_scores(relevance: torch.Tensor | np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """Pixel accuracy, mean IoU (object and background) and average precision of a relevance map against
    an object's (H, W) bool mask; the map is upsampled to the mask and thresholded at its mean."""
    from sklearn.metrics import average_precision_score

    mask = np.asarray(mask, dtype=bool)
    heat = upsample_relevance(relevance, mask.shape).numpy()
    predicted = heat > heat.mean()
    foreground = (predicted & mask).sum() / max((predicted | mask).sum(), 1)
    background = (~predicted & ~mask).sum() / max((~predicted | ~mask).sum(), 1)
    precision = float(average_precision_score(mask.reshape(-1), heat.reshape(-1))) if mask.any() else float("nan")
    return {"pixel_accuracy": float((predicted == mask).mean()), "mean_iou": float((foreground + background) / 2),
            "average_precision": precision}


# ----------------------------------------------------------------------------- text (ERASER)


@dataclass
class TextScores:
    """ERASER scores of one ranking: per k, and their means (AOPC)."""

    comprehensiveness: dict[float, float]
    sufficiency: dict[float, float]
    full_probability: float

    @property
    def aopc_comprehensiveness(self) -> float:
        return float(np.mean(list(self.comprehensiveness.values())))

    @property
    def aopc_sufficiency(self) -> float:
        return float(np.mean(list(self.sufficiency.values())))


def eraser_masks(relevance: Sequence[float], removable: Sequence[bool], ks: Sequence[float] = ERASER_KS,
                 order: np.ndarray | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep-masks for comprehensiveness and sufficiency: ((K, T), (K, T)) bool.

    Row i of the first drops the top ceil(ks[i] * n) removable tokens; row i of the second keeps only
    them (and every token that cannot be removed). `order` overrides the ranking (most relevant first,
    indices of removable tokens), e.g. a random permutation.
    """
    relevance = np.asarray(relevance, dtype=np.float64)
    removable = np.asarray(removable, dtype=bool)
    candidates = np.flatnonzero(removable)
    if len(candidates) == 0:
        raise ValueError("Nothing can be removed: the input holds only special tokens.")
    if order is None:
        order = candidates[np.argsort(-relevance[candidates], kind="stable")]
    keep_without = torch.ones(len(ks), len(relevance), dtype=torch.bool)
    keep_only = torch.tensor(~removable).repeat(len(ks), 1)
    for row, k in enumerate(ks):
        top = order[: max(1, math.ceil(k * len(candidates)))]
        keep_without[row, top] = False
        keep_only[row, top] = True
    return keep_without, keep_only


def text_scores(probability: Callable[[torch.Tensor], torch.Tensor], relevance: Sequence[float],
                removable: Sequence[bool], ks: Sequence[float] = ERASER_KS, order: np.ndarray | None = None) -> TextScores:
    """Comprehensiveness and sufficiency of one ranking, in one batched call of 2K + 1 inputs.

    Args:
        probability: (B, T) bool keep-masks -> (B,) the target's probability on each shortened input.
        relevance: (T,) relevance per token.
        removable: (T,) bool, tokens that may be removed (not special).
    """
    keep_without, keep_only = eraser_masks(relevance, removable, ks, order)
    everything = torch.ones(1, len(relevance), dtype=torch.bool)
    with torch.no_grad():
        values = probability(torch.cat([everything, keep_without, keep_only])).float().cpu().numpy()
    full, without, only = values[0], values[1:1 + len(ks)], values[1 + len(ks):]
    return TextScores({k: float(full - w) for k, w in zip(ks, without)},
                      {k: float(full - o) for k, o in zip(ks, only)}, float(full))


def random_text_scores(probability: Callable[[torch.Tensor], torch.Tensor], removable: Sequence[bool],
                       ks: Sequence[float] = ERASER_KS, seed: int = 0, rankings: int = RANDOM_RANKINGS) -> TextScores:
    """The random baseline: ERASER scores averaged over `rankings` seeded permutations of the removable tokens."""
    generator = np.random.default_rng(seed)
    candidates = np.flatnonzero(np.asarray(removable, dtype=bool))
    runs = [text_scores(probability, np.zeros(len(removable)), removable, ks, order=generator.permutation(candidates))
            for _ in range(rankings)]
    return TextScores({k: float(np.mean([r.comprehensiveness[k] for r in runs])) for k in ks},
                      {k: float(np.mean([r.sufficiency[k] for r in runs])) for k in ks}, runs[0].full_probability)


def _pad(rows: list[list[int]], pad_id: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, :len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, :len(row)] = 1
    return ids.to(device), mask.to(device)


def encoder_probability(loaded, token_ids: Sequence[int], target: int | str | None = None,  # noqa: ANN001
                        labels: Sequence[str] = (), batch_size: int = 64) -> Callable[[torch.Tensor], torch.Tensor]:
    """Target probability of a text encoder on shortened inputs (tokens deleted, specials kept).

    Classifiers: the target class's softmax (sigmoid when multi-label) probability (target: class name or
    index; None: the class predicted on the full text). Embedding models with zero-shot `labels`: the
    softmax over the labels' cosine similarities divided by ZERO_SHOT_TEMPERATURE, taken at the target label (None: the best one on the
    full text). Embedding models with a probe sentence (`target`, no labels): the cosine similarity
    itself, which is what that view explains.
    """
    from explain.capture import _pooled_embedding, _resolve_class

    spec, model, tokenizer = loaded.spec, loaded.model, loaded.tokenizer
    ids = list(token_ids)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    @torch.no_grad()
    def forward(masks: torch.Tensor):  # noqa: ANN202
        rows = [[i for i, keep in zip(ids, row) if keep] for row in masks.tolist()]
        outputs = []
        for start in range(0, len(rows), batch_size):
            batch_ids, attention = _pad(rows[start:start + batch_size], pad, loaded.device)
            encoding = {"input_ids": batch_ids, "attention_mask": attention}
            if spec.classifier:
                logits = model(**encoding).logits.float()
                outputs.append(torch.sigmoid(logits) if spec.multi_label else torch.softmax(logits, -1))
            else:
                outputs.append(_pooled_embedding(model, encoding, spec.pooling)[0].float())
        return torch.cat(outputs)

    with torch.no_grad():
        if spec.classifier:
            full = forward(torch.ones(1, len(ids), dtype=torch.bool))[0]
            index = _resolve_class(target, spec.labels, int(full.argmax()), "Class")
            return lambda masks: forward(masks)[:, index]
        references = list(labels) if labels else [str(target)]
        if not labels and target is None:
            raise ValueError("An embedding model's target is a probe sentence or zero-shot labels: give one.")
        encoded = tokenizer(references, padding=True, truncation=True, max_length=spec.max_length,
                            return_tensors="pt").to(loaded.device)
        reference = F.normalize(_pooled_embedding(model, encoded, spec.pooling)[0].float(), dim=-1)  # (C, D)
        if not labels:
            return lambda masks: F.normalize(forward(masks), dim=-1) @ reference[0]
        full = F.normalize(forward(torch.ones(1, len(ids), dtype=torch.bool)), dim=-1) @ reference.T
        index = _resolve_class(target, list(labels), int(full[0].argmax()), "Label")
        return lambda masks: torch.softmax(F.normalize(forward(masks), dim=-1) @ reference.T / ZERO_SHOT_TEMPERATURE,
                                           dim=-1)[:, index]


def decoder_probability(loaded, context_ids: Sequence[int], target_id: int,  # noqa: ANN001
                        batch_size: int = 32) -> Callable[[torch.Tensor], torch.Tensor]:
    """Probability of `target_id` as the next token after a shortened context (tokens deleted)."""
    ids = list(context_ids)
    pad = loaded.tokenizer.pad_token_id
    pad = pad if pad is not None else (loaded.tokenizer.eos_token_id or 0)

    @torch.no_grad()
    def probability(masks: torch.Tensor) -> torch.Tensor:
        rows = [[i for i, keep in zip(ids, row) if keep] for row in masks.tolist()]
        values = []
        for start in range(0, len(rows), batch_size):
            chunk = rows[start:start + batch_size]
            batch_ids, attention = _pad(chunk, pad, loaded.device)  # right padding: read each row's last real logit
            logits = loaded.model(input_ids=batch_ids, attention_mask=attention).logits.float()
            last = torch.tensor([len(r) - 1 for r in chunk], device=logits.device)
            values.append(torch.softmax(logits[torch.arange(len(chunk)), last], dim=-1)[:, target_id])
        return torch.cat(values)

    return probability


def seq2seq_probability(loaded, source_ids: Sequence[int], output_ids: Sequence[int], position: int,  # noqa: ANN001
                        batch_size: int = 32) -> Callable[[torch.Tensor], torch.Tensor]:
    """Probability of output token `position` after the same teacher-forced output prefix, for a shortened
    source (source tokens deleted)."""
    ids = list(source_ids)
    model = loaded.model
    start = model.config.decoder_start_token_id
    prefix = torch.tensor([[start] + list(output_ids[:position])], device=loaded.device)
    pad = loaded.tokenizer.pad_token_id if loaded.tokenizer.pad_token_id is not None else 0

    @torch.no_grad()
    def probability(masks: torch.Tensor) -> torch.Tensor:
        rows = [[i for i, keep in zip(ids, row) if keep] for row in masks.tolist()]
        values = []
        for first in range(0, len(rows), batch_size):
            chunk = rows[first:first + batch_size]
            batch_ids, attention = _pad(chunk, pad, loaded.device)
            logits = model(input_ids=batch_ids, attention_mask=attention,
                           decoder_input_ids=prefix.expand(len(chunk), -1)).logits.float()
            values.append(torch.softmax(logits[:, -1], dim=-1)[:, output_ids[position]])
        return torch.cat(values)

    return probability
