"""Pure explainability algorithms: tensors in, tensors out. No streamlit, no plotly."""

from explain.capture import Capture, capture_image, capture_text, gradient_weighted, pooling_weights_for, tokenize
from explain.decoder import MAX_GENERATE, capture_decoder, generated_relevance, resolve_token
from explain.encoder_decoder import encoder_decoder_relevance, encoder_decoder_rollout, normalize_residual
from explain.head_stats import (
    DECODER_STATISTICS,
    STATISTICS,
    head_statistics,
    induction_scores,
    previous_token_scores,
    repeated_token_induction,
    token_positions,
)
from explain.images import MAX_PIXELS, ImageInputError, open_image
from explain.methods import (
    METHODS,
    Explanation,
    explain_capture,
    input_relevance,
    layer_attention,
    patch_grid,
)
from explain.rollout import (
    HEAD_FUSIONS,
    attention_rollout,
    discard_smallest,
    fuse_heads,
    gradient_rollout,
    weighted_rollout,
)
from explain.seq2seq import STACKS, Seq2SeqCapture, capture_seq2seq, seq2seq_output_relevance, seq2seq_relevance
from explain.tokens import (
    hide_tokens,
    merge_attention,
    merge_relevance,
    token_view,
    view_matrix,
    view_relevance,
    word_groups,
)


def image_relevance(matrix, spec, subtract_identity: bool = False):
    """Relevance over patches for an image model: (T, T) -> (rows, cols), prefix tokens removed.

    Args:
        matrix: (..., T, T) rolled-out matrix.
        spec: the model's ModelSpec (prefix tokens, patch grid, pooling).
        subtract_identity: True for gradient rollout (rows of R - I).
    """
    import torch

    pooled = torch.ones(matrix.shape[-1], dtype=torch.bool)
    pooled[: spec.prefix_tokens] = False
    weights = pooling_weights_for(spec.pooling, pooled)
    return patch_grid(input_relevance(matrix, weights, subtract_identity), spec.prefix_tokens, spec.patch_grid)


def head_statistics_for(capture: Capture) -> dict:
    """Head statistics of a capture, with positions read from its geometry."""
    positions = token_positions(len(capture.tokens), capture.prefix_tokens, capture.grid)
    return head_statistics(capture.attentions, capture.special, positions)


__all__ = [
    "DECODER_STATISTICS", "HEAD_FUSIONS", "MAX_GENERATE", "MAX_PIXELS", "METHODS", "STACKS", "STATISTICS", "Capture", "Explanation",
    "ImageInputError", "Seq2SeqCapture", "attention_rollout", "capture_decoder", "capture_image", "capture_seq2seq",
    "capture_text", "discard_smallest", "encoder_decoder_relevance", "encoder_decoder_rollout", "explain_capture",
    "fuse_heads", "generated_relevance", "gradient_rollout", "gradient_weighted", "head_statistics",
    "head_statistics_for", "hide_tokens", "image_relevance", "induction_scores", "normalize_residual", "previous_token_scores",
    "repeated_token_induction", "resolve_token",
    "seq2seq_output_relevance", "seq2seq_relevance", "weighted_rollout",
    "input_relevance", "layer_attention", "merge_attention", "merge_relevance", "open_image", "patch_grid",
    "token_positions", "token_view", "tokenize", "view_matrix", "view_relevance", "word_groups",
]
