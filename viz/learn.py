"""Figures of the Learn pages: vectors as small heatmaps, dot products per key, position codes, word
trajectories. numpy in, plotly figure out."""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from viz.plotting import NUMBER_AXIS, plotly_text, unique_labels

DIVERGING = "RdBu_r"  # signed vector entries: blue negative, white 0, red positive


def vectors_heatmap(vectors: np.ndarray, row_labels: Sequence[str], title: str, highlight: int | None = None,
                    height: int | None = None) -> go.Figure:
    """Rows of vectors (one per token) as a heatmap with every value on hover, 0 white.

    Args:
        vectors: (N, d).
        row_labels: N labels (tokens).
        highlight: a row to outline (the query token).
    """
    vectors = np.asarray(vectors, dtype=np.float64)
    limit = float(np.abs(vectors).max()) or 1.0
    labels = plotly_text(unique_labels(row_labels))
    shown_height = height or int(np.clip(110 + 18 * len(labels), 220, 700))
    # every label while they fit; else every k-th, so that none overlaps the next
    step = max(1, int(np.ceil(len(labels) * 13 / max(shown_height - 90, 1))))
    fig = go.Figure(go.Heatmap(
        z=vectors, y=labels, x=list(range(vectors.shape[1])), colorscale=DIVERGING, zmin=-limit, zmax=limit,
        colorbar={"title": {"text": "value"}, **NUMBER_AXIS}, hovertemplate="%{y}, dim %{x}: %{z:.4f}<extra></extra>",
    ))
    shapes = []
    if highlight is not None:
        shapes.append({"type": "rect", "xref": "paper", "x0": 0, "x1": 1, "y0": highlight - 0.5, "y1": highlight + 0.5,
                       "yref": "y", "line": {"color": "black", "width": 2}})
    fig.update_layout(
        title={"text": html.escape(title, quote=False)}, shapes=shapes,
        xaxis={"title": {"text": "dimension"}}, yaxis={"type": "category", "autorange": "reversed",
                                                       "tickmode": "array", "tickvals": labels[::step],
                                                       "ticktext": labels[::step], "tickfont": {"size": 11}},
        height=shown_height, margin={"t": 50, "b": 40},
    )
    return fig


def key_bars(values: np.ndarray, keys: Sequence[str], mask: np.ndarray | None, title: str, value_label: str) -> go.Figure:
    """One bar per key (dot products, scaled scores or weights); masked keys drawn as grey hatched slots."""
    values = np.asarray(values, dtype=np.float64)
    mask = np.zeros(len(values), bool) if mask is None else np.asarray(mask, bool)
    labels = plotly_text(unique_labels(keys))
    shown = np.where(mask, 0.0, values)
    fig = go.Figure(go.Bar(x=labels, y=shown, marker={"color": np.where(mask, "#cccccc", "#1f77b4").tolist(),
                                                      "pattern": {"shape": ["/" if m else "" for m in mask]}},
                           customdata=np.where(mask, "masked: −∞ before the softmax", "").tolist(),
                           hovertemplate=f"%{{x}}<br>{html.escape(value_label, quote=False)}: %{{y:.4f}} %{{customdata}}<extra></extra>"))
    fig.update_layout(title={"text": html.escape(title, quote=False)}, height=320, margin={"t": 50, "b": 90},
                      xaxis={"type": "category", "tickangle": -60},
                      yaxis={"title": {"text": html.escape(value_label, quote=False)}, **NUMBER_AXIS})
    return fig


def trajectories_figure(points: np.ndarray, words: Sequence[str], highlight: str | None = None,
                        title: str = "Each word through the layers") -> go.Figure:
    """Lines from each word's embedding (circle) to its last layer (diamond), layers as markers on the way.

    Args:
        points: (L + 1, W, 2).
    """
    fig = go.Figure()
    for index, word in enumerate(words):
        strong = highlight is not None and word.lower() == highlight.lower()
        path = points[:, index]
        fig.add_trace(go.Scatter(
            x=path[:, 0], y=path[:, 1], mode="lines+markers+text", name=html.escape(word, quote=False),
            text=[html.escape(word, quote=False)] + [""] * (len(path) - 2) + [html.escape(word, quote=False)],
            textposition="top center", line={"width": 4 if strong else 1.5, "color": word_colour(word, strong)},
            marker={"size": [10] + [5] * (len(path) - 2) + [12], "symbol": ["circle"] + ["circle"] * (len(path) - 2) + ["diamond"]},
            opacity=1.0 if strong or highlight is None else 0.45,
            customdata=list(range(len(path))),
            hovertemplate=f"{html.escape(word, quote=False)}, layer %{{customdata}}<extra></extra>",
        ))
    fig.update_layout(title={"text": html.escape(title, quote=False)}, height=560, xaxis={"title": {"text": "PC 1"}},
                      yaxis={"title": {"text": "PC 2"}, "scaleanchor": "x"},
                      legend={"orientation": "h", "yanchor": "top", "y": -0.18, "x": 0},  # below the axis title
                      margin={"b": 120})
    return fig


FOLLOWED = "#d62728"  # the followed word: the same red in every plot
WORD_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


def word_colour(word: str, followed: bool = False) -> str:
    """A word's colour, the same in every plot (chosen from the word itself, not its place); the followed word red."""
    if followed:
        return FOLLOWED
    code = sum((index + 1) * ord(letter) for index, letter in enumerate(word.lower()))
    return WORD_PALETTE[code % len(WORD_PALETTE)]
