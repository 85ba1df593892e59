"""An image with a relevance grid blended over it, with per-patch hover."""

from __future__ import annotations

import html

import numpy as np
import plotly.graph_objects as go

from viz.colormaps import plotly_colorscale
from viz.overlay import overlay
from viz.plotting import NUMBER_AXIS, as_finite, check_range


def image_overlay_figure(
    image: np.ndarray,
    grid: np.ndarray,
    title: str = "Relevance",
    colormap: str = "inferno",
    opacity: float = 0.5,
    smooth: bool = True,
    highlight_patch: tuple[int, int] | None = None,
    zmin: float | None = None,
    zmax: float | None = None,
    show_patch_grid: bool = True,
    value_label: str = "relevance",
    show_scale: bool = True,
) -> go.Figure:
    """Image with a colour-mapped relevance grid blended over it.

    The blend is computed by :func:`viz.overlay.overlay` and shown with
    ``go.Image``. An invisible Heatmap over the patch grid gives per-patch
    hover ("patch row r, col c: value") and the colour bar, whose ticks are in
    the grid's own units.

    Args:
        image: (H, W, 3) uint8 RGB image (the model's input resolution).
        grid: (rows, cols) relevance per patch.
        title: figure title.
        colormap: one of :data:`viz.colormaps.COLORMAPS`.
        opacity: heatmap weight in [0, 1].
        smooth: bilinear (True) or blocky (False) upsampling of the grid.
        highlight_patch: (row, col) of a patch to outline, e.g. the selected query patch.
        zmin: relevance at the bottom of the colour scale; grid minimum when None.
        zmax: relevance at the top of the colour scale; grid maximum when None.
        show_patch_grid: draw faint lines between patches.
        value_label: colour bar title.
        show_scale: draw the colour bar (off for a picture shown without a map over it).
    """
    grid = as_finite(grid, "grid", 2)
    check_range(zmin, zmax)
    blended = overlay(image, grid, colormap, opacity, smooth, vmin=zmin, vmax=zmax)
    height, width = blended.shape[:2]
    n_rows, n_cols = grid.shape
    patch_h, patch_w = height / n_rows, width / n_cols
    # go.Image puts pixel (i, j) at (x=j, y=i); patch edges are at k * patch size - 0.5.
    x_centres = (np.arange(n_cols) + 0.5) * patch_w - 0.5
    y_centres = (np.arange(n_rows) + 0.5) * patch_h - 0.5
    patch_index = np.stack(np.meshgrid(np.arange(n_rows), np.arange(n_cols), indexing="ij"), -1)
    label = html.escape(value_label, quote=False)
    fig = go.Figure(
        [
            go.Image(z=blended, hoverinfo="skip"),
            go.Heatmap(
                z=grid,
                x=x_centres,
                y=y_centres,
                customdata=patch_index,
                opacity=0.0,
                coloraxis="coloraxis",
                hovertemplate=(
                    "patch row %{customdata[0]}, col %{customdata[1]}"
                    f"<br>{label}: %{{z:.4g}}<extra></extra>"
                ),
            ),
        ]
    )
    shapes = []
    if show_patch_grid and (n_rows > 1 or n_cols > 1):
        path = [f"M{c * patch_w - 0.5},-0.5 L{c * patch_w - 0.5},{height - 0.5}" for c in range(1, n_cols)]
        path += [f"M-0.5,{r * patch_h - 0.5} L{width - 0.5},{r * patch_h - 0.5}" for r in range(1, n_rows)]
        shapes.append({
            "type": "path", "path": " ".join(path),
            "line": {"color": "rgba(255,255,255,0.25)", "width": 0.5},
        })
    if highlight_patch is not None:
        row, col = highlight_patch
        if not (0 <= row < n_rows and 0 <= col < n_cols):
            raise ValueError(
                f"highlight_patch {highlight_patch} is outside the {n_rows}x{n_cols} patch grid."
            )
        shapes.append({
            "type": "rect",
            "x0": col * patch_w - 0.5, "x1": (col + 1) * patch_w - 0.5,
            "y0": row * patch_h - 0.5, "y1": (row + 1) * patch_h - 0.5,
            "line": {"color": "cyan", "width": 2},
        })
    fig.update_layout(
        title={"text": html.escape(title, quote=False)},
        shapes=shapes,
        xaxis={"visible": False, "range": [-0.5, width - 0.5], "constrain": "domain"},
        yaxis={
            "visible": False, "range": [height - 0.5, -0.5],
            "scaleanchor": "x", "constrain": "domain",
        },
        coloraxis={
            "colorscale": plotly_colorscale(colormap),
            "cmin": float(grid.min()) if zmin is None else float(zmin),
            "cmax": float(grid.max()) if zmax is None else float(zmax),
            "colorbar": {"title": {"text": label}, **NUMBER_AXIS},
            "showscale": show_scale,
        },
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
    )
    return fig


def patch_tiles(picture: np.ndarray, grid: tuple[int, int], gap: int = 3, zoom: int = 4,
                title: str = "The patches, row by row") -> go.Figure:
    """The picture cut into its patches, drawn apart at their places in the grid (the order a ViT reads them: row
    by row, left to right), each patch enlarged `zoom` times, row and column numbers on the axes.

    Args:
        picture: (H, W, 3) uint8, H and W multiples of the grid.
        grid: (rows, cols).
    """
    rows, cols = grid
    height, width = picture.shape[:2]
    if height % rows or width % cols:
        raise ValueError(f"A {height}x{width} picture does not split into a {rows}x{cols} patch grid.")
    patch_h, patch_w = height // rows * zoom, width // cols * zoom
    canvas = np.full((rows * (patch_h + gap) - gap, cols * (patch_w + gap) - gap, 3), 255, dtype=np.uint8)
    enlarged = picture.repeat(zoom, axis=0).repeat(zoom, axis=1)
    for r in range(rows):
        for c in range(cols):
            canvas[r * (patch_h + gap):r * (patch_h + gap) + patch_h, c * (patch_w + gap):c * (patch_w + gap) + patch_w] = \
                enlarged[r * patch_h:(r + 1) * patch_h, c * patch_w:(c + 1) * patch_w]
    x_centres = [c * (patch_w + gap) + patch_w / 2 for c in range(cols)]
    y_centres = [r * (patch_h + gap) + patch_h / 2 for r in range(rows)]
    fig = go.Figure(go.Image(z=canvas, hoverinfo="skip"))
    fig.update_layout(
        title={"text": html.escape(title, quote=False)}, margin={"l": 50, "r": 10, "t": 80, "b": 40},
        xaxis={"tickmode": "array", "tickvals": x_centres, "ticktext": [str(c) for c in range(cols)], "side": "top",
               "showgrid": False},
        yaxis={"title": {"text": "row"}, "tickmode": "array", "tickvals": y_centres,
               "ticktext": [str(r) for r in range(rows)], "showgrid": False, "scaleanchor": "x"},
    )
    return fig
