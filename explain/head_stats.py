"""Per-layer, per-head statistics of attention over real tokens (Clark et al., 2019; Dosovitskiy et al., 2021)."""

from __future__ import annotations

import torch

STATISTICS = {
    "entropy": "mean attention entropy (nats)",
    "distance": "mean attention distance",
    "special": "share of attention to special / prefix tokens",
    "self": "share of attention to the token itself",
    "previous": "share of attention to the previous token",
}
# Decoders only (see previous_token_scores and repeated_token_induction).
DECODER_STATISTICS = {
    "previous_token": "previous-token score: attention to t − 1, queries t ≥ 1",
    "induction": "induction score on this input: attention to what followed the earlier occurrence",
}


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
        special: sum of a_qk over special keys; self: a_qq; previous: a_q,q-1 (0 for query 0).
    """
    a = attentions.float()
    tokens = a.shape[-1]
    entropy = -(a * torch.log(a.clamp(min=1e-12))).sum(-1).mean(-1)

    placed = ~torch.isnan(positions).any(-1)  # (T,)
    where = positions[placed]
    distances = torch.cdist(where, where)  # (P, P)
    placed_a = a[..., placed, :][..., placed]  # (L, H, P, P)
    mass = placed_a.sum(-1).clamp(min=1e-12)
    distance = ((placed_a * distances).sum(-1) / mass).mean(-1)

    special_share = a[..., special].sum(-1).mean(-1)
    self_share = a.diagonal(dim1=-2, dim2=-1).mean(-1)
    if tokens > 1:
        # averaged over all T queries like the other statistics; query 0 has no previous token
        previous = a.diagonal(offset=-1, dim1=-2, dim2=-1).sum(-1) / tokens
    else:
        previous = torch.zeros_like(self_share)
    return {"entropy": entropy, "distance": distance, "special": special_share, "self": self_share, "previous": previous}


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
