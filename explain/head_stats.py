"""Per-layer, per-head statistics of attention (Clark et al., 2019; Dosovitskiy et al., 2021), the
previous-token and induction scores of decoder heads (Olsson et al., 2022), and the statistics that stay defined
for cross-attention, whose queries and keys are different sequences."""

from __future__ import annotations

import torch

STATISTICS = {
    "entropy": "mean attention entropy (nats)",
    "distance": "mean attention distance",
    "special": "share of attention to special / prefix tokens",
    "self": "share of attention to the token itself",
    "previous": "previous-token score: attention to t − 1, averaged over queries t ≥ 1",
}
# Decoders only (see repeated_token_induction).
DECODER_STATISTICS = {
    "induction": "induction score on this input: attention to what followed the earlier occurrence",
}
# What stays defined when queries and keys are different sequences (cross-attention).
CROSS_STATISTICS = ("entropy", "special")


def token_positions(tokens: int, prefix_tokens: int = 0, grid: tuple[int, int] | None = None) -> torch.Tensor:
    """Positions used for attention distance: (T, 1) token index for text, (T, 2) patch (row, col) for images.

    Prefix tokens of an image have no place on the grid: their rows are NaN.
    """
    if grid is None:
        return torch.arange(tokens, dtype=torch.float32).unsqueeze(-1)
    rows, cols = grid
    r, c = torch.meshgrid(torch.arange(rows), torch.arange(cols), indexing="ij")
    patches = torch.stack([r.flatten(), c.flatten()], dim=-1).float()  # (rows*cols, 2)
    prefix = torch.full((prefix_tokens, 2), float("nan"))
    return torch.cat([prefix, patches])


def head_statistics(
    attentions: torch.Tensor,
    special: torch.Tensor,
    positions: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """Statistics of every head, each averaged over query tokens.

    Args:
        attentions: (L, H, T, T), rows sum to 1.
        special: (T,) bool, special or prefix tokens.
        positions: (T, D) coordinates, NaN for tokens without a position (see `token_positions`).

    Returns:
        {name: (L, H)} for each name in STATISTICS:
        entropy: -sum_k a_qk log a_qk, averaged over queries;
        distance: sum_k a_qk |p_q - p_k| / sum_k a_qk over keys with positions, averaged over queries
            with positions (Euclidean on the patch grid for images);
        special: sum of a_qk over special keys; self: a_qq; previous: a_q,q-1 averaged over queries q >= 1
            (`previous_token_scores`; 0 for a one-token input).
    """
    a = attentions.float()
    tokens = a.shape[-1]
    entropy = attention_entropy(a)

    placed = ~torch.isnan(positions).any(-1)  # (T,)
    where = positions[placed]
    distances = torch.cdist(where, where)  # (P, P)
    placed_a = a[..., placed, :][..., placed]  # (L, H, P, P)
    mass = placed_a.sum(-1).clamp(min=1e-12)
    distance = ((placed_a * distances).sum(-1) / mass).mean(-1)

    special_share = special_attention(a, special)
    self_share = a.diagonal(dim1=-2, dim2=-1).mean(-1)
    previous = previous_token_scores(a) if tokens > 1 else torch.zeros_like(self_share)
    return {"entropy": entropy, "distance": distance, "special": special_share, "self": self_share, "previous": previous}


def attention_entropy(attentions: torch.Tensor) -> torch.Tensor:
    """Mean over queries of -sum_k a_qk log a_qk (nats): (..., T_q, T_k) -> (...)."""
    a = attentions.float()
    return -(a * torch.log(a.clamp(min=1e-12))).sum(-1).mean(-1)


def special_attention(attentions: torch.Tensor, special_keys: torch.Tensor) -> torch.Tensor:
    """Mean over queries of the attention to special keys: (..., T_q, T_k), (T_k,) bool -> (...)."""
    return attentions.float()[..., special_keys].sum(-1).mean(-1)


def cross_statistics(attentions: torch.Tensor, special_keys: torch.Tensor) -> dict[str, torch.Tensor]:
    """The statistics of CROSS_STATISTICS for cross-attention (L, H, N, S): {name: (L, H)}."""
    return {"entropy": attention_entropy(attentions), "special": special_attention(attentions, special_keys)}


def previous_token_scores(attentions: torch.Tensor) -> torch.Tensor:
    """Mean attention from each position t >= 1 to position t - 1, per head: (L, H).

    Args:
        attentions: (L, H, T, T), T >= 2.
    """
    if attentions.shape[-1] < 2:
        raise ValueError("A previous-token score needs at least two tokens.")
    return attentions.float().diagonal(offset=-1, dim1=-2, dim2=-1).mean(-1)


def induction_scores(attentions: torch.Tensor, first_start: int, second_start: int, length: int) -> torch.Tensor:
    """Induction score of every head for one sequence whose segment of `length` tokens starting at
    `first_start` appears again at `second_start`: (L, H).

    The mean attention from each token of the second copy (second_start + i) to the token that followed
    its first occurrence (first_start + i + 1), i = 0 .. length - 1.

    Args:
        attentions: (L, H, T, T).
    """
    if length < 1:
        raise ValueError(f"A repeated segment needs at least one token, not {length}.")
    if not (0 <= first_start and first_start + length <= second_start and second_start + length <= attentions.shape[-1]):
        raise ValueError(f"A segment of {length} tokens at {first_start} and again at {second_start} does not fit "
                         f"{attentions.shape[-1]} tokens without overlapping.")
    queries = torch.arange(second_start, second_start + length)
    keys = torch.arange(first_start + 1, first_start + length + 1)
    return attentions.float()[..., queries, keys].mean(-1)


def repeated_token_induction(attentions: torch.Tensor, token_ids: list[int]) -> torch.Tensor:
    """Induction score of every head on an arbitrary input: (L, H), NaN when nothing repeats.

    For each query position t whose token occurred earlier at positions j with j + 1 < t, the attention
    from t to j + 1 (the token that followed the earlier occurrence), averaged over those j, then over
    all such queries. An induction head ([A][B] ... [A] -> attend to [B]) scores near 1.

    Args:
        attentions: (L, H, T, T).
        token_ids: T token ids.
    """
    token_ids = [int(token) for token in token_ids]  # a tensor's elements would hash by identity
    seen: dict[int, list[int]] = {}
    rows, cols, weights = [], [], []
    for t, token in enumerate(token_ids):
        earlier = [j + 1 for j in seen.get(token, []) if j + 1 < t]
        for col in earlier:
            rows.append(t)
            cols.append(col)
            weights.append(1.0 / len(earlier))
        seen.setdefault(token, []).append(t)
    if not rows:
        return torch.full(attentions.shape[:2], float("nan"))
    queries = len(set(rows))
    picked = attentions.float()[..., rows, cols]  # (L, H, K)
    return (picked * torch.tensor(weights)).sum(-1) / queries


def head_statistics_for(capture, cross_keys: torch.Tensor | None = None) -> dict[str, torch.Tensor]:  # noqa: ANN001
    """The head statistics of a capture, {name: (L, H)}, positions read from its geometry (`capture.positions()`).

    A decoder adds its induction score on this input (NaN when nothing repeats). For a cross-attention stack
    (`cross_keys`: the special flags of its keys, the source) only CROSS_STATISTICS are defined.
    """
    if cross_keys is not None:
        return cross_statistics(capture.attentions, cross_keys)
    stats = head_statistics(capture.attentions, capture.special, capture.positions())
    if capture.kind.causal:
        stats["induction"] = repeated_token_induction(capture.attentions, capture.token_ids)
    return stats
