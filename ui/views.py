"""Turn captures and explanations into the numpy arrays and labels a view draws (no model runs here)."""

from __future__ import annotations

import numpy as np
import torch

import explain
from explain import Capture, DecoderCapture, ImageCapture, TextCapture


def _view(capture: TextCapture, merge_words: bool, hide_special: bool):  # noqa: ANN202
    groups, labels, keep = explain.token_view(
        capture.tokens, capture.special.tolist(), capture.word_ids, capture.sequence_ids,
        merge_words=merge_words, hide_special=hide_special,
    )
    return groups, [label for label, kept in zip(labels, keep.tolist()) if kept], keep


def text_matrix(capture: TextCapture, matrix: torch.Tensor, merge_words: bool, hide_special: bool) -> tuple[np.ndarray, list[str]]:
    """(T, T) attention-like matrix -> the shown (W, W) matrix and its labels."""
    groups, labels, keep = _view(capture, merge_words, hide_special)
    return explain.view_matrix(matrix.float(), groups, keep).numpy(), labels


def text_relevance(capture: TextCapture, relevance: torch.Tensor, merge_words: bool, hide_special: bool) -> tuple[np.ndarray, list[str]]:
    """(T,) relevance -> the shown (W,) relevance and its labels."""
    groups, labels, keep = _view(capture, merge_words, hide_special)
    return explain.view_relevance(relevance.float(), groups, keep).numpy(), labels


def head_maps_image(capture: ImageCapture, query: int = 0) -> np.ndarray:
    """Every head's attention from one query token over the patch grid: (L, H, rows, cols)."""
    return capture.grid_of(capture.attentions[:, :, query, :].float()).numpy()  # (L, H, T) -> (L, H, rows, cols)


def statistics_table(capture: Capture, cross_keys: torch.Tensor | None = None) -> tuple[dict[str, np.ndarray], list[dict]]:
    """Head statistics (explain.head_statistics_for) as (L, H) arrays and as table rows, one per layer and head."""
    stats = {name: values.numpy() for name, values in explain.head_statistics_for(capture, cross_keys).items()}
    rows = []
    for layer in range(capture.layers):
        for head in range(capture.heads):
            rows.append({"layer": layer, "head": head, **{name: float(values[layer, head]) for name, values in stats.items()}})
    return stats, rows


def causal_mask(rows: int, cols: int | None = None, offset: int = 0) -> np.ndarray:
    """(rows, cols) bool, True where key j lies after query i + offset (what a decoder cannot see)."""
    cols = rows if cols is None else cols
    return np.triu(np.ones((rows, cols), dtype=bool), k=1 + offset)


def output_choices(capture: DecoderCapture) -> dict[int, str]:
    """Query position -> label of the token explained there: each generated token, by its position in the sequence
    (as every axis numbers it), then the next one."""
    choices = {}
    tokens = explain.readable(capture.tokens)
    for index in range(capture.prompt_length, len(tokens)):
        choices[index - 1] = f"#{index} {tokens[index]!r} (generated)"
    choices[len(tokens) - 1] = f"#{len(tokens)}, the next token after the sequence"
    return choices


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


def shown_tokens(capture: Capture, merge_words: bool = False, hide_special: bool = False,
                 upto: int | None = None) -> dict[str, list]:
    """How a capture's text reads in a token view, as `viz.tokens_html` takes it: {"texts", "spaces", "special"}
    per shown unit (tokens, or words when merged; special tokens left out when hidden; the first `upto` tokens)."""
    special = [bool(s) for s in capture.special.tolist()]
    if merge_words or hide_special:
        groups, labels, keep = explain.token_view(capture.tokens, special, capture.word_ids, capture.sequence_ids,
                                                  merge_words=merge_words, hide_special=hide_special)
        unit_special = [False] * len(labels)
        for group, is_special in zip(groups, special):
            unit_special[group] |= is_special
        texts, spaces = (labels, [True] * len(labels)) if merge_words else explain.spaced(capture.tokens, special)
        kept = keep.tolist()
        texts = [t for t, k in zip(texts, kept) if k]
        spaces = [s for s, k in zip(spaces, kept) if k]
        special = [s for s, k in zip(unit_special, kept) if k]
    else:
        texts, spaces = explain.spaced(capture.tokens, special)
    if upto is not None:
        texts, spaces, special = texts[:upto], spaces[:upto], special[:upto]
    if spaces:
        spaces[0] = False
    return {"texts": texts, "spaces": spaces, "special": special}
