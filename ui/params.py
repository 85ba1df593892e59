"""The page's state in the URL and across pages: widgets start from query parameters and write their
values back, so a view can be shared and reloaded; invalid values in a URL fall back to the default,
never crash.

Streamlit forgets a widget's value when a run does not draw it (another page is shown), so every value
restored here is also kept under a plain session key ("_keep.<name>") that survives navigation. Widgets
of different pages that show the same thing (the sentence, the image) name one `shared` value: typing
the sentence on one page changes it on all of them, and the URL holds it under that shared name."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import streamlit as st


_SHARED = "_shared_names"  # session key: widget key -> the shared name it shows


def _name(key: str) -> str:
    """The name a widget's value is kept and published under: its shared name, else its own key."""
    return st.session_state.get(_SHARED, {}).get(key, key)


def restore(
    key: str,
    default: Any,
    parse: Callable[[str], Any] = str,
    allowed: Sequence[Any] | None = None,
    shared: str | None = None,
) -> None:
    """Give the widget `key` its value: its own when drawn in the last run, else the value kept from an
    earlier visit (or set on another page, for a `shared` name), else the URL's when valid, else `default`.

    Call it before the widget, on every run. When the value is already there it is written back to
    itself: a widget that was not drawn in the previous run (the page stopped early, e.g. before an
    image was uploaded) otherwise keeps its value on the server but shows its minimum or first
    option in the browser (streamlit/streamlit#4247).
    """
    if shared is not None:
        st.session_state.setdefault(_SHARED, {})[key] = shared
    name = _name(key)
    if key in st.session_state:
        st.session_state[key] = st.session_state[key]
        return
    kept = st.session_state.get(f"_keep.{name}", _MISSING)
    if kept is not _MISSING and (allowed is None or kept in allowed):
        st.session_state[key] = kept
        return
    value = default
    raw = st.query_params.get(name)
    if raw is not None:
        try:
            candidate = parse(raw)
        except (TypeError, ValueError):
            candidate = default
        if allowed is None or candidate in allowed:
            value = candidate
    st.session_state[key] = value


_MISSING = object()


def keep(name: str, value: Any) -> None:
    """Remember a value across pages under `name` without a widget (e.g. an uploaded image's bytes)."""
    st.session_state[f"_keep.{name}"] = value


def kept(name: str, default: Any = None) -> Any:
    """A value remembered with `keep` or by `publish`, or `default`."""
    return st.session_state.get(f"_keep.{name}", default)


def keep_valid(key: str, options: Sequence[Any], default: Any | None = None) -> None:
    """Reset a widget's value that is no longer among its options (e.g. layer 11 after switching to a 6-layer model)."""
    if st.session_state.get(key) not in options:
        st.session_state[key] = options[0] if default is None or default not in options else default


def publish(*keys: str) -> None:
    """Keep the widgets' current values for other pages and later visits, and write them to the URL
    (under their shared names; empty values are removed from the URL)."""
    for key in keys:
        value = st.session_state.get(key)
        name = _name(key)
        if key in st.session_state:
            st.session_state[f"_keep.{name}"] = value
        key = name
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
