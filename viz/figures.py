"""Plotly figures for attention maps, head statistics, relevance and predictions.

Every function takes numpy arrays and returns a ``plotly.graph_objects.Figure``
with a title, axis labels, the requested colour map (see
:data:`viz.colormaps.COLORMAPS`) and optional ``zmin``/``zmax``.

Text shown by plotly (tick labels, hover) is HTML-escaped, because plotly
renders a pseudo-HTML subset: RoBERTa's ``<s>`` token would otherwise turn
into a strike-through tag and vanish.

Long inputs: a 512-token text gives a 512x512 attention matrix. Rather than
rely on a WebGL trace (plotly removed ``heatmapgl``), :func:`attention_heatmap`
block-reduces matrices larger than :data:`MAX_HEATMAP_CELLS` per axis on the
server (:func:`reduce_matrix`) and labels the axes with token ranges, which
keeps both the JSON payload and the browser's hover index small.
"""

from __future__ import annotations

import copy
import functools
import html
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from viz.colormaps import plotly_colorscale
from viz.overlay import overlay

# Matrices with more rows/columns than this are block-reduced in attention_heatmap.
MAX_HEATMAP_CELLS = 256
# Per-subplot limit in head_grid: a subplot is ~60-100 px wide, more cells cannot show.
MAX_HEAD_GRID_CELLS = 64
# stat_heatmap writes the numbers into the cells up to this many cells.
MAX_TEXT_CELLS = 200


def plotly_config(filename: str = "attention") -> dict:
    """Config for ``st.plotly_chart(fig, config=...)``: PNG download at 2x, no plotly logo.

    Args:
        filename: file name (without extension) offered by the modebar's camera button.
    """
    return {
        "displaylogo": False,
        "toImageButtonOptions": {"format": "png", "scale": 2, "filename": filename},
    }


# Shared default; use plotly_config(filename) for a per-figure name instead of mutating this.
PLOTLY_CONFIG: dict = plotly_config()


def unique_labels(tokens: Sequence[str]) -> list[str]:
    """Distinct axis labels for tokens: the position, a space, the token ("5 the").

    A categorical plotly axis merges equal labels, so the two "the" of a
    sentence would share one row; prefixing the position keeps them apart.
    """
    return [f"{position} {token}" for position, token in enumerate(tokens)]


def _plotly_text(labels: Sequence[str]) -> list[str]:
    """Escape labels for plotly's pseudo-HTML text rendering."""
    return [html.escape(str(label), quote=False) for label in labels]


def _groups(size: int, max_size: int) -> list[tuple[int, int]]:
    """Split range(size) into contiguous (start, stop) groups, at most max_size of them.

    All groups have the same length ``ceil(size / max_size)`` except possibly the last.
    """
    step = -(-size // max_size)  # ceil
    return [(start, min(start + step, size)) for start in range(0, size, step)]


def _reduce_last_two(
    array: np.ndarray, max_size: int
) -> tuple[np.ndarray, list[tuple[int, int]], list[tuple[int, int]]]:
    """reduce_matrix over the last two axes of an (..., rows, cols) array."""
    if max_size < 1:
        raise ValueError(f"max_size must be at least 1, got {max_size}.")
    rows, cols = array.shape[-2:]
    row_groups, col_groups = _groups(rows, max_size), _groups(cols, max_size)
    row_starts = [start for start, _ in row_groups]
    col_starts = [start for start, _ in col_groups]
    row_counts = np.array([stop - start for start, stop in row_groups], dtype=np.float64)
    # rows: block mean (average query in the group); cols: block sum (attention mass on the key range)
    summed = np.add.reduceat(np.add.reduceat(array, row_starts, axis=-2), col_starts, axis=-1)
    return summed / row_counts[:, None], row_groups, col_groups


def reduce_matrix(
    matrix: np.ndarray, max_size: int
) -> tuple[np.ndarray, list[tuple[int, int]], list[tuple[int, int]]]:
    """Block-reduce a (T_q, T_k) matrix to at most max_size x max_size cells.

    Convention: rows (queries) are block-averaged and columns (keys) are
    block-summed. A reduced cell is then "the attention mass an average query
    of this row group puts on this key range", so a row-stochastic matrix
    stays row-stochastic. Groups are contiguous and of equal length
    ``ceil(T / max_size)`` except possibly the last, whose summed columns
    cover fewer keys.

    Args:
        matrix: (T_q, T_k) array.
        max_size: largest number of cells kept per axis.

    Returns:
        reduced: (len(row_groups), len(col_groups)) float64 array.
        row_groups: half-open (start, stop) query index ranges, one per reduced row.
        col_groups: half-open (start, stop) key index ranges, one per reduced column.
        An axis already within max_size keeps one group per index.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.size == 0:
        raise ValueError(f"reduce_matrix needs a non-empty 2-D matrix, got shape {matrix.shape}.")
    return _reduce_last_two(matrix, max_size)


def _range_labels(tokens: Sequence[str], groups: list[tuple[int, int]]) -> list[str]:
    """Labels for token groups: "5 the" for a single token, "4–7 the…cat" for a range."""
    labels = unique_labels(tokens)
    return [
        labels[start] if stop - start == 1 else f"{start}–{stop - 1} {tokens[start]}…{tokens[stop - 1]}"
        for start, stop in groups
    ]


def _check_range(zmin: float | None, zmax: float | None) -> None:
    if zmin is not None and zmax is not None and zmax < zmin:
        raise ValueError(f"zmin must not exceed zmax, got zmin={zmin} and zmax={zmax}.")


def _as_finite(values: np.ndarray | Sequence[float], name: str, ndim: int) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {array.shape}.")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values; clean them before plotting.")
    return array


def attention_heatmap(
    matrix: np.ndarray,
    x_labels: Sequence[str],
    y_labels: Sequence[str],
    title: str = "Attention",
    colormap: str = "viridis",
    zmin: float | None = None,
    zmax: float | None = None,
    max_cells: int = MAX_HEATMAP_CELLS,
    value_label: str = "attention",
) -> go.Figure:
    """Heatmap of one attention matrix: queries on y (top to bottom), keys on x.

    Args:
        matrix: (T_q, T_k) attention weights (or any query x key scores).
        x_labels: T_k key tokens (raw tokens; made unique with :func:`unique_labels`).
        y_labels: T_q query tokens.
        title: figure title.
        colormap: one of :data:`viz.colormaps.COLORMAPS`.
        zmin: value at the bottom of the colour scale; data minimum when None.
        zmax: value at the top of the colour scale; data maximum when None.
        max_cells: axes longer than this are block-reduced with :func:`reduce_matrix`
            (rows averaged, columns summed) and labelled with token ranges.
        value_label: colour bar title.

    Returns:
        Figure with one Heatmap trace whose z is the (possibly reduced) matrix as float32.
    """
    matrix = _as_finite(matrix, "matrix", 2)
    if matrix.shape != (len(y_labels), len(x_labels)):
        raise ValueError(
            f"matrix shape {matrix.shape} does not match {len(y_labels)} query labels (rows) "
            f"and {len(x_labels)} key labels (columns)."
        )
    _check_range(zmin, zmax)
    reduced = max(matrix.shape) > max_cells
    if reduced:
        z, row_groups, col_groups = reduce_matrix(matrix, max_cells)
        y_text = _range_labels(y_labels, row_groups)
        x_text = _range_labels(x_labels, col_groups)
        title = (
            f"{html.escape(title, quote=False)}<br><sup>{matrix.shape[0]}×{matrix.shape[1]} "
            f"reduced to {z.shape[0]}×{z.shape[1]}: query rows averaged, key columns summed</sup>"
        )
    else:
        z, y_text, x_text = matrix, unique_labels(y_labels), unique_labels(x_labels)
        title = html.escape(title, quote=False)
    fig = go.Figure(
        go.Heatmap(
            z=z.astype(np.float32),
            x=_plotly_text(x_text),
            y=_plotly_text(y_text),
            colorscale=plotly_colorscale(colormap),
            zmin=zmin,
            zmax=zmax,
            colorbar={"title": {"text": value_label}},
            hovertemplate="%{y} → %{x}: %{z:.4g}<extra></extra>",
        )
    )
    rows = z.shape[0]
    fig.update_layout(
        title={"text": title},
        xaxis={"title": {"text": "key token"}, "type": "category", "tickangle": -60},
        yaxis={"title": {"text": "query token"}, "type": "category", "autorange": "reversed"},
        height=int(np.clip(160 + 14 * rows, 420, 900)),
    )
    return fig


def head_grid(
    maps: np.ndarray,
    layers: Sequence[int] | None = None,
    heads: Sequence[int] | None = None,
    title: str = "Attention per layer and head",
    colormap: str = "viridis",
    zmin: float | None = None,
    zmax: float | None = None,
    kind: str = "matrix",
    max_cells: int = MAX_HEAD_GRID_CELLS,
    value_label: str = "attention",
) -> go.Figure:
    """Small multiples: one subplot per layer (row) and head (column), one shared colour scale.

    Args:
        maps: (L, H, N, M) attention matrices (``kind="matrix"``) or
            (L, H, rows, cols) patch-grid images (``kind="image"``).
        layers: L layer numbers for the subplot titles ("L{l} H{h}"); 0..L-1 when None.
            Pass the real indices when showing a subset of layers.
        heads: H head numbers for the subplot titles; 0..H-1 when None.
        title: figure title.
        colormap: one of :data:`viz.colormaps.COLORMAPS`.
        zmin: bottom of the shared colour scale; minimum over all maps when None.
        zmax: top of the shared colour scale; maximum over all maps when None.
        kind: "matrix" (query rows top to bottom) or "image" (square patch cells).
        max_cells: for ``kind="matrix"``, maps larger than this per axis are
            block-reduced like :func:`reduce_matrix` (rows averaged, columns summed).
        value_label: colour bar title.

    Returns:
        Figure with L*H Heatmap traces (layer-major order) sharing ``coloraxis``.
    """
    maps = _as_finite(maps, "maps", 4)
    if kind not in ("matrix", "image"):
        raise ValueError(f"kind must be 'matrix' or 'image', got {kind!r}.")
    n_layers, n_heads = maps.shape[:2]
    if n_layers == 0 or n_heads == 0 or maps.shape[2] == 0 or maps.shape[3] == 0:
        raise ValueError(f"head_grid needs at least one non-empty map, got shape {maps.shape}.")
    layers = list(range(n_layers)) if layers is None else list(layers)
    heads = list(range(n_heads)) if heads is None else list(heads)
    if len(layers) != n_layers or len(heads) != n_heads:
        raise ValueError(
            f"maps has {n_layers} layers and {n_heads} heads but {len(layers)} layer and "
            f"{len(heads)} head indices were given."
        )
    _check_range(zmin, zmax)

    note = ""
    if kind == "matrix":
        hover = "query %{y} → key %{x}: %{z:.3g}"
    else:
        hover = "patch row %{y}, col %{x}: %{z:.3g}"
    x_coords = y_coords = None
    if kind == "matrix" and max(maps.shape[2:]) > max_cells:
        original = maps.shape[2:]
        maps, row_groups, col_groups = _reduce_last_two(maps, max_cells)
        # cells are placed at the first token index of their group so hover reads token positions
        y_coords = [start for start, _ in row_groups]
        x_coords = [start for start, _ in col_groups]
        hover = "queries from %{y} → keys from %{x}: %{z:.3g}"
        note = (
            f"<br><sup>{original[0]}×{original[1]} maps reduced to {maps.shape[2]}×{maps.shape[3]}"
            ": query rows averaged, key columns summed</sup>"
        )
    cmin = float(maps.min()) if zmin is None else float(zmin)
    cmax = float(maps.max()) if zmax is None else float(zmax)

    # Pixel budget per subplot; the vertical gap leaves room for the "L{l} H{h}" titles.
    cell = int(np.clip(900 / n_heads, 50, 110))
    width = n_heads * (cell + _GRID_SIDE_GAP) + 140
    height = n_layers * (cell + _GRID_TITLE_GAP) + 110
    titles = tuple(f"L{layer} H{head}" for layer in layers for head in heads)
    layout = _subplot_layout(n_layers, n_heads, titles, width, height)
    for name, axis in layout.items():
        if kind == "image" and name.startswith(("xaxis", "yaxis")):
            # square patch cells: shrink each subplot's domain, not its range
            axis.update(constrain="domain")
            if name.startswith("yaxis"):
                axis.update(scaleanchor="x" + name[len("yaxis"):])
    traces = []
    for li, layer in enumerate(layers):
        for hi, head in enumerate(heads):
            suffix = "" if li == 0 and hi == 0 else str(li * n_heads + hi + 1)
            traces.append({
                "type": "heatmap",
                "z": maps[li, hi].astype(np.float32),
                "x": x_coords,
                "y": y_coords,
                "xaxis": "x" + suffix,
                "yaxis": "y" + suffix,
                "coloraxis": "coloraxis",
                "hovertemplate": f"L{layer} H{head}<br>{hover}<extra></extra>",
            })
    layout.update(
        title={"text": html.escape(title, quote=False) + note},
        coloraxis={
            "colorscale": plotly_colorscale(colormap),
            "cmin": cmin,
            "cmax": cmax,
            "colorbar": {"title": {"text": html.escape(value_label, quote=False)}},
        },
        height=height,
        margin={"l": 20, "r": 20, "t": 80, "b": 20},
    )
    # One validated constructor call: per-axis update_layout/add_traces over 2*L*H axes
    # costs seconds for 12x12 heads.
    return go.Figure(data=traces, layout=layout)


_GRID_SIDE_GAP = 6  # px between subplot columns
_GRID_TITLE_GAP = 18  # px between subplot rows, holds the subplot title


@functools.lru_cache(maxsize=16)
def _subplot_layout_cached(
    n_layers: int, n_heads: int, titles: tuple[str, ...], width: int, height: int
) -> dict:
    fig = make_subplots(
        rows=n_layers,
        cols=n_heads,
        subplot_titles=titles,
        horizontal_spacing=_GRID_SIDE_GAP / width if n_heads > 1 else 0.0,
        vertical_spacing=_GRID_TITLE_GAP / height if n_layers > 1 else 0.0,
    )
    layout = fig.layout.to_plotly_json()
    bare_axis = {"showticklabels": False, "ticks": "", "showgrid": False, "zeroline": False}
    for name, axis in layout.items():
        if name.startswith("xaxis"):
            axis.update(bare_axis)
        elif name.startswith("yaxis"):
            axis.update(bare_axis, autorange="reversed")
    for annotation in layout.get("annotations", []):
        annotation["font"] = {"size": 10}
    return layout


def _subplot_layout(
    n_layers: int, n_heads: int, titles: tuple[str, ...], width: int, height: int
) -> dict:
    """Layout dict of an L x H make_subplots grid with bare axes and small titles.

    make_subplots takes most of head_grid's time (~0.5 s for 12x12), and a page
    rebuilds the same grid whenever the colour map or scale changes, so the
    layout is memoised and a deep copy handed out (callers modify it).
    """
    return copy.deepcopy(_subplot_layout_cached(n_layers, n_heads, titles, width, height))


def stat_heatmap(
    values: np.ndarray,
    title: str = "Head statistic",
    colormap: str = "viridis",
    value_label: str = "value",
    zmin: float | None = None,
    zmax: float | None = None,
    layers: Sequence[int] | None = None,
    heads: Sequence[int] | None = None,
) -> go.Figure:
    """Layer x head heatmap of one per-head statistic (entropy, distance, ...).

    Args:
        values: (L, H) statistic per layer and head.
        title: figure title.
        colormap: one of :data:`viz.colormaps.COLORMAPS`.
        value_label: name of the statistic (colour bar title and hover).
        zmin: bottom of the colour scale; data minimum when None.
        zmax: top of the colour scale; data maximum when None.
        layers: L layer numbers for the y axis; 0..L-1 when None.
        heads: H head numbers for the x axis; 0..H-1 when None.

    Returns:
        Figure with one Heatmap (layer 0 on top); values are written in the
        cells when there are at most :data:`MAX_TEXT_CELLS` of them.
    """
    values = _as_finite(values, "values", 2)
    _check_range(zmin, zmax)
    n_layers, n_heads = values.shape
    layers = list(range(n_layers)) if layers is None else list(layers)
    heads = list(range(n_heads)) if heads is None else list(heads)
    if len(layers) != n_layers or len(heads) != n_heads:
        raise ValueError(
            f"values has shape {values.shape} but {len(layers)} layer and {len(heads)} head "
            "indices were given."
        )
    label = html.escape(value_label, quote=False)
    fig = go.Figure(
        go.Heatmap(
            z=values,
            x=[str(head) for head in heads],
            y=[str(layer) for layer in layers],
            colorscale=plotly_colorscale(colormap),
            zmin=zmin,
            zmax=zmax,
            colorbar={"title": {"text": label}},
            texttemplate="%{z:.3g}" if values.size <= MAX_TEXT_CELLS else None,
            hovertemplate=f"layer %{{y}}, head %{{x}}<br>{label}: %{{z:.4g}}<extra></extra>",
        )
    )
    fig.update_layout(
        title={"text": html.escape(title, quote=False)},
        xaxis={"title": {"text": "head"}, "type": "category"},
        yaxis={"title": {"text": "layer"}, "type": "category", "autorange": "reversed"},
    )
    return fig


def relevance_bar(
    tokens: Sequence[str],
    values: np.ndarray,
    title: str = "Relevance per token",
    colormap: str = "reds",
    zmin: float | None = None,
    zmax: float | None = None,
    orientation: str = "v",
    value_label: str = "relevance",
) -> go.Figure:
    """Bar chart of one relevance value per token, in reading order.

    Args:
        tokens: T tokens (made unique with :func:`unique_labels`).
        values: (T,) relevance per token.
        title: figure title.
        colormap: one of :data:`viz.colormaps.COLORMAPS`, colours the bars by value.
        zmin: value of the lightest bar colour; data minimum when None.
        zmax: value of the darkest bar colour; data maximum when None.
        orientation: "v" (tokens left to right) or "h" (tokens top to bottom).
        value_label: name of the value axis.
    """
    values = _as_finite(values, "values", 1)
    if len(tokens) != len(values):
        raise ValueError(f"got {len(tokens)} tokens but {len(values)} values.")
    if orientation not in ("v", "h"):
        raise ValueError(f"orientation must be 'v' or 'h', got {orientation!r}.")
    _check_range(zmin, zmax)
    labels = _plotly_text(unique_labels(tokens))
    label = html.escape(value_label, quote=False)
    marker = {
        "color": values,
        "colorscale": plotly_colorscale(colormap),
        "cmin": float(values.min()) if zmin is None and len(values) else zmin,
        "cmax": float(values.max()) if zmax is None and len(values) else zmax,
    }
    if orientation == "v":
        bar = go.Bar(x=labels, y=values, marker=marker,
                     hovertemplate=f"%{{x}}<br>{label}: %{{y:.4g}}<extra></extra>")
        token_axis, value_axis = "xaxis", "yaxis"
    else:
        bar = go.Bar(x=values, y=labels, orientation="h", marker=marker,
                     hovertemplate=f"%{{y}}<br>{label}: %{{x:.4g}}<extra></extra>")
        token_axis, value_axis = "yaxis", "xaxis"
    fig = go.Figure(bar)
    token_layout: dict = {"title": {"text": "token"}, "type": "category"}
    if orientation == "h":
        token_layout["autorange"] = "reversed"
    else:
        token_layout["tickangle"] = -60
    fig.update_layout(
        {token_axis: token_layout, value_axis: {"title": {"text": label}}},
        title={"text": html.escape(title, quote=False)},
    )
    return fig


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
    """
    grid = _as_finite(grid, "grid", 2)
    _check_range(zmin, zmax)
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
            "colorbar": {"title": {"text": label}},
        },
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
    )
    return fig


def scores_bar(
    labels: Sequence[str],
    scores: np.ndarray | Sequence[float],
    title: str = "Top predictions",
    colormap: str = "blues",
    zmin: float = 0.0,
    zmax: float = 1.0,
    top_k: int | None = None,
    value_label: str = "probability",
) -> go.Figure:
    """Horizontal bars of class or zero-shot label scores, highest on top.

    Args:
        labels: K class names (duplicates are allowed; bars are placed by position).
        scores: (K,) scores within [zmin, zmax]: softmax probabilities with the
            default [0, 1], cosine similarities with ``zmin=-1.0``.
        title: figure title.
        colormap: one of :data:`viz.colormaps.COLORMAPS`, colours the bars by score.
        zmin: left end of the score axis (bars are coloured from a third of the
            way up the colour map at zmin to its end at zmax).
        zmax: right end of the score axis.
        top_k: keep only the k highest scores; all when None.
        value_label: name of the score axis.

    Returns:
        Figure with one horizontal Bar trace, x sorted descending (top to bottom).
    """
    scores = _as_finite(scores, "scores", 1)
    if len(labels) != len(scores):
        raise ValueError(f"got {len(labels)} labels but {len(scores)} scores.")
    _check_range(zmin, zmax)
    tolerance = 1e-6 * (zmax - zmin)
    if len(scores) and (scores.min() < zmin - tolerance or scores.max() > zmax + tolerance):
        raise ValueError(
            f"scores span [{scores.min():.4g}, {scores.max():.4g}], outside the axis range "
            f"[{zmin:.4g}, {zmax:.4g}]; pass zmin=-1.0 for cosine similarities, or apply "
            "softmax to logits first."
        )
    order = np.argsort(-scores, kind="stable")[:top_k]
    sorted_scores = scores[order]
    sorted_labels = _plotly_text([labels[i] for i in order])
    positions = np.arange(len(order))
    label = html.escape(value_label, quote=False)
    fig = go.Figure(
        go.Bar(
            x=sorted_scores,
            y=positions,
            orientation="h",
            customdata=sorted_labels,
            marker={
                "color": sorted_scores, "colorscale": plotly_colorscale(colormap),
                # zmin sits a third of the way up the map, so low-score bars of maps that
                # start near white ("blues", "reds") stay visible on a white page
                "cmin": zmin - 0.5 * (zmax - zmin), "cmax": zmax,
            },
            texttemplate="%{x:.3f}",
            textposition="auto",
            hovertemplate=f"%{{customdata}}<br>{label}: %{{x:.4f}}<extra></extra>",
        )
    )
    fig.update_layout(
        title={"text": html.escape(title, quote=False)},
        xaxis={"title": {"text": label}, "range": [zmin, zmax]},
        yaxis={
            "title": {"text": "label"}, "autorange": "reversed",
            "tickmode": "array", "tickvals": positions.tolist(), "ticktext": sorted_labels,
        },
        height=int(np.clip(120 + 28 * len(order), 250, 800)),
    )
    return fig
