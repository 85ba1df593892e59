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
