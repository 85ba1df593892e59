"""What a capture is: one input's forward pass (plus one backward pass for a target) kept for every view and
method, and the helpers every kind's capture shares.

No hooks are needed for attention: the eager attention tensors returned by `output_attentions=True` are the very
tensors the model multiplies with the values, so `torch.autograd.grad(target, attentions)` gives the gradients in
the same order as the layers (paired by index, never by arrival order).

Each kind adds its own fields to `Capture`: `explain.encoder.TextCapture`, `explain.vision.ImageCapture`,
`explain.decoder.DecoderCapture`, `explain.seq2seq.Seq2SeqCapture`; `capture(loaded, ...)` picks the kind's
capture function.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from explain.head_stats import token_positions
from explain.rollout import gradient_weighted
from explain.targets import Target
from models import ModelKind


@dataclass
class Capture:
    """Everything one input's explanation needs, computed once.

    Attributes:
        kind: the model's kind.
        tokens: T tokens of the sequence `attentions` covers (an image's: "[CLS]", "patch r,c"; an
            encoder-decoder's: its source).
        attentions: (L, H, T, T) float32 (float16 in the display form), rows sum to 1.
        special: (T,) bool, special or prefix tokens ([CLS], [SEP], padding, a ViT's class token).
        pooling_weights: (T,) weights whose product with a rolled-out matrix gives the relevance over inputs:
            one-hot on the pooling row ([CLS], a decoder's target position), or uniform over pooled tokens.
        inputs: the model's keyword arguments for this input (batch 1, on the CPU): what methods that run the
            model again (gradients, occlusion, decompositions) feed it.
        target: the explained target (None when none was asked for).
        target_value: the target scalar's value (a logit or a cosine similarity), or None.
        scores: (C,) the model's scores the target is one of (class probabilities, label similarities, top
            next-token probabilities), or None; score_labels: their names.
        weighted: (L, T, T) float32 gradient-weighted attention mean_h (dTarget/dA_l * A_l)^+ per layer, all that
            gradient rollout needs; None without a target.
        gradients: (L, H, T, T) float32 dTarget/dA_l (the API and command line keep them; views do not).
        dropped_tokens: tokens cut off by truncation to the model's maximum length.
        unknown_words: words of the input the tokenizer could only map to its unknown token.
    """

    kind: ModelKind
    tokens: list[str]
    attentions: torch.Tensor
    special: torch.Tensor
    pooling_weights: torch.Tensor
    inputs: dict[str, torch.Tensor] = field(default_factory=dict)
    target: Target | None = None
    target_value: float | None = None
    scores: torch.Tensor | None = None
    score_labels: tuple[str, ...] = ()
    weighted: torch.Tensor | None = None
    gradients: torch.Tensor | None = None
    dropped_tokens: int = 0
    unknown_words: list[str] = field(default_factory=list)

    @property
    def layers(self) -> int:
        return int(self.attentions.shape[0])

    @property
    def heads(self) -> int:
        return int(self.attentions.shape[1])

    @property
    def target_label(self) -> str | None:
        return None if self.target is None else self.target.label

    @property
    def target_index(self) -> int | None:
        return None if self.target is None else self.target.index

    @property
    def nbytes(self) -> int:
        """Bytes held by the capture's tensors and arrays (what a cache entry costs)."""
        total = 64 * len(self.tokens)
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            values = value.values() if isinstance(value, dict) else (value,)
            for array in values:
                if isinstance(array, torch.Tensor):
                    total += array.numel() * array.element_size()
                elif isinstance(array, np.ndarray):
                    total += int(array.nbytes)
        return total

    def positions(self) -> torch.Tensor:
        """Where each token is, for attention distances: (T, 1) its index in the sequence."""
        return token_positions(len(self.tokens))

    def grid_of(self, relevance: torch.Tensor) -> torch.Tensor | None:
        """Relevance over tokens laid out as the input is (an image's patch grid), or None for a sequence."""
        return None

    def for_display(self) -> "Capture":
        """A lighter copy for caches that feed views: attention maps in float16, raw gradients dropped.

        Gradient rollout needs only `weighted` (kept in float32). Attention weights lie in [0, 1], where float16
        keeps about three significant digits (absolute error <= 2.5e-4 near 1, far less near 0): invisible in a
        heatmap; the command line and the Python API keep float32.
        """
        halved = {item.name: getattr(self, item.name).half() for item in dataclasses.fields(self)
                  if item.name.endswith("attentions") and isinstance(getattr(self, item.name), torch.Tensor)}
        return dataclasses.replace(self, gradients=None, **halved)


def stack_attentions(attentions: Sequence[torch.Tensor] | None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(L tensors of (1, H, T_q, T_k)) -> (L, H, T_q, T_k) in `dtype`, on the CPU; capturing nothing is an error.

    One copy: each layer is written straight into the stacked tensor, converted on the way.
    """
    if not attentions or any(a is None for a in attentions):
        raise RuntimeError(
            "The model returned no attention maps: load it with attn_implementation='eager' "
            "(SDPA and flash attention do not expose them)."
        )
    stacked = torch.empty((len(attentions),) + tuple(attentions[0].shape[1:]), dtype=dtype)
    for layer, attention in enumerate(attentions):
        stacked[layer] = attention[0].detach().to("cpu", dtype)  # a vectorised conversion, then one write
    return stacked


def layer_gradients(target_value: torch.Tensor, attentions: Sequence[torch.Tensor], retain_graph: bool = False) -> list[torch.Tensor]:
    """dTarget/dA_l for every layer, in layer order, each (H, T_q, T_k) float32 (zeros where unused)."""
    grads = torch.autograd.grad(target_value, list(attentions), allow_unused=True, retain_graph=retain_graph)
    return [torch.zeros_like(a[0]).float() if g is None else g[0].float() for a, g in zip(attentions, grads)]


def attention_gradients(target_value: torch.Tensor, attentions: Sequence[torch.Tensor], keep: bool,
                        retain_graph: bool = False) -> tuple[torch.Tensor | None, torch.Tensor]:
    """One backward pass: (raw gradients (L, H, T, T) or None when not kept, gradient-weighted attention (L, T, T)).

    The gradients autograd just returned are ours: they are weighted in place (after a copy when kept).
    """
    grads = layer_gradients(target_value, attentions, retain_graph)
    raw = torch.stack(grads).cpu() if keep else None
    return raw, gradient_weighted(attentions, grads, in_place=True).cpu()


def pooling_weights_for(pooling: str, pooled: torch.Tensor) -> torch.Tensor:
    """Weights over tokens whose product with a (T, T) matrix gives the relevance over inputs.

    Args:
        pooling: "cls" (one-hot on token 0) or "mean" (uniform over the pooled tokens).
        pooled: (T,) bool, the tokens a mean pooling averages (real tokens for text, patches for images).
    """
    if pooling == "mean":
        return pooled.float() / pooled.float().sum()
    weights = torch.zeros(pooled.shape[-1])
    weights[0] = 1.0
    return weights


def one_hot(length: int, position: int) -> torch.Tensor:
    """(length,) zeros with a 1 at `position`: the pooling weights of a capture explained at one position."""
    weights = torch.zeros(length)
    weights[position] = 1.0
    return weights


def cpu_inputs(inputs: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The tensors of a model call's keyword arguments, detached on the CPU (what a capture keeps)."""
    return {name: value.detach().cpu() for name, value in inputs.items() if isinstance(value, torch.Tensor)}


def capture(loaded, *args: Any, **kwargs: Any) -> Capture:  # noqa: ANN001
    """The capture of one input by the capture function of the model's kind (see each kind's module)."""
    from explain.decoder import capture_decoder
    from explain.encoder import capture_text
    from explain.seq2seq import capture_seq2seq
    from explain.vision import capture_image
    from models import DECODER, IMAGE, SEQ2SEQ, TEXT

    functions = {TEXT: capture_text, IMAGE: capture_image, DECODER: capture_decoder, SEQ2SEQ: capture_seq2seq}
    if loaded.spec.kind not in functions:
        raise ValueError(f"'{loaded.spec.name}' is {loaded.spec.kind.article}, which has no attention to capture.")
    return functions[loaded.spec.kind](loaded, *args, **kwargs)
