"""Widgets shared by several pages: text input with examples, image input, layer/head pickers, downloads."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st
from PIL import Image

from explain import ImageInputError, open_image
from models.registry import BUNDLED_DIR
from ui import params
from ui.state import TEXT_EXAMPLES, digest
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


def _use_example(prefix: str, examples: tuple[str, ...]) -> None:
    example = st.session_state[f"{prefix}_example"]
    if example in examples:
        st.session_state[f"{prefix}_text"] = example


def text_input(
    prefix: str,
    with_pair: bool = True,
    examples: tuple[str, ...] = TEXT_EXAMPLES,
    shared: str = "text",
    label: str = "Sentence",
) -> tuple[str, str | None]:
    """An example picker, a text area and an optional second sentence; values live in the URL.

    The text is the `shared` value of every page that shows one ("text" for the encoder pages, "prompt"
    for decoders, "source" for encoder-decoders): typed on one page, it is there on the others.
    """
    params.restore(f"{prefix}_text", examples[0], shared=shared)
    params.restore(f"{prefix}_pair", "", shared="pair")
    st.selectbox(
        "Examples", ("Choose an example…",) + tuple(examples), key=f"{prefix}_example",
        on_change=_use_example, args=(prefix, tuple(examples)),
    )
    st.text_area(label, key=f"{prefix}_text", height=80, help="Up to the model's maximum length; longer text is truncated with a notice.")
    pair = None
    if with_pair:
        st.text_input("Second sentence (optional, makes a sentence pair)", key=f"{prefix}_pair")
        pair = st.session_state[f"{prefix}_pair"] or None
    params.publish(f"{prefix}_text", f"{prefix}_pair")
    return st.session_state[f"{prefix}_text"], pair


def layer_head(prefix: str, layers: int, heads: int, allow_mean: bool = True) -> tuple[int, int | None]:
    """Layer and head selectors; head "mean" averages the heads. Returns (layer, head or None)."""
    layer_key, head_key = f"{prefix}_layer", f"{prefix}_head"
    head_options = (["mean"] if allow_mean else []) + list(range(heads))
    params.restore(layer_key, layers - 1, int)
    params.restore(head_key, head_options[0], params.parse_head)
    params.keep_valid(layer_key, list(range(layers)), layers - 1)
    params.keep_valid(head_key, head_options)
    left, right = st.columns(2)
    left.selectbox("Layer", list(range(layers)), key=layer_key)
    right.selectbox("Head", head_options, key=head_key, format_func=lambda h: "mean of heads" if h == "mean" else str(h))
    params.publish(layer_key, head_key)
    head = st.session_state[head_key]
    return st.session_state[layer_key], None if head == "mean" else int(head)


def colormap(prefix: str, default: str = "viridis") -> str:
    key = f"{prefix}_cmap"
    params.restore(key, default, allowed=COLORMAPS)
    st.selectbox("Colour map", COLORMAPS, key=key)
    params.publish(key)
    return st.session_state[key]


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
    source_key, sample_key = f"{prefix}_source", f"{prefix}_sample"
    params.restore(source_key, "sample" if samples else "upload", allowed=("sample", "upload"), shared="image_source")
    st.radio("Image", ("sample", "upload"), key=source_key, horizontal=True,
             format_func={"sample": "Bundled sample scene", "upload": "Upload an image"}.get)
    params.publish(source_key)
    if st.session_state[source_key] == "upload":
        upload = st.file_uploader("Image file (PNG, JPEG, WebP, BMP, GIF, TIFF)", key=f"{prefix}_upload")
        earlier = params.kept("image_upload")  # (name, bytes) uploaded on this or another page
        if upload is not None:
            refusal = upload_refusal(upload.name, upload.size)
            if refusal:
                params.keep("image_upload", None)
                st.error(refusal)
                return None
            data, name = upload.getvalue(), upload.name
            params.keep("image_upload", (name, data))
        elif earlier is not None:
            name, data = earlier
            left, right = st.columns([3, 1])
            left.caption(f"Showing **{name}**, uploaded earlier (uploads stay in this session, not in the URL).")
            if right.button("Forget it", key=f"{prefix}_forget"):
                params.keep("image_upload", None)
                st.rerun()
        else:
            st.info("Upload an image, or switch to a bundled sample scene.")
            return None
    else:
        if not samples:
            st.warning("No bundled sample scenes were found: upload an image instead.")
            return None
        names = [path.name for path in samples]
        params.restore(sample_key, names[0], allowed=names, shared="image_sample")
        st.selectbox("Sample scene", names, key=sample_key)
        params.publish(sample_key)
        name = st.session_state[sample_key]
        data = (SAMPLES_DIR / name).read_bytes()
    try:
        image = open_image(data, name=name)
    except ImageInputError as error:
        st.error(str(error))
        return None
    return ImageChoice(image=image, digest=digest(data), name=name, sample=st.session_state[source_key] == "sample")


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


def rollout_options(prefix: str, layers: int, with_start: bool = True) -> tuple[str, float, int]:
    """Head fusion, discard ratio and start layer for attention rollout (start layer also for gradient rollout;
    without `with_start` no start-layer widget is drawn and 0 is returned)."""
    from explain import HEAD_FUSIONS

    fusion_key, discard_key, start_key = f"{prefix}_fusion", f"{prefix}_discard", f"{prefix}_start"
    params.restore(fusion_key, "mean", allowed=HEAD_FUSIONS)
    st.selectbox("Head fusion", HEAD_FUSIONS, key=fusion_key)
    params.restore(discard_key, 0.0, float)
    if not 0.0 <= st.session_state[discard_key] <= 0.95:
        st.session_state[discard_key] = 0.0
    st.slider("Discard ratio", 0.0, 0.95, step=0.05, key=discard_key,
              help="Share of the smallest attention entries dropped in every row before rolling out.")
    params.publish(fusion_key, discard_key)
    if not with_start:
        return st.session_state[fusion_key], float(st.session_state[discard_key]), 0
    params.restore(start_key, 0, int)
    params.keep_valid(start_key, list(range(layers)))
    st.selectbox("Start layer", list(range(layers)), key=start_key)
    params.publish(start_key)
    return st.session_state[fusion_key], float(st.session_state[discard_key]), st.session_state[start_key]


KIND_NAMES = {"text": "a text encoder", "image": "an image model", "decoder": "a decoder (causal LM)",
              "seq2seq": "an encoder-decoder"}


def wrong_kind(loaded, name: str, kind: str) -> bool:  # noqa: ANN001
    """True, after saying so on the page, when the loaded model `name` is not of the `kind` a page needs."""
    if loaded.spec.kind == kind:
        return False
    st.error(f"'{name}' is {KIND_NAMES[loaded.spec.kind]}, not {KIND_NAMES[kind]}: pick one in the sidebar.")
    return True


def text_page_input(prefix: str):  # noqa: ANN201 - (model name, LoadedModel, text, pair)
    """The text model from the sidebar and the sentence; stops the page with a message when either is missing."""
    from ui.state import load_model

    model_name = st.session_state.get("text_model", "minilm")
    loaded = load_model(model_name)
    text, pair = text_input(prefix)
    if loaded is not None and wrong_kind(loaded, model_name, "text"):
        st.stop()
    if loaded is not None and not text.strip():
        st.warning("The text is empty: type a sentence or pick an example.")
    if loaded is None or not text.strip():
        st.stop()
    return model_name, loaded, text, pair


def unknown_notice(capture) -> None:  # noqa: ANN001 - a Capture or Seq2SeqCapture
    """Say which words of the input the tokenizer could only map to its unknown token (emoji, rare scripts)."""
    words = getattr(capture, "unknown_words", None)
    if words:
        shown = ", ".join(f"“{word}”" for word in words[:12]) + (" …" if len(words) > 12 else "")
        st.info(f"Not in the model's vocabulary, so read as one unknown token each: {shown}. "
                "The model sees nothing of what these were.")
