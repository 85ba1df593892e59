"""Widgets whose value lives in the URL and across pages: one call draws the widget with its value restored and
writes the value back, so a view can be shared and reloaded; invalid values in a URL fall back to the default,
never crash.

    layer = url.selectbox("Layer", range(6), key="ta_layer", default=5)

Streamlit forgets a widget's value when a run does not draw it (another page is shown), so every value is also
kept under a plain session key ("_keep.<name>") that survives navigation. Widgets of different pages that show
the same thing (the sentence, the image) name one `shared` value: typing the sentence on one page changes it on
all of them, and the URL holds it under that shared name.
"""

from __future__ import annotations

import hashlib
from typing import Any, Callable, Iterable, Sequence

import streamlit as st

from ui.cache import ByteBudgetCache

_SHARED = "_shared_names"  # session key: widget key -> the shared name it shows
_MISSING = object()
# A value longer than this (a pasted page of text) is kept on the server and the URL holds a short reference to it
# ("~" and 16 hex digits), so that links stay a few hundred characters long.
URL_VALUE_LIMIT = 500
LONG_PREFIX = "~"
FORGOTTEN = "_url_forgotten"  # session key: the names whose long value this server no longer holds


@st.cache_resource(show_spinner=False)
def long_values() -> ByteBudgetCache:
    """The process's store of values too long for a URL, by reference (16 MB; the oldest go first)."""
    return ByteBudgetCache(16 * 2**20)


def url_value(value: str) -> str:
    """What the URL holds for a value: the value itself, or a reference to it kept on this server."""
    if len(value) <= URL_VALUE_LIMIT:
        return value
    reference = LONG_PREFIX + hashlib.sha256(value.encode()).hexdigest()[:16]
    long_values().put(reference, value, len(value.encode()))
    return reference


def from_url(raw: str) -> str | None:
    """A URL value read back: itself, the long value its reference names, or None when this server no longer holds
    it (it restarted, or the reference is older than what its store keeps)."""
    if not raw.startswith(LONG_PREFIX):
        return raw
    found, value = long_values().get(raw)
    return value if found else None


def _name(key: str) -> str:
    """The name a widget's value is kept and published under: its shared name, else its own key."""
    return st.session_state.get(_SHARED, {}).get(key, key)


def parse_bool(raw: str) -> bool:
    if raw in ("1", "true", "True"):
        return True
    if raw in ("0", "false", "False"):
        return False
    raise ValueError(raw)


def parse_like(default: Any) -> Callable[[str], Any]:
    """How a URL value is read for a widget whose default is `default` (bool, int, float or text)."""
    if isinstance(default, bool):
        return parse_bool
    if isinstance(default, (int, float)):
        return type(default)
    return str


def option_parser(options: Sequence[Any]) -> Callable[[str], Any]:
    """A URL value names one of `options` by its text ("mean", "3")."""
    by_text = {str(option): option for option in options}

    def parse(raw: str) -> Any:
        if raw not in by_text:
            raise ValueError(raw)
        return by_text[raw]

    return parse


def restore(key: str, default: Any, parse: Callable[[str], Any] = str, allowed: Sequence[Any] | None = None,
            shared: str | None = None) -> None:
    """Give the widget `key` its value: its own when drawn in the last run, else the value kept from an earlier
    visit (or set on another page, for a `shared` name), else the URL's when valid, else `default`.

    When the value is already there it is written back to itself: a widget that was not drawn in the previous
    run (the page stopped early) otherwise keeps its value on the server but shows its first option in the
    browser (streamlit/streamlit#4247). A value no longer allowed (layer 11 after switching to a 6-layer model)
    falls back to the default.
    """
    if shared is not None:
        st.session_state.setdefault(_SHARED, {})[key] = shared
    name = _name(key)
    if key in st.session_state and (allowed is None or st.session_state[key] in allowed):
        st.session_state[key] = st.session_state[key]
        return
    kept_value = st.session_state.get(f"_keep.{name}", _MISSING)
    if kept_value is not _MISSING and (allowed is None or kept_value in allowed):
        st.session_state[key] = kept_value
        return
    value = default
    raw = st.query_params.get(name)
    if raw is not None:
        raw = from_url(raw)
        if raw is None:
            st.session_state.setdefault(FORGOTTEN, set()).add(name)
    if raw is not None:
        try:
            candidate = parse(raw)
        except (TypeError, ValueError):
            candidate = default
        if allowed is None or candidate in allowed:
            value = candidate
    st.session_state[key] = value


def publish(*keys: str) -> None:
    """Keep the widgets' current values for other pages and later visits, and write them to the URL (under their
    shared names; empty values are removed from the URL)."""
    for key in keys:
        value = st.session_state.get(key)
        name = _name(key)
        if key in st.session_state:
            st.session_state[f"_keep.{name}"] = value
        if value is None or value == "" or value == ():
            if name in st.query_params:
                del st.query_params[name]
        elif isinstance(value, bool):
            st.query_params[name] = "1" if value else "0"
        else:
            st.query_params[name] = url_value(str(value))


def forgotten_notice() -> None:
    """Say so once when a link named a long text this server no longer holds (the default was used instead)."""
    names = st.session_state.pop(FORGOTTEN, set())
    if names:
        st.info("This link named a text too long for a URL, which this server no longer keeps (it restarted since): "
                "the example is shown instead. Paste the text again to share it from here.")


def keep(name: str, value: Any) -> None:
    """Remember a value across pages under `name` without a widget (e.g. an uploaded image's bytes)."""
    st.session_state[f"_keep.{name}"] = value


def kept(name: str, default: Any = None) -> Any:
    """A value remembered with `keep` or by a bound widget, or `default`."""
    return st.session_state.get(f"_keep.{name}", default)


def bound(widget: Callable[..., Any], label: str, key: str, default: Any, *args: Any,
          options: Sequence[Any] | None = None, parse: Callable[[str], Any] | None = None,
          shared: str | None = None, **kwargs: Any) -> Any:
    """Draw `widget(label, *args, key=key, **kwargs)` with its value restored (see `restore`) and published.

    Args:
        widget: a Streamlit widget function, on any container (`st.selectbox`, `column.toggle`, ...).
        default: the value without one in the session or the URL; for option widgets, one of `options` (the
            first when it is not).
        options: the values an option widget offers (passed to it after `label`).
        parse: how a URL value is read (default: by the options' texts, or like the default's type).
        shared: the name of a value several pages show.
    """
    if options is not None:
        options = list(options)
        default = default if default in options else options[0]
        args = (options,) + args
    restore(key, default, parse or (option_parser(options) if options is not None else parse_like(default)),
            allowed=options, shared=shared)
    value = widget(label, *args, key=key, **kwargs)
    publish(key)
    return value


def selectbox(label: str, options: Sequence[Any], key: str, default: Any = None, *, on: Any = st, **kwargs: Any) -> Any:
    """A select box bound to the URL (see `bound`); `on` is the container (st, st.sidebar, a column)."""
    return bound(on.selectbox, label, key, default, options=options, **kwargs)


def radio(label: str, options: Sequence[Any], key: str, default: Any = None, *, on: Any = st, **kwargs: Any) -> Any:
    """Radio buttons bound to the URL (see `bound`)."""
    return bound(on.radio, label, key, default, options=options, **kwargs)


def toggle(label: str, key: str, default: bool = False, *, on: Any = st, **kwargs: Any) -> bool:
    """A toggle bound to the URL (see `bound`)."""
    return bound(on.toggle, label, key, default, **kwargs)


def text_input(label: str, key: str, default: str = "", *, on: Any = st, **kwargs: Any) -> str:
    """A one-line text field bound to the URL (see `bound`)."""
    return bound(on.text_input, label, key, default, **kwargs)


def text_area(label: str, key: str, default: str = "", *, on: Any = st, **kwargs: Any) -> str:
    """A text area bound to the URL (see `bound`)."""
    return bound(on.text_area, label, key, default, **kwargs)


def slider(label: str, low: float, high: float, key: str, default: float, *, on: Any = st, **kwargs: Any) -> Any:
    """A slider bound to the URL; a value outside [low, high] falls back to the default."""
    restore(key, default, parse_like(default))
    if not low <= st.session_state[key] <= high:
        st.session_state[key] = default
    value = on.slider(label, low, high, key=key, **kwargs)
    publish(key)
    return value


def number_input(label: str, low: int, high: int, key: str, default: int, *, on: Any = st, **kwargs: Any) -> int:
    """A whole-number field bound to the URL; a value outside [low, high] falls back to the default."""
    restore(key, default, int)
    if not low <= st.session_state[key] <= high:
        st.session_state[key] = default
    value = on.number_input(label, low, high, key=key, **kwargs)
    publish(key)
    return value


def tabs(labels: Sequence[str], key: str, default: str | None = None) -> tuple[list[Any], str]:
    """Tabs whose chosen tab lives in the URL (a reload or a shared link opens it): (the tab containers, the chosen
    label). Choosing a tab reruns the page, so a page may draw only the chosen tab's content."""
    labels = list(labels)
    restore(key, default if default in labels else labels[0], option_parser(labels), allowed=labels)
    containers = st.tabs(labels, key=key, on_change="rerun")
    publish(key)
    return list(containers), st.session_state[key]


def join_list(parts: Iterable[str]) -> str:
    """One URL value for a list: comma-separated, a comma or backslash inside a part escaped by a backslash (a
    token label such as "#6 ," stays one part)."""
    return ",".join(part.replace("\\", "\\\\").replace(",", "\\,") for part in parts)


def split_list(value: str) -> list[str]:
    """The parts join_list joined (a plain comma-separated value reads as before)."""
    parts, current, escaped = [], [], False
    for character in value:
        if escaped:
            current.append(character)
            escaped = False
        elif character == "\\":
            escaped = True
        elif character == ",":
            parts.append("".join(current))
            current = []
        else:
            current.append(character)
    parts.append("".join(current))
    return parts


def multiselect(label: str, options: Sequence[Any], key: str, default: Sequence[Any] = (), *, on: Any = st,
                **kwargs: Any) -> list[Any]:
    """A multiselect bound to the URL as one comma-separated value (join_list); names no longer offered are dropped."""
    options = list(options)
    by_text = {str(option): option for option in options}
    wanted = [option for option in default if option in options]
    current = st.session_state.get(key)
    if current is None or not all(option in options for option in current):
        stored = kept(_name(key))
        if stored is None and key in st.query_params:
            stored = [by_text[part] for part in split_list(st.query_params[key]) if part in by_text]
        chosen = wanted if stored is None else [option for option in stored if option in options]
        st.session_state[key] = chosen
    else:
        st.session_state[key] = current
    value = on.multiselect(label, options, key=key, **kwargs)
    keep(_name(key), list(value))
    if value:
        st.query_params[_name(key)] = join_list(str(option) for option in value)
    elif _name(key) in st.query_params:
        del st.query_params[_name(key)]
    return list(value)
