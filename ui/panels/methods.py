"""Every registered method a page offers for its capture: which ones to show (in the URL), their explanations
(cached; the slow ones on request, with a progress bar), and how each is drawn: signed relevance on a diverging
scale centred at zero (or its magnitude, on request), the time it took and what it measured beside it."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import streamlit as st

import explain
from explain import Capture, Explanation, Method
from models import LoadedModel
from ui import url
from ui.services import cached
from viz.bars import relevance_bar
from viz.colormaps import DIVERGING, symmetric_range
from viz.image_figures import image_overlay_figure
from viz.plotting import PLOTLY_CONFIG
from viz.tokens import tokens_html

DEFAULT = ("attention", "rollout", "gradient-rollout")


def choose(prefix: str, capture: Capture, loaded: LoadedModel, default: Sequence[str] = DEFAULT, on: Any = st) -> list[Method]:
    """The methods to show, among every registered method that applies to this model (the URL keeps the choice)."""
    available = explain.methods_for(capture, loaded)
    names = url.multiselect("Methods", [method.name for method in available], f"{prefix}_methods", default, on=on,
                            format_func=lambda name: explain.get_method(name).label,
                            help="; ".join(f"{m.label}: {m.prefer}" for m in available if m.prefer))
    return [explain.get_method(name) for name in names]


def absolute_toggle(prefix: str, on: Any = st) -> bool:
    """Draw signed relevance as its magnitude instead (one toggle per page)."""
    return url.toggle("Signed methods as |relevance|", f"{prefix}_absolute", on=on,
                      help="Off: blue below zero, red above, white at zero. On: the magnitude, on one sequential scale.")


def explanations(key: tuple, capture: Capture, loaded: LoadedModel, methods: Sequence[Method],
                 options: dict[str, dict[str, Any]] | None = None) -> dict[str, Explanation]:
    """Each chosen method's explanation of the capture, cached per input (`key`), method and options. The slow
    methods run when the user asks (a button per input), one after the other under a progress bar."""
    options = options or {}

    def run(method: Method) -> Explanation:
        chosen = method.accepted(capture, options.get(method.name, {}))
        return cached(key + ("explanation", method.name, tuple(sorted(chosen.items()))),
                      lambda: explain.explain_capture(capture, method.name, loaded, **chosen),
                      f"Running {method.label}…", heavy=method.needs_model or method.slow)

    results = {method.name: run(method) for method in methods if not method.slow}
    slow = [method for method in methods if method.slow]
    if slow:
        flag = f"_slow.{hash(key)}"
        names = ", ".join(method.label.lower() for method in slow)
        if not st.session_state.get(flag):
            if st.button(f"Run {names}", key=f"{flag}_button",
                         help="These run the model many times (tens to hundreds of passes); the results are kept."):
                st.session_state[flag] = True
            else:
                st.caption(f"{names.capitalize()}: on request (the button above), as they run the model many times.")
        if st.session_state.get(flag):
            progress = st.progress(0.0, text=f"Running {slow[0].label}…")
            for number, method in enumerate(slow):
                results[method.name] = run(method)
                following = slow[number + 1].label if number + 1 < len(slow) else None
                progress.progress((number + 1) / len(slow), text=f"Running {following}…" if following else "Done")
            progress.empty()
    return {method.name: results[method.name] for method in methods if method.name in results}


def note(method: Method, explanation: Explanation) -> str:
    """The time a method took and what it measured, in one line."""
    parts = [f"{explanation.seconds * 1000:,.0f} ms"]
    measures = explanation.measures
    if "completeness_gap" in measures:
        parts.append(f"completeness gap {100 * measures['completeness_gap']:.2f}% in {measures['steps']:.0f} steps")
    if "relevance_sum" in measures:
        share = measures["relevance_sum"] / measures["target_value"] if measures["target_value"] else float("nan")
        parts.append(f"relevances sum to {measures['relevance_sum']:.3g} of the target's {measures['target_value']:.3g}"
                     f" ({share:.0%})")
    return " · ".join(parts)


def shown_values(method: Method, values: np.ndarray, absolute: bool) -> tuple[np.ndarray, bool]:
    """(what to draw, drawn signed?): a signed method's values as they are (diverging scale) or their magnitude."""
    if method.signed and absolute:
        return np.abs(values), False
    return values, method.signed


def text_view(method: Method, explanation: Explanation, values: np.ndarray, words: dict[str, list], labels: list[str],
              key: str, colormap: str = "reds", absolute: bool = False, selected: int | None = None) -> None:
    """One method over a text: the coloured tokens, a bar per token, the time and measures."""
    values, signed = shown_values(method, values, absolute)
    st.markdown(f"**{method.label}**")
    st.html(tokens_html(words["texts"], values, colormap=DIVERGING if signed else colormap, selected=selected,
                        spaces=words["spaces"], special=words["special"], signed=signed))
    low, high = symmetric_range(values) if signed else (None, None)
    st.plotly_chart(relevance_bar(labels, values, title=method.label, colormap=DIVERGING if signed else colormap,
                                  zmin=low, zmax=high), config=PLOTLY_CONFIG, key=key)
    st.caption(note(method, explanation))


def image_view(method: Method, explanation: Explanation, picture: np.ndarray, key: str, colormap: str = "inferno",
               opacity: float = 0.55, smooth: bool = True, absolute: bool = False, title: str | None = None) -> None:
    """One method over an image: the overlay (a signed map on a diverging scale centred at zero), time and measures."""
    grid, signed = shown_values(method, explanation.grid.float().numpy(), absolute)
    low, high = symmetric_range(grid) if signed else (None, None)
    st.plotly_chart(image_overlay_figure(picture, grid, title=title or method.label,
                                         colormap=DIVERGING if signed else colormap, opacity=opacity, smooth=smooth,
                                         zmin=low, zmax=high), config=PLOTLY_CONFIG, key=key)
    st.caption(note(method, explanation))
