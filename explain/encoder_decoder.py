"""Relevance for encoder-decoders: Chefer, Gur and Wolf, "Generic Attention-model Explainability for
Interpreting Bi-Modal and Encoder-Decoder Transformers" (ICCV 2021), and that paper's rollout baseline.

Notation: s indexes source (encoder) tokens, S of them; t indexes decoder positions, T of them.
Abar = mean over heads of (dTarget/dA * A)^+ for one attention map (see `explain.rollout.gradient_weighted`).

    R_ss = I (S x S), R_tt = I (T x T), R_ts = 0 (T x S)
    encoder self-attention, each layer:      R_ss += Abar @ R_ss
    decoder, each layer in order:
        self-attention:                      R_tt += Abar @ R_tt;  R_ts += Abar @ R_ts
        cross-attention (queries t, keys s): R_ts += Rbar_tt^T @ Abar @ Rbar_ss
    where Rbar = row_normalise(R - I) + I, and a row of R - I that sums to zero stays zero.

Row t of R_ts is the relevance of each source token for the output predicted at decoder position t;
row t of R_tt that of the decoder's own inputs (the start token and the earlier outputs).
"""

from __future__ import annotations

import torch

from explain.rollout import HEAD_FUSIONS, attention_rollout, fuse_heads, gradient_rollout


def normalize_residual(relevance: torch.Tensor) -> torch.Tensor:
    """Rbar = row_normalise(R - I) + I, each row of R - I divided by its sum; zero rows stay zero.

    Args:
        relevance: (..., N, N) self-attention relevance R (its diagonal is at least 1).
    """
    identity = torch.eye(relevance.shape[-1], device=relevance.device, dtype=relevance.dtype)
    carried = relevance - identity
    sums = carried.sum(dim=-1, keepdim=True)
    safe = torch.where(sums == 0, torch.ones_like(sums), sums)
    return torch.where(sums == 0, torch.zeros_like(carried), carried / safe) + identity


def _check(encoder: torch.Tensor, decoder: torch.Tensor, cross: torch.Tensor) -> None:
    if encoder.dim() != 3 or decoder.dim() != 3 or cross.dim() != 3:
        raise ValueError("Expected per-layer matrices: encoder (L_enc, S, S), decoder (L_dec, T, T), cross (L_dec, T, S).")
    sources, targets = encoder.shape[-1], decoder.shape[-1]
    if encoder.shape[-2] != sources or decoder.shape[-2] != targets or cross.shape[-2:] != (targets, sources):
        raise ValueError(
            f"Shapes do not fit together: encoder {tuple(encoder.shape)}, decoder {tuple(decoder.shape)}, "
            f"cross {tuple(cross.shape)}; cross-attention must be (L_dec, T, S)."
        )
    if decoder.shape[0] != cross.shape[0]:
        raise ValueError(f"{decoder.shape[0]} decoder self-attention layers but {cross.shape[0]} cross-attention layers.")


def encoder_decoder_relevance(
    encoder_weighted: torch.Tensor, decoder_weighted: torch.Tensor, cross_weighted: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Chefer et al.'s rules for an encoder-decoder, from gradient-weighted attention.

    Args:
        encoder_weighted: (L_enc, S, S) Abar of each encoder self-attention layer.
        decoder_weighted: (L_dec, T, T) Abar of each decoder self-attention layer.
        cross_weighted: (L_dec, T, S) Abar of each decoder cross-attention layer.

    Returns:
        (R_ss (S, S), R_tt (T, T), R_ts (T, S)).
    """
    _check(encoder_weighted, decoder_weighted, cross_weighted)
    r_ss = gradient_rollout(encoder_weighted)  # (S, S): the self-attention rule over the encoder
    r_tt_after = gradient_rollout(decoder_weighted, steps=True).running  # (L_dec, T, T): R_tt after each layer
    r_ss_bar = normalize_residual(r_ss)
    r_ts = torch.zeros(cross_weighted.shape[-2:], dtype=cross_weighted.dtype, device=cross_weighted.device)
    for self_weighted, cross, r_tt in zip(decoder_weighted, cross_weighted, r_tt_after):
        r_ts = r_ts + self_weighted @ r_ts
        r_ts = r_ts + normalize_residual(r_tt).transpose(-1, -2) @ cross @ r_ss_bar
    return r_ss, r_tt_after[-1], r_ts


def encoder_decoder_rollout(
    encoder_attentions: torch.Tensor,
    decoder_attentions: torch.Tensor,
    cross_attentions: torch.Tensor,
    head_fusion: str = "mean",
    discard_ratio: float = 0.0,
    causal: bool = True,
) -> torch.Tensor:
    """The paper's attention-rollout baseline: R_ts = J_tt^T @ fuse(A_cross of the last layer) @ J_ss.

    J_ss and J_tt are attention rollouts (identity added, rows renormalised, layers multiplied) of the
    encoder and decoder self-attention. With `causal` (the default), row t is computed from the sequence
    the decoder had written when it predicted at position t - positions after t did not exist then -, so
    the relevance for an output never depends on later outputs; for a causal J_tt that reduces row t to
    J_tt[t, t] * (A_cross @ J_ss)[t]. `causal=False` is the formula over the whole sequence, as the
    paper's code applies it to DETR's non-causal object queries.

    Args:
        encoder_attentions: (L_enc, H, S, S).
        decoder_attentions: (L_dec, H, T, T).
        cross_attentions: (L_dec, H, T, S).
        head_fusion: "mean", "max" or "min" over heads, for all three.
        discard_ratio: rollout's discard ratio for the two self-attention rollouts.

    Returns:
        (T, S): row t is the relevance of each source token for the output predicted at position t.
    """
    if head_fusion not in HEAD_FUSIONS:
        raise ValueError(f"Unknown head fusion '{head_fusion}': choose one of {', '.join(HEAD_FUSIONS)}.")
    _check(encoder_attentions[:, 0], decoder_attentions[:, 0], cross_attentions[:, 0])
    joint_source = attention_rollout(encoder_attentions, head_fusion, discard_ratio)  # (S, S)
    joint_target = attention_rollout(decoder_attentions, head_fusion, discard_ratio)  # (T, T)
    cross = fuse_heads(cross_attentions[-1], head_fusion)  # (T, S)
    carried = cross @ joint_source  # (T, S)
    if causal:
        return joint_target.diagonal().unsqueeze(-1) * carried
    return joint_target.transpose(-1, -2) @ carried
