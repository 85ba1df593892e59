"""Figures of the Inside-the-block page: norms along the residual stream, one token through a normalisation, and
the feed-forward's activation function with one token's units on it. numpy in, plotly out."""

from __future__ import annotations

import html

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from viz.plotting import NUMBER_AXIS, as_finite

STREAM, ATTENTION, FFN, OUT = "#1f77b4", "#ff7f0e", "#2ca02c", "#7f7f7f"


def norms_figure(entering: np.ndarray, attention: np.ndarray, ffn: np.ndarray, leaving: np.ndarray,
                 title: str) -> go.Figure:
    """Per layer, the norm of the stream entering it, of attention's and the feed-forward's additions, and of the
    stream leaving it.

    Args:
        entering, attention, ffn, leaving: (L,) L2 norms.
    """
    series = {"residual stream entering": (entering, STREAM, "solid", "circle"),
              "attention adds": (attention, ATTENTION, "dot", "diamond"),
              "feed-forward adds": (ffn, FFN, "dash", "square"),
              "residual stream leaving": (leaving, OUT, "dashdot", "x")}
    layers = [f"layer {index}" for index in range(len(entering))]
    fig = go.Figure([
        go.Scatter(x=layers, y=as_finite(values, name, 1), mode="lines+markers", name=name,
                   line={"color": colour, "dash": dash}, marker={"symbol": symbol, "size": 9},
                   hovertemplate=f"%{{x}}<br>{name}: %{{y:.4g}}<extra></extra>")
        for name, (values, colour, dash, symbol) in series.items()
    ])
    fig.update_layout(title={"text": html.escape(title, quote=False)}, height=380, margin={"t": 60, "b": 40},
                      xaxis={"type": "category"}, yaxis={"title": {"text": "L2 norm"}, "rangemode": "tozero", **NUMBER_AXIS},
                      legend={"orientation": "h", "yanchor": "top", "y": -0.15, "x": 0})
    return fig


def norm_step_figure(vector: np.ndarray, mean: float, spread: float, normalised: np.ndarray, gain: np.ndarray,
                     bias: np.ndarray, output: np.ndarray, batch_output: np.ndarray, kind: str) -> go.Figure:
    """One token through a normalisation, feature by feature, in four panels sharing the feature axis: the input
    with its mean and spread, the normalised vector, the output with the learned gain and bias, and what batch
    normalisation would give instead.

    Args:
        vector, normalised, gain, bias, output, batch_output: (D,); mean, spread: the token's statistics.
        kind: "LayerNorm" or "RMSNorm".
    """
    features = np.arange(len(vector))
    rms = kind == "RMSNorm"
    fig = make_subplots(rows=4, cols=1, shared_xaxes=True, vertical_spacing=0.06, subplot_titles=(
        (f"1. the token going in: mean {mean:.3g}{' (not subtracted)' if rms else ''}, "
         f"{'root mean square' if rms else 'spread'} {spread:.3g}"),
        "2. normalised: " + ("x / rms" if rms else "(x − mean) / spread") + " — scale 1" + ("" if rms else ", mean 0"),
        "3. × learned gain γ + learned bias β: the module's output",
        "4. batch normalisation instead: each feature normalised over the tokens"))
    line = {"width": 1}
    fig.add_trace(go.Scatter(x=features, y=vector, mode="lines", line={**line, "color": STREAM}, name="x",
                             hovertemplate="feature %{x}: %{y:.4g}<extra>input</extra>"), 1, 1)
    if not rms:
        fig.add_hline(y=mean, line={"color": "black", "dash": "dash", "width": 1}, row=1, col=1)
    for offset in (-spread, spread):
        fig.add_hline(y=mean + offset, line={"color": "grey", "dash": "dot", "width": 1}, row=1, col=1)
    fig.add_trace(go.Scatter(x=features, y=normalised, mode="lines", line={**line, "color": ATTENTION}, name="normalised",
                             hovertemplate="feature %{x}: %{y:.4g}<extra>normalised</extra>"), 2, 1)
    fig.add_trace(go.Scatter(x=features, y=output, mode="lines", line={**line, "color": FFN}, name="output",
                             hovertemplate="feature %{x}: %{y:.4g}<extra>output</extra>"), 3, 1)
    fig.add_trace(go.Scatter(x=features, y=gain, mode="lines", line={"color": "black", "width": 1, "dash": "dot"},
                             name="gain γ", hovertemplate="feature %{x}: γ = %{y:.4g}<extra></extra>"), 3, 1)
    if np.any(bias):
        fig.add_trace(go.Scatter(x=features, y=bias, mode="lines", line={"color": "#8c564b", "width": 1, "dash": "dash"},
                                 name="bias β", hovertemplate="feature %{x}: β = %{y:.4g}<extra></extra>"), 3, 1)
    fig.add_trace(go.Scatter(x=features, y=batch_output, mode="lines", line={**line, "color": "#9467bd"},
                             name="batch norm", hovertemplate="feature %{x}: %{y:.4g}<extra>batch norm</extra>"), 4, 1)
    fig.update_xaxes(title={"text": "feature"}, row=4, col=1)
    fig.update_yaxes(**NUMBER_AXIS)
    fig.update_layout(height=820, margin={"t": 60, "b": 40}, legend={"orientation": "h", "yanchor": "top", "y": -0.06, "x": 0})
    return fig


def activation_figure(curve_x: np.ndarray, curve_y: np.ndarray, units_in: np.ndarray, units_out: np.ndarray,
                      name: str, top: np.ndarray | None = None) -> go.Figure:
    """The feed-forward's activation function and one token's units on it (input, output); `top` marks the units
    that fire most."""
    fig = go.Figure([
        go.Scatter(x=curve_x, y=curve_y, mode="lines", line={"color": "black", "width": 2}, name=name,
                   hovertemplate="f(%{x:.3g}) = %{y:.3g}<extra></extra>"),
        go.Scatter(x=units_in, y=units_out, mode="markers", marker={"color": STREAM, "size": 5, "opacity": 0.5},
                   name="this token's units", customdata=np.arange(len(units_in)),
                   hovertemplate="unit %{customdata}: f(%{x:.3g}) = %{y:.3g}<extra></extra>"),
    ])
    if top is not None and len(top):
        fig.add_trace(go.Scatter(x=units_in[top], y=units_out[top], mode="markers",
                                 marker={"color": ATTENTION, "size": 10, "symbol": "diamond"}, name="the top units",
                                 customdata=top, hovertemplate="unit %{customdata}: f(%{x:.3g}) = %{y:.3g}<extra></extra>"))
    fig.update_layout(title={"text": f"{html.escape(name, quote=False)}: this token's units on it"},
                      height=380, margin={"t": 60, "b": 40}, xaxis={"title": {"text": "unit's input"}, **NUMBER_AXIS},
                      yaxis={"title": {"text": "unit's output"}, **NUMBER_AXIS},
                      legend={"orientation": "h", "yanchor": "top", "y": -0.18, "x": 0})
    return fig
