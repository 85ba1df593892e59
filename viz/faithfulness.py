"""Faithfulness figures: perturbation curves per method with the random baseline dashed, and ERASER's
comprehensiveness and sufficiency per k. numpy in, plotly figure out."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from viz.plotting import NUMBER_AXIS

# One colour per method (by its place in the figure); the random baseline is grey and dashed. Methods whose
# curves coincide stay visible: each line has its own dash pattern and marker, later lines drawn thinner on top.
PALETTE = ("#1f77b4", "#ff7f0e", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
           "#7f7f7f", "#393b79", "#ad494a")
DASHES = ("solid", "dot", "dash", "longdash", "dashdot", "longdashdot")
MARKERS = ("circle", "square", "diamond", "triangle-up", "x", "cross", "star", "triangle-down", "pentagon", "hexagon")
RANDOM = "random"


def curves_figure(curves: Mapping[str, Sequence[float]], fractions: Sequence[float], title: str,
                  y_label: str = "target probability", x_label: str = "share of patches perturbed",
                  aucs: Mapping[str, float] | None = None) -> go.Figure:
    """One line per method over the perturbed share, the random baseline dashed grey.

    Args:
        curves: name -> values at `fractions` (a key "random" is drawn as the baseline).
        fractions: x positions in [0, 1], shown as percentages.
        aucs: name -> area, written in the legend.
    """
    fig = go.Figure()
    x = [100 * f for f in fractions]
    methods = [name for name in curves if name != RANDOM]
    for index, (name, values) in enumerate(curves.items()):
        label = name if aucs is None else f"{name} (AUC {aucs[name]:.3f})"
        baseline = name == RANDOM
        order = methods.index(name) if not baseline else 0
        fig.add_trace(go.Scatter(
            x=x, y=np.asarray(values, dtype=float), mode="lines+markers", name=html.escape(label, quote=False),
            line={"color": "#888" if baseline else PALETTE[order % len(PALETTE)],
                  "dash": "dash" if baseline else DASHES[order % len(DASHES)],
                  "width": 2 if baseline else max(1.5, 3.5 - 0.4 * order)},
            marker={"symbol": "circle-open" if baseline else MARKERS[order % len(MARKERS)], "size": 7},
            hovertemplate=f"{html.escape(name, quote=False)}<br>%{{x:.0f}}%: %{{y:.3f}}<extra></extra>",
        ))
    fig.update_layout(
        title={"text": html.escape(title, quote=False)}, height=360, margin={"t": 60, "b": 50},
        xaxis={"title": {"text": x_label}, "ticksuffix": "%", "range": [-2, 102]},
        yaxis={"title": {"text": y_label}, **NUMBER_AXIS}, legend={"orientation": "h", "y": -0.25},
    )
    return fig
