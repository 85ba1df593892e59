"""Figures of the attention-variants page: the sqrt(d) experiment and every head's softmax with and without the
scale. numpy in, plotly out."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

RANDOM, UNSCALED, SCALED, MODEL = "#1f77b4", "#d62728", "#2ca02c", "#9467bd"


def scaling_figure(dims: np.ndarray, spread: np.ndarray, entropy: np.ndarray, entropy_scaled: np.ndarray,
                   top_weight: np.ndarray, top_weight_scaled: np.ndarray, keys: int,
                   head_dims: np.ndarray | None = None, head_spread: np.ndarray | None = None,
                   model: str = "the model") -> go.Figure:
    """Three panels over d: the spread of q . k (log-log, with sqrt(d)), the softmax entropy and its largest weight,
    each with and without the 1/sqrt(d) scale.

    Args:
        dims: (n,) dimensions; spread, entropy, entropy_scaled, top_weight, top_weight_scaled: (n,) per dimension.
        keys: keys per softmax (the entropy's ceiling is log(keys)).
        head_dims, head_spread: (m,) and (H', m) optional: the model's heads' unit spread over their first c
            coordinates (one line per head).
    """
    dims = np.asarray(dims, dtype=float)
    fig = make_subplots(rows=1, cols=3, horizontal_spacing=0.08, subplot_titles=(
        "spread of q·k grows as √d", f"softmax entropy over {keys} keys (nats)", "largest softmax weight"))
    if head_spread is not None and head_dims is not None:
        for index, line in enumerate(np.asarray(head_spread)):
            fig.add_trace(go.Scatter(x=head_dims, y=line, mode="lines", line={"color": MODEL, "width": 1}, opacity=0.35,
                                     name=f"{model}'s heads, first c of d coordinates", legendgroup="heads",
                                     showlegend=index == 0,
                                     hovertemplate="c = %{x}: %{y:.3g}<extra>a head of " + model + "</extra>"), 1, 1)
    fig.add_trace(go.Scatter(x=dims, y=np.sqrt(dims), mode="lines", line={"color": "grey", "dash": "dash"}, name="√d",
                             hovertemplate="√%{x} = %{y:.3g}<extra></extra>"), 1, 1)
    fig.add_trace(go.Scatter(x=dims, y=spread, mode="markers", marker={"color": RANDOM, "size": 9},
                             name="random unit-variance q, k", hovertemplate="d = %{x}: spread %{y:.3g}<extra></extra>"),
                  1, 1)
    for column, (raw, scaled) in ((2, (entropy, entropy_scaled)), (3, (top_weight, top_weight_scaled))):
        fig.add_trace(go.Scatter(x=dims, y=raw, mode="lines+markers", line={"color": UNSCALED}, name="softmax(q·k)",
                                 legendgroup="raw", showlegend=column == 2, marker={"symbol": "x"},
                                 hovertemplate="d = %{x}: %{y:.3f}<extra>without scaling</extra>"), 1, column)
        fig.add_trace(go.Scatter(x=dims, y=scaled, mode="lines+markers", line={"color": SCALED, "dash": "dot"},
                                 name="softmax(q·k / √d)", legendgroup="scaled", showlegend=column == 2,
                                 hovertemplate="d = %{x}: %{y:.3f}<extra>with 1/√d</extra>"), 1, column)
    fig.add_trace(go.Scatter(x=[dims.min(), dims.max()], y=[np.log(keys)] * 2, mode="lines",
                             line={"color": "grey", "dash": "dash", "width": 1}, name=f"log {keys}: uniform weights",
                             hovertemplate="log %{y:.3f}<extra></extra>"), 1, 2)
    ticks = [4 ** power for power in range(6)]  # 1, 4, ..., 1024: few enough to stay level in a third of the width
    for column in (1, 2, 3):
        fig.update_xaxes(type="log", title={"text": "dimension d"}, tickvals=ticks, ticktext=[str(t) for t in ticks],
                         tickangle=0, row=1, col=column)
    fig.update_yaxes(type="log", title={"text": "standard deviation of q·k"}, tickvals=[0.1, 0.3, 1, 3, 10, 30, 100],
                     ticktext=["0.1", "0.3", "1", "3", "10", "30", "100"], row=1, col=1)
    fig.update_yaxes(title={"text": "nats"}, rangemode="tozero", row=1, col=2)
    fig.update_yaxes(title={"text": "weight"}, range=[0, 1.05], row=1, col=3)
    fig.update_layout(height=440, margin={"t": 60, "b": 40},
                      legend={"orientation": "h", "yanchor": "top", "y": -0.25, "x": 0})
    return fig


def heads_entropy_figure(entropy: np.ndarray, entropy_scaled: np.ndarray, ceiling: float) -> go.Figure:
    """Every head as a point: its softmax entropy with the model's scale (x) against without it (y).

    Args:
        entropy, entropy_scaled: (L, H) mean entropies in nats; ceiling: about log(visible keys), the uniform
            softmax's entropy.
    """
    layers, heads = np.asarray(entropy).shape
    labels = [f"layer {l}, head {h}" for l in range(layers) for h in range(heads)]
    top = max(float(np.max(entropy_scaled)), float(np.max(entropy)), ceiling) * 1.05
    fig = go.Figure([
        go.Scatter(x=[0, top], y=[0, top], mode="lines", line={"color": "grey", "dash": "dash"},
                   name="same entropy", hoverinfo="skip"),
        go.Scatter(x=np.ravel(entropy_scaled), y=np.ravel(entropy), mode="markers", text=labels,
                   marker={"color": np.repeat(np.arange(layers), heads), "colorscale": "Viridis", "size": 9,
                           "colorbar": {"title": {"text": "layer"}, "len": 0.6}},
                   name="a head", hovertemplate="%{text}<br>scaled %{x:.3f}, unscaled %{y:.3f} nats<extra></extra>"),
    ])
    fig.update_layout(title={"text": "Every head: entropy with the model's scale (x) and without it (y)"}, height=420,
                      xaxis={"title": {"text": "entropy of softmax(q·k / √d), nats (the model's attention)"},
                             "range": [0, top]},
                      yaxis={"title": {"text": "entropy of softmax(q·k), nats"}, "range": [0, top]},
                      legend={"orientation": "h", "yanchor": "top", "y": -0.2, "x": 0}, margin={"t": 60, "b": 40})
    return fig
