"""Cached access to models and captures.

Models are cached once per process (`st.cache_resource`); captures (one forward [+ backward]) are
cached per model, input and target (`st.cache_data`). Changing a layer, head, colour map or opacity
therefore only re-runs the cheap maths and the drawing.
"""

from __future__ import annotations

import hashlib
from typing import Sequence

import streamlit as st

import explain
import models
from explain import Capture
from models import LoadedModel, ModelLoadError

TEXT_EXAMPLES = (
    "The cat sat on the mat.",
    "Check the program log and find out whether it ran please.",
    "I grew up in France, so I speak fluent French.",
    "The red pizza tasted good!",
    "I love Transformers!",
    "The animal didn't cross the street because it was too tired.",
)
PROBE_EXAMPLES = {
    "The cat sat on the mat.": "A dog lay on the rug.",
    "I grew up in France, so I speak fluent French.": "She speaks French.",
}
LABEL_EXAMPLES = "animals, food, language, computers, travel"


@st.cache_resource(show_spinner="Loading the model (first time only)…", max_entries=6)
def get_model(name: str) -> LoadedModel:
    """The loaded model, once per process. Raises ModelLoadError (not cached) when it cannot load."""
    return models.load(name)


def load_model(name: str) -> LoadedModel | None:
    """The model, or None after showing why it could not load (the app keeps working)."""
    try:
        return get_model(name)
    except ModelLoadError as error:
        st.error(f"{error} Pick another model in the sidebar.")
        return None


@st.cache_data(show_spinner="Running the model…", max_entries=16)
def text_capture(
    model_name: str,
    text: str,
    pair: str | None = None,
    target: str | None = None,
    labels: tuple[str, ...] = (),
    with_gradients: bool = False,
) -> Capture:
    """One forward (+ backward) over a text, cached per model, input and target."""
    return explain.capture_text(
        get_model(model_name), text, pair, target=target, labels=list(labels), with_gradients=with_gradients
    )


@st.cache_data(show_spinner="Running the model…", max_entries=16)
def image_capture(model_name: str, image_digest: str, _image: "object", target: str | None = None) -> Capture:
    """One forward + backward over an image, cached per model, image content and target class.

    The PIL image is not hashed (leading underscore); `image_digest` identifies its content.
    """
    return explain.capture_image(get_model(model_name), _image, target=target, with_gradients=True)


def digest(data: bytes) -> str:
    """A short content hash for cache keys."""
    return hashlib.sha256(data).hexdigest()[:16]


def capture_or_message(function, *args, **kwargs) -> Capture | None:  # noqa: ANN001
    """Run a cached capture; on bad input show the sentence and return None instead of a traceback."""
    try:
        return function(*args, **kwargs)
    except ModelLoadError as error:
        st.error(f"{error} Pick another model in the sidebar.")
    except ValueError as error:
        st.warning(str(error))
    return None


def model_names(kind: str) -> list[str]:
    """Registry names of one kind ("text" or "image"), in registry order (bundled first)."""
    return [name for name, entry in models.REGISTRY.items() if entry.kind == kind]


def parse_labels(text: str) -> tuple[str, ...]:
    """Comma- or newline-separated labels, stripped, empty and duplicate entries removed, order kept."""
    seen: dict[str, None] = {}
    for part in text.replace("\n", ",").split(","):
        if part.strip():
            seen.setdefault(part.strip(), None)
    return tuple(seen)


def truncation_notice(capture: Capture, loaded: LoadedModel) -> None:
    if capture.dropped_tokens:
        st.info(
            f"The text is longer than {loaded.spec.name}'s maximum of {loaded.spec.max_length} tokens: "
            f"the last {capture.dropped_tokens} tokens were dropped."
        )


def selected(names: Sequence[str], value: str) -> int:
    return list(names).index(value) if value in names else 0


@st.cache_data(show_spinner=False)
def bundled_model_rows() -> list[dict]:
    """One row per bundled model for the home page: geometry and size on disk (no weights loaded)."""
    from pathlib import Path

    rows = []
    for spec in models.list_models():
        if not spec.bundled:
            continue
        size = sum(f.stat().st_size for f in Path(spec.source).rglob("*") if f.is_file())
        rows.append({
            "model": spec.name, "kind": spec.kind, "layers": spec.layers, "heads": spec.heads,
            "input": f"up to {spec.max_length} tokens" if spec.kind == "text" else f"{spec.image_size[0]}x{spec.image_size[1]} px, {spec.patch_grid[0]}x{spec.patch_grid[1]} patches",
            "size (MB)": round(size / 1e6, 1), "description": spec.description,
        })
    return rows
