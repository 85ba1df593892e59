"""Methods that read the attention maps alone: one layer's attention, the mean over every layer and head, and
attention rollout (Abnar and Zuidema, 2020); for encoder-decoders, cross-attention and the rollout baseline of
Chefer et al. (ICCV 2021). None of them depends on the target beyond the row it reads.
"""

from __future__ import annotations

import torch

from explain.capture import Capture
from explain.encoder_decoder import encoder_decoder_rollout
from explain.methods import Explanation, register
from explain.rollout import HEAD_FUSIONS, attention_rollout
from explain.seq2seq import Seq2SeqCapture


def input_relevance(matrix: torch.Tensor, pooling_weights: torch.Tensor, subtract_identity: bool = False) -> torch.Tensor:
    """Relevance over inputs: the pooling token's row, or the mean of the pooled tokens' rows.

    Args:
        matrix: (..., T, T) rolled-out or attention matrix.
        pooling_weights: (T,) one-hot on [CLS] (or a decoder's target position), or uniform over pooled tokens.
        subtract_identity: use the rows of (matrix - I): for gradient rollout, what attention carried.

    Returns:
        (..., T).
    """
    if subtract_identity:
        matrix = matrix - torch.eye(matrix.shape[-1], device=matrix.device, dtype=matrix.dtype)
    weights = pooling_weights.to(device=matrix.device, dtype=matrix.dtype)
    return (weights.unsqueeze(-2) @ matrix).squeeze(-2)


def layer_attention(attentions: torch.Tensor, layer: int | None = None, head: int | None = None) -> torch.Tensor:
    """One layer's map, one head or the mean of heads, in float32; layer None is the last layer.

    Args:
        attentions: (L, H, T_q, T_k), any float dtype (only the layer read is converted).
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


def check_fusion(head_fusion: str) -> None:
    if head_fusion not in HEAD_FUSIONS:
        raise ValueError(f"Unknown head fusion '{head_fusion}': choose one of {', '.join(HEAD_FUSIONS)}.")


@register("attention", "Attention", "One layer's attention (one head or the mean of heads; default the last layer, "
          "heads averaged): the row of the pooling token, or of the explained position.",
          prefer="To read one head; as an explanation of the output it ignores every other layer and the residual.")
def attention(capture: Capture, loaded: object, *, layer: int | None = None, head: int | None = None) -> Explanation:
    matrix = layer_attention(capture.attentions, layer, head)
    return Explanation("attention", input_relevance(matrix, capture.pooling_weights), matrix)


@register("attention", "Attention", "", capture=Seq2SeqCapture)
def cross_attention(capture: Seq2SeqCapture, loaded: object, *, layer: int | None = None,
                    head: int | None = None) -> Explanation:
    """One decoder layer's cross-attention row for the target output token; over the decoder's inputs, the same
    layer's masked self-attention row."""
    n = capture.target.position
    matrix = layer_attention(capture.cross_attentions, layer, head)  # (N, S)
    return Explanation("attention", matrix[n], matrix,
                       decoder_relevance=layer_attention(capture.decoder_attentions, layer, head)[n])


@register("attention-mean", "Attention, mean of every layer and head",
          "The attention averaged over every layer and head: the row of the pooling token or explained position.",
          prefer="A target-free baseline that is free to compute; on the bundled decoder it ranks as well as most.")
def attention_mean(capture: Capture, loaded: object) -> Explanation:
    matrix = capture.attentions.float().mean(dim=(0, 1))
    return Explanation("attention-mean", input_relevance(matrix, capture.pooling_weights), matrix)


@register("attention-mean", "Attention, mean of every layer and head", "", capture=Seq2SeqCapture)
def cross_attention_mean(capture: Seq2SeqCapture, loaded: object) -> Explanation:
    n = capture.target.position
    matrix = capture.cross_attentions.float().mean(dim=(0, 1))
    return Explanation("attention-mean", matrix[n], matrix,
                       decoder_relevance=capture.decoder_attentions.float().mean(dim=(0, 1))[n])


@register("rollout", "Attention rollout", "Attention rollout (Abnar and Zuidema, 2020): the layers' head-fused "
          "attention with the identity added, rows renormalised, multiplied through the layers.",
          prefer="How information flows through all layers, target-free; it tends to blur towards the first tokens.")
def rollout(capture: Capture, loaded: object, *, head_fusion: str = "mean", discard_ratio: float = 0.0,
            start_layer: int = 0, steps: bool = False) -> Explanation:
    check_fusion(head_fusion)
    result = attention_rollout(capture.attentions.float(), head_fusion, discard_ratio, start_layer, steps=steps)
    matrix = result.running[-1] if steps else result
    return Explanation("rollout", input_relevance(matrix, capture.pooling_weights), matrix,
                       steps=result if steps else None)


@register("rollout", "Attention rollout", "", capture=Seq2SeqCapture)
def encoder_decoder_attention_rollout(capture: Seq2SeqCapture, loaded: object, *, head_fusion: str = "mean",
                                      discard_ratio: float = 0.0) -> Explanation:
    """The paper's rollout baseline (causal: no relevance depends on later outputs); over the decoder's inputs,
    the rollout J_tt of the decoder's self-attention."""
    check_fusion(head_fusion)
    n = capture.target.position
    matrix = encoder_decoder_rollout(capture.attentions.float(), capture.decoder_attentions.float(),
                                     capture.cross_attentions.float(), head_fusion, discard_ratio)
    joint_target = attention_rollout(capture.decoder_attentions.float(), head_fusion, discard_ratio)
    return Explanation("rollout", matrix[n], matrix, decoder_relevance=joint_target[n])
