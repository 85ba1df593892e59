"""Pure rendering helpers: numpy in, plotly figure / PIL-ready array / HTML string out.

No torch or streamlit here. ``viz.colormaps``, ``viz.overlay`` and ``viz.tokens``
do not import plotly either, and the plotly figures are re-exported lazily, so
``from viz import overlay`` (the command line's ``--overlay``) never loads plotly.
"""

from __future__ import annotations

import importlib
from typing import Any

from viz.colormaps import COLORMAPS, apply_colormap, colormap_anchors, plotly_colorscale
from viz.overlay import normalize, overlay, to_png_bytes, upsample_grid
from viz.tokens import legend_html, token_weight_range, tokens_html

# Figure names and the module that serves each on first access (PEP 562), so plotly loads only when used.
_FIGURE_MODULES = {
    "MAX_HEATMAP_CELLS": "viz.heatmaps",
    "attention_heatmap": "viz.heatmaps",
    "head_grid": "viz.heatmaps",
    "reduce_matrix": "viz.heatmaps",
    "stat_heatmap": "viz.heatmaps",
    "relevance_bar": "viz.bars",
    "scores_bar": "viz.bars",
    "image_overlay_figure": "viz.image_figures",
    "PLOTLY_CONFIG": "viz.plotting",
    "plotly_config": "viz.plotting",
    "unique_labels": "viz.plotting",
}
_FIGURE_NAMES = tuple(_FIGURE_MODULES)

__all__ = [
    "COLORMAPS",
    "apply_colormap",
    "colormap_anchors",
    "legend_html",
    "normalize",
    "overlay",
    "plotly_colorscale",
    "to_png_bytes",
    "token_weight_range",
    "tokens_html",
    "upsample_grid",
    *_FIGURE_NAMES,
]


def __getattr__(name: str) -> Any:
    if name in _FIGURE_NAMES:
        return getattr(importlib.import_module(_FIGURE_MODULES[name]), name)
    raise AttributeError(f"module 'viz' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_FIGURE_NAMES))
