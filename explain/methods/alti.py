"""ALTI, Aggregation of Layer-wise Token-to-token Interactions (Ferrando, Gállego and Costa-jussà, EMNLP
2022): each layer's attention block, residual included, decomposed into one vector per source token.

For layer l with input x (the residual stream, (T, D)), attention A_h (H, T, T), values v_j^h and output
projection W_O (head h's rows W_O^h):

    T_i(x_j) = sum_h A_h[i, j] v_j^h W_O^h  (+ x_i when j = i)
    c(i, j) = max(0, ||y_i||_1 - ||y_i - T_i(x_j)||_1),  rows scaled to sum to 1,

where y_i is the attention block's output at i, residual included. Layers are combined with the rollout
product without an added identity (`combine_layers`): the residual is inside each T_i(x_i).

Pre- or post-norm, read from the model's data flow in the one forward pass (no list of names): a layer is
pre-norm when its attention module's input is not the layer's own input (a norm ran before attention:
Llama's input_layernorm, GPT-2's ln_1, ViT's layernorm_before, OPT's self_attn_layer_norm when
do_layer_norm_before). Otherwise it is post-norm, and the norm after the residual is the nn.LayerNorm of
the layer whose input is x + W_O's output (BERT's attention.output.LayerNorm, DistilBERT's sa_layer_norm,
OPT-350m's self_attn_layer_norm); a post-norm layer without one raises ValueError.

- Pre-norm: v_j^h is what the model's value projection returns for the normalised x_j (recorded by a
  hook); y_i = x_i + W_O's output at i (times BEiT's layer scale lambda_1 when the layer has one, which
  then also scales each head's term).
- Post-norm: each T_i(x_j) is carried through the LayerNorm with token i's scale held fixed:
  LN_i(z) = gamma * (z - mean(z)) / s_i with s_i = sqrt(Var(r_i) + eps) from the norm's own input r_i
  (the model's own scale: the paper's code uses the unbiased std of r_i + eps, which differs from what the
  model divides by); y_i is the norm's output.

Biases, as in the paper's code (mt-upc/transformer-contributions, src/contributions.py): value biases are
part of v_j (the model's own values), so each source carries A_h[i, j] b_V; W_O's bias b_O and the
LayerNorm's beta belong to no source. They stay in y_i (y_i = sum_j T_i(x_j) + b_O for pre-norm, and
sum_j LN_i(T_i(x_j)) + LN_i(b_O) + beta for post-norm, both the model's own output) and in no T_i(x_j):
they are the same for every input, so no token is credited with them, yet the distance of each term to
y_i is measured against the output the model really computes.
"""

from __future__ import annotations

import torch

from explain.internals import (
    ModuleCall,
    check_one_example,
    output_projection,
    projection_matrix,
    projection_sources,
    recording_calls,
    self_attention_layers,
)
from explain.rollout import combine_layers, normalise_rows
from models import LoadedModel

__all__ = ["alti_layers", "combine_layers", "contributions"]

CHUNK_ELEMENTS = 1 << 24  # (rows, T, D) floats built at a time: 64 MB


@torch.no_grad()
def alti_layers(loaded: LoadedModel, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """Per-layer ALTI contributions of one example, from one forward pass.

    Args:
        loaded: a text encoder, ViT or decoder-only LM from `models.load` (eager attention, eval mode).
        inputs: the model's keyword arguments for one example (batch 1).

    Returns:
        (L, T, T) float32: [l, i, j] is token j's share of position i's attention-block output in layer l;
        rows are non-negative and sum to 1; for decoders zero above the diagonal.

    Raises:
        ValueError: an encoder-decoder, an unknown family, a post-norm layer whose norm is not found, no
            attention weights (attention not eager), or a batch of more than one example.
    """
    check_one_example(inputs)
    model = loaded.model
    stack = self_attention_layers(loaded, "ALTI")
    watched = {}
    for index, (attention, layer) in enumerate(stack):
        watched[index, "layer"], watched[index, "attention"] = layer, attention
        watched[index, "values"] = projection_sources(attention)["v"][0]
        watched[index, "projection"] = output_projection(model, attention)
        for number, norm in enumerate(module for module in layer.modules() if isinstance(module, torch.nn.LayerNorm)):
            watched[index, "norm", number] = norm
    with recording_calls(watched) as calls:
        model(**inputs)
    per_layer = []
    for index, (attention, layer) in enumerate(stack):
        norms = {key[2]: calls[key] for key in calls if key[0] == index and key[1] == "norm"}
        norm_modules = {key[2]: watched[key] for key in watched if key[0] == index and key[1] == "norm"}
        per_layer.append(_layer_contributions(
            layer, attention, watched[index, "projection"], calls[index, "layer"], calls[index, "attention"],
            calls[index, "values"], calls[index, "projection"], norms, norm_modules))
    return torch.stack(per_layer)


def contributions(outputs: torch.Tensor, transformed: torch.Tensor) -> torch.Tensor:
    """ALTI's contribution of each source to each output, rows normalised.

    c(i, j) = max(0, ||y_i||_1 - ||y_i - T_i(x_j)||_1); rows scaled to sum to 1 (`normalise_rows`).

    Args:
        outputs: (T, D) y_i.
        transformed: (T, T, D) T_i(x_j), [i, j].

    Returns:
        (T, T).
    """
    distance = (outputs[:, None, :] - transformed).abs().sum(dim=-1)  # (T, T)
    return normalise_rows((outputs.abs().sum(dim=-1, keepdim=True) - distance).clamp_min(0.0))


def _layer_contributions(layer: torch.nn.Module, attention: torch.nn.Module, projection: torch.nn.Module,
                         layer_call: ModuleCall, attention_call: ModuleCall, values_call: ModuleCall,
                         projection_call: ModuleCall, norm_calls: dict[int, ModuleCall],
                         norm_modules: dict[int, torch.nn.Module]) -> torch.Tensor:
    """One layer's normalised contributions, (T, T)."""
    x = layer_call.hidden_states[0].float()  # (T, D)
    projected = projection_call.output[0].float()  # (T, D) W_O's output, b_O included
    weights = attention_call.output[1] if isinstance(attention_call.output, tuple) else None
    if not isinstance(weights, torch.Tensor):
        raise ValueError("The attention module returned no attention weights: load the model with "
                         "attn_implementation='eager' (models.load does).")
    weights = weights[0].float()  # (H, T, T)
    heads, tokens = weights.shape[0], weights.shape[-1]
    matrix, _ = projection_matrix(projection)  # (H * d, D), x @ W
    head_dim = matrix.shape[0] // heads
    columns = projection_sources(attention)["v"][1]
    values = values_call.output[0][:, columns].float()  # (T, KV * d)
    kv_heads = values.shape[-1] // head_dim
    values = values.view(tokens, kv_heads, head_dim).transpose(0, 1)  # (KV, T, d)
    values = values.repeat_interleave(heads // kv_heads, dim=0)  # (H, T, d): query head h reads kv head h // group
    per_head = values @ matrix.float().view(heads, head_dim, -1)  # (H, T, D): v_j^h W_O^h

    pre_norm = not torch.equal(attention_call.hidden_states, layer_call.hidden_states)
    if pre_norm:
        scale = getattr(layer, "lambda_1", None)  # BEiT's layer scale on the attention branch
        if isinstance(scale, torch.Tensor):
            per_head = per_head * scale.float()
            projected = projected * scale.float()
        outputs = x + projected  # (T, D) y_i
        norm = None
    else:
        norm, outputs, spread = _norm_after_residual(x, projected, norm_calls, norm_modules)

    rows = max(1, CHUNK_ELEMENTS // (tokens * x.shape[-1]))
    result = torch.empty(tokens, tokens, dtype=x.dtype, device=x.device)
    for start in range(0, tokens, rows):
        stop = min(start + rows, tokens)
        transformed = torch.einsum("hij,hjd->ijd", weights[:, start:stop], per_head)  # (rows, T, D)
        diagonal = torch.arange(start, stop, device=x.device)
        transformed[diagonal - start, diagonal] += x[start:stop]  # the residual: x_i is token i's own
        if norm is not None:  # carry through the LayerNorm, token i's scale held fixed
            transformed -= transformed.mean(dim=-1, keepdim=True)
            gain = torch.ones_like(x[0]) if norm.weight is None else norm.weight.float()
            transformed *= gain / spread[start:stop, None, None]
        distance = (outputs[start:stop, None, :] - transformed).abs_().sum(dim=-1)  # (rows, T)
        result[start:stop] = outputs[start:stop].abs().sum(dim=-1, keepdim=True) - distance
    return normalise_rows(result.clamp_min_(0.0))


def _norm_after_residual(x: torch.Tensor, projected: torch.Tensor, norm_calls: dict[int, ModuleCall],
                         norm_modules: dict[int, torch.nn.Module]) -> tuple[torch.nn.LayerNorm, torch.Tensor, torch.Tensor]:
    """The post-norm layer's LayerNorm after the residual: the one whose input is x + W_O's output.

    Returns:
        (the norm, its output y (T, D), each token's scale s_i = sqrt(Var(r_i) + eps) (T,)).
    """
    residual = x + projected  # (T, D)
    for number, call in sorted(norm_calls.items()):
        given = call.hidden_states[0].float()
        if given.shape == residual.shape and torch.allclose(given, residual, rtol=1e-5, atol=1e-6):
            norm = norm_modules[number]
            spread = torch.sqrt(given.var(dim=-1, unbiased=False) + norm.eps)  # (T,)
            return norm, call.output[0].float(), spread
    raise ValueError("ALTI found no LayerNorm after this post-norm layer's residual: this family is not "
                     "supported yet; choose another model or method.")
