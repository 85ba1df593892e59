"""Tokens as people read them, grouped into words, and views over them (merge word pieces, hide special tokens).

Tokenizers mark words in three ways: WordPiece glues a continuation to the piece before it ("play", "##ing");
byte-level BPE (GPT-2, RoBERTa) and SentencePiece (Llama, T5, Marian) mark a piece that starts after a space
("Ġworld", "▁world"). Everything here reads those markers in one place.

Merging follows Clark et al. (2019): attention *to* a word is the sum over its pieces (columns), attention
*from* a word is the mean over its pieces (rows), so merged rows still sum to 1.
"""

from __future__ import annotations

from typing import Sequence

import torch

SPACE_MARKERS = ("Ġ", "▁")  # byte-level BPE, SentencePiece: a space precedes this piece
CONTINUATION = "##"  # WordPiece: glued to the previous piece
# Whitespace drawn visibly in labels: a bare space would read as nothing (" 8" looks like "8").
VISIBLE_WHITESPACE = {" ": "·", "\n": "⏎", "\t": "⇥", "Ċ": "⏎", "ĉ": "⇥"}


def token_text(token: str) -> str:
    """One token as people read it: its word-piece or space marker dropped ("##ing" -> "ing", "Ġcat" -> "cat"),
    whitespace drawn visibly (a space token is "·", a newline "⏎"); a token that is only a marker is a space."""
    if token.startswith(CONTINUATION) and len(token) > len(CONTINUATION):
        token = token[len(CONTINUATION):]
    elif token[:1] in SPACE_MARKERS:
        token = token[1:] or " "
    if token.strip() and not any(c in token for c in "ĊĉĠ▁"):
        return token
    return "".join(VISIBLE_WHITESPACE.get(c, "·" if c in SPACE_MARKERS else c) for c in token)


def readable(tokens: Sequence[str]) -> list[str]:
    """`token_text` of every token: labels for axes, tables and selectors."""
    return [token_text(token) for token in tokens]


def uses_space_markers(tokens: Sequence[str]) -> bool:
    """Whether the tokenizer marks word starts with a space marker (byte-level BPE, SentencePiece)."""
    return any(token.startswith(SPACE_MARKERS) for token in tokens)


def spaced(tokens: Sequence[str], special: Sequence[bool]) -> tuple[list[str], list[bool]]:
    """(text of each token, whether a space goes before it): how a tokenised text reads again as a text.

    A WordPiece continuation is glued to the piece before it; with space markers only marked pieces follow a space
    (a bare piece continues the word, except after a special token); without markers every piece is a word.
    """
    markers = uses_space_markers(tokens)
    texts, spaces = [], []
    for position, (token, is_special) in enumerate(zip(tokens, special)):
        if is_special:
            space = True
        elif token.startswith(CONTINUATION) and len(token) > len(CONTINUATION):
            space = False
        elif token.startswith(SPACE_MARKERS):
            space = True
        else:
            space = not markers or (position > 0 and bool(special[position - 1]))
        texts.append(token if is_special else token_text(token))
        spaces.append(space and position > 0)
    return texts, spaces


def continue_word_ids(tokens: Sequence[str], word_ids: Sequence[int | None], special: Sequence[bool]) -> list[int | None]:
    """Word index per token, the given `word_ids` continued over the tokens after them (a decoder's generated
    tokens): a new word starts at a space marker, or at every token when the vocabulary has no markers."""
    words = list(word_ids)
    markers = uses_space_markers(tokens)
    last = max((w for w in words if w is not None), default=-1)
    for index in range(len(words), len(tokens)):
        if special[index]:
            words.append(None)
            continue
        starts_word = not markers or tokens[index].startswith(SPACE_MARKERS) or not words or words[-1] is None
        last += 1 if starts_word else 0
        words.append(max(last, 0))
    return words


def word_groups(tokens: Sequence[str], word_ids: Sequence[int | None], sequence_ids: Sequence[int | None]) -> tuple[list[int], list[str]]:
    """Group token positions into words.

    Args:
        tokens: T token strings.
        word_ids: per token its word index within its sequence (None for special tokens).
        sequence_ids: per token 0/1 for the first/second sentence (None for special tokens).

    Returns:
        (group index per token, label per group). Special tokens stay groups of their own, labelled as they are.
    """
    groups: list[int] = []
    labels: list[str] = []
    previous_key = None
    for token, word, sequence in zip(tokens, word_ids, sequence_ids):
        key = None if word is None else (sequence, word)
        if key is not None and key == previous_key:
            labels[-1] += token_text(token)
        else:
            labels.append(token_text(token) if key is not None else token)
        groups.append(len(labels) - 1)
        previous_key = key
    return groups, labels


def words_of(tokens: Sequence[str], word_ids: Sequence[int | None]) -> tuple[list[str], list[list[int]]]:
    """The words of one text (pieces joined, special tokens left out) and the token positions of each."""
    sequence_ids = [None if word is None else 0 for word in word_ids]
    groups, labels = word_groups(tokens, word_ids, sequence_ids)
    members: dict[int, list[int]] = {}
    for position, (group, word) in enumerate(zip(groups, word_ids)):
        if word is not None:
            members.setdefault(group, []).append(position)
    return [labels[group] for group in members], list(members.values())


def unknown_words(tokenizer, encoding, text: str, pair: str | None = None) -> list[str]:  # noqa: ANN001
    """The words of the input that became the tokenizer's unknown token (emoji, rare scripts...), in order.

    Read from the fast tokenizer's offsets, so the user sees what they typed, not "[UNK]".
    """
    unk = getattr(tokenizer, "unk_token_id", None)
    if unk is None:
        return []
    texts = (text, pair)
    found: list[str] = []
    for index, token_id in enumerate(encoding["input_ids"][0].tolist()):
        if token_id != unk:
            continue
        sequence = encoding.sequence_ids(0)[index]
        span = encoding.token_to_chars(0, index)
        if sequence is None or span is None or texts[sequence] is None:
            continue
        word = texts[sequence][span.start:span.end]
        if word and word not in found:
            found.append(word)
    return found


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
