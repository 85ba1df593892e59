"""Tokens as coloured HTML (``st.html`` / ``st.markdown(unsafe_allow_html=True)``).

Pure string building with inline styles only; every token is HTML-escaped. The caller says how the text reads
(each token's text, whether a space precedes it, which tokens are special: ``explain.spaced``); nothing here
knows a tokenizer.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np

from viz.colormaps import apply_colormap, colormap_anchors

_SPECIAL_STYLE = (
    "color:#888;font-size:0.8em;border:1px dashed #bbb;border-radius:3px;padding:0 2px;"
)
_SELECTED_STYLE = "outline:2px solid #1f77b4;outline-offset:1px;"


def _relative_luminance(rgb: np.ndarray) -> float:
    """WCAG relative luminance of one uint8 RGB colour."""
    channels = rgb.astype(np.float64) / 255.0
    linear = np.where(channels <= 0.04045, channels / 12.92, ((channels + 0.055) / 1.055) ** 2.4)
    return float(linear @ np.array([0.2126, 0.7152, 0.0722]))


def _text_colour(background: np.ndarray) -> str:
    # 0.179 is the luminance where black and white text have equal WCAG contrast
    return "#000" if _relative_luminance(background) > 0.179 else "#fff"


def token_weight_range(weights: np.ndarray, special: Sequence[bool] | None = None) -> tuple[float, float]:
    """(min, max) of the weights of non-special tokens: the range tokens_html maps to colours.

    Use it for :func:`legend_html` next to ``tokens_html(..., normalize=True)``.
    Falls back to all tokens when every token is special.
    """
    weights = np.asarray(weights, dtype=np.float64)
    mask = np.ones(len(weights), dtype=bool) if special is None else ~np.asarray(special, dtype=bool)
    scored = weights[mask] if mask.any() else weights
    if scored.size == 0:
        return 0.0, 0.0
    return float(scored.min()), float(scored.max())


def tokens_html(
    texts: Sequence[str],
    weights: np.ndarray,
    colormap: str = "reds",
    selected: int | None = None,
    normalize: bool = True,
    spaces: Sequence[bool] | None = None,
    special: Sequence[bool] | None = None,
    signed: bool = False,
) -> str:
    """The text as inline spans whose background shows each token's weight.

    Special tokens are shown muted, without colour, and do not take part in normalisation (otherwise
    [CLS]/[SEP], which often draw most of the attention, would wash out the sentence); their value is still in
    the hover title.

    Args:
        texts: T tokens as they read (``explain.spaced`` or ``explain.readable``).
        weights: (T,) weight per token.
        colormap: one of :data:`viz.colormaps.COLORMAPS`.
        selected: index of a token to outline (e.g. the query token), or None.
        normalize: min-max scale the non-special weights to [0, 1] (see :func:`token_weight_range`); when
            False the weights must already lie in [0, 1].
        spaces: (T,) whether a space precedes each token (default: before every token but the first).
        special: (T,) tokens rendered muted (default: none).
        signed: the weights are signed relevance: drawn on `colormap` (give a diverging one, DIVERGING) with
            zero at its middle and the non-special tokens' largest magnitude at its ends (`normalize` ignored).

    Returns:
        An HTML ``<div>``; each token span has ``title="#i token: value"`` with the exact weight.
    """
    weights = np.asarray(weights)
    if weights.ndim != 1 or len(weights) != len(texts):
        raise ValueError(
            f"tokens_html needs one weight per token: {len(texts)} tokens, weights shape {weights.shape}."
        )
    spaces = [position > 0 for position in range(len(texts))] if spaces is None else list(spaces)
    special = [False] * len(texts) if special is None else [bool(s) for s in special]
    if len(spaces) != len(texts) or len(special) != len(texts):
        raise ValueError(f"tokens_html needs one space flag and one special flag per token ({len(texts)} tokens).")
    scaled = weights.astype(np.float64)
    if not np.all(np.isfinite(scaled)):
        raise ValueError("tokens_html got NaN or infinite weights; clean them first.")
    if selected is not None and not 0 <= selected < len(texts):
        raise ValueError(f"selected={selected} is not a token index (0..{len(texts) - 1}).")
    if signed:
        low, high = token_weight_range(scaled, special)
        largest = max(abs(low), abs(high)) or 1.0
        scaled = 0.5 + 0.5 * scaled / largest
    elif normalize:
        low, high = token_weight_range(scaled, special)
        scaled = np.zeros_like(scaled) if high == low else (scaled - low) / (high - low)
    elif len(scaled) and (scaled.min() < 0.0 or scaled.max() > 1.0):
        raise ValueError(
            f"weights span [{scaled.min():.4g}, {scaled.max():.4g}] outside [0, 1]; "
            "pass normalize=True or rescale them."
        )
    colours = apply_colormap(np.clip(scaled, 0.0, 1.0), colormap)  # (T, 3)

    spans = []
    for position, (text, space, muted) in enumerate(zip(texts, spaces, special)):
        # str() of a numpy scalar is the shortest repr that round-trips in its own dtype
        title = html.escape(f"#{position} {text}: {str(weights[position])}", quote=True)
        if muted:
            style = _SPECIAL_STYLE
        else:
            r, g, b = colours[position].tolist()
            style = (
                f"background-color:rgb({r},{g},{b});color:{_text_colour(colours[position])};"
                "border-radius:3px;padding:1px 0;"
            )
        if position == selected:
            style += _SELECTED_STYLE
        spans.append(
            (" " if space else "")
            + f'<span data-index="{position}" title="{title}" style="{style}">'
            + f"{html.escape(text, quote=False)}</span>"
        )
    return (
        '<div style="line-height:2;font-size:1.05em;white-space:pre-wrap;">'
        + "".join(spans)
        + "</div>"
    )


def legend_html(colormap: str, vmin: float, vmax: float) -> str:
    """A small horizontal gradient bar of the colour map with vmin and vmax at its ends."""
    if vmax < vmin:
        raise ValueError(f"legend_html needs vmin <= vmax, got vmin={vmin} and vmax={vmax}.")
    anchors = colormap_anchors(colormap).tolist()
    stops = ", ".join(
        f"rgb({r},{g},{b}) {100 * i / (len(anchors) - 1):.1f}%"
        for i, (r, g, b) in enumerate(anchors)
    )
    return (
        '<div style="display:flex;align-items:center;gap:6px;font-size:0.8em;">'
        f"<span>{vmin:.3g}</span>"
        f'<span style="display:inline-block;width:160px;height:12px;border-radius:2px;'
        f'background:linear-gradient(to right, {stops});"></span>'
        f"<span>{vmax:.3g}</span>"
        "</div>"
    )
