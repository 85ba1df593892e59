"""Value zeroing (Mohebbi, Zuidema, Chrupała and Alishahi, EACL 2023): how much a layer's output at each
position changes when one source token's value vectors are zeroed.

For layer l and source token j: zero token j's value vectors in every head of layer l and recompute the
layer's output (the hidden state the layer returns, attention block, feed-forward block and norms
included), the layer's input held at its original value. Then

    score_l(i, j) = 1 - cosine(original output at i, changed output at i)

and each row i is scaled to sum to 1. Decoders' rows are causal (the attention module's own is_causal
flag): zeroing a later token's values cannot change an earlier position, so entries above the diagonal
are set to 0 (they would otherwise hold float noise of the order of 1e-7). Layers are combined with the rollout product without an added
identity (`combine_layers`): the residual is already inside each score, as in the paper's code
(hmohebbi/ValueZeroing, `compute_joint_attention(..., res=False)`).

Choices where the definition is silent, following the paper's code: the value vector zeroed is what the
model attends over, bias included (the paper sets `value_layer[:, :, j] = 0` after the projection); the
original output is the layer's output in the model's own forward pass; the cosine distance is taken in
the hidden size (sklearn's `cosine_distances`), in float64 and clamped at 0: zeroing one token changes a
trained model's output little (MiniLM: 1 - cosine of 1e-6 to 1e-4), and in float32 1 - cosine of so
close vectors keeps only a digit or two; a row whose scores are all 0 becomes one-hot on the diagonal
(`normalise_rows`).

Batching: the layer module (found by `explain.internals.layer_modules`) runs once per chunk of sources,
with the inputs recorded in the model's forward pass (hidden states repeated along the batch, B =
batch_size sources at a time; masks, rotary cos/sin and the rest as recorded, any key-value cache
dropped), batch row b zeroing the values of its source j_b through a forward hook on the value projection
(GPT-2's fused c_attn: its v third; GPT-NeoX's query_key_value: the v part of each head), removed when the
chunk has run. Cost: T x L layer evaluations in T / batch_size batched calls per layer (MiniLM, 128
tokens, one thread: 1.3x the time of T x L single layer evaluations at batch_size 64, 1.1x at 8).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F

from explain.internals import (
    ModuleCall,
    check_one_example,
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

__all__ = ["combine_layers", "value_zeroing_layers"]


@torch.no_grad()
def value_zeroing_layers(
    loaded: LoadedModel, inputs: dict[str, torch.Tensor], *, batch_size: int = 64
) -> torch.Tensor:
    """Per-layer value-zeroing scores of one example.

    Args:
        loaded: a text encoder, ViT or decoder-only LM from `models.load` (eager attention, eval mode).
        inputs: the model's keyword arguments for one example (batch 1): input_ids and attention_mask for
            text, pixel_values for images.
        batch_size: sources zeroed per batched run of a layer.

    Returns:
        (L, T, T) float32: [l, i, j] is how much zeroing token j's values in layer l changes position i's
        output; rows are non-negative and sum to 1; for decoders zero above the diagonal.

    Raises:
        ValueError: an encoder-decoder, an unknown family, a batch of more than one example or batch_size < 1.
    """
    if batch_size < 1:
        raise ValueError(f"Batch size {batch_size} is out of range: choose 1 or more.")
    check_one_example(inputs)
    stack = self_attention_layers(loaded, "Value zeroing")
    with recording_calls({index: layer for index, (_, layer) in enumerate(stack)}) as calls:
        loaded.model(**inputs)
    per_layer = []
    for index, (attention, layer) in enumerate(stack):
        scores = layer_scores(layer, attention, calls[index], batch_size)  # (T, T)
        if getattr(attention, "is_causal", False):
            scores = scores.tril()
        per_layer.append(normalise_rows(scores))
    return torch.stack(per_layer)


def layer_scores(
    layer: torch.nn.Module, attention: torch.nn.Module, call: ModuleCall, batch_size: int
) -> torch.Tensor:
    """1 - cosine(original, changed) of one layer, unnormalised: (T, T), [i, j] for source j at position i.

    Args:
        layer: the layer module; attention: its attention module; call: the layer's recorded call
            (inputs and output) from the model's own forward pass.
    """
    original = _hidden_output(call.output).double()  # (1, T, D)
    tokens = original.shape[1]
    value_module, columns = projection_sources(attention)["v"]
    rows = []
    for sources in torch.arange(tokens, device=original.device).split(batch_size):
        with zeroed_values(value_module, columns, sources):
            args, kwargs = _batched_call(call, len(sources))
            changed = _hidden_output(layer(*args, **kwargs))  # (B, T, D)
        rows.append(1.0 - F.cosine_similarity(changed.double(), original, dim=-1))  # (B, T): [source, position]
    return torch.cat(rows).T.clamp_min(0.0).float()  # (T positions, T sources)


@contextmanager
def zeroed_values(
    value_module: torch.nn.Module, columns: slice | torch.Tensor, sources: torch.Tensor
) -> Iterator[None]:
    """While active, batch row b of `value_module`'s output has its value features at token sources[b] set
    to 0 (the value vector of that token in every head); the hook is always removed.

    Args:
        value_module: the module whose output holds the values; columns: which output features they are.
        sources: (B,) one source token per batch row.
    """

    def zero(_module, _args, output):  # noqa: ANN001, ANN202
        features = torch.arange(output.shape[-1], device=output.device)[columns]  # (KV * d,)
        batch = torch.arange(len(sources), device=output.device)
        output[batch[:, None], sources.to(output.device)[:, None], features[None, :]] = 0.0
        return output

    handle = value_module.register_forward_hook(zero)
    try:
        yield
    finally:
        handle.remove()


def _hidden_output(output: Any) -> torch.Tensor:
    """The hidden states a layer returns: the tensor itself, or the first item of a tuple."""
    return output[0] if isinstance(output, (tuple, list)) else output


def _batched_call(call: ModuleCall, batch: int) -> tuple[tuple, dict[str, Any]]:
    """The layer's recorded arguments with its hidden states repeated `batch` times, (B, T, D), and no cache."""
    hidden = call.hidden_states.expand(batch, -1, -1).contiguous()
    kwargs = _without_caches(call.kwargs)
    if not call.args:  # hidden states passed by keyword
        return (), {**kwargs, "hidden_states": hidden}
    return (hidden, *(_without_caches(argument) for argument in call.args[1:])), kwargs


def _without_caches(value: Any) -> Any:
    """Arguments with any key-value cache replaced by None, so a re-run neither reads nor extends the cache
    the model's own forward pass filled."""
    from transformers.cache_utils import Cache

    if isinstance(value, Cache):
        return None
    if isinstance(value, dict):
        return {key: _without_caches(item) for key, item in value.items()}
    return value


@register("value-zeroing", "Value zeroing", "Value zeroing (Mohebbi et al., 2023): per layer and source j, token j's value vectors zeroed in every head and the layer recomputed (its input held fixed); score(i, j) = 1 - cos(original, changed output at i), rows normalised (causal for decoders), layers combined by the rollout product (no added identity); the pooling or explained row.",
          needs_model=True, slow=True, capture=TextCapture,
          prefer="Measures how much each token's values move every output, with all of the layer's non-linearities; tokens x layers layer evaluations.")
def value_zeroing_method(capture: TextCapture, loaded: LoadedModel) -> Explanation:
    return _combined("value-zeroing", capture, value_zeroing_layers(loaded, model_inputs(capture, loaded)))


@register("value-zeroing", "Value zeroing", "", needs_model=True, slow=True, capture=ImageCapture)
def value_zeroing_image_method(capture: ImageCapture, loaded: LoadedModel) -> Explanation:
    return _combined("value-zeroing", capture, value_zeroing_layers(loaded, model_inputs(capture, loaded)))


def _combined(method: str, capture: Capture, per_layer: torch.Tensor) -> Explanation:
    """The layers' (L, T, T) scores combined by the rollout product; the row(s) of the pooling weights."""
    matrix = combine_layers(per_layer.float())
    return Explanation(method, input_relevance(matrix, capture.pooling_weights), matrix)
