"""Inputs shared by the Learn pages: which model (the sidebar's, by kind), which input, and the cached numbers
computed from them."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from explain.qkv import HeadInternals, head_internals
from models import DECODER, IMAGE, TEXT, LoadedModel, ModelKind, kind_named
from ui import url, widgets
from ui.notices import capture_or_message, truncation_notice
from ui.services import cached


def agreement(gap: float) -> str:
    """How closely a recomputed number matches the model's own, for a sentence: "exactly" or "to within 2.4e-07"."""
    return "exactly" if gap == 0 else f"to within {gap:.1e}"


@dataclass
class ModelInput:
    kind: ModelKind
    name: str
    loaded: LoadedModel
    text: str | None = None
    image: object = None
    digest: str = ""


def model_and_input(prefix: str, kinds: tuple[ModelKind, ...] = (TEXT, DECODER, IMAGE)) -> ModelInput | None:
    """A kind of model (its sidebar choice) and an input for it; None (after saying why) when either is missing."""
    names = [kind.name for kind in kinds]
    chosen = url.radio("Model", names, f"{prefix}_kind", names[0], horizontal=True,
                       format_func=lambda n: kind_named(n).label) if len(kinds) > 1 else names[0]
    kind = kind_named(chosen)
    name, loaded = widgets.page_model(kind)
    if kind.reads_images:
        choice = widgets.image_input(prefix)
        if loaded is None or choice is None:
            return None
        return ModelInput(kind, name, loaded, None, choice.image, choice.digest)
    text, _ = widgets.kind_input(f"{prefix}_{kind.name}", kind)
    if loaded is None:
        return None
    if not text.strip():
        st.warning(f"The {kind.input_label.lower()} is empty: type one or pick an example.")
        return None
    return ModelInput(kind, name, loaded, text, None, text)


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

    def internals(token: int) -> HeadInternals | None:
        return capture_or_message(lambda: cached(("qkv", chosen.name, chosen.digest, layer, head, token),
                                                 lambda: head_internals(chosen.loaded, text=chosen.text, image=chosen.image,
                                                                        layer=layer, head=head, token=token)))

    probe = internals(0)
    if probe is None:
        return None
    truncation_notice(probe.dropped_tokens, chosen.loaded)
    tokens = probe.tokens
    token = url.selectbox("Query token", list(range(len(tokens))), f"{prefix}_token", min(1, len(tokens) - 1),
                          format_func=lambda i: f"{i}: {tokens[i]}")
    result = internals(token)
    return None if result is None else HeadStep(chosen.loaded, result)
