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
  LN_i(z) = gamma * (z - mean(z)) / s_i with s_i = sqrt(Var(r_i) + eps) from the norm's own input r_i,
  the scale the model divides by (the paper's code divides by the unbiased standard deviation of r_i + eps,
  which is that of r_i: eps has no effect there); y_i is the norm's output.

Biases, as in the paper's code (mt-upc/transformer-contributions, src/contributions.py): value biases are
part of v_j (the model's own values), so each source carries A_h[i, j] b_V; W_O's bias b_O and the
LayerNorm's beta belong to no source. They stay in y_i (y_i = sum_j T_i(x_j) + b_O for pre-norm, and
sum_j LN_i(T_i(x_j)) + LN_i(b_O) + beta for post-norm, both the model's own output) and in no T_i(x_j):
they are the same for every input, so no token is credited with them, yet the distance of each term to
y_i is measured against the output the model really computes.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

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
from explain.capture import Capture
from explain.encoder import TextCapture
from explain.methods import Explanation, model_inputs, register
from explain.methods.attention import input_relevance
from explain.rollout import combine_layers, normalise_rows
from explain.vision import ImageCapture
from models import LoadedModel

__all__ = ["LayerParts", "alti_layers", "combine_layers", "contributions", "layer_contributions"]

# Terms built at a time, (sources, T, D) floats: 512 KB stay in the CPU's cache between the product that
# makes them and the distance that reads them (MiniLM, 128 tokens: several times faster per layer than
# one (T, T, D) tensor, and a (T, T, D) tensor at 512 tokens would take 400 MB).
CHUNK_ELEMENTS = 1 << 17


@dataclass
class LayerParts:
    """The modules of one layer that ALTI reads, found from the model (see `explain.internals`).

    Attributes:
        layer: the layer (block); attention: its attention module; values: the module whose output holds
        the values and value_columns which of its output features they are; projection: W_O; norms: every
        nn.LayerNorm inside the layer (a post-norm layer's norm after the residual is one of them).
    """

    layer: torch.nn.Module
    attention: torch.nn.Module
    values: torch.nn.Module
    value_columns: slice | torch.Tensor
    projection: torch.nn.Module
    norms: tuple[torch.nn.LayerNorm, ...]

    @classmethod
    def of(cls, model: torch.nn.Module, attention: torch.nn.Module, layer: torch.nn.Module) -> LayerParts:
        values, columns = projection_sources(attention)["v"]
        norms = tuple(module for module in layer.modules() if isinstance(module, torch.nn.LayerNorm))
        return cls(layer, attention, values, columns, output_projection(model, attention), norms)

    def watched(self) -> dict[Hashable, torch.nn.Module]:
        """Role -> module, for `recording_calls`."""
        roles = {"layer": self.layer, "attention": self.attention, "values": self.values,
                 "projection": self.projection}
        return {**roles, **{("norm", number): norm for number, norm in enumerate(self.norms)}}


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
    stack = self_attention_layers(loaded, "ALTI")
    parts = [LayerParts.of(loaded.model, attention, layer) for attention, layer in stack]
    watched = {(index, role): module for index, part in enumerate(parts) for role, module in part.watched().items()}
    with recording_calls(watched) as calls:
        loaded.model(**inputs)
    return torch.stack([
        layer_contributions(part, {role: calls[index, role] for role in part.watched() if (index, role) in calls})
        for index, part in enumerate(parts)
    ])


def contributions(outputs: torch.Tensor, transformed: torch.Tensor) -> torch.Tensor:
    """ALTI's contribution formula, not normalised: c = max(0, ||y||_1 - ||y - T||_1) over the last dimension.

    Args:
        outputs: (..., D) y_i, broadcast against `transformed`.
        transformed: (..., D) T_i(x_j).

    Returns:
        (...) the contributions; `normalise_rows` turns a (T, T) matrix of them into ALTI's layer matrix.
    """
    distance = (transformed - outputs).abs_().sum(dim=-1)
    return (outputs.abs().sum(dim=-1) - distance).clamp_min_(0.0)


def layer_contributions(parts: LayerParts, calls: dict[Hashable, ModuleCall]) -> torch.Tensor:
    """One layer's ALTI matrix from what its modules received and returned in one forward pass.

    Args:
        parts: the layer's modules; calls: role (as in `LayerParts.watched`) -> the recorded call.

    Returns:
        (T, T): [i, j] token j's share of position i's attention-block output; rows sum to 1.
    """
    x = calls["layer"].hidden_states[0].float()  # (T, D) the layer's input
    projected = calls["projection"].output[0].float()  # (T, D) W_O's output, b_O included
    returned = calls["attention"].output
    weights = returned[1] if isinstance(returned, tuple) and len(returned) > 1 else None
    if weights is None:
        raise ValueError("The attention module returned no attention weights: load the model with "
                         "attn_implementation='eager' (models.load does).")
    weights = weights[0].float()  # (H, T, T)
    heads, tokens = weights.shape[0], weights.shape[-1]
    matrix, _ = projection_matrix(parts.projection)  # (H * d, D), y = x @ W + b
    head_dim = matrix.shape[0] // heads
    values = calls["values"].output[0][:, parts.value_columns].float()  # (T, KV * d)
    kv_heads = values.shape[-1] // head_dim
    values = values.view(tokens, kv_heads, head_dim).transpose(0, 1)  # (KV, T, d)
    values = values.repeat_interleave(heads // kv_heads, dim=0)  # (H, T, d): query head h reads kv head h // group
    per_head = values @ matrix.float().view(heads, head_dim, -1)  # (H, T, D): v_j^h W_O^h

    if not torch.equal(calls["attention"].hidden_states, calls["layer"].hidden_states):  # pre-norm
        scale = getattr(parts.layer, "lambda_1", None)  # BEiT's layer scale on the attention branch
        if isinstance(scale, torch.Tensor):
            per_head = per_head * scale.float()
            projected = projected * scale.float()
        targets, residual = x + projected, x  # y_i; the residual term x_i
    else:
        # LN_i(z) = gain * (z - mean z) / s_i. Centring and gain are the same linear map for every token, so
        # they go onto each head's term and the residual once; 1 / s_i scales all of row i alike, so
        # ||y_i - LN_i(T)||_1 = ||s_i y_i - gain * centre(T)||_1 / s_i and after the row normalisation
        # only s_i y_i is needed.
        norm, outputs, spread = _norm_after_residual(x, projected, parts, calls)
        gain = torch.ones_like(x[0]) if norm.weight is None else norm.weight.float()  # (D,)
        per_head = (per_head - per_head.mean(dim=-1, keepdim=True)) * gain
        residual = (x - x.mean(dim=-1, keepdim=True)) * gain
        targets = outputs * spread[:, None]  # (T, D) s_i y_i

    by_source = weights.permute(2, 1, 0).contiguous()  # (T_j, T_i, H)
    per_source = per_head.transpose(0, 1).contiguous()  # (T_j, H, D)
    result = torch.empty(tokens, tokens, dtype=x.dtype, device=x.device)  # [j, i]
    chunk = max(1, CHUNK_ELEMENTS // (tokens * x.shape[-1]))
    for start in range(0, tokens, chunk):
        terms = torch.bmm(by_source[start:start + chunk], per_source[start:start + chunk])  # (c, T, D) [j, i]
        result[start:start + chunk] = contributions(targets, terms)  # (c, T), the residual not yet in
    # where i = j the term also holds x_i itself: those T entries again, residual included
    own = torch.einsum("hj,hjd->jd", weights.diagonal(dim1=1, dim2=2), per_head) + residual  # (T, D) T_j(x_j)
    result.diagonal().copy_(contributions(targets, own))
    return normalise_rows(result.T)


def _norm_after_residual(x: torch.Tensor, projected: torch.Tensor, parts: LayerParts,
                         calls: dict[Hashable, ModuleCall]) -> tuple[torch.nn.LayerNorm, torch.Tensor, torch.Tensor]:
    """A post-norm layer's LayerNorm after the residual: the one whose input is x + W_O's output.

    Returns:
        (the norm, its output y (T, D), each token's scale s_i = sqrt(Var(r_i) + eps), (T,)).
    """
    residual = x + projected  # (T, D)
    for number, norm in enumerate(parts.norms):
        call = calls.get(("norm", number))
        given = None if call is None else call.hidden_states[0].float()
        if given is not None and given.shape == residual.shape and torch.allclose(given, residual, 1e-5, 1e-6):
            spread = torch.sqrt(given.var(dim=-1, unbiased=False) + norm.eps)  # (T,)
            return norm, call.output[0].float(), spread
    raise ValueError("ALTI found no LayerNorm after this post-norm layer's residual: this family is not "
                     "supported yet; choose another model or method.")


@register("alti", "ALTI", "ALTI (Ferrando et al., 2022): per layer each token's output decomposed into one vector per source token, residual included (through a post-norm LayerNorm with each token's scale held fixed); contribution max(0, |y_i|_1 - |y_i - T_i(x_j)|_1), rows normalised, layers combined by the rollout product (no added identity); the pooling or explained row.",
          needs_model=True, capture=TextCapture,
          prefer="Attention-aware and target-free like rollout, but weighing each value vector's size and the residual; one forward pass.")
def alti_method(capture: TextCapture, loaded: LoadedModel) -> Explanation:
    return _combined("alti", capture, alti_layers(loaded, model_inputs(capture, loaded)))


@register("alti", "ALTI", "", needs_model=True, capture=ImageCapture)
def alti_image_method(capture: ImageCapture, loaded: LoadedModel) -> Explanation:
    return _combined("alti", capture, alti_layers(loaded, model_inputs(capture, loaded)))


def _combined(method: str, capture: Capture, per_layer: torch.Tensor) -> Explanation:
    """The layers' (L, T, T) scores combined by the rollout product; the row(s) of the pooling weights."""
    matrix = combine_layers(per_layer.float())
    return Explanation(method, input_relevance(matrix, capture.pooling_weights), matrix)
