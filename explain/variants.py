"""Attention variants on a model's own vectors, and why scaled dot-product attention divides by sqrt(d).

The lecture notes list the alignment scores of the attention literature, score(s_t, h_i) for a query state s_t
and key states h_i (Luong et al. 2015's notation):

    content-based  cosine(s_t, h_i)                       Graves et al. 2014
    additive       v^T tanh(W s_t + U h_i)                Bahdanau et al. 2015
    location-based a_t = softmax(W_a s_t)                 Luong et al. 2015 (no keys at all)
    general        s_t^T W_a h_i                          Luong et al. 2015
    dot-product    s_t^T h_i                              Luong et al. 2015
    scaled         (W_q s_t) . (W_k h_i) / sqrt(d)        Vaswani et al. 2017

Here s_t and h_i are what one attention module of a loaded model reads (its input hidden states), and every
parameter is the model's own where the model has one:

- scaled dot-product: the head's own scores (equal to the attention the model returns, tested);
- general: W_a = W_q^T W_k of the head, on the states with a 1 appended so the q and k biases are part of
  W_a; without rotary positions it equals the head's q . k before scaling (tested);
- additive: W and U are the head's W_q and W_k (with biases; q and k rotated as the model rotates them), so
  the score is v^T tanh(q_t + k_i); the model has no v, so v (d numbers) is fitted by ridge least squares to
  the head's own scores on this input, every row centred (softmax ignores a row's offset);
- location-based: the model has no W_a (one row per key position), so it is fitted the same way, one
  position at a time over the queries that see it. With more state dimensions than queries it can match
  one input's rows closely; it never reads the keys;
- dot-product and content-based have no parameters.

`scaling_experiment` samples random unit-variance q and k for d from 8 to 1,024: the spread of q . k grows as
sqrt(d), and without the 1/sqrt(d) the softmax saturates (entropy falls, the largest weight goes to 1).
`head_scaling` measures the same on every head of a model, from its own q and k.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from explain.head_stats import attention_entropy
from explain.internals import (
    attention_module,
    projection_matrix,
    projection_sources,
    recording_calls,
    self_attention_layers,
)
from explain.qkv import HeadInternals, head_internals, layer_projections, model_inputs
from models import LoadedModel

DIMS = (8, 16, 32, 64, 128, 256, 512, 1024)
RIDGE = 1e-3  # ridge strength, relative to the mean squared feature norm
MAX_FIT_ROWS = 64  # query rows the fitted variants are fitted on; longer inputs use a seeded sample of them
MAX_SCALING_ROWS = 256  # query rows head_scaling measures on long inputs (a seeded sample)

VARIANTS = {
    "additive": ("Additive (Bahdanau 2015)", r"v^\top \tanh(W_q s_t + W_k h_i)"),
    "location": ("Location-based (Luong 2015)", r"a_t = \mathrm{softmax}(W_a s_t)"),
    "general": ("General (Luong 2015)", r"s_t^\top W_a h_i,\; W_a = W_q^\top W_k"),
    "dot": ("Dot-product (Luong 2015)", r"s_t^\top h_i"),
    "scaled": ("Scaled dot-product (Vaswani 2017)", r"\frac{(W_q s_t)\cdot(W_k h_i)}{\sqrt{d}}"),
    "cosine": ("Content-based (Graves 2014)", r"\cos(s_t, h_i)"),
}


@dataclass
class VariantScores:
    """One scoring function on the chosen query and keys.

    Attributes:
        name: a key of VARIANTS; label, formula (LaTeX): how to show it.
        scores: (K,) the score of each chosen key, before the mask.
        weights: (K,) softmax over the chosen keys the query may see (0 where masked).
        parameters: how the variant's parameters were set, one sentence.
        fit: R^2 of the fit on this input's centred rows (fitted variants), else None.
        fitted: the fitted parameters: additive v (d,), location-based W_a (S, D); None for the others.
    """

    name: str
    label: str
    formula: str
    scores: torch.Tensor
    weights: torch.Tensor
    parameters: str
    fit: float | None = None
    fitted: torch.Tensor | None = None


@dataclass
class VariantComparison:
    """Every variant for one query of one head.

    Attributes:
        tokens: T query-side tokens; key_tokens: the K chosen keys' tokens; keys: their indices.
        token: the query's index; layer, head: where the vectors were read.
        variants: one VariantScores per name of VARIANTS, in that order.
        model_weights: (K,) the weights the model itself returned, renormalised over the chosen keys.
        mask: (K,) bool, keys the query may not see.
        state_dim: D, the hidden size; head_dim: d.
        rotary: the model rotates q and k by position (general then differs from q . k).
    """

    tokens: list[str]
    key_tokens: list[str]
    keys: list[int]
    token: int
    layer: int
    head: int
    variants: list[VariantScores]
    model_weights: torch.Tensor
    mask: torch.Tensor
    state_dim: int
    head_dim: int
    rotary: bool

    def variant(self, name: str) -> VariantScores:
        for variant in self.variants:
            if variant.name == name:
                return variant
        raise ValueError(f"Unknown attention variant '{name}': choose one of {', '.join(VARIANTS)}.")


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """softmax over the last axis with masked entries set to -inf first (weight exactly 0)."""
    return torch.softmax(scores.double().masked_fill(mask, float("-inf")), dim=-1).float()


def centred_rows(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(T, S, ...) minus each row's mean over its visible keys (masked entries set to 0)."""
    visible = (~mask).double()
    while visible.dim() < values.dim():
        visible = visible[..., None]
    mean = (values * visible).sum(1, keepdim=True) / visible.sum(1, keepdim=True).clamp(min=1)
    return (values - mean) * visible


def ridge(features: torch.Tensor, targets: torch.Tensor, strength: float = RIDGE) -> torch.Tensor:
    """argmin_w ||X w - y||^2 + lambda ||w||^2 with lambda = strength * mean ||x||^2, solved in the smaller of
    the primal (p x p) and dual (n x n) forms.

    Args:
        features: X (n, p); targets: y (n,) or (n, m).

    Returns:
        w (p,) or (p, m).
    """
    x, y = features.double(), targets.double()
    penalty = strength * float((x ** 2).sum(-1).mean().clamp(min=1e-12))
    n, p = x.shape
    if p <= n:
        return torch.linalg.solve(x.T @ x + penalty * torch.eye(p, dtype=x.dtype), x.T @ y)
    return x.T @ torch.linalg.solve(x @ x.T + penalty * torch.eye(n, dtype=x.dtype), y)


def r_squared(predicted: torch.Tensor, target: torch.Tensor) -> float:
    """1 - SS_res / SS_tot of centred targets (1 = exact)."""
    total = float((target ** 2).sum())
    return 1.0 - float(((predicted - target) ** 2).sum()) / total if total > 0 else 1.0


def fit_rows(queries: int, token: int | None = None, limit: int = MAX_FIT_ROWS) -> torch.Tensor:
    """The query rows a measure reads: all of them, or `limit` of them in order (`token`, when given, and a sample
    of the others drawn with a fixed seed)."""
    if queries <= limit:
        return torch.arange(queries)
    others = torch.tensor([i for i in range(queries) if i != token])
    drawn = others[torch.randperm(len(others), generator=torch.Generator().manual_seed(0))[:limit - (token is not None)]]
    return torch.cat([drawn] + ([torch.tensor([token])] if token is not None else [])).sort().values


def head_bilinear(module: torch.nn.Module, head: int, kv_head: int, head_dim: int) -> torch.Tensor:
    """W_a (D + 1, D + 1) of Luong's general score from a head's own projections: [s; 1]^T W_a [h; 1] is
    (W_q s + b_q) . (W_k h + b_k), the head's q . k before scaling and before any rotation."""
    sources = projection_sources(module)

    def augmented(name: str, index: int) -> torch.Tensor:
        source, columns = sources[name]
        weight, bias = projection_matrix(source)  # (D, out), (out,)
        weight, bias = weight[:, columns], None if bias is None else bias[columns]
        part = slice(index * head_dim, (index + 1) * head_dim)
        rows = weight[:, part]  # (D, d)
        last = torch.zeros(1, head_dim, dtype=rows.dtype, device=rows.device) if bias is None else bias[part][None]
        return torch.cat([rows, last]).double().cpu()  # (D + 1, d)

    return augmented("q", head) @ augmented("k", kv_head).T


@torch.no_grad()
def attention_variants(loaded: LoadedModel, *, text: str | None = None, image: Any = None, layer: int, head: int,
                       token: int, keys: list[int] | None = None) -> VariantComparison:
    """Every scoring function for one query against the chosen keys, on the states one head of `loaded` reads.

    Args:
        loaded: a text encoder, decoder or ViT; text / image: its input.
        layer, head, token: where the vectors are read, and which token is the query.
        keys: indices of the keys to compare (default every key); the softmax runs over these.

    Raises:
        ValueError: out-of-range layer, head, token or keys, or no visible key among those chosen.
    """
    step: HeadInternals = head_internals(loaded, text=text, image=image, layer=layer, head=head, token=token)
    count = len(step.key_tokens)
    keys = list(range(count)) if keys is None else sorted({int(k) for k in keys})
    if not keys or min(keys) < 0 or max(keys) >= count:
        raise ValueError(f"Choose keys between 0 and {count - 1}.")
    chosen = torch.tensor(keys)
    mask = step.mask_matrix[token, chosen]
    if mask.all():
        raise ValueError("The query sees none of the chosen keys (they are all in its future): choose earlier keys.")
    states, key_states = step.hidden.double(), step.key_hidden.double()  # (T, D), (S, D)
    query = states[token]
    module = attention_module(loaded, layer)
    head_dim = step.q.shape[-1]
    kv_head = head // (step.heads // step.kv_heads)

    def variant(name: str, scores: torch.Tensor, parameters: str, fit: float | None = None,
                fitted: torch.Tensor | None = None) -> VariantScores:
        label, formula = VARIANTS[name]
        picked = scores[chosen].float()
        return VariantScores(name, label, formula, picked, masked_softmax(picked, mask), parameters, fit,
                             None if fitted is None else fitted.float())

    # The fits read every query row of this input, or MAX_FIT_ROWS of them (the query among them, the others drawn
    # with a fixed seed) for long inputs.
    rows = fit_rows(len(step.tokens), token, MAX_FIT_ROWS)  # (R,)
    where = rows.tolist().index(token)
    visible = ~step.mask_matrix[rows]  # (R, S)
    targets = centred_rows(step.score_matrix.double()[rows], ~visible)

    # Additive: v fitted on every visible (query, key) pair of those rows, rows centred.
    features = torch.tanh(step.q.double()[rows][:, None, :] + step.k.double()[None, :, :])  # (R, S, d)
    centred = centred_rows(features, ~visible)
    v = ridge(centred[visible], targets[visible])  # (d,)
    additive_fit = r_squared((centred @ v)[visible], targets[visible])
    additive = features[where] @ v  # (S,)

    # Location-based: W_a (S, D), row j fitted over the queries that see key j.
    fit_states = states[rows]  # (R, D)
    location_weights = torch.zeros(count, states.shape[1], dtype=torch.float64)
    for j in range(count):
        seen = visible[:, j]
        if seen.any():
            location_weights[j] = ridge(fit_states[seen], targets[seen, j])
    location_all = fit_states @ location_weights.T  # (R, S)
    location_fit = r_squared(centred_rows(location_all, ~visible)[visible], targets[visible])

    general = torch.cat([query, query.new_ones(1)]) @ head_bilinear(module, head, kv_head, head_dim) @ torch.cat(
        [key_states, key_states.new_ones(count, 1)], dim=1).T  # (S,)
    dot = key_states @ query
    cosine = torch.nn.functional.cosine_similarity(key_states, query[None], dim=-1)
    rotation = " (this model rotates q and k by position; W_a does not, so it differs from q·k)" if step.rotary else ""
    variants = [
        variant("additive", additive, f"W_q and W_k are this head's own; v ({head_dim} numbers) has no counterpart in "
                f"the model and was fitted by ridge least squares to the head's scores on {int(visible.sum())} visible "
                f"(query, key) pairs of this input, rows centred.", additive_fit, v),
        variant("location", location_all[where], f"W_a ({count} x {states.shape[1]}) has no counterpart in the "
                "model: each row was fitted by ridge least squares to the head's scores for that key position over "
                "the queries that see it, on this input.", location_fit, location_weights),
        variant("general", general, f"W_a = W_q^T W_k of this head (rank {head_dim} of {states.shape[1]}), biases "
                f"included: s^T W_a h is the head's q·k before scaling{rotation}."),
        variant("dot", dot, "No parameters: the hidden states themselves."),
        variant("scaled", step.score_matrix[token].double(), f"The model's own: q·k × {step.scaling:.4g} "
                f"(1/√{head_dim} = {head_dim ** -0.5:.4g})."),
        variant("cosine", cosine, "No parameters: the angle between the hidden states."),
    ]
    model = step.model_weights[chosen].double().masked_fill(mask, 0.0)
    model = (model / model.sum().clamp(min=1e-30)).float()
    return VariantComparison(
        tokens=step.tokens, key_tokens=[step.key_tokens[k] for k in keys], keys=keys, token=token, layer=layer,
        head=head, variants=variants, model_weights=model, mask=mask, state_dim=states.shape[1], head_dim=head_dim,
        rotary=step.rotary,
    )


@dataclass
class ScalingCurve:
    """Dot products of random unit-variance vectors as the dimension grows.

    Attributes:
        dims: (n,) dimensions d; keys: keys per softmax; trials: softmaxes per d.
        spread: (n,) standard deviation of q . k (about sqrt(d)).
        entropy, entropy_scaled: (n,) mean softmax entropy (nats) of q . k, and of q . k / sqrt(d).
        top_weight, top_weight_scaled: (n,) mean largest weight of the same two softmaxes.
    """

    dims: torch.Tensor
    keys: int
    trials: int
    spread: torch.Tensor
    entropy: torch.Tensor
    entropy_scaled: torch.Tensor
    top_weight: torch.Tensor
    top_weight_scaled: torch.Tensor


def softmax_summary(scores: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean entropy (nats) and mean largest weight of softmax rows: (..., T, S) -> (...), (...)."""
    weights = torch.softmax(scores if mask is None else scores.masked_fill(mask, float("-inf")), dim=-1)
    return attention_entropy(weights), weights.amax(-1).mean(-1)


def scaling_experiment(dims: tuple[int, ...] = DIMS, keys: int = 16, trials: int = 512, seed: int = 0) -> ScalingCurve:
    """For each d: `trials` queries and `keys` keys with independent N(0, 1) entries (seeded); q . k has
    variance d, so its spread is sqrt(d), and softmax with and without the 1/sqrt(d) scale."""
    if keys < 2 or trials < 2 or not dims or min(dims) < 1:
        raise ValueError("Give at least two keys, two trials and dimensions of 1 or more.")
    generator = torch.Generator().manual_seed(seed)
    rows = {name: [] for name in ("spread", "entropy", "entropy_scaled", "top", "top_scaled")}
    for d in dims:
        q = torch.randn(trials, 1, d, generator=generator, dtype=torch.float64)
        k = torch.randn(trials, keys, d, generator=generator, dtype=torch.float64)
        dots = (q * k).sum(-1)  # (trials, keys)
        rows["spread"].append(dots.std())
        entropy, top = softmax_summary(dots[None])
        entropy_scaled, top_scaled = softmax_summary(dots[None] / d ** 0.5)
        rows["entropy"].append(entropy[0])
        rows["top"].append(top[0])
        rows["entropy_scaled"].append(entropy_scaled[0])
        rows["top_scaled"].append(top_scaled[0])
    stack = {name: torch.stack(values).float() for name, values in rows.items()}
    return ScalingCurve(torch.tensor(dims), keys, trials, stack["spread"], stack["entropy"], stack["entropy_scaled"],
                        stack["top"], stack["top_scaled"])


@dataclass
class HeadScaling:
    """The same measures on every head of a model, from its own q and k on one input.

    Attributes:
        head_dim: d; scaling: (L,) each layer's factor on q . k.
        spread: (L, H) standard deviation of q . k over the visible (query, key) pairs, unscaled.
        unit_spread: (L, H) spread / (std of q's entries x std of k's entries): sqrt(d) for independent entries.
        prefix_dims: (m,) numbers of leading coordinates c; prefix_spread: (L, H, m) unit spread of the dot product
            over the first c coordinates only (how it grows with the dimension, inside the model's own vectors).
        entropy, top_weight: (L, H) mean softmax entropy and largest weight without the scale.
        entropy_scaled, top_weight_scaled: (L, H) with the model's own scale (its attention).
        max_difference: largest difference between the scaled weights recomputed here and the model's attentions.
        visible_keys: mean number of keys a query sees (the entropy's ceiling is about its log).
    """

    head_dim: int
    scaling: torch.Tensor
    spread: torch.Tensor
    unit_spread: torch.Tensor
    prefix_dims: torch.Tensor
    prefix_spread: torch.Tensor
    entropy: torch.Tensor
    entropy_scaled: torch.Tensor
    top_weight: torch.Tensor
    top_weight_scaled: torch.Tensor
    max_difference: float
    visible_keys: float


def masked_std(values: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
    """Standard deviation over the visible entries of the last two axes: (..., T, S) -> (...)."""
    count = visible.sum().clamp(min=2)
    mean = (values * visible).sum((-2, -1), keepdim=True) / count
    return (((values - mean) * visible) ** 2).sum((-2, -1)).div(count - 1).sqrt()


@torch.no_grad()
def head_scaling(loaded: LoadedModel, *, text: str | None = None, image: Any = None) -> HeadScaling:
    """Spread of q . k, and softmax entropy and largest weight with and without the scale, for every head, over
    every query (or MAX_SCALING_ROWS of them drawn with a fixed seed, for long inputs) and the keys it sees.

    Raises:
        ValueError: an encoder-decoder, or an empty input.
    """
    layers = self_attention_layers(loaded, "The scaling measure")
    inputs, _, _, _ = model_inputs(loaded, text, image, None)
    with recording_calls({index: module for index, (module, _) in enumerate(layers)}) as calls:
        outputs = loaded.model(**inputs, output_attentions=True)
    measures = {name: [] for name in ("spread", "unit", "prefix", "entropy", "scaled", "top", "top_scaled", "scaling")}
    largest, visible_keys, head_dim = 0.0, 0.0, 0
    for index, (module, _) in enumerate(layers):
        call = calls[index]
        heads = outputs.attentions[index].shape[1]
        step = layer_projections(module, call.hidden_states, call.kwargs, heads, loaded.spec.kind.causal)
        rows = fit_rows(step.q.shape[1], limit=MAX_SCALING_ROWS)
        attentions = outputs.attentions[index][0][:, rows].float().cpu()  # (H, R, S)
        head_dim = step.head_dim
        groups = step.q.shape[0] // step.k.shape[0]
        q = step.q.double().cpu()[:, rows]  # (H, R, d)
        k = step.k.double().cpu().repeat_interleave(groups, dim=0)  # (H, S, d)
        mask = step.mask[rows]  # (R, S)
        dots = q @ k.transpose(-1, -2)  # (H, R, S)
        visible = (~mask).double()
        scale = q.std((-2, -1)) * k.std((-2, -1))  # (H,)
        prefix_dims = [c for c in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024) if c < head_dim] + [head_dim]
        partial = (masked_std(q[..., :c] @ k[..., :c].transpose(-1, -2), visible) for c in prefix_dims)  # (H,) each
        measures["prefix"].append(torch.stack(list(partial), -1) / scale[:, None])
        measures["spread"].append(masked_std(dots, visible))
        measures["unit"].append(masked_std(dots, visible) / scale)
        entropy, top = softmax_summary(dots, mask)
        entropy_scaled, top_scaled = softmax_summary(dots * step.scaling, mask)
        measures["entropy"].append(entropy)
        measures["top"].append(top)
        measures["scaled"].append(entropy_scaled)
        measures["top_scaled"].append(top_scaled)
        measures["scaling"].append(torch.tensor(step.scaling))
        recomputed = torch.softmax((dots * step.scaling).masked_fill(mask, float("-inf")), -1)
        largest = max(largest, float((recomputed.float() - attentions).abs().max()))
        visible_keys = float(visible.sum(-1).mean())
    stack = {name: torch.stack(values).float() for name, values in measures.items()}
    return HeadScaling(
        head_dim=head_dim, scaling=stack["scaling"], spread=stack["spread"], unit_spread=stack["unit"],
        prefix_dims=torch.tensor(prefix_dims), prefix_spread=stack["prefix"], entropy=stack["entropy"],
        entropy_scaled=stack["scaled"], top_weight=stack["top"], top_weight_scaled=stack["top_scaled"],
        max_difference=largest, visible_keys=visible_keys,
    )
