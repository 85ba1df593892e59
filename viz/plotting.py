"""What every plotly figure of the app shares: the toolbar config, unique token labels,
escaping for plotly's pseudo-HTML, and argument checks.

Text shown by plotly (tick labels, hover) is HTML-escaped, because plotly renders a pseudo-HTML
subset: RoBERTa's ``<s>`` token would otherwise turn into a strike-through tag and vanish.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np


def plotly_config(filename: str = "attention") -> dict:
    """Config for ``st.plotly_chart(fig, config=...)``: PNG download at 2x, no plotly logo.

    Args:
        filename: file name (without extension) offered by the modebar's camera button.
    """
    return {
        "displaylogo": False,
        "toImageButtonOptions": {"format": "png", "scale": 2, "filename": filename},
    }


# Shared default; use plotly_config(filename) for a per-figure name instead of mutating this.
PLOTLY_CONFIG: dict = plotly_config()


def unique_labels(tokens: Sequence[str], start: int = 0) -> list[str]:
    """Distinct axis labels for tokens: "#" and the position, a space, the token ("#5 the"; a digit token reads
    "#13 2", not "13 2").

    A categorical plotly axis merges equal labels, so the two "the" of a sentence would share one row; prefixing
    the position keeps them apart. `start` numbers from another position (the generated tokens of a sequence).
    """
    return [f"#{position} {token}" for position, token in enumerate(tokens, start)]


def plotly_text(labels: Sequence[str]) -> list[str]:
    """Escape labels for plotly's pseudo-HTML text rendering."""
    return [html.escape(str(label), quote=False) for label in labels]



def check_range(zmin: float | None, zmax: float | None) -> None:
    if zmin is not None and zmax is not None and zmax < zmin:
        raise ValueError(f"zmin must not exceed zmax, got zmin={zmin} and zmax={zmax}.")


def as_finite(values: np.ndarray | Sequence[float], name: str, ndim: int) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {array.shape}.")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values; clean them before plotting.")
    return array



# Value axes and colour bars write small numbers as 2×10⁻⁵, not with SI prefixes ("20µ"), which read as a
# unit that relevance does not have.
NUMBER_AXIS = {"exponentformat": "power", "showexponent": "all"}


def tick_font_size(count: int, pixels: float, largest: int = 12, smallest: int = 7) -> int | None:
    """A font size at which `count` category labels fit along `pixels`, or None when even the smallest
    does not fit (then plotly thins them)."""
    size = int(pixels / max(count, 1) / 1.3)
    return min(size, largest) if size >= smallest else None
