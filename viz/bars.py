"""Bar charts: relevance per token, and class or label scores."""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from viz.colormaps import plotly_colorscale
from viz.plotting import NUMBER_AXIS, as_finite, check_range, plotly_text, unique_labels


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
    values = as_finite(values, "values", 1)
    if len(tokens) != len(values):
        raise ValueError(f"got {len(tokens)} tokens but {len(values)} values.")
    if orientation not in ("v", "h"):
        raise ValueError(f"orientation must be 'v' or 'h', got {orientation!r}.")
    check_range(zmin, zmax)
    labels = plotly_text(unique_labels(tokens))
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
        {token_axis: token_layout, value_axis: {"title": {"text": label}, **NUMBER_AXIS}},
        title={"text": html.escape(title, quote=False)},
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
    threshold: float | None = None,
    fit_axis: bool = False,
) -> go.Figure:
    """Horizontal bars of class or zero-shot label scores, highest on top, the value written beside each bar.

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
        threshold: draw a dashed decision line there (multi-label models: 0.5).
        fit_axis: fit the axis to the scores shown (with 0 kept in view) instead of [zmin, zmax]: cosine
            similarities of zero-shot labels sit close together, and on a -1..1 axis their bars are slivers.

    Returns:
        Figure with one horizontal Bar trace, x sorted descending (top to bottom).
    """
    scores = as_finite(scores, "scores", 1)
    if len(labels) != len(scores):
        raise ValueError(f"got {len(labels)} labels but {len(scores)} scores.")
    check_range(zmin, zmax)
    tolerance = 1e-6 * (zmax - zmin)
    if len(scores) and (scores.min() < zmin - tolerance or scores.max() > zmax + tolerance):
        raise ValueError(
            f"scores span [{scores.min():.4g}, {scores.max():.4g}], outside the axis range "
            f"[{zmin:.4g}, {zmax:.4g}]; pass zmin=-1.0 for cosine similarities, or apply "
            "softmax to logits first."
        )
    order = np.argsort(-scores, kind="stable")[:top_k]
    sorted_scores = scores[order]
    sorted_labels = plotly_text([labels[i] for i in order])
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
            textposition="outside",  # beside the bar, full size: inside thin bars plotly shrinks it to ~4 px
            textfont={"size": 13},
            cliponaxis=False,
            hovertemplate=f"%{{customdata}}<br>{label}: %{{x:.4f}}<extra></extra>",
        )
    )
    low, high = zmin, zmax
    if fit_axis and len(sorted_scores):
        span = max(float(sorted_scores.max() - min(sorted_scores.min(), 0.0)), 1e-6)
        low = min(0.0, float(sorted_scores.min()) - 0.05 * span)
        high = max(0.0, float(sorted_scores.max())) + 0.18 * span  # room for the numbers beside the bars
    else:
        high = zmax + 0.12 * (zmax - zmin)
    if threshold is not None:
        fig.add_vline(x=threshold, line={"dash": "dash", "color": "#444", "width": 1},
                      annotation_text=f"threshold {threshold:g}", annotation_position="top")
    fig.update_layout(
        title={"text": html.escape(title, quote=False)},
        xaxis={"title": {"text": label}, "range": [low, high], **NUMBER_AXIS},
        yaxis={
            "title": {"text": "label"}, "autorange": "reversed",
            "tickmode": "array", "tickvals": positions.tolist(), "ticktext": sorted_labels,
        },
        height=int(np.clip(120 + 28 * len(order), 250, 800)),
    )
    return fig
