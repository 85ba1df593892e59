"""Attention rollout (Abnar and Zuidema, 2020) and gradient rollout (Chefer, Gur and Wolf, 2021), one body each;
the rollout product that value zeroing and ALTI combine their layers with.

Notation: A_l is layer l's attention, shape (H, T, T), rows sum to 1; G_l is the gradient of the target scalar
with respect to A_l; I is the T x T identity. Rollout functions accept any leading batch dimensions and keep the
input's device and dtype. With `steps=True` they also return the per-layer matrices (what the Learn page draws);
the last running product is the result itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Sequence

import torch

HEAD_FUSIONS = ("mean", "max", "min")


@dataclass
class RolloutSteps:
    """A rollout one layer at a time, for the layers rolled out (from the start layer). All (..., L', T, T).

    Attributes:
        fused: attention rollout: the heads fused (after discarding); gradient rollout: mean_h (G * A)^+.
        augmented: attention rollout: fused + I with rows renormalised; gradient rollout: I + fused.
        running: the product so far after each layer; `running[..., -1, :, :]` is the rollout's result.
    """

    fused: torch.Tensor
    augmented: torch.Tensor
    running: torch.Tensor


def fuse_heads(attention: torch.Tensor, head_fusion: str = "mean") -> torch.Tensor:
    """Fuse the head dimension of one or more layers' attention: (..., H, T, T) -> (..., T, T).

    Args:
        head_fusion: "mean", "max" or "min" over heads.
    """
    if head_fusion == "mean":
        return attention.mean(dim=-3)
    if head_fusion == "max":
        return attention.amax(dim=-3)
    if head_fusion == "min":
        return attention.amin(dim=-3)
    raise ValueError(f"Unknown head fusion '{head_fusion}': choose one of {', '.join(HEAD_FUSIONS)}.")


def check_start_layer(layers: int, start_layer: int) -> None:
    """A start layer must name one of the `layers` layers."""
    if not 0 <= start_layer < layers:
        raise ValueError(f"Start layer {start_layer} is out of range: choose 0 to {layers - 1}.")


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
    count = discard_count(discard_ratio, fused.shape[-1])
    if count == 0:
        return fused
    smallest = fused.topk(count, dim=-1, largest=False).indices  # (..., T, count)
    return fused.scatter(-1, smallest, 0.0)


def combine_layers(per_layer: torch.Tensor, steps: bool = False) -> torch.Tensor:
    """The rollout product of per-layer token-to-token matrices, latest layer on the left, no identity added:
    J = C_{L-1} @ ... @ C_1 @ C_0. Attention rollout multiplies its normalised (fused + I) matrices with it; value
    zeroing and ALTI combine their layers with it, their residual being inside each C_l already.

    Args:
        per_layer: (..., L, T, T), C_l for l = 0 .. L-1.
        steps: return every partial product instead, (..., L, T, T), the last one being J.

    Returns:
        J, (..., T, T), a new tensor; rows sum to 1 when every C_l's rows do.
    """
    if per_layer.dim() < 3 or per_layer.shape[-1] != per_layer.shape[-2]:
        raise ValueError(f"Expected per-layer matrices of shape (..., L, T, T), got {tuple(per_layer.shape)}.")
    joint = per_layer[..., 0, :, :]  # C_0 @ I, without the product
    running = [joint]
    for layer in range(1, per_layer.shape[-3]):
        joint = per_layer[..., layer, :, :] @ joint
        running.append(joint)
    if steps:
        return torch.stack(running, dim=-3)
    return joint.clone() if per_layer.shape[-3] == 1 else joint


def normalise_rows(scores: torch.Tensor) -> torch.Tensor:
    """Scale each row of non-negative scores to sum to 1: (..., T, T) -> (..., T, T).

    A row whose scores are all zero (nothing measurably moved the token) becomes one-hot on the diagonal: the
    token keeps itself, so that every row of a rollout factor sums to 1.
    """
    totals = scores.sum(dim=-1, keepdim=True)  # (..., T, 1)
    empty = totals == 0
    if empty.any():
        identity = torch.eye(scores.shape[-1], device=scores.device, dtype=scores.dtype)
        scores = torch.where(empty, identity, scores)
        totals = torch.where(empty, torch.ones_like(totals), totals)
    return scores / totals


def attention_rollout(attentions: torch.Tensor, head_fusion: str = "mean", discard_ratio: float = 0.0,
                      start_layer: int = 0, steps: bool = False) -> torch.Tensor | RolloutSteps:
    """Attention rollout: J = prod over layers of normalise(fuse(A_l) + I), latest layer on the left.

    For l = start_layer .. L-1: F = fuse_heads(A_l); drop the floor(r*T) smallest entries per row;
    B = F + I; B = B / B.sum(-1, keepdim=True); J = B @ J.

    Args:
        attentions: (..., L, H, T, T) post-softmax attention.
        head_fusion: "mean", "max" or "min".
        discard_ratio: r in [0, 1).
        start_layer: first layer rolled out.
        steps: also return every layer's fused, augmented and running matrix.

    Returns:
        J, (..., T, T), each row summing to 1; or RolloutSteps whose last running matrix is J.
    """
    if attentions.dim() < 4 or attentions.shape[-1] != attentions.shape[-2]:
        raise ValueError(f"Expected attentions of shape (..., L, H, T, T), got {tuple(attentions.shape)}.")
    check_start_layer(attentions.shape[-4], start_layer)
    if head_fusion not in HEAD_FUSIONS:
        raise ValueError(f"Unknown head fusion '{head_fusion}': choose one of {', '.join(HEAD_FUSIONS)}.")
    identity = torch.eye(attentions.shape[-1], device=attentions.device, dtype=attentions.dtype)
    fused = discard_smallest(fuse_heads(attentions[..., start_layer:, :, :, :], head_fusion), discard_ratio)
    augmented = fused + identity  # (..., L', T, T)
    augmented = augmented / augmented.sum(dim=-1, keepdim=True)
    if steps:
        return RolloutSteps(fused, augmented, combine_layers(augmented, steps=True))
    return combine_layers(augmented)


def gradient_weighted(attentions: Sequence[torch.Tensor] | torch.Tensor, gradients: Sequence[torch.Tensor] | torch.Tensor,
                      in_place: bool = False) -> torch.Tensor:
    """Abar_l = mean_h (G_l * A_l)^+: the positive part per head, then the mean over heads.

    Args:
        attentions: L tensors (1, H, T_q, T_k) or (H, T_q, T_k), as a model returns them (weighted layer by layer,
            no (L, H, T, T) temporary, in float32); or one stacked tensor (..., L, H, T_q, T_k) (weighted at
            once, in its own dtype).
        gradients: the same shapes, paired with the attentions by layer index.
        in_place: overwrite float32 per-layer gradients with the product instead of allocating an (H, T, T)
            temporary per layer (at 512 tokens that allocation was a tenth of gradient rollout's time).

    Returns:
        (..., L, T_q, T_k).
    """
    if isinstance(attentions, torch.Tensor) and isinstance(gradients, torch.Tensor):
        if attentions.dim() < 4 or gradients.shape != attentions.shape:
            raise ValueError(f"Gradients {tuple(gradients.shape)} and attentions {tuple(attentions.shape)} must have "
                             "the same shape (..., L, H, T_q, T_k).")
        return (gradients * attentions.detach()).clamp(min=0).mean(dim=-3)
    if len(attentions) != len(gradients):
        raise ValueError(f"{len(attentions)} attention layers but {len(gradients)} gradient layers.")
    weighted = []
    for attention, gradient in zip(attentions, gradients):
        if attention.shape[-3:] != gradient.shape[-3:]:
            raise ValueError(f"Gradients {tuple(gradient.shape)} and attentions {tuple(attention.shape)} must have "
                             "the same shape.")
        attention = (attention[0] if attention.dim() == 4 else attention).detach()
        gradient = (gradient[0] if gradient.dim() == 4 else gradient).float()
        # float32 times float16 is computed in float32 either way: the same numbers as converting first
        product = gradient.mul_(attention) if in_place else gradient * attention
        weighted.append(product.clamp_(min=0).mean(dim=0))
    return torch.stack(weighted)


def gradient_rollout(weighted: torch.Tensor, start_layer: int = 0, steps: bool = False) -> torch.Tensor | RolloutSteps:
    """Gradient-weighted rollout, Chefer et al.'s generic rule for self-attention.

    R = I; for l = start_layer .. L-1: R = R + Abar_l @ R, with Abar_l = mean_h (G_l * A_l)^+ from
    `gradient_weighted`.

    Args:
        weighted: (..., L, T, T), Abar_l per layer.
        start_layer: first layer rolled out.
        steps: also return every layer's Abar, I + Abar and running R.

    Returns:
        R, (..., T, T) (subtract I to keep only what attention carried); or RolloutSteps whose last running
        matrix is R.
    """
    if weighted.dim() < 3 or weighted.shape[-1] != weighted.shape[-2]:
        raise ValueError(f"Expected gradient-weighted attention of shape (..., L, T, T), got {tuple(weighted.shape)}.")
    check_start_layer(weighted.shape[-3], start_layer)
    weighted = weighted[..., start_layer:, :, :]
    identity = torch.eye(weighted.shape[-1], device=weighted.device, dtype=weighted.dtype)
    relevance = identity.expand(weighted.shape[:-3] + identity.shape).clone()
    running = []
    for layer in range(weighted.shape[-3]):
        relevance = relevance + weighted[..., layer, :, :] @ relevance
        running.append(relevance)
    if steps:
        return RolloutSteps(weighted, weighted + identity, torch.stack(running, dim=-3))
    return relevance
