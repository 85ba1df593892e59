"""Vision Transformers (ViT, DeiT, BEiT): the patch grid, the picture the model sees, and one captured forward
pass over an image plus one backward pass for a class. Geometry (prefix tokens, patch grid) comes from the
model's spec, read from its config, never guessed from a token count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from explain.capture import Capture, attention_gradients, cpu_inputs, pooling_weights_for, stack_attentions
from explain.head_stats import token_positions
from explain.targets import ClassLogit, resolve_index
from models import LoadedModel

PREFIX_NAMES = ("[CLS]", "[DIST]")  # a ViT's class token, DeiT's distillation token


@dataclass
class ImageCapture(Capture):
    """An image's capture (see Capture), with its patch geometry.

    Attributes:
        grid: (rows, cols) of patches; tokens after the prefix are the patches row by row.
        prefix_tokens: tokens before the patches (1 for [CLS], 2 with DeiT's distillation token).
        image: (H, W, 3) uint8, the model-sized picture the patches cover.
        logits: (C,) the classifier's logits.
    """

    grid: tuple[int, int] = (0, 0)
    prefix_tokens: int = 0
    image: np.ndarray | None = None
    logits: torch.Tensor | None = None

    def positions(self) -> torch.Tensor:
        """(T, 2) each patch's (row, col) on the grid; NaN for the prefix tokens, which have no place on it."""
        return token_positions(len(self.tokens), self.prefix_tokens, self.grid)

    def grid_of(self, relevance: torch.Tensor) -> torch.Tensor:
        """(..., T) relevance over tokens -> (..., rows, cols) over the patches (prefix tokens dropped)."""
        return patch_grid(relevance, self.prefix_tokens, self.grid)


def patch_tokens(prefix_tokens: int, grid: tuple[int, int]) -> list[str]:
    """Token labels of an image's sequence: "[CLS]" (and "[DIST]"), then "patch r,c" row by row."""
    rows, cols = grid
    return list(PREFIX_NAMES[:prefix_tokens]) + [f"patch {r},{c}" for r in range(rows) for c in range(cols)]


def patch_grid(relevance: torch.Tensor, prefix_tokens: int, grid: tuple[int, int]) -> torch.Tensor:
    """Drop the prefix tokens and reshape to the patch grid: (..., T) -> (..., rows, cols)."""
    rows, cols = grid
    patches = relevance[..., prefix_tokens:]
    if patches.shape[-1] != rows * cols:
        raise ValueError(f"{patches.shape[-1]} patch tokens do not fill a {rows}x{cols} grid.")
    return patches.reshape(*patches.shape[:-1], rows, cols)


def pixel_values(loaded: LoadedModel, image: Image.Image) -> torch.Tensor:
    """The model's input for an image, by its own image processor (resize, crop, normalise): (1, 3, H, W)."""
    return loaded.processor(images=image.convert("RGB"), return_tensors="pt")["pixel_values"]


def model_picture(processor, pixels: torch.Tensor) -> np.ndarray:  # noqa: ANN001
    """What the model saw, after resize and crop, as a picture: (1, 3, H, W) normalised -> (H, W, 3) uint8."""
    mean = torch.tensor(getattr(processor, "image_mean", None) or [0.5, 0.5, 0.5]).view(3, 1, 1)
    std = torch.tensor(getattr(processor, "image_std", None) or [0.5, 0.5, 0.5]).view(3, 1, 1)
    seen = (pixels[0].detach().float().cpu() * std + mean).clamp(0, 1)
    return (seen.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def capture_image(
    loaded: LoadedModel,
    image: Image.Image,
    *,
    target: int | str | None = None,
    with_gradients: bool = False,
    display: bool = False,
) -> ImageCapture:
    """One forward pass (plus one backward pass for a target or `with_gradients`) over an RGB image.

    Args:
        loaded: an image classifier from `models.load`.
        image: a PIL image; converted to RGB and resized by the model's own image processor.
        target: class name or index; None means the top-scoring class.
        with_gradients: run the backward pass for the target.
        display: keep only what views need (float16 attentions, no raw gradients).
    """
    spec = loaded.spec
    if not spec.kind.reads_images:
        raise ValueError(f"'{spec.name}' is {spec.kind.article}: use it with text.")
    pixels = pixel_values(loaded, image)
    model_dtype = next(loaded.model.parameters()).dtype
    inputs = {"pixel_values": pixels.to(loaded.device, model_dtype)}
    need_grad = with_gradients or target is not None
    with torch.set_grad_enabled(need_grad):
        outputs = loaded.model(**inputs, output_attentions=True)
        logits = outputs.logits[0].float()
        stacked = stack_attentions(outputs.attentions, torch.float16 if display else torch.float32)
        index = resolve_index(target, spec.labels, int(logits.argmax()), "Class")
        resolved = ClassLogit(index, spec.labels[index], spec.multi_label)
        gradients = weighted = None
        if need_grad:
            gradients, weighted = attention_gradients(resolved.score(outputs, inputs)[0], outputs.attentions,
                                                      keep=not display)
    logits = logits.detach().cpu()
    scores = torch.sigmoid(logits) if spec.multi_label else torch.softmax(logits, dim=-1)
    tokens = patch_tokens(spec.prefix_tokens, spec.patch_grid)
    if len(tokens) != stacked.shape[-1]:
        raise RuntimeError(
            f"'{spec.name}' produced {stacked.shape[-1]} tokens but its config implies {len(tokens)} "
            f"({spec.prefix_tokens} prefix + {spec.patch_grid[0]}x{spec.patch_grid[1]} patches)."
        )
    special = torch.zeros(len(tokens), dtype=torch.bool)
    special[: spec.prefix_tokens] = True
    return ImageCapture(
        kind=spec.kind, tokens=tokens, attentions=stacked, special=special,
        pooling_weights=pooling_weights_for(spec.pooling, ~special),  # BEiT mean-pools the patch tokens
        inputs=cpu_inputs({"pixel_values": pixels}), target=resolved, target_value=float(logits[index]),
        scores=scores.float(), score_labels=spec.labels, weighted=weighted, gradients=gradients,
        grid=spec.patch_grid, prefix_tokens=spec.prefix_tokens, image=model_picture(loaded.processor, pixels),
        logits=logits.float(),
    )
