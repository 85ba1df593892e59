"""The library: tensors in, tensors out. A capture per model kind (one forward pass, plus one backward pass for a
target), target objects, the method registry, rollout maths, head statistics, one head step by step, and the
faithfulness metrics (explain.metrics). No Streamlit, no Plotly.
"""

from explain.capture import Capture, capture, stack_attentions
from explain.decoder import (
    MAX_GENERATE,
    DecoderCapture,
    capture_decoder,
    generated_positions,
    generated_relevance,
    resolve_token,
)
from explain.encoder import TextCapture, capture_text, tokenize
from explain.encoder_decoder import encoder_decoder_relevance, encoder_decoder_rollout, normalize_residual
from explain.head_stats import (
    CROSS_STATISTICS,
    DECODER_STATISTICS,
    STATISTICS,
    head_statistics,
    head_statistics_for,
    induction_scores,
    previous_token_scores,
    repeated_token_induction,
    token_positions,
)
from explain.images import MAX_PIXELS, ImageInputError, open_image
from explain.methods import METHODS, Explanation, Method, explain_capture, get_method, methods_for
from explain.methods.attention import input_relevance, layer_attention
from explain.rollout import (
    HEAD_FUSIONS,
    RolloutSteps,
    attention_rollout,
    discard_smallest,
    fuse_heads,
    gradient_rollout,
    gradient_weighted,
)
from explain.recurrent import LettersError, RecurrentRun, check_letters, run_recurrent
from explain.seq2seq import STACKS, Seq2SeqCapture, capture_seq2seq, output_relevance
from explain.targets import ClassLogit, EmbeddingSimilarity, Target, TokenLogit
from explain.tokens import (
    hide_tokens,
    merge_attention,
    merge_relevance,
    readable,
    spaced,
    token_text,
    token_view,
    view_matrix,
    view_relevance,
    word_groups,
)
from explain.vision import ImageCapture, capture_image, patch_grid, patch_tokens

__all__ = [
    "CROSS_STATISTICS", "DECODER_STATISTICS", "HEAD_FUSIONS", "MAX_GENERATE", "MAX_PIXELS", "METHODS", "STACKS",
    "STATISTICS", "Capture", "ClassLogit", "DecoderCapture", "EmbeddingSimilarity", "Explanation", "ImageCapture",
    "ImageInputError", "LettersError", "Method", "RecurrentRun", "RolloutSteps", "Seq2SeqCapture", "Target", "TextCapture", "TokenLogit",
    "attention_rollout", "capture", "capture_decoder", "capture_image", "capture_seq2seq", "capture_text", "check_letters",
    "discard_smallest", "encoder_decoder_relevance", "encoder_decoder_rollout", "explain_capture", "fuse_heads",
    "generated_positions", "generated_relevance", "get_method", "gradient_rollout", "gradient_weighted", "head_statistics",
    "head_statistics_for", "hide_tokens", "induction_scores", "input_relevance", "layer_attention",
    "merge_attention", "merge_relevance", "methods_for", "normalize_residual", "open_image", "output_relevance", "patch_grid",
    "patch_tokens", "previous_token_scores", "readable", "repeated_token_induction", "resolve_token", "run_recurrent", "spaced",
    "stack_attentions", "token_positions", "token_text", "token_view", "tokenize", "view_matrix",
    "view_relevance", "word_groups",
]
