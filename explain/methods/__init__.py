"""One call shape for every method: `explain_capture(capture, method, **options)` -> Explanation.

The methods reuse a Capture (one forward [+ backward]); changing layer, head or rollout options
re-runs only this pure tensor maths.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from explain.capture import Capture
from explain.rollout import HEAD_FUSIONS, attention_rollout, gradient_rollout, weighted_rollout

METHODS = ("attention", "rollout", "gradient-rollout")


@dataclass
class Explanation:
    """A method's result for one input.

    Attributes:
        method: one of METHODS.
        matrix: (T, T): the selected layer's attention map (attention), J (rollout) or R (gradient rollout).
        relevance: (T,) relevance over tokens, raw (not rescaled).
        grid: (rows, cols) relevance over image patches with prefix tokens removed; None for text.
    """

    method: str
    matrix: torch.Tensor
    relevance: torch.Tensor
    grid: torch.Tensor | None = None


def input_relevance(matrix: torch.Tensor, pooling_weights: torch.Tensor, subtract_identity: bool = False) -> torch.Tensor:
    """Relevance over inputs: the pooling token's row, or the mean of the pooled tokens' rows.

    Args:
        matrix: (..., T, T) rolled-out or attention matrix.
        pooling_weights: (T,) one-hot on [CLS], or uniform over the pooled (real) tokens.
        subtract_identity: use the rows of (matrix - I): for gradient rollout, what attention carried.

    Returns:
        (..., T).
    """
    if subtract_identity:
        matrix = matrix - torch.eye(matrix.shape[-1], device=matrix.device, dtype=matrix.dtype)
    weights = pooling_weights.to(device=matrix.device, dtype=matrix.dtype)
    return (weights.unsqueeze(-2) @ matrix).squeeze(-2)


def patch_grid(relevance: torch.Tensor, prefix_tokens: int, grid: tuple[int, int]) -> torch.Tensor:
    """Drop the prefix tokens and reshape to the patch grid: (..., T) -> (..., rows, cols)."""
    rows, cols = grid
    patches = relevance[..., prefix_tokens:]
    if patches.shape[-1] != rows * cols:
        raise ValueError(f"{patches.shape[-1]} patch tokens do not fill a {rows}x{cols} grid.")
    return patches.reshape(*patches.shape[:-1], rows, cols)


def layer_attention(attentions: torch.Tensor, layer: int | None = None, head: int | None = None) -> torch.Tensor:
    """One layer's map, one head or the mean of heads, in float32; layer None is the last layer.

    Args:
        attentions: (L, H, T, T), any float dtype (only the layer read is converted).
    """
    layers, heads = attentions.shape[0], attentions.shape[1]
    layer = layers - 1 if layer is None else layer
    if not 0 <= layer < layers:
        raise ValueError(f"Layer {layer} is out of range: choose 0 to {layers - 1}.")
    if head is None:
        return attentions[layer].float().mean(dim=0)
    if not 0 <= head < heads:
        raise ValueError(f"Head {head} is out of range: choose 0 to {heads - 1}.")
    return attentions[layer, head].float()


def explain_capture(
    capture: Capture,
    method: str = "rollout",
    *,
    layer: int | None = None,
    head: int | None = None,
    head_fusion: str = "mean",
    discard_ratio: float = 0.0,
    start_layer: int = 0,
) -> Explanation:
    """Apply one method to a capture.

    Args:
        capture: from `capture_text` or `capture_image`.
        method: "attention" (layer/head map), "rollout" or "gradient-rollout".
        layer, head: for "attention"; defaults: last layer, mean of heads.
        head_fusion, discard_ratio, start_layer: rollout options (start_layer also for gradient rollout).

    Raises:
        ValueError: unknown method, an option out of range, or gradient rollout on a capture without gradients.
    """
    if head_fusion not in HEAD_FUSIONS:
        raise ValueError(f"Unknown head fusion '{head_fusion}': choose one of {', '.join(HEAD_FUSIONS)}.")
    # Views may cache attentions in float16: convert what a method reads (gradient rollout from `weighted`
    # reads none of them; at 512 tokens a whole-stack copy cost about a tenth of its time).
    if method == "attention":
        matrix = layer_attention(capture.attentions, layer, head)
        relevance = input_relevance(matrix, capture.pooling_weights)
    elif method == "rollout":
        matrix = attention_rollout(capture.attentions.float(), head_fusion, discard_ratio, start_layer)
        relevance = input_relevance(matrix, capture.pooling_weights)
    elif method == "gradient-rollout":
        if capture.weighted is not None:
            matrix = weighted_rollout(capture.weighted.float(), start_layer)
        elif capture.gradients is not None:
            matrix = gradient_rollout(capture.attentions.float(), capture.gradients, start_layer)
        else:
            raise ValueError("Gradient rollout needs a target: give a class, a probe sentence or zero-shot labels.")
        relevance = input_relevance(matrix, capture.pooling_weights, subtract_identity=True)
    else:
        raise ValueError(f"Unknown method '{method}': choose one of {', '.join(METHODS)}.")
    grid = None if capture.grid is None else patch_grid(relevance, capture.prefix_tokens, capture.grid)
    return Explanation(method=method, matrix=matrix, relevance=relevance, grid=grid)
