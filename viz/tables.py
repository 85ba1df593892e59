"""Labelled tables as heatmaps with their numbers (or words) written in the cells: one-hot matrices, transition
tables, attention weights of several scoring functions, a logit lens. numpy in, plotly figure out.

Every figure has its own colour bar, titled with what the colour shows, over its own values.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from viz.colormaps import plotly_colorscale
from viz.plotting import NUMBER_AXIS, as_finite, check_range, plotly_text

MAX_TEXT_CELLS = 900  # above this many cells the numbers stay in the hover text only


def cell_text(values: np.ndarray, digits: int) -> np.ndarray:
    """Numbers as short cell labels: integers without decimals, 0 as "0", others with `digits` decimals."""
    def one(value: float) -> str:
        if value == 0:
            return "0"
        if float(value).is_integer():
            return f"{int(value)}"
        return f"{value:.{digits}f}".rstrip("0").rstrip(".")

    return np.vectorize(one, otypes=[str])(values)


def labelled_heatmap(
    values: np.ndarray,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    title: str,
    value_label: str,
    colormap: str = "blues",
    text: np.ndarray | None = None,
    digits: int = 2,
    zmin: float | None = None,
    zmax: float | None = None,
    x_title: str = "",
    y_title: str = "",
    height: int | None = None,
    hover_label: str | None = None,
) -> go.Figure:
    """A (R, C) table as a heatmap with every row and column labelled and each cell's text written in it.

    Args:
        values: (R, C) the numbers that set the colours.
        row_labels, col_labels: R and C distinct labels (drawn as given; make repeated words distinct first).
        value_label: the colour bar's title (what the colour shows).
        colormap: one of viz.colormaps.COLORMAPS ("rdbu" for signed values, centred at 0 unless zmin/zmax given).
        text: (R, C) strings to write in the cells; default the numbers (`digits` decimals).
        zmin, zmax: colour range; default the data's (symmetric about 0 for "rdbu").
        hover_label: name of the number in the hover text (default `value_label`).
    """
    values = as_finite(values, "values", 2)
    if values.shape != (len(row_labels), len(col_labels)):
        raise ValueError(f"values have shape {values.shape}, the labels {len(row_labels)} x {len(col_labels)}.")
    check_range(zmin, zmax)
    if colormap == "rdbu" and zmin is None and zmax is None and values.size:
        limit = float(np.abs(values).max()) or 1.0
        zmin, zmax = -limit, limit
    rows, cols = plotly_text(row_labels), plotly_text(col_labels)
    written = cell_text(values, digits) if text is None else np.asarray(text, dtype=str)
    written = np.vectorize(lambda s: html.escape(s, quote=False), otypes=[str])(written) if written.size else written
    show_text = values.size <= MAX_TEXT_CELLS
    hover = html.escape(hover_label or value_label, quote=False)
    fig = go.Figure(go.Heatmap(
        z=values, x=cols, y=rows, colorscale=plotly_colorscale(colormap), zmin=zmin, zmax=zmax,
        text=written, texttemplate="%{text}" if show_text else None,
        textfont={"size": 11 if len(cols) <= 16 else 9},
        colorbar={"title": {"text": html.escape(value_label, quote=False)}, **NUMBER_AXIS},
        hovertemplate=f"%{{y}}, %{{x}}<br>{hover}: %{{z:.4g}}<br>%{{text}}<extra></extra>", xgap=1, ygap=1,
    ))
    longest = max((len(label) for label in col_labels), default=0)
    angle = 0 if len(cols) * max(longest, 3) <= 110 else -45
    fig.update_layout(
        title={"text": html.escape(title, quote=False)},
        xaxis={"title": {"text": html.escape(x_title, quote=False)}, "type": "category", "tickangle": angle,
               "tickmode": "array", "tickvals": cols, "ticktext": cols, "side": "bottom"},
        yaxis={"title": {"text": html.escape(y_title, quote=False)}, "type": "category", "autorange": "reversed",
               "tickmode": "array", "tickvals": rows, "ticktext": rows},
        height=height or int(np.clip(150 + 28 * len(rows) + (6 * min(longest, 14) if angle else 0), 240, 1100)),
        margin={"t": 60, "b": 40},
    )
    return fig


def bars(values: np.ndarray, labels: Sequence[str], title: str, value_label: str, colour: str = "#1f77b4",
         highlight: int | None = None, digits: int = 2, height: int = 320) -> go.Figure:
    """One bar per label with its value written above it; `highlight` draws one bar in orange."""
    values = as_finite(values, "values", 1)
    if len(labels) != len(values):
        raise ValueError(f"got {len(labels)} labels but {len(values)} values.")
    shown = plotly_text(labels)
    colours = [("#ff7f0e" if index == highlight else colour) for index in range(len(values))]
    fig = go.Figure(go.Bar(
        x=shown, y=values, marker={"color": colours}, text=cell_text(values, digits).tolist(), textposition="outside",
        cliponaxis=False, hovertemplate=f"%{{x}}<br>{html.escape(value_label, quote=False)}: %{{y:.4g}}<extra></extra>",
    ))
    top = float(values.max()) if len(values) else 1.0
    fig.update_layout(
        title={"text": html.escape(title, quote=False)}, height=height, margin={"t": 60, "b": 40},
        xaxis={"type": "category", "tickmode": "array", "tickvals": shown, "ticktext": shown,
               "tickangle": 0 if len(values) <= 10 else -45},
        yaxis={"title": {"text": html.escape(value_label, quote=False)}, "range": [min(0.0, float(values.min()) * 1.15)
                                                                                   if len(values) else 0, top * 1.18 or 1],
               **NUMBER_AXIS},
    )
    return fig
