"""Widgets shared by several pages: the sidebar's model pickers, text input with examples, image input,
layer/head pickers, rollout options, downloads. Every value lives in the URL (ui/url.py)."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st
from PIL import Image

import models
from explain import HEAD_FUSIONS, ImageInputError, open_image
from models import ModelKind, read_settings
from models.registry import BUNDLED_DIR
from ui import url
from ui.examples import EXAMPLES, TEXT_EXAMPLES
from ui.notices import wrong_kind
from ui.services import digest, load_model, model_names
from viz.colormaps import COLORMAPS

SAMPLES_DIR = BUNDLED_DIR / "samples"
UPLOAD_TYPES = ["png", "jpg", "jpeg", "webp", "bmp", "gif", "tif", "tiff"]
MAX_UPLOAD_MB = 50  # the server accepts up to 200 MB (.streamlit/config.toml) so that the app, not a hover
                    # chip in the browser, says why a larger file is refused


def upload_refusal(name: str, size: int) -> str | None:
    """Why an uploaded file is refused (one sentence), or None when it may be opened.

    The uploader accepts every file type: a refusal made in the browser only shows in a chip on hover and
    leaves the previous image and its message on the page.
    """
    extension = Path(name).suffix.lower().lstrip(".")
    if extension == "svg":
        return f"{name} is an SVG drawing, which is not made of pixels: export it as PNG and upload that."
    if extension not in UPLOAD_TYPES:
        return f"{name} is not an image this app reads: upload a PNG, JPEG, WebP, BMP, GIF or TIFF file."
    if size > MAX_UPLOAD_MB * 2**20:
        return f"{name} is {size / 2**20:.0f} MB, over the {MAX_UPLOAD_MB} MB limit: resize or compress it and try again."
    return None


OTHER = "other (directory or hub id)…"
OTHER_EXAMPLES = {
    "text": "distilbert/distilbert-base-uncased-finetuned-sst-2-english",
    "image": "facebook/deit-tiny-patch16-224",
    "decoder": "openai-community/gpt2 or Qwen/Qwen2.5-0.5B",
    "seq2seq": "google-t5/t5-small or Helsinki-NLP/opus-mt-en-de",
}


def model_picker(kind: ModelKind) -> None:
    """A sidebar select box of the registered models of one kind plus, when the operator's settings let visitors load
    other models (models/settings.py), a free field for a hub id or a local checkpoint (when local paths are accepted);
    the choice is kept in st.session_state[f"{kind.name}_model"] for every page."""
    settings = read_settings()
    names = model_names(kind)
    other_kinds = ("directory or hub id" if settings.local_paths else "hub id")
    choice = url.selectbox(kind.label, names + ([OTHER] if settings.other_models else []),
                           f"{kind.name}_model_choice", kind.default_model, on=st.sidebar,
                           format_func=lambda n: f"other ({other_kinds})…" if n == OTHER else
                           f"{n} ({'bundled' if models.REGISTRY[n].bundled else 'download'})")
    if choice == OTHER:
        example = OTHER_EXAMPLES.get(kind.name, "")
        if settings.allow:
            example = "a hub id matching " + ", ".join(settings.allow)
        label = "local directory or Hugging Face hub id" if settings.local_paths else "Hugging Face hub id"
        other = url.text_input(f"{kind.label}: {label}", f"{kind.name}_model_other", on=st.sidebar,
                               placeholder=f"e.g. ./my-checkpoint or {example}" if settings.local_paths and
                               not settings.allow else f"e.g. {example}")
        st.session_state[f"{kind.name}_model"] = other.strip() or kind.default_model
    else:
        st.session_state[f"{kind.name}_model"] = choice


def chosen_model(kind: ModelKind) -> str:
    """The model of this kind chosen in the sidebar."""
    return st.session_state.get(f"{kind.name}_model", kind.default_model)


def _use_example(prefix: str, examples: tuple[str, ...]) -> None:
    example = st.session_state[f"{prefix}_example"]
    if example in examples:
        st.session_state[f"{prefix}_text"] = example


def text_input(prefix: str, with_pair: bool = True, examples: tuple[str, ...] = TEXT_EXAMPLES, shared: str = "text",
               label: str = "Sentence") -> tuple[str, str | None]:
    """An example picker, a text area and an optional second sentence; values live in the URL.

    The text is the `shared` value of every page that shows one ("text" for the encoder pages, "prompt" for
    decoders, "source" for encoder-decoders): typed on one page, it is there on the others.
    """
    st.selectbox("Examples", ("Choose an example…",) + tuple(examples), key=f"{prefix}_example",
                 on_change=_use_example, args=(prefix, tuple(examples)))
    text = url.text_area(label, f"{prefix}_text", examples[0], shared=shared, height=80,
                         help="Up to the model's maximum length; longer text is truncated with a notice.")
    url.forgotten_notice()
    pair = None
    if with_pair:
        pair = url.text_input("Second sentence (optional, makes a sentence pair)", f"{prefix}_pair",
                              shared="pair") or None
    return text, pair


def kind_input(prefix: str, kind: ModelKind, with_pair: bool = False) -> tuple[str, str | None]:
    """The text input of a kind of model: its examples, its shared value and its label (Sentence, Prompt, Source)."""
    return text_input(prefix, with_pair=with_pair, examples=EXAMPLES.get(kind.name, TEXT_EXAMPLES),
                      shared=kind.shared_input, label=kind.input_label)


def layer_head(prefix: str, layers: int, heads: int, allow_mean: bool = True, on=st,  # noqa: ANN001
               default_layer: int | None = None, default_head: int | str | None = None) -> tuple[int, int | None]:
    """Layer and head selectors; head "mean" averages the heads. Returns (layer, head or None)."""
    left, right = on.columns(2)
    layer = url.selectbox("Layer", list(range(layers)), f"{prefix}_layer",
                          layers - 1 if default_layer is None else default_layer, on=left)
    head_options = (["mean"] if allow_mean else []) + list(range(heads))
    head = url.selectbox("Head", head_options, f"{prefix}_head", head_options[0] if default_head is None else default_head,
                         on=right, help="One head, or the mean of the layer's heads.")
    return layer, None if head == "mean" else int(head)


def colormap(prefix: str, default: str = "viridis", on=st) -> str:  # noqa: ANN001
    return url.selectbox("Colour map", COLORMAPS, f"{prefix}_cmap", default, on=on)


@dataclass
class ImageChoice:
    image: Image.Image
    digest: str
    name: str
    sample: bool = False  # a bundled sample scene (its ground truth is known)


def sample_images() -> list[Path]:
    return sorted(SAMPLES_DIR.glob("*.png")) if SAMPLES_DIR.is_dir() else []


def image_input(prefix: str) -> ImageChoice | None:
    """Upload an image or choose a bundled sample scene; a bad file gives a message, not a traceback."""
    samples = sample_images()
    source = url.radio("Image", ("sample", "upload"), f"{prefix}_source", "sample" if samples else "upload",
                       shared="image_source", horizontal=True,
                       format_func={"sample": "Bundled sample scene", "upload": "Upload an image"}.get)
    if source == "upload":
        upload = st.file_uploader("Image file (PNG, JPEG, WebP, BMP, GIF, TIFF)", key=f"{prefix}_upload")
        earlier = url.kept("image_upload")  # (name, bytes) uploaded on this or another page
        if upload is not None:
            refusal = upload_refusal(upload.name, upload.size)
            if refusal:
                url.keep("image_upload", None)
                st.error(refusal)
                return None
            data, name = upload.getvalue(), upload.name
            url.keep("image_upload", (name, data))
        elif earlier is not None:
            name, data = earlier
            left, right = st.columns([3, 1])
            left.caption(f"Showing **{name}**, uploaded earlier (uploads stay in this session, not in the URL).")
            if right.button("Forget it", key=f"{prefix}_forget"):
                url.keep("image_upload", None)
                st.rerun()
        else:
            st.info("Upload an image, or switch to a bundled sample scene.")
            return None
    else:
        if not samples:
            st.warning("No bundled sample scenes were found: upload an image instead.")
            return None
        name = url.selectbox("Sample scene", [path.name for path in samples], f"{prefix}_sample", shared="image_sample")
        data = (SAMPLES_DIR / name).read_bytes()
    try:
        image = open_image(data, name=name)
    except ImageInputError as error:
        st.error(str(error))
        return None
    return ImageChoice(image=image, digest=digest(data), name=name, sample=source == "sample")


def sample_labels() -> dict[str, list[str]]:
    """File name -> ground-truth labels of the bundled sample scenes (samples.json, as written by
    ``training.train_vit.write_samples``); empty when the file is missing or not in that format."""
    path = SAMPLES_DIR / "samples.json"
    if not path.is_file():
        return {}
    try:
        samples = json.loads(path.read_text())["samples"]
        return {item["file"]: list(item["labels"]) for item in samples}
    except (ValueError, KeyError, TypeError):
        return {}


def npz_bytes(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def csv_bytes(matrix: np.ndarray, row_labels: list[str], col_labels: list[str]) -> bytes:
    import pandas as pd

    return pd.DataFrame(matrix, index=row_labels, columns=col_labels).to_csv().encode()


def rollout_options(prefix: str, layers: int, with_start: bool = True, on=st) -> tuple[str, float, int]:  # noqa: ANN001
    """Head fusion, discard ratio and start layer for attention rollout (start layer also for gradient rollout;
    without `with_start` no start-layer widget is drawn and 0 is returned)."""
    fusion = url.selectbox("Head fusion", HEAD_FUSIONS, f"{prefix}_fusion", "mean", on=on)
    discard = url.slider("Discard ratio", 0.0, 0.95, f"{prefix}_discard", 0.0, on=on, step=0.05,
                         help="Share of the smallest attention entries dropped in every row before rolling out.")
    if not with_start:
        return fusion, float(discard), 0
    start = url.selectbox("Start layer", list(range(layers)), f"{prefix}_start", 0, on=on)
    return fusion, float(discard), int(start)


def parse_labels(text: str) -> tuple[str, ...]:
    """Comma- or newline-separated labels, stripped, empty and duplicate entries removed, order kept."""
    seen: dict[str, None] = {}
    for part in text.replace("\n", ",").split(","):
        if part.strip():
            seen.setdefault(part.strip(), None)
    return tuple(seen)


def page_model(kind: ModelKind):  # noqa: ANN201 - (name, LoadedModel or None)
    """The sidebar's model of `kind`, loaded, or None after saying why (the page stops)."""
    name = chosen_model(kind)
    loaded = load_model(name)
    if loaded is not None and wrong_kind(loaded, name, kind):
        return name, None
    return name, loaded


def text_page_input(prefix: str, kind: ModelKind = models.TEXT):  # noqa: ANN201 - (model name, LoadedModel, text, pair)
    """The sidebar's model of `kind` and its text input; stops the page with a sentence saying what to type when the
    text is empty or what to pick when the model cannot serve."""
    name, loaded = page_model(kind)
    text, pair = kind_input(prefix, kind, with_pair=not kind.generates)
    if loaded is not None and not text.strip():
        st.warning(f"The {kind.input_label.lower()} is empty: type one or pick an example.")
    if loaded is None or not text.strip():
        st.stop()
    return name, loaded, text, pair
