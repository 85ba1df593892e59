"""Attention capture: one forward pass returns every layer's attention; with a target, one backward
pass returns every layer's gradient dTarget/dA_l, paired with its layer by index.

No hooks are needed: the eager attention tensors returned by `output_attentions=True` are the very
tensors the model multiplies with the values, so `torch.autograd.grad(target, attentions)` gives the
gradients in the same order as the layers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from models import LoadedModel


@dataclass
class Capture:
    """Everything one input's explanation needs, computed once.

    Attributes:
        attentions: (L, H, T, T) float32, rows sum to 1.
        gradients: (L, H, T, T) float32 dTarget/dA_l, or None when no target was requested.
        tokens: T token strings (image: "[CLS]", "[DIST]", "patch r,c").
        special: (T,) bool, special or prefix tokens ([CLS], [SEP], padding, class/distillation tokens).
        pooling_weights: (T,) float32, the weights whose product with a rolled-out matrix gives the
            relevance over inputs: one-hot on the [CLS] row, or uniform over pooled tokens.
        word_ids: per token, the index of the word it belongs to (None for special tokens); text only.
        sequence_ids: per token, 0 or 1 for the first or second text of a pair, None for specials.
        grid: (rows, cols) patch grid for images, None for text.
        prefix_tokens: tokens before the patches (images).
        scores: (C,) class probabilities, or zero-shot similarities, or None.
        score_labels: names of the scores.
        target_index: index into scores of the explained target, or None.
        target_label: name of the target (class, label or probe sentence).
        target_value: the target scalar (logit or cosine similarity) that was differentiated.
        dropped_tokens: tokens cut off by truncation to the model's maximum length.
        image: the model-sized RGB picture (H, W, 3) uint8 the patches cover, images only.
        kind: "text", "image" or "decoder" (the model's kind).
        weighted: (L, T, T) float32 gradient-weighted attention mean_h (dTarget/dA_l * A_l)^+ per layer,
            all that gradient rollout needs (H times smaller than the gradients); None without a target.
        token_ids: the input ids (text and decoders).
        prompt_length: decoders: the number of prompt tokens (generated tokens follow them).
        target_position: decoders: the query position whose next-token logit is the target; the
            relevance over inputs is that position's row (`pooling_weights` is one-hot there).
        target_token_id: decoders: the vocabulary id of the explained token.
        unknown_words: words of the input that the tokenizer could only map to its unknown token.
    """

    attentions: torch.Tensor
    tokens: list[str]
    special: torch.Tensor
    pooling_weights: torch.Tensor
    gradients: torch.Tensor | None = None
    word_ids: list[int | None] = field(default_factory=list)
    sequence_ids: list[int | None] = field(default_factory=list)
    grid: tuple[int, int] | None = None
    prefix_tokens: int = 0
    scores: torch.Tensor | None = None
    score_labels: tuple[str, ...] = ()
    target_index: int | None = None
    target_label: str | None = None
    target_value: float | None = None
    dropped_tokens: int = 0
    image: np.ndarray | None = None
    kind: str = "text"
    weighted: torch.Tensor | None = None
    token_ids: list[int] = field(default_factory=list)
    prompt_length: int = 0
    target_position: int | None = None
    target_token_id: int | None = None
    unknown_words: list[str] = field(default_factory=list)

    @property
    def layers(self) -> int:
        return int(self.attentions.shape[0])

    @property
    def heads(self) -> int:
        return int(self.attentions.shape[1])

    @property
    def nbytes(self) -> int:
        """Bytes held by the capture's tensors and image (what a cache entry costs)."""
        arrays = (self.attentions, self.gradients, self.weighted, self.special, self.pooling_weights, self.scores)
        total = sum(a.numel() * a.element_size() for a in arrays if a is not None)
        return total + (0 if self.image is None else int(self.image.nbytes)) + 64 * len(self.tokens)

    def for_display(self) -> "Capture":
        """A lighter copy for caches that feed views: attentions in float16, raw gradients dropped.

        Gradient rollout needs only `weighted` (kept in float32). Attention weights lie in [0, 1], where
        float16 keeps about three significant digits (absolute error <= 2.5e-4 near 1, far less near 0):
        invisible in a heatmap; the command line and the Python API keep float32.
        """
        from dataclasses import replace

        return replace(self, attentions=self.attentions.half(), gradients=None)


def _stack_attentions(attentions: Sequence[torch.Tensor] | None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(L tensors of (1, H, T, T)) -> (L, H, T, T) in `dtype`, on the CPU; capturing nothing is an error.

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


def _gradient_outputs(target_value: torch.Tensor, attentions: Sequence[torch.Tensor], keep: bool):
    """(raw gradients (L, H, T, T) or None when not kept, gradient-weighted attention (L, T, T)).

    The gradients autograd just returned are ours: they are weighted in place (after a copy when kept).
    """
    grads = layer_gradients(target_value, attentions)
    raw = torch.stack(grads).cpu() if keep else None
    return raw, gradient_weighted(attentions, grads, in_place=True).cpu()


def _resolve_class(target: int | str | None, labels: Sequence[str], predicted: int, what: str) -> int:
    """Turn a class name, index or None (predicted) into an index, or raise a clear ValueError.

    A string is matched against the names first (case-insensitive), then read as an index.
    """
    if target is None:
        return predicted
    if isinstance(target, str):
        key = target.strip().lower()
        lowered = [label.lower() for label in labels]
        if key in lowered:
            return lowered.index(key)
        if not key.isdigit():
            shown = ", ".join(labels[:12]) + (", ..." if len(labels) > 12 else "")
            raise ValueError(f"Unknown {what.lower()} '{target}': choose one of {shown}.")
    index = int(target)
    if not 0 <= index < len(labels):
        raise ValueError(f"{what} index {index} is out of range: choose 0 to {len(labels) - 1}.")
    return index


def layer_gradients(target_value: torch.Tensor, attentions: Sequence[torch.Tensor], retain_graph: bool = False) -> list[torch.Tensor]:
    """dTarget/dA_l for every layer, in layer order, each (H, T_q, T_k) float32 (zeros where unused)."""
    grads = torch.autograd.grad(target_value, list(attentions), allow_unused=True, retain_graph=retain_graph)
    return [torch.zeros_like(a[0]).float() if g is None else g[0].float() for a, g in zip(attentions, grads)]


def gradient_weighted(attentions: Sequence[torch.Tensor], gradients: Sequence[torch.Tensor],
                      in_place: bool = False) -> torch.Tensor:
    """mean_h (G_l * A_l)^+ layer by layer (no (L, H, T, T) temporary): (L, T_q, T_k) float32.

    Args:
        attentions: L tensors (1, H, T_q, T_k) or (H, T_q, T_k).
        gradients: L tensors of the same shapes, paired by index.
        in_place: overwrite float32 gradients with the product instead of allocating an (H, T, T)
            temporary per layer (at 512 tokens that allocation was a tenth of gradient rollout's time).
    """
    weighted = []
    for attention, gradient in zip(attentions, gradients):
        attention = (attention[0] if attention.dim() == 4 else attention).detach()
        gradient = (gradient[0] if gradient.dim() == 4 else gradient).float()
        # float32 times float16 is computed in float32 either way: the same numbers as converting first
        product = gradient.mul_(attention) if in_place else gradient * attention
        weighted.append(product.clamp_(min=0).mean(dim=0))
    return torch.stack(weighted)




def _pooled_embedding(model: torch.nn.Module, encoding: dict, pooling: str, **kwargs) -> tuple[torch.Tensor, object]:
    """Sentence embedding as the model's own pooling defines it: (B, D), plus the raw outputs."""
    outputs = model(**encoding, **kwargs)
    hidden = outputs.last_hidden_state  # (B, T, D)
    if pooling == "mean":
        mask = encoding["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9), outputs
    return hidden[:, 0], outputs


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


def tokenize(loaded: LoadedModel, text: str, pair: str | None = None) -> tuple[dict, int]:
    """Tokenise one input (or pair) truncated to the model's maximum; returns (encoding, dropped tokens)."""
    if not text or not text.strip():
        raise ValueError("The text is empty: type a sentence to explain.")
    if pair is not None and not pair.strip():
        pair = None
    tokenizer = loaded.tokenizer
    full = tokenizer(text, pair, add_special_tokens=True, truncation=False)
    encoding = tokenizer(
        text, pair, add_special_tokens=True, truncation=True, max_length=loaded.spec.max_length, return_tensors="pt"
    )
    dropped = len(full["input_ids"]) - int(encoding["input_ids"].shape[1])
    return encoding, dropped


def capture_text(
    loaded: LoadedModel,
    text: str,
    pair: str | None = None,
    *,
    target: int | str | None = None,
    labels: Sequence[str] | None = None,
    with_gradients: bool = False,
    display: bool = False,
) -> Capture:
    """One forward pass (plus one backward pass when gradients are asked for) over a text.

    Targets:
        classifier: `target` is a class name or index (None: the predicted class); the scalar is its logit.
        embedding model with `labels`: zero-shot; each label text is embedded (no gradient) and scored by
            cosine similarity with the input; `target` picks a label (name or index; None: best score).
        embedding model without labels: `target` is a probe sentence; the scalar is the cosine similarity
            of the input's pooled embedding with the probe's (the probe held constant).

    Args:
        loaded: a text model from `models.load`.
        text: the input sentence.
        pair: optional second sentence.
        target: see above.
        labels: zero-shot label texts (embedding models).
        with_gradients: also run the backward pass (always done when a probe or labels are given).

    Raises:
        ValueError: empty text, unknown target, or gradients asked for with no target on an embedding model.
    """
    spec = loaded.spec
    if spec.kind != "text":
        raise ValueError(f"'{spec.name}' is an image model: use it with an image.")
    encoding, dropped = tokenize(loaded, text, pair)
    encoding = encoding.to(loaded.device)
    model = loaded.model
    labels = [label.strip() for label in labels or () if label.strip()]
    embedding_target = not spec.classifier and bool(labels or target is not None)
    need_grad = with_gradients or target is not None or bool(labels)
    if need_grad and not spec.classifier and not embedding_target:
        raise ValueError(
            "Gradient rollout on an embedding model needs a target: a probe sentence to compare with, "
            "or zero-shot labels."
        )

    scores = None
    score_labels: tuple[str, ...] = ()
    target_index = target_label = None
    target_value = None
    gradients = weighted = None
    with torch.set_grad_enabled(need_grad):
        if spec.classifier:
            outputs = model(**encoding, output_attentions=True)
            logits = outputs.logits[0]
            scores = torch.sigmoid(logits) if spec.multi_label else torch.softmax(logits, dim=-1)
            score_labels = spec.labels
            target_index = _resolve_class(target, spec.labels, int(logits.argmax()), "Class")
            target_label = spec.labels[target_index]
            scalar = logits[target_index]
        else:
            embedding, outputs = _pooled_embedding(model, encoding, spec.pooling, output_attentions=True)
            scalar = None
            if embedding_target:
                references = labels if labels else [str(target)]
                with torch.no_grad():
                    ref_encoding = loaded.tokenizer(
                        references, padding=True, truncation=True, max_length=spec.max_length, return_tensors="pt"
                    ).to(loaded.device)
                    reference_embeddings, _ = _pooled_embedding(model, ref_encoding, spec.pooling)
                similarities = F.cosine_similarity(embedding, reference_embeddings, dim=-1)  # (C,)
                scores = similarities.detach()
                score_labels = tuple(references)
                if labels:
                    target_index = _resolve_class(target, labels, int(similarities.argmax()), "Label")
                else:
                    target_index = 0
                target_label = score_labels[target_index]
                scalar = similarities[target_index]
        attentions = outputs.attentions
        stacked = _stack_attentions(attentions, torch.float16 if display else torch.float32)
        if need_grad and scalar is not None:
            gradients, weighted = _gradient_outputs(scalar, attentions, keep=not display)
        if scalar is not None:
            target_value = float(scalar.detach())

    token_ids = encoding["input_ids"][0].tolist()
    tokens = loaded.tokenizer.convert_ids_to_tokens(token_ids)
    word_ids = list(encoding.word_ids(0))
    sequence_ids = list(encoding.sequence_ids(0))
    # Special tokens are the ones the tokenizer added ([CLS], [SEP], padding): they belong to no input
    # sequence. Matching all_special_ids would also flag [UNK], which stands for a real word of the text.
    special = torch.tensor([sequence is None for sequence in sequence_ids], dtype=torch.bool)
    pooling_weights = pooling_weights_for(spec.pooling, encoding["attention_mask"][0].bool().cpu())
    return Capture(
        attentions=stacked, gradients=gradients, weighted=weighted, tokens=tokens,
        special=special, pooling_weights=pooling_weights, word_ids=word_ids, sequence_ids=sequence_ids,
        scores=None if scores is None else scores.detach().float().cpu(), score_labels=score_labels,
        target_index=target_index, target_label=target_label, target_value=target_value, dropped_tokens=dropped,
        kind="text", token_ids=token_ids, unknown_words=unknown_words(loaded.tokenizer, encoding, text, pair),
    )


def unknown_words(tokenizer, encoding, text: str, pair: str | None = None) -> list[str]:  # noqa: ANN001
    """The words of the input that became the tokenizer's unknown token (emoji, rare scripts...), in order.

    Read from the fast tokenizer's offsets, so the user sees what they typed, not "[UNK]".
    """
    unk = getattr(tokenizer, "unk_token_id", None)
    if unk is None:
        return []
    texts = (text, pair)
    found: list[str] = []
    for index, token_id in enumerate(encoding["input_ids"][0].tolist()):
        if token_id != unk:
            continue
        sequence = encoding.sequence_ids(0)[index]
        span = encoding.token_to_chars(0, index)
        if sequence is None or span is None or texts[sequence] is None:
            continue
        word = texts[sequence][span.start:span.end]
        if word and word not in found:
            found.append(word)
    return found


def capture_image(
    loaded: LoadedModel,
    image: Image.Image,
    *,
    target: int | str | None = None,
    with_gradients: bool = False,
    display: bool = False,
) -> Capture:
    """One forward pass (plus one backward pass for a target or `with_gradients`) over an RGB image.

    Args:
        loaded: an image classifier from `models.load`.
        image: a PIL image; converted to RGB and resized by the model's own image processor.
        target: class name or index; None with gradients means the top-scoring class.
        with_gradients: run the backward pass for the target.
        display: keep only what views need (float16 attentions, no raw gradients).
    """
    spec = loaded.spec
    if spec.kind != "image":
        raise ValueError(f"'{spec.name}' is a text model: use it with text.")
    image = image.convert("RGB")
    pixel_values = loaded.processor(images=image, return_tensors="pt")["pixel_values"]  # (1, 3, H, W)
    need_grad = with_gradients or target is not None
    with torch.set_grad_enabled(need_grad):
        model_dtype = next(loaded.model.parameters()).dtype
        outputs = loaded.model(pixel_values=pixel_values.to(loaded.device, model_dtype), output_attentions=True)
        logits = outputs.logits[0].float()
        stacked = _stack_attentions(outputs.attentions, torch.float16 if display else torch.float32)
        target_index = _resolve_class(target, spec.labels, int(logits.argmax()), "Class")
        gradients, weighted = (_gradient_outputs(logits[target_index], outputs.attentions, keep=not display)
                               if need_grad else (None, None))
    logits = logits.detach().cpu()
    scores = torch.sigmoid(logits) if spec.multi_label else torch.softmax(logits, dim=-1)

    rows, cols = spec.patch_grid
    tokens = ["[CLS]", "[DIST]"][: spec.prefix_tokens] + [f"patch {r},{c}" for r in range(rows) for c in range(cols)]
    if len(tokens) != stacked.shape[-1]:
        raise RuntimeError(
            f"'{spec.name}' produced {stacked.shape[-1]} tokens but its config implies {len(tokens)} "
            f"({spec.prefix_tokens} prefix + {rows}x{cols} patches)."
        )
    special = torch.zeros(len(tokens), dtype=torch.bool)
    special[: spec.prefix_tokens] = True
    pooling_weights = pooling_weights_for(spec.pooling, ~special)  # BEiT mean-pools the patch tokens
    mean = torch.tensor(getattr(loaded.processor, "image_mean", None) or [0.5, 0.5, 0.5]).view(3, 1, 1)
    std = torch.tensor(getattr(loaded.processor, "image_std", None) or [0.5, 0.5, 0.5]).view(3, 1, 1)
    seen = (pixel_values[0] * std + mean).clamp(0, 1)  # what the model saw, after resize and crop
    shown = (seen.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    return Capture(
        attentions=stacked, gradients=gradients, weighted=weighted, tokens=tokens,
        special=special, pooling_weights=pooling_weights, grid=(rows, cols), prefix_tokens=spec.prefix_tokens,
        scores=scores.float(), score_labels=spec.labels, target_index=target_index,
        target_label=spec.labels[target_index], target_value=float(logits[target_index]), image=shown, kind="image",
    )
