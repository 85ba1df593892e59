"""The page's state in the URL: widgets start from query parameters and write their values back,
so a view can be shared and reloaded. Invalid values in a URL fall back to the default, never crash."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import streamlit as st


def restore(key: str, default: Any, parse: Callable[[str], Any] = str, allowed: Sequence[Any] | None = None) -> None:
    """Give the widget `key` its first value: from the URL when valid, else `default`.

    Call it before the widget, on every run. When the value is already there it is written back to
    itself: a widget that was not drawn in the previous run (the page stopped early, e.g. before an
    image was uploaded) otherwise keeps its value on the server but shows its minimum or first
    option in the browser (streamlit/streamlit#4247).
    """
    if key in st.session_state:
        st.session_state[key] = st.session_state[key]
        return
    value = default
    raw = st.query_params.get(key)
    if raw is not None:
        try:
            candidate = parse(raw)
        except (TypeError, ValueError):
            candidate = default
        if allowed is None or candidate in allowed:
            value = candidate
    st.session_state[key] = value


def keep_valid(key: str, options: Sequence[Any], default: Any | None = None) -> None:
    """Reset a widget's value that is no longer among its options (e.g. layer 11 after switching to a 6-layer model)."""
    if st.session_state.get(key) not in options:
        st.session_state[key] = options[0] if default is None or default not in options else default


def publish(*keys: str) -> None:
    """Write the widgets' current values to the URL (empty values are removed)."""
    for key in keys:
        value = st.session_state.get(key)
        if value is None or value == "" or value == ():
            if key in st.query_params:
                del st.query_params[key]
        elif isinstance(value, bool):
            st.query_params[key] = "1" if value else "0"
        else:
            st.query_params[key] = str(value)


def parse_bool(raw: str) -> bool:
    if raw in ("1", "true", "True"):
        return True
    if raw in ("0", "false", "False"):
        return False
    raise ValueError(raw)


def parse_head(raw: str) -> str | int:
    """A head is an index or "mean"."""
    return "mean" if raw == "mean" else int(raw)
