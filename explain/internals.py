"""The model's own attention machinery, found per family: the attention modules transformers records
attentions from, each module's q/k/v projections and its output projection W_o, and hooks that record what
goes into a module during one forward pass. Shared by every view and method that reads inside a layer
(one head step by step, value zeroing, ALTI).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

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


@dataclass
class ModuleCall:
    """One call of a module: its positional and keyword arguments and what it returned."""

    args: tuple
    kwargs: dict[str, Any]
    output: Any = None

    @property
    def hidden_states(self) -> torch.Tensor:
        """The first argument: the hidden states every attention module and layer takes first, (B, T, D)."""
        return self.args[0] if self.args else self.kwargs["hidden_states"]


@contextmanager
def recording_calls(modules: Mapping[Hashable, torch.nn.Module]) -> Iterator[dict[Hashable, ModuleCall]]:
    """Hooks that record the first call of each module (arguments and output), by key; always removed.

    Args:
        modules: key -> module. The yielded dict maps the key of each module that ran to its ModuleCall.
    """
    calls: dict[Hashable, ModuleCall] = {}
    handles = []

    def watch(key: Hashable, module: torch.nn.Module) -> None:
        def before(_module, args, kwargs):  # noqa: ANN001, ANN202
            if key not in calls:
                calls[key] = ModuleCall(args=tuple(args), kwargs=dict(kwargs))

        def after(_module, _args, _kwargs, output):  # noqa: ANN001, ANN202
            if calls[key].output is None:
                calls[key].output = output

        handles.append(module.register_forward_pre_hook(before, with_kwargs=True))
        handles.append(module.register_forward_hook(after, with_kwargs=True))

    try:
        for key, module in modules.items():
            watch(key, module)
        yield calls
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def recording(module: torch.nn.Module, projection: torch.nn.Module) -> Iterator[dict[str, Any]]:
    """Hooks that record the attention module's inputs and W_o's input and output; always removed.

    The yielded dict is filled when the block exits: hidden_states, kwargs (of the attention module),
    concatenated (W_o's input) and projected (W_o's output).
    """
    seen: dict[str, Any] = {}
    with recording_calls({"module": module, "projection": projection}) as calls:
        yield seen
    if "module" in calls:
        seen["hidden_states"], seen["kwargs"] = calls["module"].hidden_states, calls["module"].kwargs
    if "projection" in calls:
        seen["concatenated"], seen["projected"] = calls["projection"].hidden_states, calls["projection"].output


def layer_modules(model: torch.nn.Module, modules: list[torch.nn.Module]) -> list[torch.nn.Module]:
    """The transformer layer (block) that holds each module: the innermost of transformers' own layer class
    (GradientCheckpointingLayer: BertLayer, ViTLayer, GPT2Block, LlamaDecoderLayer, ...) containing it, all
    from one walk over the model."""
    from transformers.modeling_layers import GradientCheckpointingLayer

    holder: dict[int, torch.nn.Module] = {}
    for layer in model.modules():  # pre-order: an inner layer comes after the layer holding it, and wins
        if isinstance(layer, GradientCheckpointingLayer):
            for inner in layer.modules():
                holder[id(inner)] = layer
    missing = [module for module in modules if id(module) not in holder]
    if missing:
        raise ValueError(f"Cannot find the layer that holds {type(missing[0]).__name__}: this method supports "
                         "models built from transformers' layer classes.")
    return [holder[id(module)] for module in modules]


def projection_matrix(projection: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A linear projection as (W, b) with y = x @ W + b: W (in, out), b (out,) or None.

    nn.Linear stores W transposed (out, in); GPT-2's Conv1D stores it as (in, out)."""
    from transformers.pytorch_utils import Conv1D

    if isinstance(projection, torch.nn.Linear):
        return projection.weight.T, projection.bias
    if isinstance(projection, Conv1D):
        return projection.weight, projection.bias
    raise ValueError(f"{type(projection).__name__} is not a linear projection this method can read.")


def split_heads(tensor: torch.Tensor, head_dim: int) -> torch.Tensor:
    """(1, T, n * d) -> (n, T, d)."""
    return tensor[0].view(tensor.shape[1], -1, head_dim).transpose(0, 1)


Columns = slice | torch.Tensor


def projection_sources(module: torch.nn.Module) -> dict[str, tuple[torch.nn.Module, Columns]]:
    """Where the attention module's q, k and v come from, read from its own layers.

    Returns:
        {"q": ..., "k": ..., "v": ...}: each the module whose output holds them and which of that output's
        features they are (a slice or an index tensor), head after head: heads * d features, head h at
        [h * d, (h + 1) * d). Separate projections (q_proj / query / q_lin) use all their features; GPT-2's
        one Conv1D c_attn holds q, k, v as thirds (cross-attention: q from q_attn, k and v as halves of
        c_attn); GPT-NeoX's query_key_value holds [q_h, k_h, v_h] side by side for each head h.
    """
    every = slice(None)
    for q_name, k_name, v_name in (("q_proj", "k_proj", "v_proj"), ("query", "key", "value"),
                                   ("q_lin", "k_lin", "v_lin")):
        if all(isinstance(getattr(module, name, None), torch.nn.Module) for name in (q_name, k_name, v_name)):
            return {"q": (getattr(module, q_name), every), "k": (getattr(module, k_name), every),
                    "v": (getattr(module, v_name), every)}
    if hasattr(module, "c_attn"):  # GPT-2
        size = module.split_size
        if getattr(module, "is_cross_attention", False):
            return {"q": (module.q_attn, every), "k": (module.c_attn, slice(0, size)),
                    "v": (module.c_attn, slice(size, 2 * size))}
        return {"q": (module.c_attn, slice(0, size)), "k": (module.c_attn, slice(size, 2 * size)),
                "v": (module.c_attn, slice(2 * size, 3 * size))}
    if hasattr(module, "query_key_value") and hasattr(module, "head_size"):  # GPT-NeoX
        fused, head_dim = module.query_key_value, module.head_size
        heads = fused.out_features // (3 * head_dim)
        starts = torch.arange(heads) * 3 * head_dim  # (n,)
        within = torch.arange(head_dim)  # (d,)
        return {name: (fused, (starts[:, None] + offset * head_dim + within[None, :]).reshape(-1))
                for offset, name in enumerate(("q", "k", "v"))}
    raise ValueError(f"{type(module).__name__} computes q, k and v in a way this tool does not know yet: "
                     "choose a model of a supported family.")


def head_projections(
    module: torch.nn.Module, hidden: torch.Tensor, key_hidden: torch.Tensor, head_dim: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(q, k, v) of all heads, (n, T, d), from the module's own weights (see `projection_sources`)."""
    sources = projection_sources(module)
    computed: dict[tuple[int, int], torch.Tensor] = {}  # a fused projection runs once per input

    def heads_of(name: str, states: torch.Tensor) -> torch.Tensor:
        source, columns = sources[name]
        key = (id(source), id(states))
        if key not in computed:
            computed[key] = source(states)
        return split_heads(computed[key][..., columns], head_dim)

    return heads_of("q", hidden), heads_of("k", key_hidden), heads_of("v", key_hidden)


def self_attention_layers(loaded: LoadedModel, method: str) -> list[tuple[torch.nn.Module, torch.nn.Module]]:
    """(attention module, layer holding it) for every layer of a single-stack model: a text encoder, a ViT or
    a decoder-only language model, in layer order.

    Raises:
        ValueError: an encoder-decoder (its two stacks and cross-attention are not decomposed), or a
            family whose attention modules transformers does not record.
    """
    model = loaded.model
    if getattr(model.config, "is_encoder_decoder", False):
        raise ValueError(f"{method} supports text encoders, ViTs and decoder-only language models, not "
                         f"encoder-decoders such as '{loaded.spec.name}': choose another model or method.")
    modules = recorded_modules(model, "attentions")
    return list(zip(modules, layer_modules(model, modules)))


def check_one_example(inputs: dict[str, torch.Tensor]) -> None:
    """Raise ValueError unless every tensor in the model's keyword arguments has batch size 1."""
    sizes = {value.shape[0] for value in inputs.values() if isinstance(value, torch.Tensor)}
    if sizes != {1}:
        raise ValueError(f"Expected the inputs of one example (batch 1), got batch sizes {sorted(sizes)}: "
                         "explain one example at a time.")
