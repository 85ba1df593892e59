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
from functools import singledispatch
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from explain.decoder import DecoderCapture
from explain.generation import pad_id
from explain.seq2seq import Seq2SeqCapture

STEPS = 10  # curves at 0%, 10%, ..., 100%
FRACTIONS = np.linspace(0.0, 1.0, STEPS + 1)
ERASER_KS = (0.01, 0.05, 0.10, 0.20, 0.50)
RANDOM_RANKINGS = 10
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

    @property
    def abpc(self) -> float:
        """Area between the perturbation curves: AUC(least relevant first, negative perturbation) - AUC(most
        relevant first, deletion); higher is better, a random ranking is near 0."""
        return self.aucs["negative_perturbation"] - self.aucs["deletion"]


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


def image_probability(loaded, capture) -> Callable[[torch.Tensor], torch.Tensor]:  # noqa: ANN001
    """(B, 3, H, W) -> (B,) the probability of the capture's target class (its own sigmoid or softmax)."""
    parameter = next(loaded.model.parameters())

    @torch.no_grad()
    def probability(pixel_values: torch.Tensor) -> torch.Tensor:
        inputs = {"pixel_values": pixel_values.to(parameter.device, parameter.dtype)}
        return capture.target.probability(loaded.model(**inputs), inputs)

    return probability


# ----------------------------------------------------------------------------- text (ERASER)


@dataclass
class TextScores:
    """ERASER scores of one ranking: per k, and their means (AOPC); and its two deletion curves.

    Attributes:
        comprehensiveness, sufficiency: k -> the probability drop (ERASER).
        full_probability: the target's probability on the whole input.
        most_first, least_first: (STEPS + 1,) the probability with round(f * n) of the n removable tokens deleted at
            f = 0, 0.1, ..., 1, the most relevant first (MoRF) or the least relevant first (LeRF).
    """

    comprehensiveness: dict[float, float]
    sufficiency: dict[float, float]
    full_probability: float
    most_first: np.ndarray
    least_first: np.ndarray

    @property
    def abpc(self) -> float:
        """Area between the perturbation curves: AUC(least relevant first) - AUC(most relevant first). A faithful
        ranking loses the prediction fast when its top tokens go and slowly when its bottom ones do (higher is
        better; a random ranking is near 0)."""
        return trapezoid_auc(self.least_first) - trapezoid_auc(self.most_first)

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


def deletion_masks(order: np.ndarray, tokens: int) -> torch.Tensor:
    """Keep-masks deleting round(f * n) of the n ranked tokens in `order` at f = 0, 0.1, ..., 1: (STEPS + 1, T).

    When every token is ranked (no special token stays), the last one is never deleted: a model cannot read an
    empty input.
    """
    ranked = torch.tensor(np.array(order, dtype=np.int64), dtype=torch.long)  # a copy: `order` may run backwards
    most = len(ranked) - (1 if len(ranked) == tokens else 0)
    masks = torch.ones(len(FRACTIONS), tokens, dtype=torch.bool)
    for row, fraction in enumerate(FRACTIONS):
        masks[row, ranked[: min(round(fraction * len(ranked)), most)]] = False
    return masks


def text_scores(probability: Callable[[torch.Tensor], torch.Tensor], relevance: Sequence[float],
                removable: Sequence[bool], ks: Sequence[float] = ERASER_KS, order: np.ndarray | None = None) -> TextScores:
    """ERASER's comprehensiveness and sufficiency of one ranking and its two deletion curves (most and least
    relevant first), in one batched call of 2K + 2 (STEPS + 1) + 1 inputs.

    Args:
        probability: (B, T) bool keep-masks -> (B,) the target's probability on each shortened input.
        relevance: (T,) relevance per token.
        removable: (T,) bool, tokens that may be removed (not special).
        order: the ranking itself (indices of removable tokens, most relevant first) instead of `relevance`'s.
    """
    relevance = np.asarray(relevance, dtype=np.float64)
    candidates = np.flatnonzero(np.asarray(removable, dtype=bool))
    if order is None and len(candidates):
        order = candidates[np.argsort(-relevance[candidates], kind="stable")]
    keep_without, keep_only = eraser_masks(relevance, removable, ks, order)
    everything = torch.ones(1, len(relevance), dtype=torch.bool)
    curves = [deletion_masks(order, len(relevance)), deletion_masks(order[::-1], len(relevance))]
    with torch.no_grad():
        values = probability(torch.cat([everything, keep_without, keep_only] + curves)).float().cpu().numpy()
    full, without, only = values[0], values[1:1 + len(ks)], values[1 + len(ks):1 + 2 * len(ks)]
    most_first, least_first = np.split(values[1 + 2 * len(ks):], 2)
    return TextScores({k: float(full - w) for k, w in zip(ks, without)},
                      {k: float(full - o) for k, o in zip(ks, only)}, float(full), most_first, least_first)


def random_text_scores(probability: Callable[[torch.Tensor], torch.Tensor], removable: Sequence[bool],
                       ks: Sequence[float] = ERASER_KS, seed: int = 0, rankings: int = RANDOM_RANKINGS) -> TextScores:
    """The random baseline: the scores and curves averaged over `rankings` seeded permutations of the removable
    tokens."""
    generator = np.random.default_rng(seed)
    candidates = np.flatnonzero(np.asarray(removable, dtype=bool))
    runs = [text_scores(probability, np.zeros(len(removable)), removable, ks, order=generator.permutation(candidates))
            for _ in range(rankings)]
    return TextScores({k: float(np.mean([r.comprehensiveness[k] for r in runs])) for k in ks},
                      {k: float(np.mean([r.sufficiency[k] for r in runs])) for k in ks}, runs[0].full_probability,
                      np.mean([r.most_first for r in runs], axis=0), np.mean([r.least_first for r in runs], axis=0))


def padded(rows: list[list[int]], pad: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of ids of different lengths as a right-padded batch: (ids (B, T), attention mask (B, T))."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, :len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, :len(row)] = 1
    return ids.to(device), mask.to(device)


@dataclass
class TextPerturbation:
    """How to delete tokens of one captured input and read the target's probability again.

    Attributes:
        probability: (B, T) bool keep-masks -> (B,) the target's probability on each shortened input.
        removable: (T,) tokens that may be deleted (not special).
        length: T, the inputs ranked: relevance[:length] (a decoder's tokens up to the explained position).
    """

    probability: Callable[[torch.Tensor], torch.Tensor]
    removable: list[bool]
    length: int


def deleting(ids: Sequence[int], pad: int, device: torch.device, batch_size: int,
             read: Callable[[torch.Tensor, torch.Tensor, list[list[int]]], torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
    """(B, T) bool keep-masks over `ids` -> (B,): the kept ids of each mask as a right-padded batch, in chunks of
    `batch_size`, read by `read(ids (b, T'), attention mask (b, T'), the rows' ids)` -> (b,)."""

    @torch.no_grad()
    def probability(masks: torch.Tensor) -> torch.Tensor:
        rows = [[i for i, keep in zip(ids, row) if keep] for row in masks.tolist()]
        chunks = (rows[start:start + batch_size] for start in range(0, len(rows), batch_size))
        return torch.cat([read(*padded(chunk, pad, device), chunk).float() for chunk in chunks])

    return probability


@singledispatch
def text_perturbation(capture, loaded, batch_size: int = 64) -> TextPerturbation:  # noqa: ANN001
    """ERASER's deletions for a text encoder's capture: the shorter text is read again (special tokens kept) and
    the target's probability taken as the target defines it (a class's softmax or sigmoid; a zero-shot label's
    softmax over the labels' similarities at temperature ZERO_SHOT_TEMPERATURE; a probe sentence's cosine
    similarity itself)."""

    def read(ids: torch.Tensor, attention: torch.Tensor, rows: list[list[int]]) -> torch.Tensor:
        inputs = {"input_ids": ids, "attention_mask": attention}
        return capture.target.probability(loaded.model(**inputs), inputs)

    probability = deleting(capture.token_ids, pad_id(loaded.tokenizer), loaded.device, batch_size, read)
    return TextPerturbation(probability, [not s for s in capture.special.tolist()], len(capture.token_ids))


@text_perturbation.register
def _decoder_perturbation(capture: DecoderCapture, loaded, batch_size: int = 32) -> TextPerturbation:  # noqa: ANN001
    """A decoder's deletions: the shorter context up to the explained position; the probability of the same next
    token, read after each shortened context's last token (right padding)."""
    length = capture.target.position + 1

    def read(ids: torch.Tensor, attention: torch.Tensor, rows: list[list[int]]) -> torch.Tensor:
        logits = loaded.model(input_ids=ids, attention_mask=attention).logits.float()
        last = torch.tensor([len(row) - 1 for row in rows], device=logits.device)
        return torch.softmax(logits[torch.arange(len(rows)), last], dim=-1)[:, capture.target.token_id]

    probability = deleting(capture.token_ids[:length], pad_id(loaded.tokenizer), loaded.device, batch_size, read)
    return TextPerturbation(probability, [not s for s in capture.special.tolist()[:length]], length)


@text_perturbation.register
def _seq2seq_perturbation(capture: Seq2SeqCapture, loaded, batch_size: int = 32) -> TextPerturbation:  # noqa: ANN001
    """An encoder-decoder's deletions: the shorter source, the same output prefix teacher-forced; the probability
    of the explained output token after it."""
    prefix = torch.tensor([[loaded.model.config.decoder_start_token_id] + list(capture.output_ids[:capture.target.position])],
                          device=loaded.device)

    def read(ids: torch.Tensor, attention: torch.Tensor, rows: list[list[int]]) -> torch.Tensor:
        inputs = {"input_ids": ids, "attention_mask": attention, "decoder_input_ids": prefix.expand(len(rows), -1)}
        return capture.target.probability(loaded.model(**inputs), inputs)

    probability = deleting(capture.source_ids, pad_id(loaded.tokenizer), loaded.device, batch_size, read)
    return TextPerturbation(probability, [not s for s in capture.special.tolist()], len(capture.source_ids))
