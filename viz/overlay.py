"""Relevance-over-image overlays with numpy and PIL only.

Used by the plotly figures and by the command line ``--overlay FILE.png``,
so this module must not import plotly (nor torch or streamlit).
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from viz.colormaps import apply_colormap


def normalize(
    values: np.ndarray, vmin: float | None = None, vmax: float | None = None
) -> np.ndarray:
    """Rescale values linearly to [0, 1].

    Args:
        values: array of any shape.
        vmin: value mapped to 0; the array minimum when None.
        vmax: value mapped to 1; the array maximum when None.

    Returns:
        float64 array of the same shape, clipped to [0, 1]. A constant input
        (``vmax == vmin``) gives zeros rather than NaN.

    Raises:
        ValueError: for NaN/infinite values or ``vmax < vmin``.
    """
    values = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise ValueError("normalize got NaN or infinite values; clean them before plotting.")
    if values.size == 0:
        return values.copy()
    low = float(values.min()) if vmin is None else float(vmin)
    high = float(values.max()) if vmax is None else float(vmax)
    if high < low:
        raise ValueError(f"normalize needs vmin <= vmax, got vmin={low} and vmax={high}.")
    if high == low:
        return np.zeros_like(values)
    return np.clip((values - low) / (high - low), 0.0, 1.0)


def _bilinear_weights(src_size: int, dst_size: int) -> np.ndarray:
    """(dst_size, src_size) matrix that resamples one axis bilinearly.

    Uses pixel-centre alignment (``align_corners=False`` in torch, PIL's
    convention): destination pixel i samples source coordinate
    ``(i + 0.5) * src / dst - 0.5``, clamped to the edge pixels.
    """
    coords = (np.arange(dst_size) + 0.5) * (src_size / dst_size) - 0.5
    coords = np.clip(coords, 0.0, src_size - 1)
    lower = np.floor(coords).astype(np.int64)
    upper = np.minimum(lower + 1, src_size - 1)
    frac = coords - lower
    weights = np.zeros((dst_size, src_size))
    rows = np.arange(dst_size)
    np.add.at(weights, (rows, lower), 1.0 - frac)
    np.add.at(weights, (rows, upper), frac)
    return weights


def upsample_grid(grid: np.ndarray, height: int, width: int, smooth: bool = True) -> np.ndarray:
    """Resize a patch grid to image size.

    Args:
        grid: (rows, cols) values, e.g. one relevance value per ViT patch.
        height: output height in pixels.
        width: output width in pixels.
        smooth: bilinear interpolation when True; nearest neighbour (one
            constant block per patch) when False.

    Returns:
        (height, width) float64 array. Bilinear output stays within the
        grid's value range.
    """
    grid = np.asarray(grid, dtype=np.float64)
    if grid.ndim != 2 or grid.size == 0:
        raise ValueError(
            f"upsample_grid needs a non-empty 2-D (rows, cols) grid, got shape {grid.shape}; "
            "reshape per-patch values to the model's patch grid first."
        )
    if height < 1 or width < 1:
        raise ValueError(f"upsample_grid needs a positive size, got {height}x{width}.")
    rows, cols = grid.shape
    if smooth:
        # separable bilinear: (height, rows) @ (rows, cols) @ (cols, width)
        return _bilinear_weights(rows, height) @ grid @ _bilinear_weights(cols, width).T
    row_index = np.minimum(((np.arange(height) + 0.5) * rows / height).astype(np.int64), rows - 1)
    col_index = np.minimum(((np.arange(width) + 0.5) * cols / width).astype(np.int64), cols - 1)
    return grid[np.ix_(row_index, col_index)]


def overlay(
    image: np.ndarray,
    grid: np.ndarray,
    colormap: str = "inferno",
    opacity: float = 0.5,
    smooth: bool = True,
    vmin: float | None = None,
    vmax: float | None = None,
) -> np.ndarray:
    """Alpha-blend a colour-mapped relevance grid over an image.

    ``out = (1 - opacity) * image + opacity * colormap(normalize(grid))``

    Args:
        image: (H, W, 3) uint8 RGB image.
        grid: (rows, cols) relevance per patch (any scale; min-max normalised).
        colormap: one of :data:`viz.colormaps.COLORMAPS`.
        opacity: weight of the heatmap in [0, 1]; 0 returns the image unchanged.
        smooth: bilinear (True) or blocky nearest-neighbour (False) upsampling.
        vmin: relevance shown as the lowest colour; the grid minimum when None.
        vmax: relevance shown as the highest colour; the grid maximum when None.

    Returns:
        (H, W, 3) uint8 RGB image.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(
            f"overlay needs an (H, W, 3) uint8 RGB image, got {image.dtype} {image.shape}; "
            "convert with np.asarray(pil_image.convert('RGB'))."
        )
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be in [0, 1], got {opacity}.")
    height, width = image.shape[:2]
    heat = upsample_grid(normalize(grid, vmin, vmax), height, width, smooth=smooth)
    colours = apply_colormap(heat, colormap).astype(np.float64)  # (H, W, 3)
    blended = (1.0 - opacity) * image.astype(np.float64) + opacity * colours
    return np.rint(blended).astype(np.uint8)


def to_png_bytes(array: np.ndarray) -> bytes:
    """Encode an (H, W), (H, W, 3) or (H, W, 4) uint8 array as PNG bytes."""
    array = np.asarray(array)
    if array.dtype != np.uint8 or not (
        array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))
    ):
        raise ValueError(
            f"to_png_bytes needs a uint8 (H, W), (H, W, 3) or (H, W, 4) array, "
            f"got {array.dtype} {array.shape}."
        )
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()
