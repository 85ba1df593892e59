"""Faithfulness figures: perturbation curves per method with the random baseline dashed, and ERASER's
comprehensiveness and sufficiency per k. numpy in, plotly figure out."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from viz.plotting import NUMBER_AXIS

# One colour per method, the same in every faithfulness figure; the random baseline is grey and dashed.
METHOD_COLOURS = {"raw attention": "#1f77b4", "attention rollout": "#ff7f0e", "gradient rollout": "#d62728"}
RANDOM = "random"


def _colour(name: str, index: int) -> str:
    palette = ("#1f77b4", "#ff7f0e", "#d62728", "#2ca02c", "#9467bd")
    return METHOD_COLOURS.get(name, palette[index % len(palette)])


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
    for index, (name, values) in enumerate(curves.items()):
        label = name if aucs is None else f"{name} (AUC {aucs[name]:.3f})"
        baseline = name == RANDOM
        fig.add_trace(go.Scatter(
            x=x, y=np.asarray(values, dtype=float), mode="lines+markers", name=html.escape(label, quote=False),
            line={"color": "#888" if baseline else _colour(name, index), "dash": "dash" if baseline else "solid",
                  "width": 2 if baseline else 2.5},
            hovertemplate=f"{html.escape(name, quote=False)}<br>%{{x:.0f}}%: %{{y:.3f}}<extra></extra>",
        ))
    fig.update_layout(
        title={"text": html.escape(title, quote=False)}, height=360, margin={"t": 60, "b": 50},
        xaxis={"title": {"text": x_label}, "ticksuffix": "%", "range": [-2, 102]},
        yaxis={"title": {"text": y_label}, **NUMBER_AXIS}, legend={"orientation": "h", "y": -0.25},
    )
    return fig
