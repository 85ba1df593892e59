"""Attention rollout (Abnar and Zuidema, 2020) and gradient rollout (Chefer, Gur and Wolf, 2021); the
rollout product that value zeroing and ALTI combine their layers with.

Notation: A_l is layer l's attention, shape (H, T, T), rows sum to 1; G_l is the gradient of the target
scalar with respect to A_l; I is the T x T identity. Every function accepts any leading batch
dimensions before (L, H, T, T) and keeps the input's device and dtype.
"""

from __future__ import annotations

import math
from fractions import Fraction

import torch

HEAD_FUSIONS = ("mean", "max", "min")


def fuse_heads(attention: torch.Tensor, head_fusion: str = "mean") -> torch.Tensor:
    """Fuse the head dimension of one or more layers' attention.

    Args:
        attention: (..., H, T, T).
        head_fusion: "mean", "max" or "min" over heads.

    Returns:
        (..., T, T).
    """
    if head_fusion == "mean":
        return attention.mean(dim=-3)
    if head_fusion == "max":
        return attention.amax(dim=-3)
    if head_fusion == "min":
        return attention.amin(dim=-3)
    raise ValueError(f"Unknown head fusion '{head_fusion}': choose one of {', '.join(HEAD_FUSIONS)}.")


def _check_layers(attentions: torch.Tensor, start_layer: int) -> int:
    if attentions.dim() < 4 or attentions.shape[-1] != attentions.shape[-2]:
        raise ValueError(f"Expected attentions of shape (..., L, H, T, T), got {tuple(attentions.shape)}.")
    layers = attentions.shape[-4]
    if not 0 <= start_layer < layers:
        raise ValueError(f"Start layer {start_layer} is out of range: choose 0 to {layers - 1}.")
    return layers


def discard_count(discard_ratio: float, tokens: int) -> int:
    """floor(r * T) computed exactly on the ratio as written: in floating point 0.7 * 90 is 62.99999999999999,
    whose floor is 62, not 63. The ratio is read as the decimal its shortest repr shows (0.7 -> 7/10)."""
    return math.floor(Fraction(repr(float(discard_ratio))) * tokens)


def discard_smallest(fused: torch.Tensor, discard_ratio: float) -> torch.Tensor:
    """Set the floor(r * T) smallest entries of each row to zero (see `discard_count`).

    Args:
        fused: (..., T, T) head-fused attention.
        discard_ratio: r in [0, 1).
    """
    if not 0.0 <= discard_ratio < 1.0:
        raise ValueError(f"Discard ratio {discard_ratio} is out of range: choose a value in [0, 1).")
    tokens = fused.shape[-1]
    count = discard_count(discard_ratio, tokens)
    if count == 0:
        return fused
    smallest = fused.topk(count, dim=-1, largest=False).indices  # (..., T, count)
    return fused.scatter(-1, smallest, 0.0)


def attention_rollout(
    attentions: torch.Tensor,
    head_fusion: str = "mean",
    discard_ratio: float = 0.0,
    start_layer: int = 0,
) -> torch.Tensor:
    """Attention rollout: J = prod over layers of normalise(fuse(A_l) + I), latest layer on the left.

    For l = start_layer .. L-1: F = fuse_heads(A_l); drop the floor(r*T) smallest entries per row;
    B = F + I; B = B / B.sum(-1, keepdim=True); J = B @ J.

    Args:
        attentions: (..., L, H, T, T) post-softmax attention.
        head_fusion: "mean", "max" or "min".
        discard_ratio: r in [0, 1).
        start_layer: first layer rolled out.

    Returns:
        J, (..., T, T); each row sums to 1.
    """
    _check_layers(attentions, start_layer)
    if head_fusion not in HEAD_FUSIONS:
        raise ValueError(f"Unknown head fusion '{head_fusion}': choose one of {', '.join(HEAD_FUSIONS)}.")
    tokens = attentions.shape[-1]
    identity = torch.eye(tokens, device=attentions.device, dtype=attentions.dtype)
    fused = discard_smallest(fuse_heads(attentions[..., start_layer:, :, :, :], head_fusion), discard_ratio)
    augmented = fused + identity  # (..., L', T, T)
    augmented = augmented / augmented.sum(dim=-1, keepdim=True)
    return combine_layers(augmented)


def combine_layers(per_layer: torch.Tensor) -> torch.Tensor:
    """The rollout product of per-layer token-to-token matrices, latest layer on the left, no identity added:
    J = C_{L-1} @ ... @ C_1 @ C_0 (attention rollout's product; value zeroing and ALTI combine their layers
    with it, their residual being inside each C_l already).

    Args:
        per_layer: (..., L, T, T), C_l for l = 0 .. L-1.

    Returns:
        J, (..., T, T), a new tensor; rows sum to 1 when every C_l's rows do.
    """
    if per_layer.dim() < 3 or per_layer.shape[-1] != per_layer.shape[-2]:
        raise ValueError(f"Expected per-layer matrices of shape (..., L, T, T), got {tuple(per_layer.shape)}.")
    joint = per_layer[..., 0, :, :]  # C_0 @ I, without the product
    for layer in range(1, per_layer.shape[-3]):
        joint = per_layer[..., layer, :, :] @ joint
    return joint.clone() if per_layer.shape[-3] == 1 else joint


def normalise_rows(scores: torch.Tensor) -> torch.Tensor:
    """Scale each row of non-negative scores to sum to 1: (..., T, T) -> (..., T, T).

    A row whose scores are all zero (nothing measurably moved the token) becomes one-hot on the diagonal:
    the token keeps itself, so that every row of a rollout factor sums to 1.
    """
    totals = scores.sum(dim=-1, keepdim=True)  # (..., T, 1)
    empty = totals == 0
    if empty.any():
        identity = torch.eye(scores.shape[-1], device=scores.device, dtype=scores.dtype)
        scores = torch.where(empty, identity, scores)
        totals = torch.where(empty, torch.ones_like(totals), totals)
    return scores / totals


def gradient_rollout(attentions: torch.Tensor, gradients: torch.Tensor, start_layer: int = 0) -> torch.Tensor:
    """Gradient-weighted rollout, Chefer et al.'s generic rule for self-attention.

    R = I; for l = start_layer .. L-1: Abar = mean_h relu(G_l * A_l); R = R + Abar @ R.

    Layer by layer: each layer's (H, T, T) product is formed, clamped and averaged on its own, so no
    (L, H, T, T) temporary is built (at 512 tokens that temporary made the whole method 2x slower).

    Args:
        attentions: (..., L, H, T, T) post-softmax attention A_l.
        gradients: same shape, dTarget/dA_l, paired with attentions by layer index.
        start_layer: first layer rolled out.

    Returns:
        R, (..., T, T). Subtract I to keep only what attention carried.
    """
    if gradients.shape != attentions.shape:
        raise ValueError(
            f"Gradients {tuple(gradients.shape)} and attentions {tuple(attentions.shape)} must have the same shape."
        )
    layers = _check_layers(attentions, start_layer)
    relevance = _identity_like(attentions)
    for layer in range(start_layer, layers):
        weighted = (gradients[..., layer, :, :, :] * attentions[..., layer, :, :, :]).clamp_(min=0).mean(dim=-3)
        relevance = relevance + weighted @ relevance
    return relevance


def weighted_rollout(weighted: torch.Tensor, start_layer: int = 0) -> torch.Tensor:
    """Gradient rollout from precomputed gradient-weighted attention: R = I; R = R + W_l @ R per layer.

    Args:
        weighted: (..., L, T, T), W_l = mean_h (G_l * A_l)^+ (see `explain.capture.gradient_weighted`).
        start_layer: first layer rolled out.

    Returns:
        R, (..., T, T); equal to `gradient_rollout` of the attentions and gradients W came from.
    """
    if weighted.dim() < 3 or weighted.shape[-1] != weighted.shape[-2]:
        raise ValueError(f"Expected weighted attention of shape (..., L, T, T), got {tuple(weighted.shape)}.")
    layers = weighted.shape[-3]
    if not 0 <= start_layer < layers:
        raise ValueError(f"Start layer {start_layer} is out of range: choose 0 to {layers - 1}.")
    relevance = torch.eye(weighted.shape[-1], device=weighted.device, dtype=weighted.dtype)
    relevance = relevance.expand(weighted.shape[:-3] + relevance.shape).clone()
    for layer in range(start_layer, layers):
        relevance = relevance + weighted[..., layer, :, :] @ relevance
    return relevance


def _identity_like(attentions: torch.Tensor) -> torch.Tensor:
    """I of the attention's token count, expanded to its batch dimensions: (..., T, T)."""
    tokens = attentions.shape[-1]
    identity = torch.eye(tokens, device=attentions.device, dtype=attentions.dtype)
    return identity.expand(attentions.shape[:-4] + (tokens, tokens)).clone()
