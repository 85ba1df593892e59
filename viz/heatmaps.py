"""Attention maps as heatmaps: one layer and head, every layer x head as small multiples, and
one statistic per layer and head.

Long inputs: a 512-token text gives a 512x512 attention matrix. Rather than rely on a WebGL trace
(plotly removed ``heatmapgl``), :func:`attention_heatmap` block-reduces matrices larger than
:data:`MAX_HEATMAP_CELLS` per axis on the server (:func:`reduce_matrix`) and labels the axes with
token ranges, which keeps both the JSON payload and the browser's hover index small.
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
from viz.plotting import NUMBER_AXIS, as_finite, check_range, plotly_text, tick_font_size, unique_labels

# Matrices with more rows/columns than this are block-reduced in attention_heatmap.
MAX_HEATMAP_CELLS = 256
# Per-subplot limit in head_grid: a subplot is ~60-100 px wide, more cells cannot show.
MAX_HEAD_GRID_CELLS = 64
# stat_heatmap writes the numbers into the cells up to this many cells.
MAX_TEXT_CELLS = 200


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
        labels[start] if stop - start == 1 else f"#{start}–{stop - 1} {tokens[start]}…{tokens[stop - 1]}"
        for start, stop in groups
    ]



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
    masked: np.ndarray | None = None,
    x_title: str = "key token",
    y_title: str = "query token",
    y_start: int = 0,
    divider: int | None = None,
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
        masked: (T_q, T_k) bool, cells the model could not attend to (a decoder's future positions).
            They are drawn grey and hatched with "╱", with their own hover text, so that they do not
            read as "zero attention"; a reduced cell is masked when all of its entries are.
        x_title, y_title: axis titles.
        y_start: the position of the first row's token (rows that are a later part of the keys' sequence, such as
            a decoder's generated tokens, keep their positions in their labels).
        divider: a key position where a second part of the sequence begins (a decoder's generated tokens): a
            dashed line is drawn before it, across the rows too when they are the same sequence.

    Returns:
        Figure whose first Heatmap trace's z is the (possibly reduced) matrix as float32; with `masked`, a
        second trace draws the masked cells.
    """
    matrix = as_finite(matrix, "matrix", 2)
    if masked is not None:
        masked = np.asarray(masked, dtype=bool)
        if masked.shape != matrix.shape:
            raise ValueError(f"masked has shape {masked.shape}, the matrix {matrix.shape}.")
    if matrix.shape != (len(y_labels), len(x_labels)):
        raise ValueError(
            f"matrix shape {matrix.shape} does not match {len(y_labels)} query labels (rows) "
            f"and {len(x_labels)} key labels (columns)."
        )
    check_range(zmin, zmax)
    reduced = max(matrix.shape) > max_cells
    if reduced:
        z, row_groups, col_groups = reduce_matrix(matrix, max_cells)
        y_text = _range_labels(y_labels, row_groups)
        x_text = _range_labels(x_labels, col_groups)
        title = (
            f"{html.escape(title, quote=False)}<br><sup>{matrix.shape[0]}×{matrix.shape[1]} "
            f"reduced to {z.shape[0]}×{z.shape[1]}: query rows averaged, key columns summed</sup>"
        )
        if masked is not None:
            starts_r, starts_c = [a for a, _ in row_groups], [a for a, _ in col_groups]
            counts = np.add.reduceat(np.add.reduceat(masked.astype(np.int64), starts_r, 0), starts_c, 1)
            sizes = np.outer([b - a for a, b in row_groups], [b - a for a, b in col_groups])
            masked = counts == sizes
    else:
        z, y_text, x_text = matrix, unique_labels(y_labels, y_start), unique_labels(x_labels)
        title = html.escape(title, quote=False)
    shown = z.astype(np.float32)
    if masked is not None:
        shown = np.where(masked, np.nan, shown)  # leave the masked cells to the second trace
    x_shown, y_shown = plotly_text(x_text), plotly_text(y_text)
    traces = [
        go.Heatmap(
            z=shown,
            x=x_shown,
            y=y_shown,
            colorscale=plotly_colorscale(colormap),
            zmin=zmin,
            zmax=zmax,
            colorbar={"title": {"text": value_label}, **NUMBER_AXIS},
            hovertemplate="%{y} → %{x}: %{z:.4g}<extra></extra>",
            hoverongaps=False,
        )
    ]
    if masked is not None and masked.any():
        traces.append(go.Heatmap(
            z=np.where(masked, 1.0, np.nan), x=x_shown, y=y_shown, showscale=False, hoverongaps=False,
            colorscale=[[0, "#e6e6e6"], [1, "#e6e6e6"]], zmin=0, zmax=1,
            text=np.where(masked, "╱", ""), texttemplate="%{text}" if masked.shape[0] <= 64 else None,
            textfont={"color": "#9a9a9a"},
            hovertemplate="%{y} → %{x}: masked (a future position)<extra></extra>",
        ))
    fig = go.Figure(traces)
    rows, cols = z.shape
    height = int(np.clip(220 + 18 * rows, 460, 1500))  # room for the rotated key labels below the rows
    # Every label that fits is drawn (plotly's automatic ticks drop every other one at moderate lengths):
    # all ticks at a font size the axis has room for; only when even 7 px does not fit are they thinned.
    y_font, x_font = tick_font_size(rows, height - 200), tick_font_size(cols, 900)
    yaxis = {"title": {"text": y_title}, "type": "category", "autorange": "reversed"}
    xaxis = {"title": {"text": x_title}, "type": "category", "tickangle": -60}
    if y_font:
        yaxis.update(tickmode="array", tickvals=y_shown, ticktext=y_shown, tickfont={"size": y_font})
    if x_font:
        xaxis.update(tickmode="array", tickvals=x_shown, ticktext=x_shown, tickfont={"size": x_font})
    shapes = []
    if divider is not None and not reduced and 0 < divider < cols:
        line = {"color": "#444", "width": 1.5, "dash": "dash"}
        shapes.append({"type": "line", "xref": "x", "yref": "paper", "x0": divider - 0.5, "x1": divider - 0.5,
                       "y0": 0, "y1": 1, "line": line})
        if y_start == 0 and rows == cols:
            shapes.append({"type": "line", "xref": "paper", "yref": "y", "x0": 0, "x1": 1, "y0": divider - 0.5,
                           "y1": divider - 0.5, "line": line})
    fig.update_layout(title={"text": title}, xaxis=xaxis, yaxis=yaxis, height=height, shapes=shapes)
    return fig


def head_grid(
    maps: np.ndarray,
    layers: Sequence[int] | None = None,
    heads: Sequence[int] | None = None,
    title: str = "Attention per layer and head",
    colormap: str = "viridis",
    zmin: float | None = None,
    zmax: float | None = None,
    cells: str = "matrix",
    max_cells: int = MAX_HEAD_GRID_CELLS,
    value_label: str = "attention",
    titles: Sequence[str] | None = None,
) -> go.Figure:
    """Small multiples: one subplot per layer (row) and head (column), one shared colour scale.

    Args:
        maps: (L, H, N, M) attention matrices (``cells="matrix"``) or
            (L, H, rows, cols) patch-grid images (``cells="image"``).
        layers: L layer numbers for the subplot titles ("L{l} H{h}"); 0..L-1 when None.
            Pass the real indices when showing a subset of layers.
        heads: H head numbers for the subplot titles; 0..H-1 when None.
        title: figure title.
        colormap: one of :data:`viz.colormaps.COLORMAPS`.
        zmin: bottom of the shared colour scale; minimum over all maps when None.
        zmax: top of the shared colour scale; maximum over all maps when None.
        cells: "matrix" (query rows top to bottom) or "image" (square patch cells).
        max_cells: for ``cells="matrix"``, maps larger than this per axis are
            block-reduced like :func:`reduce_matrix` (rows averaged, columns summed).
        value_label: colour bar title.
        titles: L*H subplot titles in row-major order, instead of "L{l} H{h}" (other small multiples:
            rollout stages x layers, a patch's similarity to every patch...).

    Returns:
        Figure with L*H Heatmap traces (layer-major order) sharing ``coloraxis``.
    """
    maps = as_finite(maps, "maps", 4)
    if cells not in ("matrix", "image"):
        raise ValueError(f"cells must be 'matrix' or 'image', got {cells!r}.")
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
    check_range(zmin, zmax)

    note = ""
    if cells == "matrix":
        hover = "query %{y} → key %{x}: %{z:.3g}"
    else:
        hover = "patch row %{y}, col %{x}: %{z:.3g}"
    x_coords = y_coords = None
    if cells == "matrix" and max(maps.shape[2:]) > max_cells:
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
    titles = tuple(titles) if titles is not None else tuple(f"L{layer} H{head}" for layer in layers for head in heads)
    if len(titles) != n_layers * n_heads:
        raise ValueError(f"{len(titles)} titles for {n_layers * n_heads} subplots.")
    layout = _subplot_layout(n_layers, n_heads, titles, width, height)
    for name, axis in layout.items():
        if cells == "image" and name.startswith(("xaxis", "yaxis")):
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
            "colorbar": {"title": {"text": html.escape(value_label, quote=False)}, **NUMBER_AXIS},
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
    values = as_finite(values, "values", 2)
    check_range(zmin, zmax)
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
            colorbar={"title": {"text": label, "side": "right"}, **NUMBER_AXIS},
            texttemplate="%{z:.3g}" if values.size <= MAX_TEXT_CELLS else None,
            hovertemplate=f"layer %{{y}}, head %{{x}}<br>{label}: %{{z:.4g}}<extra></extra>",
        )
    )
    fig.update_layout(
        title={"text": html.escape(title, quote=False)},
        xaxis={"title": {"text": "head"}, "type": "category"},
        yaxis={"title": {"text": "layer"}, "type": "category", "autorange": "reversed"},
        height=int(np.clip(170 + 42 * n_layers, 300, 900)),  # every layer row tall enough for its numbers
        margin={"l": 60, "r": 30, "t": 70, "b": 50},
    )
    return fig



def off_diagonal_range(maps: np.ndarray) -> tuple[float, float]:
    """(min, max) over the entries of (..., T, T) matrices off their diagonals (all entries for T = 1): the range
    of what mixes tokens, when a diagonal of ones (a residual, an added identity) would swamp any shared scale."""
    maps = np.asarray(maps, dtype=np.float64)
    if maps.shape[-1] < 2:
        return float(maps.min()), float(maps.max())
    off = ~np.eye(maps.shape[-1], dtype=bool)
    values = maps[..., off]
    return float(values.min()), float(values.max())


def layer_row(maps: np.ndarray, layers: Sequence[int], title: str, value_label: str, colormap: str = "viridis",
              skip_diagonal: bool = False) -> go.Figure:
    """One stage of a computation, one small map per layer side by side, on a colour scale of its own.

    Args:
        maps: (L', T, T) the stage's matrix after each layer.
        layers: the L' layer numbers (subplot titles "layer l").
        title: what the row shows; the colour scale's range is added to it.
        value_label: the colour bar's title (what the values are: attention, relevance...).
        skip_diagonal: fit the scale to the off-diagonal entries (the diagonal, an identity or residual, is drawn
            saturated and the title says so).
    """
    maps = as_finite(maps, "maps", 3)
    low, high = off_diagonal_range(maps) if skip_diagonal else (float(maps.min()), float(maps.max()))
    high = high if high > low else low + 1e-12
    scale = f"scale {low:.2g} to {high:.2g}" + (", the diagonal drawn saturated" if skip_diagonal else "")
    return head_grid(maps[None], layers=[0], heads=list(layers), title=f"{title} ({scale})", colormap=colormap,
                     zmin=low, zmax=high, value_label=value_label, titles=[f"layer {layer}" for layer in layers])


def table_heatmap(values: np.ndarray, title: str, x_title: str, y_title: str, value_label: str = "value",
                  colormap: str = "viridis", robust: float | None = None, symmetric: bool = False) -> go.Figure:
    """A numeric table (positions x dimensions, positions x positions) on numeric axes: every cell drawn, no
    reduction, index ticks chosen by plotly.

    Args:
        values: (rows, cols).
        robust: clip the colour scale to the `robust` and 1 - `robust` quantiles (e.g. 0.01): a few large entries
            (a learned table's position 0) would otherwise leave every other cell one colour. Said in the title.
        symmetric: centre the scale at zero (signed values on a diverging map).
    """
    values = as_finite(values, "values", 2)
    low, high = float(values.min()), float(values.max())
    note = ""
    if robust is not None:
        low, high = (float(q) for q in np.quantile(values, [robust, 1 - robust]))
        note = f"<br><sup>colours clipped at the {100 * robust:g}% and {100 * (1 - robust):g}% quantiles</sup>"
    if symmetric:
        largest = max(abs(low), abs(high)) or 1.0
        low, high = -largest, largest
    fig = go.Figure(go.Heatmap(
        z=values.astype(np.float32), x=np.arange(values.shape[1]), y=np.arange(values.shape[0]),
        colorscale=plotly_colorscale(colormap), zmin=low, zmax=high,
        colorbar={"title": {"text": html.escape(value_label, quote=False)}, **NUMBER_AXIS},
        hovertemplate=f"{html.escape(y_title, quote=False)} %{{y}}, {html.escape(x_title, quote=False)} %{{x}}: "
                      "%{z:.4g}<extra></extra>",
    ))
    fig.update_layout(title={"text": html.escape(title, quote=False) + note},
                      xaxis={"title": {"text": x_title}}, yaxis={"title": {"text": y_title}, "autorange": "reversed"},
                      height=int(np.clip(150 + 6 * values.shape[0], 380, 700)), margin={"t": 60})
    return fig
