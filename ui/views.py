"""Turn captures and explanations into the numpy arrays and labels a view draws (no model runs here)."""

from __future__ import annotations

import numpy as np
import torch

import explain
from explain import Capture, Seq2SeqCapture
from explain.head_stats import previous_token_scores, repeated_token_induction


def _view(capture: Capture, merge_words: bool, hide_special: bool):  # noqa: ANN202
    groups, labels, keep = explain.token_view(
        capture.tokens, capture.special.tolist(), capture.word_ids, capture.sequence_ids,
        merge_words=merge_words, hide_special=hide_special,
    )
    return groups, [label for label, kept in zip(labels, keep.tolist()) if kept], keep


def text_matrix(capture: Capture, matrix: torch.Tensor, merge_words: bool, hide_special: bool) -> tuple[np.ndarray, list[str]]:
    """(T, T) attention-like matrix -> the shown (W, W) matrix and its labels."""
    groups, labels, keep = _view(capture, merge_words, hide_special)
    return explain.view_matrix(matrix.float(), groups, keep).numpy(), labels


def text_relevance(capture: Capture, relevance: torch.Tensor, merge_words: bool, hide_special: bool) -> tuple[np.ndarray, list[str]]:
    """(T,) relevance -> the shown (W,) relevance and its labels."""
    groups, labels, keep = _view(capture, merge_words, hide_special)
    return explain.view_relevance(relevance.float(), groups, keep).numpy(), labels


def head_maps_image(capture: Capture, query: int = 0) -> np.ndarray:
    """Every head's attention from one query token over the patch grid: (L, H, rows, cols)."""
    rows = capture.attentions[:, :, query, :].float()  # (L, H, T)
    return explain.patch_grid(rows, capture.prefix_tokens, capture.grid).numpy()


def statistics_table(capture: Capture, cross_special: torch.Tensor | None = None) -> tuple[dict[str, np.ndarray], list[dict]]:
    """Head statistics as (L, H) arrays and as table rows (one per layer and head).

    Decoders add the previous-token score (attention to t - 1 over t >= 1) and the induction score on this
    input (NaN when nothing repeats). For a cross-attention stack (queries and keys are different
    sequences; `cross_special` flags the special source tokens) only entropy and the share of attention to
    special tokens are defined.
    """
    if cross_special is not None:
        a = capture.attentions.float()
        entropy = -(a * torch.log(a.clamp(min=1e-12))).sum(-1).mean(-1)
        stats = {"entropy": entropy.numpy(), "special": a[..., cross_special].sum(-1).mean(-1).numpy()}
    else:
        stats = {name: values.numpy() for name, values in explain.head_statistics_for(capture).items()}
    if capture.kind == "decoder":
        stats["previous_token"] = previous_token_scores(capture.attentions).numpy()
        stats["induction"] = repeated_token_induction(capture.attentions, capture.token_ids).numpy()
    rows = []
    for layer in range(capture.layers):
        for head in range(capture.heads):
            rows.append({"layer": layer, "head": head, **{name: float(values[layer, head]) for name, values in stats.items()}})
    return stats, rows


def readable(tokens: list[str]) -> list[str]:
    """Tokens as people read them: byte-level BPE and SentencePiece space markers dropped, newlines shown."""
    shown = []
    for token in tokens:
        text = token[1:] if token[:1] in ("Ġ", "▁") and len(token) > 1 else token
        shown.append(text.replace("Ċ", "\\n").replace("\n", "\\n"))
    return shown


def causal_mask(rows: int, cols: int | None = None, offset: int = 0) -> np.ndarray:
    """(rows, cols) bool, True where key j lies after query i + offset (what a decoder cannot see)."""
    cols = rows if cols is None else cols
    return np.triu(np.ones((rows, cols), dtype=bool), k=1 + offset)


def output_choices(capture: Capture) -> dict[int, str]:
    """Query position -> label of the token explained there: each generated token, then the next one."""
    choices = {}
    tokens = readable(capture.tokens)
    for index in range(capture.prompt_length, len(tokens)):
        choices[index - 1] = f"generated #{index - capture.prompt_length + 1}: {tokens[index]!r}"
    choices[len(tokens) - 1] = "the next token after the sequence"
    return choices


def stack_capture(capture: Seq2SeqCapture, stack: str) -> tuple[Capture, torch.Tensor | None]:
    """One attention stack of an encoder-decoder as a Capture for the generic views, and for the cross stack the
    special-token flags of its keys (the source). Cross-attention maps are (N outputs x S sources)."""
    if stack == "encoder":
        tokens, special, cross = capture.source_tokens, capture.source_special, None
    elif stack == "decoder":
        tokens, special, cross = capture.decoder_tokens, capture.output_special.roll(1), None
        special = special.clone()
        special[0] = True  # the decoder start token
    else:
        tokens, special, cross = capture.source_tokens, capture.source_special, capture.source_special
    attentions = capture.stack(stack)
    view = Capture(attentions=attentions, tokens=list(tokens), special=special,
                   pooling_weights=torch.zeros(attentions.shape[-1]), kind="seq2seq")
    return view, cross


def prediction_verdict(labels: list[str], scores: np.ndarray, truth: list[str] | None, threshold: float) -> dict:
    """Which classes are predicted (score >= threshold), and against a known ground truth which are right,
    which are predicted but absent (false alarms) and which are missed. Each entry is (label, score)."""
    predicted = [(label, float(score)) for label, score in zip(labels, scores) if score >= threshold]
    if truth is None:
        return {"predicted": predicted}
    score_of = dict(zip(labels, (float(s) for s in scores)))
    return {
        "predicted": predicted,
        "right": [(label, score) for label, score in predicted if label in truth],
        "false_alarms": [(label, score) for label, score in predicted if label not in truth],
        "missed": [(label, score_of[label]) for label in truth if score_of.get(label, 0.0) < threshold],
    }
