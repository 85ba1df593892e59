"""Inputs shared by the Learn pages: which model (the sidebar's, by kind), which input, and the cached
numbers computed from them."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from explain.qkv import HeadInternals, head_internals
from models import LoadedModel
from ui import params, widgets
from ui.state import DECODER_EXAMPLES, cached, capture_or_message, load_model

KINDS = {"text": "Text encoder", "decoder": "Decoder", "image": "Vision Transformer"}
DEFAULTS = {"text": "minilm", "decoder": "induction-lm", "image": "shapes-vit"}


@dataclass
class ModelInput:
    kind: str
    name: str
    loaded: LoadedModel
    text: str | None = None
    image: object = None
    digest: str = ""


def model_and_input(prefix: str, kinds: tuple[str, ...] = tuple(KINDS)) -> ModelInput | None:
    """A kind of model (its sidebar choice) and an input for it; None (after saying why) when either is missing."""
    params.restore(f"{prefix}_kind", kinds[0], allowed=kinds)
    kind = st.radio("Model", kinds, key=f"{prefix}_kind", horizontal=True, format_func=KINDS.get) if len(kinds) > 1 else kinds[0]
    params.publish(f"{prefix}_kind")
    name = st.session_state.get(f"{kind}_model", DEFAULTS[kind])
    loaded = load_model(name)
    if kind == "image":
        choice = widgets.image_input(prefix)
        if loaded is None or choice is None:
            return None
        text, image, digest = None, choice.image, choice.digest
    else:
        text, _ = widgets.text_input(f"{prefix}_{kind}", with_pair=False, shared="prompt" if kind == "decoder" else "text",
                                     **({"examples": DECODER_EXAMPLES} if kind == "decoder" else {}))
        if loaded is None or not text.strip():
            return None
        image, digest = None, text
    if widgets.wrong_kind(loaded, name, kind):
        return None
    return ModelInput(kind, name, loaded, text, image, digest)


@dataclass
class HeadStep:
    loaded: LoadedModel
    result: HeadInternals


def head_step_input(prefix: str) -> HeadStep | None:
    """Model, input, layer, head and query token for the Inside-one-head page, and the head's numbers."""
    chosen = model_and_input(prefix)
    if chosen is None:
        return None
    spec = chosen.loaded.spec
    layer, head = widgets.layer_head(prefix, spec.layers, spec.heads, allow_mean=False)
    probe = capture_or_message(lambda: cached(("qkv", chosen.name, chosen.digest, layer, head, 0), lambda: head_internals(
        chosen.loaded, text=chosen.text, image=chosen.image, layer=layer, head=head, token=0)))
    if probe is None:
        return None
    tokens = probe.tokens
    params.restore(f"{prefix}_token", min(1, len(tokens) - 1), int)
    params.keep_valid(f"{prefix}_token", list(range(len(tokens))))
    token = st.selectbox("Query token", list(range(len(tokens))), key=f"{prefix}_token",
                         format_func=lambda i: f"{i}: {tokens[i]}")
    params.publish(f"{prefix}_token")
    result = capture_or_message(lambda: cached(("qkv", chosen.name, chosen.digest, layer, head, token), lambda: head_internals(
        chosen.loaded, text=chosen.text, image=chosen.image, layer=layer, head=head, token=token)))
    return None if result is None else HeadStep(chosen.loaded, result)
