"""Does a relevance map find the object? Localisation against ground-truth masks (the generated scenes know
them): Chefer et al.'s segmentation test (the map upsampled bilinearly to pixels, thresholded at its mean:
pixel accuracy, mean IoU of object and background, average precision of the continuous map), and the pointing
game (the top patch within one patch of the object) with its class-sensitive variant.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def upsample_relevance(relevance: torch.Tensor | np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """(rows, cols) -> (H, W) bilinear with pixel-centre alignment (as the overlays draw it)."""
    grid = torch.as_tensor(np.asarray(relevance, dtype=np.float32))[None, None]
    return F.interpolate(grid, size=size, mode="bilinear", align_corners=False)[0, 0]


def localisation_scores(relevance: torch.Tensor | np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """Pixel accuracy, mean IoU (object and background) and average precision of a relevance map against
    an object's (H, W) bool mask; the map is upsampled to the mask and thresholded at its mean."""
    from sklearn.metrics import average_precision_score

    mask = np.asarray(mask, dtype=bool)
    heat = upsample_relevance(relevance, mask.shape).numpy()
    predicted = heat > heat.mean()
    foreground = (predicted & mask).sum() / max((predicted | mask).sum(), 1)
    background = (~predicted & ~mask).sum() / max((~predicted | ~mask).sum(), 1)
    precision = float(average_precision_score(mask.reshape(-1), heat.reshape(-1))) if mask.any() else float("nan")
    return {"pixel_accuracy": float((predicted == mask).mean()), "mean_iou": float((foreground + background) / 2),
            "average_precision": precision}


def patch_masks(masks: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """Object masks at patch resolution: a patch counts if any of its pixels is in the object.

    Args:
        masks: (K, H, W) bool pixel masks; H and W must be multiples of the grid.
        grid: (rows, cols) patch grid.

    Returns:
        (K, rows, cols) bool.
    """
    k, height, width = masks.shape
    rows, cols = grid
    if height % rows or width % cols:
        raise ValueError(f"A {height}x{width} mask does not split into a {rows}x{cols} patch grid.")
    blocks = masks.reshape(k, rows, height // rows, cols, width // cols)
    return blocks.any(axis=(2, 4))


def dilate(patch_mask: np.ndarray) -> np.ndarray:
    """Grow patch masks by one patch in the 8-neighbourhood.

    Args:
        patch_mask: (..., rows, cols) bool.

    Returns:
        (..., rows, cols) bool.
    """
    padded = np.pad(patch_mask, [(0, 0)] * (patch_mask.ndim - 2) + [(1, 1), (1, 1)])
    rows, cols = patch_mask.shape[-2:]
    grown = np.zeros_like(patch_mask)
    for dr in range(3):
        for dc in range(3):
            grown |= padded[..., dr:dr + rows, dc:dc + cols]
    return grown


def top_patch(relevance: np.ndarray) -> tuple[int, int]:
    """(row, col) of the highest-relevance patch of a (rows, cols) map (first in row-major order on ties)."""
    flat = int(np.argmax(relevance))
    return divmod(flat, relevance.shape[1])


def patch_distance(patch: tuple[int, int], patch_mask: np.ndarray) -> int:
    """Chebyshev distance, in patches, from ``patch`` to the nearest patch of a (rows, cols) mask.

    0 means the patch touches the object; 1 means it is in the one-patch dilation.
    """
    rows, cols = np.nonzero(patch_mask)
    if len(rows) == 0:
        raise ValueError("An object with an empty patch mask cannot be scored.")
    return int(np.min(np.maximum(np.abs(rows - patch[0]), np.abs(cols - patch[1]))))


def is_class_sensitive(patch: tuple[int, int], object_index: int, object_patches: np.ndarray) -> bool:
    """Whether a top patch points at object ``object_index`` rather than at the scene's other objects.

    The patch is sensitive iff it lies within one patch of that object (the pointing
    game's tolerance) and strictly closer to it than to every other object, distance
    being ``patch_distance``. Ties and patches near no object count as not sensitive.

    Args:
        patch: (row, col) of the explanation's top patch.
        object_index: index k of the targeted object.
        object_patches: (K, rows, cols) undilated patch masks of all the scene's objects, K >= 2.
    """
    distances = [patch_distance(patch, mask) for mask in object_patches]
    own = distances.pop(object_index)
    return own <= 1 and all(own < other for other in distances)
