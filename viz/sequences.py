"""Figures of the sequence-model walk: how a transition table grows with its order. numpy in, plotly out."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go

from viz.plotting import NUMBER_AXIS


def growth_figure(possible: Sequence[int], observed: Sequence[int], vocabulary: int) -> go.Figure:
    """Rows of an order-n table: V^n possible against the contexts a corpus shows, on a log scale.

    Args:
        possible, observed: one number per order 1, 2, ...; vocabulary: V.
    """
    orders = list(range(1, len(possible) + 1))
    fig = go.Figure([
        go.Scatter(x=orders, y=list(possible), mode="lines+markers+text", name=f"rows possible (V^n, V = {vocabulary})",
                   text=[f"{p:,}" for p in possible], textposition="top left",
                   hovertemplate="order %{x}: %{y:,} rows possible<extra></extra>"),
        go.Scatter(x=orders, y=[max(o, 0.5) for o in observed], mode="lines+markers+text",
                   name="contexts this corpus shows", text=[str(o) for o in observed], textposition="bottom right",
                   customdata=list(observed), hovertemplate="order %{x}: %{customdata} contexts seen<extra></extra>"),
    ])
    fig.update_layout(
        title={"text": "How the table grows with the order"}, height=360, margin={"t": 60, "b": 40},
        xaxis={"title": {"text": "order n (words of context)"}, "tickmode": "array", "tickvals": orders},
        yaxis={"title": {"text": "rows of the table"}, "type": "log", **NUMBER_AXIS},
        legend={"orientation": "h", "yanchor": "top", "y": -0.22, "x": 0},
    )
    return fig
