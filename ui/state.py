"""Cached access to models and captures.

Models and captures (one forward [+ backward]) are cached once per process in caches bounded by bytes
(ui/cache.py; budgets EXPLAIN_MODEL_CACHE_MB and EXPLAIN_CACHE_MB), captures per model, input and target
and in their display form (attentions in float16, gradients reduced to what gradient rollout needs).
Changing a layer, head, colour map or opacity therefore only re-runs the cheap maths and the drawing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from typing import Sequence

import streamlit as st

import explain
import models
from explain import Capture, Seq2SeqCapture
from models import LoadedModel, ModelLoadError
from ui.cache import DEFAULT_MODELS_MB, DEFAULT_RESULTS_MB, ByteBudgetCache, budget_mb, release_free_memory

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
# Decoder prompts: a repeated sequence (an induction head completes the second copy), then the lecture notes'.
DECODER_EXAMPLES = (
    "please buy an apple and i love red pizza . please buy an apple and i love",
    "I grew up in France, so I speak fluent",
    "The cat sat on the",
    "The animal didn't cross the street because it was too",
    "Please buy an apple and an",
)
SEQ2SEQ_EXAMPLES = (
    "Tuesday, the 24th of November 2026",
    "24 November 2026",
    "Nov 24, 2026",
    "11/24/2026",
    "24.11.2026",
)


@st.cache_resource(show_spinner=False)
def results_cache() -> ByteBudgetCache:
    """The process's cache of captures and other computed results (EXPLAIN_CACHE_MB, default 1024)."""
    return ByteBudgetCache(budget_mb("EXPLAIN_CACHE_MB", DEFAULT_RESULTS_MB) * 2**20, on_evict=release_free_memory)


@st.cache_resource(show_spinner=False)
def models_cache() -> ByteBudgetCache:
    """The process's cache of loaded models, by parameter bytes (EXPLAIN_MODEL_CACHE_MB, default 4096)."""
    return ByteBudgetCache(budget_mb("EXPLAIN_MODEL_CACHE_MB", DEFAULT_MODELS_MB) * 2**20, on_evict=release_free_memory)


def _parameter_bytes(loaded: LoadedModel) -> int:
    return sum(p.numel() * p.element_size() for p in loaded.model.parameters())


@st.cache_resource(show_spinner=False)
def warm_up(name: str) -> threading.Thread:
    """Load `name` in a background thread, once per process, as soon as the first visitor arrives.

    The imports behind a model (torch, transformers' modelling code: about 2 s here, far more on a cold
    disk) and the load itself then overlap with the browser drawing the first page; a page that asks for
    the model meanwhile waits for this load instead of starting another (see ByteBudgetCache).
    """
    def load() -> None:
        try:
            models_cache().get_or_compute(("model", name), lambda: models.load(name), _parameter_bytes)
        except ModelLoadError:
            pass  # the page that needs it will show why

    thread = threading.Thread(target=load, name=f"warm-up {name}", daemon=True)
    thread.start()
    return thread


def precision() -> str:
    """The precision models load in: "float32", or "float16" / "bfloat16" when chosen in the sidebar (CUDA only)."""
    return st.session_state.get("precision", "float32")


def get_model(name: str) -> LoadedModel:
    """The loaded model, once per process and precision. Raises ModelLoadError (not cached) when it cannot load."""
    dtype = precision()

    def load() -> LoadedModel:
        with st.spinner(f"Loading {name} (first time only)…"):
            return models.load(name, dtype=dtype)

    key = ("model", name) if dtype == "float32" else ("model", name, dtype)
    return models_cache().get_or_compute(key, load, _parameter_bytes)


def cached(key: tuple, compute, message: str = "Running the model…"):  # noqa: ANN001, ANN201
    """A computed result from the process's byte-bounded cache; `compute` runs under a spinner on a miss.

    The value must have `nbytes` (captures do) or be a numpy array / torch tensor / tuple of them.
    """
    def run():  # noqa: ANN202
        with st.spinner(message):
            return compute()

    return results_cache().get_or_compute(key + (precision(),), run, nbytes_of)


def nbytes_of(value) -> int:  # noqa: ANN001
    """Bytes held by a cached value: captures report their own; arrays, tensors, containers are summed."""
    if hasattr(value, "nbytes") and not callable(value.nbytes):
        return int(value.nbytes)
    if hasattr(value, "element_size"):
        return int(value.numel() * value.element_size())
    if isinstance(value, dict):
        return sum(nbytes_of(v) for v in value.values()) + 64 * len(value)
    if dataclasses.is_dataclass(value):
        return sum(nbytes_of(getattr(value, f.name)) for f in dataclasses.fields(value))
    if isinstance(value, (tuple, list)):
        return sum(nbytes_of(v) for v in value) + 8 * len(value)
    return 64


def load_model(name: str) -> LoadedModel | None:
    """The model, or None after showing why it could not load (the app keeps working)."""
    try:
        return get_model(name)
    except ModelLoadError as error:
        st.error(f"{error} Pick another model in the sidebar.")
        return None


def text_capture(
    model_name: str,
    text: str,
    pair: str | None = None,
    target: str | None = None,
    labels: tuple[str, ...] = (),
    with_gradients: bool = False,
) -> Capture:
    """One forward (+ backward) over a text, cached per model, input and target (display form)."""
    key = ("text", model_name, text, pair, target, tuple(labels), with_gradients)
    return cached(key, lambda: explain.capture_text(
        get_model(model_name), text, pair, target=target, labels=list(labels), with_gradients=with_gradients,
        display=True))


def image_capture(model_name: str, image_digest: str, image: "object", target: str | None = None) -> Capture:
    """One forward + backward over an image, cached per model, image content (`image_digest`) and target class."""
    key = ("image", model_name, image_digest, target)
    return cached(key, lambda: explain.capture_image(
        get_model(model_name), image, target=target, with_gradients=True, display=True))


def decoder_capture(model_name: str, prompt: str, generate: int = 0, position: int | None = None,
                    target: str | int | None = None, with_gradients: bool = True) -> Capture:
    """Prompt + greedy continuation, one forward (+ backward for the target), cached (display form)."""
    key = ("decoder", model_name, prompt, generate, position, target, with_gradients)
    return cached(key, lambda: explain.capture_decoder(
        get_model(model_name), prompt, generate=generate, position=position, target=target,
        with_gradients=with_gradients, display=True))


def generation_table(model_name: str, prompt: str, generate: int, method: str, start_layer: int = 0):  # noqa: ANN201
    """Relevance of every earlier token for each generated token, (N, T), cached per input and method."""
    capture = decoder_capture(model_name, prompt, generate, with_gradients=False)
    key = ("generated", model_name, prompt, generate, method, start_layer)
    return cached(key, lambda: explain.generated_relevance(get_model(model_name), capture, method,
                                                            start_layer=start_layer),
                  "Explaining every generated token…")


def seq2seq_capture(model_name: str, source: str, output: str | None = None, max_new_tokens: int = 64) -> Seq2SeqCapture:
    """Source -> output (greedy, or teacher-forced on `output`), three stacks and relevance, cached."""
    key = ("seq2seq", model_name, source, output, max_new_tokens)
    return cached(key, lambda: explain.capture_seq2seq(
        get_model(model_name), source, output=output, max_new_tokens=max_new_tokens).for_display())


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
    """Registry names of one kind ("text", "image", "decoder" or "seq2seq"), in registry order (bundled first)."""
    return [name for name, entry in models.REGISTRY.items() if entry.kind == kind]


def parse_labels(text: str) -> tuple[str, ...]:
    """Comma- or newline-separated labels, stripped, empty and duplicate entries removed, order kept."""
    seen: dict[str, None] = {}
    for part in text.replace("\n", ",").split(","):
        if part.strip():
            seen.setdefault(part.strip(), None)
    return tuple(seen)


def truncation_notice(capture: Capture | Seq2SeqCapture, loaded: LoadedModel) -> None:
    if not capture.dropped_tokens:
        return
    if capture.kind == "decoder":
        st.info(
            f"The prompt and its continuation exceed {loaded.spec.name}'s maximum of {loaded.spec.max_length} "
            f"tokens: the first {capture.dropped_tokens} prompt tokens were dropped."
        )
    else:
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
            "model": spec.name, "kind": spec.kind,
            "input": (f"{spec.image_size[0]}x{spec.image_size[1]} px, {spec.patch_grid[0]}x{spec.patch_grid[1]} patches"
                      if spec.kind == "image" else f"up to {spec.max_length} tokens"),
            "layers x heads": (f"{spec.layers}+{spec.decoder_layers} x {spec.heads}" if spec.kind == "seq2seq"
                               else f"{spec.layers} x {spec.heads}"),
            "size (MB)": round(size / 1e6, 1), "description": spec.description,
        })
    return rows
