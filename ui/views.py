"""Turn captures and explanations into the numpy arrays and labels a view draws (no model runs here)."""

from __future__ import annotations

import numpy as np
import torch

import explain
from explain import Capture


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


def statistics_table(capture: Capture) -> tuple[dict[str, np.ndarray], list[dict]]:
    """Head statistics as (L, H) arrays and as table rows (one per layer and head)."""
    stats = {name: values.numpy() for name, values in explain.head_statistics_for(capture).items()}
    rows = []
    for layer in range(capture.layers):
        for head in range(capture.heads):
            rows.append({"layer": layer, "head": head, **{name: float(values[layer, head]) for name, values in stats.items()}})
    return stats, rows
