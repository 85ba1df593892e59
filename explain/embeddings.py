"""The input embeddings of every model kind, and a batched forward pass that starts from them.

Gradient and perturbation attributions (saliency, input x gradient, integrated gradients, occlusion)
differentiate or perturb the vectors a model reads at its input, read from the model's own modules:

    text encoders, decoders   the word embeddings: what `inputs_embeds` replaces
    encoder-decoders          the source's word embeddings as the encoder computes them from ids (BART's
                              and mBART's embedding modules include their scale; Marian's encoder applies
                              its scale to ids only, so the embeddings here carry it); `decoder_input_ids`
                              are passed as they are
    ViTs (ViT, DeiT, BEiT)    the patch projection's output (B, N, D): a forward hook replaces it, then
                              the model adds its [CLS] (and distillation) token and position embeddings

Position embeddings and token types are added by the model after these, as usual, so a forward pass
from the real embeddings reproduces the model's normal forward pass exactly (tested for every kind).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch

from models import LoadedModel


@dataclass(frozen=True)
class EmbeddingInput:
    """Where a model's input embeddings come from and how a forward pass is fed with them.

    Attributes:
        source: the model input the embeddings are computed from: "input_ids" or "pixel_values".
        module: the model's own module that turns that input into embeddings (word or patch embeddings).
        scale: a factor the model applies to the module's output only when it is given ids (Marian's
            encoder), so the embeddings carry it; 1.0 otherwise.
        replaces_output: the embeddings replace `module`'s output with a forward hook (ViTs, which take
            no `inputs_embeds`) instead of being passed as `inputs_embeds`.
        call_options: extra keyword arguments of the forward pass (no key-value cache for generative models).
    """

    source: str
    module: torch.nn.Module
    scale: float = 1.0
    replaces_output: bool = False
    call_options: dict[str, Any] = field(default_factory=dict)


def embedding_input(loaded: LoadedModel) -> EmbeddingInput:
    """The one place that asks the model kind how its input embeddings are read and fed.

    Raises:
        ValueError: a model kind with no input embeddings known here.
    """
    model, kind = loaded.model, loaded.spec.kind
    if kind.reads_images:
        return EmbeddingInput("pixel_values", model.get_input_embeddings(), replaces_output=True)
    if not kind.transformer:
        raise ValueError(f"'{loaded.spec.name}' is {kind.article}, which has no input embeddings here: use a text, "
                         "image, decoder or encoder-decoder model.")
    if kind.causal:
        return EmbeddingInput("input_ids", model.get_input_embeddings(), call_options={"use_cache": False})
    if kind.cross_attention:
        encoder = model.get_encoder()
        module = encoder.get_input_embeddings()
        # BART and mBART scale inside their embedding module; Marian's encoder scales ids only, in its forward.
        scale = 1.0 if hasattr(module, "embed_scale") else float(getattr(encoder, "embed_scale", 1.0))
        return EmbeddingInput("input_ids", module, scale, call_options={"use_cache": False})
    return EmbeddingInput("input_ids", model.get_input_embeddings())


def _model_dtype(loaded: LoadedModel) -> torch.dtype:
    return next(loaded.model.parameters()).dtype


def _source_tensor(loaded: LoadedModel, route: EmbeddingInput, inputs: dict[str, Any]) -> torch.Tensor:
    """The input the embeddings are computed from, on the model's device (pixels in the model's dtype)."""
    if route.source not in inputs:
        raise ValueError(f"The inputs hold no '{route.source}': pass the model call's inputs as the capture "
                         "builds them.")
    source = inputs[route.source].to(loaded.device)
    return source.to(_model_dtype(loaded)) if source.is_floating_point() else source


def input_embeddings(loaded: LoadedModel, inputs: dict[str, Any]) -> torch.Tensor:
    """The input embeddings of one example, detached: (1, T, D) word embeddings or (1, N, D) patch embeddings.

    Args:
        loaded: a model from `models.load`.
        inputs: the model call's inputs for one example: {"input_ids", "attention_mask"} (text encoders,
            decoders), {"pixel_values"} (ViTs), {"input_ids", "attention_mask", "decoder_input_ids"}
            (encoder-decoders); other keys (token_type_ids) are kept for the forward pass.
    """
    route = embedding_input(loaded)
    with torch.no_grad():
        embeddings = route.module(_source_tensor(loaded, route, inputs))  # (1, T, D)
    if not isinstance(embeddings, torch.Tensor) or embeddings.dim() != 3:
        raise ValueError(f"'{loaded.spec.name}''s input embedding module returns no (batch, tokens, hidden) tensor: "
                         "this model is not supported by the embedding attributions.")
    return embeddings * route.scale if route.scale != 1.0 else embeddings


def _expanded(value: Any, batch: int, device: torch.device) -> Any:
    """A one-example tensor repeated (as a view) to `batch` rows; anything else unchanged."""
    if not isinstance(value, torch.Tensor):
        return value
    if value.shape[0] != 1:
        raise ValueError(f"The inputs hold {value.shape[0]} examples: pass one example (a batch of 1).")
    return value.to(device).expand(batch, *value.shape[1:])


@contextmanager
def _replaced_output(module: torch.nn.Module, replacement: torch.Tensor) -> Iterator[None]:
    """Within the block `module` returns `replacement` (same shape as its own output); the hook is always removed."""

    def replace(_module: torch.nn.Module, _args: Any, output: Any) -> torch.Tensor:
        if not isinstance(output, torch.Tensor) or output.shape != replacement.shape:
            shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
            raise ValueError(f"Embeddings of shape {tuple(replacement.shape)} cannot replace the patch embeddings "
                             f"{shape}: pass (batch, patches, hidden) embeddings from `input_embeddings`.")
        return replacement

    handle = module.register_forward_hook(replace)
    try:
        yield
    finally:
        handle.remove()


def forward_from_embeddings(loaded: LoadedModel, inputs: dict[str, Any], embeddings: torch.Tensor) -> Any:
    """The model's forward pass from a batch of input embeddings; every other input is repeated to the batch.

    Args:
        loaded: a model from `models.load`.
        inputs: one example's model inputs (see `input_embeddings`); their ids or pixels are replaced by
            `embeddings` (pixels still run through the patch projection, whose output is then replaced).
        embeddings: (B, T, D), e.g. `input_embeddings(...)` scaled, perturbed or with gradients required.

    Returns:
        The model's outputs for the B examples (logits (B, ...), last_hidden_state (B, T, D), ...).
    """
    route = embedding_input(loaded)
    batch = embeddings.shape[0]
    device = loaded.device
    embeddings = embeddings.to(device)
    others = {key: _expanded(value, batch, device) for key, value in inputs.items() if key != route.source}
    if not route.replaces_output:
        return loaded.model(inputs_embeds=embeddings, **others, **route.call_options)
    pixels = _expanded(_source_tensor(loaded, route, inputs), batch, device)  # (B, C, H, W), a view
    with _replaced_output(route.module, embeddings):
        return loaded.model(**{route.source: pixels}, **others, **route.call_options)
