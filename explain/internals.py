"""The model's own attention machinery, found per family: the attention modules transformers records
attentions from, each module's q/k/v projections and its output projection W_o, and hooks that record what
goes into a module during one forward pass. Shared by every view and method that reads inside a layer
(one head step by step, value zeroing, ALTI).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import torch

from models import LoadedModel

STACKS = ("self", "cross")


def recorded_modules(model: torch.nn.Module, key: str) -> list[torch.nn.Module]:
    """The modules transformers records `key` ("attentions" / "cross_attentions") from, in layer order."""
    recorders = getattr(model, "_can_record_outputs", None) or {}
    recorder = recorders.get(key)
    if recorder is None:
        raise ValueError(f"{type(model).__name__} does not say where its {key.replace('_', ' ')} come from: "
                         "this view supports the families transformers records attentions for.")
    target = getattr(recorder, "target_class", recorder)
    layer_name = getattr(recorder, "layer_name", None)
    return [module for name, module in model.named_modules()
            if isinstance(module, target) and (layer_name is None or layer_name in name)]


def attention_module(loaded: LoadedModel, layer: int, stack: str = "self", side: str = "encoder") -> torch.nn.Module:
    """The attention module of `layer`: self-attention of a text encoder, ViT or decoder; for an encoder-decoder
    the encoder's (side="encoder") or the decoder's self- or cross-attention."""
    if stack not in STACKS:
        raise ValueError(f"Unknown attention stack '{stack}': choose one of {', '.join(STACKS)}.")
    model = loaded.model
    if loaded.spec.kind.cross_attention:
        owner = model.get_encoder() if side == "encoder" and stack == "self" else model.get_decoder()
    else:
        if stack == "cross":
            raise ValueError(f"'{loaded.spec.name}' has no cross-attention: only encoder-decoders do.")
        owner = model
    modules = recorded_modules(owner, "cross_attentions" if stack == "cross" else "attentions")
    if not 0 <= layer < len(modules):
        raise ValueError(f"Layer {layer} is out of range: choose 0 to {len(modules) - 1}.")
    return modules[layer]


def output_projection(model: torch.nn.Module, module: torch.nn.Module) -> torch.nn.Module:
    """W_o: the module's own o_proj / out_proj / c_proj / out_lin, or (BERT) the dense layer of the
    self-output block beside it."""
    for name in ("o_proj", "out_proj", "c_proj", "out_lin", "dense"):
        if isinstance(getattr(module, name, None), torch.nn.Module):
            return getattr(module, name)
    for parent in model.modules():
        if getattr(parent, "self", None) is module and hasattr(getattr(parent, "output", None), "dense"):
            return parent.output.dense
    raise ValueError(f"Cannot find the output projection of {type(module).__name__}.")


@contextmanager
def recording(module: torch.nn.Module, projection: torch.nn.Module) -> Iterator[dict[str, Any]]:
    """Hooks that record the attention module's inputs and W_o's input and output; always removed."""
    seen: dict[str, Any] = {}

    def before(_module, args, kwargs):  # noqa: ANN001, ANN202
        if "hidden_states" not in seen:
            seen["hidden_states"] = args[0] if args else kwargs.get("hidden_states")
            seen["kwargs"] = dict(kwargs)

    def projected(_module, args, output):  # noqa: ANN001, ANN202
        if "concatenated" not in seen:
            seen["concatenated"], seen["projected"] = args[0], output

    handles = [module.register_forward_pre_hook(before, with_kwargs=True), projection.register_forward_hook(projected)]
    try:
        yield seen
    finally:
        for handle in handles:
            handle.remove()


def split_heads(tensor: torch.Tensor, head_dim: int) -> torch.Tensor:
    """(1, T, n * d) -> (n, T, d)."""
    return tensor[0].view(tensor.shape[1], -1, head_dim).transpose(0, 1)


def head_projections(module: torch.nn.Module, hidden: torch.Tensor, key_hidden: torch.Tensor, head_dim: int):  # noqa: ANN202
    """(q, k, v) of all heads, (n, T, d), from the module's own weights."""
    if hasattr(module, "q_proj"):
        return (split_heads(module.q_proj(hidden), head_dim), split_heads(module.k_proj(key_hidden), head_dim),
                split_heads(module.v_proj(key_hidden), head_dim))
    if hasattr(module, "query"):  # BERT family
        return (split_heads(module.query(hidden), head_dim), split_heads(module.key(key_hidden), head_dim),
                split_heads(module.value(key_hidden), head_dim))
    if hasattr(module, "q_lin"):  # DistilBERT
        return (split_heads(module.q_lin(hidden), head_dim), split_heads(module.k_lin(key_hidden), head_dim),
                split_heads(module.v_lin(key_hidden), head_dim))
    if hasattr(module, "c_attn"):  # GPT-2: one Conv1D makes q, k and v
        size = module.split_size
        if getattr(module, "is_cross_attention", False):
            key, value = module.c_attn(key_hidden).split(size, dim=2)
            query = module.q_attn(hidden)
        else:
            query, key, value = module.c_attn(hidden).split(size, dim=2)
        return split_heads(query, head_dim), split_heads(key, head_dim), split_heads(value, head_dim)
    raise ValueError(f"{type(module).__name__} computes q, k and v in a way this view does not know yet.")
