"""Inside one attention head: every intermediate of one head for one query token, read from the model's
own modules (what bertviz calls the neuron view, completed).

The attention module of the chosen layer is the one transformers itself records attentions from (its
`_can_record_outputs`); hooks capture what goes into it during one eager forward pass (its hidden
states after any pre-attention layer norm, the rotary cos/sin, the mask, the encoder states for cross-
attention) and what goes into and out of its output projection W_o. q, k and v are then that module's own
projections applied to the captured input, q and k rotated as the module rotates them (rotary models:
Llama, Qwen2, Mistral), so that scores = q_I . k_j * scale, the mask, the softmax and the weighted sum of
values reproduce the model's own numbers (tested for MiniLM/BERT, GPT-2, Llama with and without grouped
key-value heads, ViT and BART self- and cross-attention).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import torch

from explain.decoder import prompt_ids
from explain.internals import attention_module, head_projections, output_projection, recording
from explain.seq2seq import output_ids_for
from explain.vision import patch_tokens, pixel_values
from models import LoadedModel


@dataclass
class HeadInternals:
    """One head's computation for one query token.

    Attributes:
        tokens: T query-side tokens; key_tokens: S key-side tokens (the source for cross-attention).
        hidden: (T, D) the attention module's input (after any pre-attention norm), query side.
        key_hidden: (S, D) its key/value-side input (= hidden for self-attention; encoder output for cross).
        q: (T, d), k: (S, d), v: (S, d) this head's projections (q and k after rotation for rotary models).
        scaling: the factor on q . k (1 / sqrt(d) for most models; GPT-2 may divide by the layer too).
        scores: (S,) q_token . k_j * scaling, before the mask.
        mask: (S,) bool, True where key j is masked (set to -inf before the softmax).
        score_matrix: (T, S) every query's scores (q_i . k_j * scaling, before the mask); row `token` is `scores`.
        mask_matrix: (T, S) bool, every query's mask; row `token` is `mask`.
        weights: (S,) softmax of the masked scores.
        model_weights: (S,) the same row as the model returned it (output_attentions).
        context: (d,) sum_j weights_j v_j.
        concatenated: (H * d,) every head's context for the token, side by side: the input of W_o.
        projected: (D,) W_o applied: the attention block's output for the token (before the residual).
        rotary: q and k carry rotary position embeddings (applied before the dot product).
        layer, head, token, stack: what was asked for; heads, kv_heads: counts of query and key/value heads.
        dropped_tokens: tokens dropped to fit the model's maximum length (model_inputs says which).
    """

    tokens: list[str]
    key_tokens: list[str]
    hidden: torch.Tensor
    key_hidden: torch.Tensor
    q: torch.Tensor
    k: torch.Tensor
    v: torch.Tensor
    scaling: float
    scores: torch.Tensor
    mask: torch.Tensor
    weights: torch.Tensor
    model_weights: torch.Tensor
    context: torch.Tensor
    concatenated: torch.Tensor
    projected: torch.Tensor
    rotary: bool
    layer: int
    head: int
    token: int
    stack: str
    heads: int
    kv_heads: int
    score_matrix: torch.Tensor | None = None
    mask_matrix: torch.Tensor | None = None
    dropped_tokens: int = 0


def model_inputs(loaded: LoadedModel, text: str | None, image: Any,
                 output: str | None) -> tuple[dict, list[str], list[str] | None, int]:
    """Keyword arguments of one forward pass, the query-side tokens, (seq2seq) the source tokens, and how many
    tokens were dropped to fit the model's maximum length: a decoder keeps the end of its prompt (the tokens it
    predicts from, as the Decoder page does), every other model the start.

    Raises:
        ValueError: no image for an image model, or an empty text.
    """
    spec, tokenizer = loaded.spec, loaded.tokenizer
    if spec.kind.reads_images:
        if image is None:
            raise ValueError(f"'{spec.name}' is an image model: give an image.")
        tokens = patch_tokens(spec.prefix_tokens, spec.patch_grid)
        return {"pixel_values": pixel_values(loaded, image).to(loaded.device)}, tokens, None, 0
    if not text or not text.strip():
        raise ValueError("The text is empty: type a sentence to look inside.")
    if spec.kind.causal:
        ids, _, dropped, _ = prompt_ids(loaded, text, 0)
        input_ids = torch.tensor([ids], device=loaded.device)
        inputs = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}
        return inputs, tokenizer.convert_ids_to_tokens(ids), None, dropped
    dropped = max(0, len(tokenizer(text)["input_ids"]) - spec.max_length)
    encoding = tokenizer(text, truncation=True, max_length=spec.max_length, return_tensors="pt").to(loaded.device)
    tokens = tokenizer.convert_ids_to_tokens(encoding["input_ids"][0].tolist())
    if not spec.kind.cross_attention:
        return dict(encoding), tokens, None, dropped
    output_ids = output_ids_for(loaded, encoding["input_ids"][0].tolist(), output, 32)
    decoder_ids = [loaded.model.config.decoder_start_token_id] + output_ids[:-1]
    inputs = dict(encoding)
    inputs["decoder_input_ids"] = torch.tensor([decoder_ids], device=loaded.device)
    return inputs, tokenizer.convert_ids_to_tokens(decoder_ids), tokens, dropped


@dataclass
class LayerProjections:
    """q, k and v of every head of one attention module, as the module computes them.

    Attributes:
        q: (H, T, d) queries; k, v: (KV, S, d) keys and values (KV < H: grouped-query attention), q and k
            after rotation for rotary models.
        mask: (T, S) bool, True where query i may not see key j (-inf before the softmax).
        scaling: the factor on q . k; rotary: whether q and k were rotated; head_dim: d.
    """

    q: torch.Tensor
    k: torch.Tensor
    v: torch.Tensor
    mask: torch.Tensor
    scaling: float
    rotary: bool
    head_dim: int

    def kv_head(self, head: int) -> int:
        """The key/value head query head `head` reads (grouped-query attention shares them)."""
        return head // (self.q.shape[0] // self.k.shape[0])

    def scores(self, head: int) -> torch.Tensor:
        """(T, S) q_i . k_j * scaling of one head, before the mask."""
        return self.q[head].float() @ self.k[self.kv_head(head)].float().T * self.scaling


def key_mask(kwargs: dict[str, Any], queries: int, keys: int, causal: bool) -> torch.Tensor:
    """(T, S) bool, True where a query may not see a key: read from the 4-D mask the module was given (additive,
    or boolean with True = visible), else causal (True above the diagonal) or nothing masked."""
    mask_tensor = kwargs.get("attention_mask")
    if isinstance(mask_tensor, torch.Tensor) and mask_tensor.dim() == 4:
        if mask_tensor.dtype == torch.bool:
            return ~mask_tensor[0, 0, :queries, :keys].cpu()
        return mask_tensor[0, 0, :queries, :keys].float().cpu() < -1e4
    if causal:
        return torch.ones(queries, keys, dtype=torch.bool).triu(1)
    return torch.zeros(queries, keys, dtype=torch.bool)


def key_states(hidden: torch.Tensor, kwargs: dict[str, Any]) -> torch.Tensor:
    """(1, S, D) the states keys and values are projected from: the encoder's for cross-attention, else `hidden`."""
    for name in ("key_value_states", "encoder_hidden_states"):
        if kwargs.get(name) is not None:
            return kwargs[name]
    return hidden


def layer_projections(module: torch.nn.Module, hidden: torch.Tensor, kwargs: dict[str, Any], heads: int,
                      causal: bool) -> LayerProjections:
    """Every head's q, k, v and mask from what an attention module received in one forward pass.

    Args:
        module: the attention module (see `explain.internals.attention_module`).
        hidden: (1, T, D) its input hidden states; kwargs: its keyword arguments (mask, rotary cos/sin,
            key_value_states or encoder_hidden_states for cross-attention).
        heads: number of query heads H.
        causal: mask the future when the module was not given a mask tensor.
    """
    key_hidden = key_states(hidden, kwargs)
    head_dim = getattr(module, "head_dim", None) or getattr(module, "attention_head_size", None) or (
        hidden.shape[-1] // heads)
    q, k, v = head_projections(module, hidden, key_hidden, head_dim)  # (H, T, d), (KV, S, d)
    rotary = kwargs.get("position_embeddings") is not None
    if rotary:
        cos, sin = kwargs["position_embeddings"]
        apply = sys.modules[type(module).__module__].apply_rotary_pos_emb
        q, k = apply(q[None], k[None], cos, sin)
        q, k = q[0], k[0]
    scaling = float(getattr(module, "scaling", head_dim ** -0.5))
    mask = key_mask(kwargs, q.shape[1], k.shape[1], causal)
    return LayerProjections(q=q, k=k, v=v, mask=mask, scaling=scaling, rotary=rotary, head_dim=head_dim)


@torch.no_grad()
def head_internals(loaded: LoadedModel, *, text: str | None = None, image: Any = None, output: str | None = None,
                   layer: int, head: int, token: int, stack: str = "self", side: str | None = None) -> HeadInternals:
    """Every step of head `head` of layer `layer` for query token `token`, with the model's real numbers.

    Args:
        loaded: any model from `models.load` (text encoder, image model, decoder, encoder-decoder).
        text / image: the input; output: for an encoder-decoder, the output to teacher-force (None:
            greedy). Query tokens are then the decoder's inputs (start token, outputs but the last).
        stack: "self" or "cross" (encoder-decoders: queries from the decoder, keys and values from the
            encoder). side: for an encoder-decoder's self-attention, "encoder" or "decoder" (default
            decoder for cross, encoder for self).

    Raises:
        ValueError: a layer, head or token out of range, or an architecture this view does not know.
    """
    spec = loaded.spec
    side = side or ("decoder" if stack == "cross" else "encoder")
    module = attention_module(loaded, layer, stack, side)
    inputs, tokens, source_tokens, dropped = model_inputs(loaded, text, image, output)
    projection = output_projection(loaded.model, module)
    with recording(module, projection) as seen:
        outputs = loaded.model(**inputs, output_attentions=True)
    if spec.kind.cross_attention:
        recorded = {("encoder", "self"): outputs.encoder_attentions, ("decoder", "self"): outputs.decoder_attentions,
                    ("decoder", "cross"): outputs.cross_attentions}[(side, stack)]
        if side == "encoder":
            tokens = source_tokens
        key_tokens = source_tokens if stack == "cross" else tokens
    else:
        recorded, key_tokens = outputs.attentions, tokens
    model_row_all = recorded[layer][0]  # (H, T, S)
    heads = model_row_all.shape[0]
    if not 0 <= head < heads:
        raise ValueError(f"Head {head} is out of range: choose 0 to {heads - 1}.")
    if not 0 <= token < len(tokens):
        raise ValueError(f"Token {token} is out of range: choose 0 to {len(tokens) - 1}.")

    hidden, kwargs = seen["hidden_states"], seen["kwargs"]  # (1, T, D)
    causal = spec.kind.causal or (spec.kind.cross_attention and side == "decoder" and stack == "self")
    layer_qkv = layer_projections(module, hidden, kwargs, heads, causal)
    kv_head = layer_qkv.kv_head(head)
    q_head, k_head, v_head = layer_qkv.q[head].float(), layer_qkv.k[kv_head].float(), layer_qkv.v[kv_head].float()
    score_matrix = layer_qkv.scores(head)  # (T, S)
    scores, mask = score_matrix[token], layer_qkv.mask[token]
    weights = torch.softmax(scores.masked_fill(mask, float("-inf")), dim=-1)
    context = weights @ v_head
    key_hidden = key_states(hidden, kwargs)
    return HeadInternals(
        tokens=list(tokens), key_tokens=list(key_tokens), hidden=hidden[0].float().cpu(),
        key_hidden=key_hidden[0].float().cpu(), q=q_head.cpu(), k=k_head.cpu(), v=v_head.cpu(),
        scaling=layer_qkv.scaling, scores=scores.cpu(), mask=mask.cpu(), weights=weights.cpu(),
        model_weights=model_row_all[head, token].float().cpu(), context=context.cpu(),
        concatenated=seen["concatenated"][0, token].float().cpu(), projected=seen["projected"][0, token].float().cpu(),
        rotary=layer_qkv.rotary, layer=layer, head=head, token=token, stack=stack, heads=heads,
        kv_heads=layer_qkv.k.shape[0], score_matrix=score_matrix.cpu(), mask_matrix=layer_qkv.mask.cpu(),
        dropped_tokens=dropped,
    )
