"""Figures of the recurrent teaching models: exact match against input length, and gradient norms against the
number of recurrent steps between a letter and the loss. numpy in, plotly figure out."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from viz.faithfulness import DASHES, MARKERS, PALETTE
from viz.plotting import NUMBER_AXIS


def accuracy_figure(by_length: Mapping[str, Mapping[int, float]], smoothed: Mapping[str, Mapping[int, float]],
                    title: str, target: float | None = 0.9, window: int = 5, mark: int | None = None) -> go.Figure:
    """Exact match against input length, one colour per model: each length's own figure as faint markers and
    `smoothed` (the mean over `window` lengths centred on each, as the caller computed it) as a line; `target`
    dotted; `mark` a vertical line (the user's string's length)."""
    fig = go.Figure()
    for index, (name, accuracy) in enumerate(by_length.items()):
        lengths = np.array(sorted(accuracy))
        values = np.array([accuracy[length] for length in lengths], dtype=float)
        colour = PALETTE[index % len(PALETTE)]
        escaped = html.escape(name, quote=False)
        fig.add_trace(go.Scatter(
            x=lengths, y=values, mode="markers", name=f"{escaped} (each length)", showlegend=False,
            marker={"color": colour, "size": 5, "opacity": 0.35, "symbol": MARKERS[index % len(MARKERS)]},
            hovertemplate=f"{escaped}<br>length %{{x}}: %{{y:.2f}}<extra></extra>",
        ))
        fig.add_trace(go.Scatter(
            x=lengths, y=[smoothed[name][length] for length in lengths], mode="lines", name=escaped,
            line={"color": colour, "width": 3, "dash": DASHES[index % len(DASHES)]},
            hovertemplate=f"{escaped}<br>length %{{x}} (mean of {window} lengths): %{{y:.2f}}<extra></extra>",
        ))
    if target is not None:
        fig.add_hline(y=target, line={"color": "#888", "dash": "dot", "width": 1},
                      annotation_text=f"{target:g}", annotation_position="top left")
    if mark is not None:
        fig.add_vline(x=mark, line={"color": "#444", "dash": "dash", "width": 1},
                      annotation_text="your string", annotation_position="bottom right")
    fig.update_layout(
        title={"text": html.escape(title, quote=False)}, height=380, margin={"t": 60, "b": 50},
        xaxis={"title": {"text": "input length (letters)"}, **NUMBER_AXIS},
        yaxis={"title": {"text": "exact match (held-out strings)"}, "range": [-0.03, 1.03], **NUMBER_AXIS},
        legend={"orientation": "h", "y": -0.22},
    )
    return fig


def gradient_figure(series: Mapping[str, tuple[Sequence[float], Sequence[float]]], title: str,
                    x_title: str = "encoder steps between reading the letter and the encoder's last state",
                    needed: Mapping[str, float] | None = None) -> go.Figure:
    """Gradient norm (log scale) against distance, one line per series.

    Args:
        series: label -> (distances, norms); distances need not be sorted (lines are drawn in distance order).
        needed: label -> the distance of the letter the output step must write, marked with a ring.
    """
    fig = go.Figure()
    for index, (name, (distances, norms)) in enumerate(series.items()):
        distances, norms = np.asarray(distances, dtype=float), np.asarray(norms, dtype=float)
        order = np.argsort(distances, kind="stable")
        colour = PALETTE[index % len(PALETTE)]
        escaped = html.escape(name, quote=False)
        fig.add_trace(go.Scatter(
            x=distances[order], y=np.maximum(norms[order], 1e-30), mode="lines+markers", name=escaped,
            line={"color": colour, "dash": DASHES[index % len(DASHES)], "width": 2},
            marker={"symbol": MARKERS[index % len(MARKERS)], "size": 5},
            hovertemplate=f"{escaped}<br>distance %{{x:.0f}}: %{{y:.3g}}<extra></extra>",
        ))
        if needed is not None and name in needed:
            at = int(np.argmin(np.abs(distances - needed[name])))
            fig.add_trace(go.Scatter(
                x=[distances[at]], y=[max(float(norms[at]), 1e-30)], mode="markers", showlegend=False,
                marker={"symbol": "circle-open", "size": 16, "color": colour, "line": {"width": 2}},
                hovertemplate=f"{escaped}<br>the letter this step writes: %{{y:.3g}}<extra></extra>",
            ))
    fig.update_layout(
        title={"text": html.escape(title, quote=False)}, height=380, margin={"t": 60, "b": 50},
        xaxis={"title": {"text": x_title}, **NUMBER_AXIS},
        yaxis={"title": {"text": "gradient norm (log scale)"}, "type": "log", "exponentformat": "power"},
        legend={"orientation": "h", "y": -0.22},
    )
    return fig
