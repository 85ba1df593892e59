"""Views over text tokens: merge word pieces into words, hide special tokens.

Merging follows Clark et al. (2019): attention *to* a word is the sum over its pieces (columns),
attention *from* a word is the mean over its pieces (rows), so merged rows still sum to 1.
"""

from __future__ import annotations

from typing import Sequence

import torch


def word_groups(tokens: Sequence[str], word_ids: Sequence[int | None], sequence_ids: Sequence[int | None]) -> tuple[list[int], list[str]]:
    """Group token positions into words.

    Args:
        tokens: T token strings.
        word_ids: per token its word index within its sequence (None for special tokens).
        sequence_ids: per token 0/1 for the first/second sentence (None for special tokens).

    Returns:
        (group index per token, label per group). Special tokens stay groups of their own.
    """
    groups: list[int] = []
    labels: list[str] = []
    previous_key = None
    for token, word, sequence in zip(tokens, word_ids, sequence_ids):
        key = None if word is None else (sequence, word)
        if key is not None and key == previous_key:
            piece = token[2:] if token.startswith("##") else token
            labels[-1] += piece
        else:
            labels.append(token.lstrip("Ġ▁") if key is not None else token)
            if key is not None and token.startswith("##"):
                labels[-1] = token[2:]
        groups.append(len(labels) - 1)
        previous_key = key
    return groups, labels


def merge_matrix(groups: Sequence[int], count: int | None = None) -> torch.Tensor:
    """(T, W) membership matrix M with M[t, g] = 1 when token t is in group g."""
    index = torch.as_tensor(list(groups))
    count = int(index.max()) + 1 if count is None else count
    return torch.nn.functional.one_hot(index, count).float()


def merge_attention(matrix: torch.Tensor, groups: Sequence[int]) -> torch.Tensor:
    """Merge an attention-like matrix over token groups: rows averaged, columns summed.

    Args:
        matrix: (..., T, T).
        groups: group index per token.

    Returns:
        (..., W, W); row-stochastic input stays row-stochastic.
    """
    member = merge_matrix(groups).to(device=matrix.device, dtype=matrix.dtype)  # (T, W)
    row_mean = member / member.sum(0, keepdim=True)  # (T, W), each column sums to 1
    return row_mean.transpose(0, 1) @ matrix @ member


def merge_relevance(relevance: torch.Tensor, groups: Sequence[int]) -> torch.Tensor:
    """Relevance per word: the sum over its pieces. (..., T) -> (..., W)."""
    member = merge_matrix(groups).to(device=relevance.device, dtype=relevance.dtype)
    return relevance @ member


def hide_tokens(matrix: torch.Tensor, keep: torch.Tensor, renormalize: bool = True) -> torch.Tensor:
    """Drop rows and columns of hidden tokens (e.g. [CLS]/[SEP]).

    Args:
        matrix: (..., T, T).
        keep: (T,) bool, tokens to keep.
        renormalize: rescale each kept row to sum to 1 over the kept keys.

    Returns:
        (..., K, K).
    """
    kept = matrix[..., keep, :][..., keep]
    if renormalize:
        kept = kept / kept.sum(-1, keepdim=True).clamp(min=1e-12)
    return kept


def token_view(
    tokens: Sequence[str],
    special: Sequence[bool],
    word_ids: Sequence[int | None],
    sequence_ids: Sequence[int | None],
    *,
    merge_words: bool = False,
    hide_special: bool = False,
) -> tuple[list[int], list[str], torch.Tensor]:
    """How a text is shown: which tokens form each shown unit, and which units are kept.

    Returns:
        (group per token, label per group, keep mask over groups (W,) bool).
    """
    if merge_words:
        groups, labels = word_groups(tokens, word_ids, sequence_ids)
    else:
        groups, labels = list(range(len(tokens))), list(tokens)
    group_special = torch.zeros(len(labels), dtype=torch.bool)
    for group, is_special in zip(groups, special):
        group_special[group] |= bool(is_special)
    keep = ~group_special if hide_special else torch.ones(len(labels), dtype=torch.bool)
    if not bool(keep.any()):
        keep = torch.ones(len(labels), dtype=torch.bool)
    return groups, labels, keep


def view_matrix(matrix: torch.Tensor, groups: Sequence[int], keep: torch.Tensor) -> torch.Tensor:
    """Apply a token view to an attention-like matrix: merge groups, then hide (renormalising rows)."""
    merged = merge_attention(matrix, groups) if len(set(groups)) != len(groups) else matrix
    return hide_tokens(merged, keep, renormalize=not bool(keep.all()))


def view_relevance(relevance: torch.Tensor, groups: Sequence[int], keep: torch.Tensor) -> torch.Tensor:
    """Apply a token view to relevance over tokens: sum over merged pieces, drop hidden units."""
    merged = merge_relevance(relevance, groups) if len(set(groups)) != len(groups) else relevance
    return merged[..., keep]
