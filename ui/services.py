"""Cached services: loaded models and captures, once per process.

Models and captures (one forward [+ backward]) are cached once per process in caches bounded by bytes
(ui/cache.py; budgets EXPLAIN_MODEL_CACHE_MB and EXPLAIN_CACHE_MB), captures per model, input and target
and in their display form (attentions in float16, gradients reduced to what gradient rollout needs).
Changing a layer, head, colour map or opacity therefore only re-runs the cheap maths and the drawing.

On a shared server every visitor's session runs here: the operator's settings (models/settings.py) say what may be
loaded, one model loads at a time and heavy requests (captures with gradients, methods that run the model again,
faithfulness scoring) take a place in a bounded pool (models/runtime.py); a visitor who has to wait sees the queue.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import time
from contextlib import contextmanager, nullcontext
from typing import Callable, ContextManager, Iterator

import streamlit as st

import explain
import models
from explain import DecoderCapture, ImageCapture, RecurrentRun, Seq2SeqCapture, TextCapture
from models import LoadedModel, ModelKind, ModelLoadError, access
from models.runtime import apply_thread_policy, heavy_pool, heavy_slot, release_free_memory
from models.settings import read_settings
from ui.cache import DEFAULT_RESULTS_MB, ByteBudgetCache, budget_mb

@st.cache_resource(show_spinner=False)
def results_cache() -> ByteBudgetCache:
    """The process's cache of captures and other computed results (EXPLAIN_CACHE_MB, default 1024)."""
    return ByteBudgetCache(budget_mb("EXPLAIN_CACHE_MB", DEFAULT_RESULTS_MB) * 2**20, on_evict=release_free_memory)


@st.cache_resource(show_spinner=False)
def models_cache() -> ByteBudgetCache:
    """The process's cache of loaded models, by parameter bytes (EXPLAIN_MODEL_CACHE_MB or the settings file's
    model_cache_mb, default 4096)."""
    return ByteBudgetCache(read_settings().model_cache_bytes, on_evict=release_free_memory)


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
        apply_thread_policy()
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


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


@contextmanager
def queued(slot: Callable[..., ContextManager[None]], waiting: Callable[[int], str], waited: str) -> Iterator[None]:
    """Run the block in a place of `slot` (models.loading_slot, models.runtime.heavy_slot). While the visitor waits
    in line, an info box says `waiting(ahead)` (updated as the line moves); once in, it becomes a caption saying how
    long the wait was (`waited` names what was waited for)."""
    notice = None
    started = time.perf_counter()

    def show(ahead: int) -> None:
        nonlocal notice
        if notice is None:
            notice = st.empty()
        notice.info(waiting(ahead), icon=":material/hourglass_top:")

    with slot(on_wait=show):
        if notice is not None:
            notice.caption(f"Waited {time.perf_counter() - started:.1f} s for {waited}.")
        yield


def load_queue_message(ahead: int) -> str:
    return (f"Waiting for another model to finish loading: {plural(ahead, 'load')} ahead of yours (this server loads "
            "one model at a time).")


def heavy_queue_message(ahead: int, slots: int) -> str:
    return (f"Waiting for a free slot: {plural(ahead, 'request')} ahead of yours (this server runs "
            f"{plural(slots, 'heavy request')} at a time).")


def load_queued() -> ContextManager[None]:
    """One download or load at a time per server; the others see their place in line."""
    return queued(models.loading_slot, load_queue_message, "another model to load")


def heavy_queued() -> ContextManager[None]:
    """A place in the heavy-request pool; when all are taken, the visitor sees how many requests are ahead."""
    return queued(heavy_slot, lambda ahead: heavy_queue_message(ahead, heavy_pool().slots), "a free slot")


def get_model(name: str) -> LoadedModel:
    """The loaded model, once per process and precision. Raises ModelLoadError (not cached) when it cannot load or
    the operator's settings refuse it (checked before the cache, so a refused name is refused even when loaded)."""
    dtype = precision()
    settings = read_settings()
    access.check(name, settings)
    cache = models_cache()

    def load() -> LoadedModel:
        with load_queued(), st.spinner(f"Loading {name} (first time only)…"):
            return models.load(name, dtype=dtype, settings=settings, cache=cache)

    key = ("model", name) if dtype == "float32" else ("model", name, dtype)
    loaded = cache.get_or_compute(key, load, _parameter_bytes)
    if not loaded.spec.bundled:  # as models.load checks them: presets, hub ids and directories
        access.check_loaded(name, loaded.parameter_count, settings, dtype=dtype)  # no walk over the weights
    return loaded


def cached(key: tuple, compute, message: str = "Running the model…", heavy: bool = False):  # noqa: ANN001, ANN201
    """A computed result from the process's byte-bounded cache; `compute` runs under a spinner on a miss.

    The value must have `nbytes` (captures do) or be a numpy array / torch tensor / tuple of them. A `heavy`
    computation (a backward pass, many forward passes) first takes a place in the heavy-request pool.
    """
    def run():  # noqa: ANN202
        with heavy_queued() if heavy else nullcontext(), st.spinner(message):
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


def text_capture(model_name: str, text: str, pair: str | None = None, target: str | None = None,
                 labels: tuple[str, ...] = (), with_gradients: bool = False) -> TextCapture:
    """One forward (+ backward) over a text, cached per model, input and target (display form)."""
    key = ("text", model_name, text, pair, target, tuple(labels), with_gradients)
    return cached(key, lambda: explain.capture_text(
        get_model(model_name), text, pair, target=target, labels=list(labels), with_gradients=with_gradients,
        display=True), heavy=with_gradients)


def image_capture(model_name: str, image_digest: str, image: "object", target: str | None = None) -> ImageCapture:
    """One forward + backward over an image, cached per model, image content (`image_digest`) and target class."""
    key = ("image", model_name, image_digest, target)
    return cached(key, lambda: explain.capture_image(
        get_model(model_name), image, target=target, with_gradients=True, display=True), heavy=True)


def decoder_capture(model_name: str, prompt: str, generate: int = 0, position: int | None = None,
                    target: str | int | None = None, with_gradients: bool = True) -> DecoderCapture:
    """Prompt + greedy continuation, one forward (+ backward for the target), cached (display form)."""
    key = ("decoder", model_name, prompt, generate, position, target, with_gradients)
    return cached(key, lambda: explain.capture_decoder(
        get_model(model_name), prompt, generate=generate, position=position, target=target,
        with_gradients=with_gradients, display=True), heavy=with_gradients)


def generation_table(model_name: str, prompt: str, generate: int, method: str, **options) -> "object":  # noqa: ANN003
    """Relevance of every earlier token for each generated token, (N, T) (explain.generated_relevance over this
    page's cached captures), cached per input, method and options."""
    capture = decoder_capture(model_name, prompt, generate, with_gradients=False)
    key = ("generated", model_name, prompt, generate, method, tuple(sorted(options.items())))
    return cached(key, lambda: explain.generated_relevance(
        get_model(model_name), capture, method,
        lambda position, gradients: decoder_capture(model_name, prompt, generate, position, None, gradients),
        **options), "Explaining every generated token…", heavy=True)


def recurrent_run(model_name: str, letters: str, initialised: bool = False) -> RecurrentRun:
    """A recurrent model's output, alignment and gradient profiles for one string (explain.recurrent), cached."""
    key = ("recurrent", model_name, letters, initialised)
    return cached(key, lambda: explain.run_recurrent(get_model(model_name), letters, initialised=initialised))


def seq2seq_capture(model_name: str, source: str, output: str | None = None, max_new_tokens: int = 64,
                    target: int | None = None) -> Seq2SeqCapture:
    """Source -> output (greedy, or teacher-forced on `output`), three stacks; with a target output position, its
    gradients too (the output the model wrote first, teacher-forced). Cached (display form)."""
    if target is None:
        key = ("seq2seq", model_name, source, output, max_new_tokens)
        return cached(key, lambda: explain.capture_seq2seq(get_model(model_name), source, output=output,
                                                            max_new_tokens=max_new_tokens, display=True))
    first = seq2seq_capture(model_name, source, output, max_new_tokens)
    key = ("seq2seq", model_name, source, output, max_new_tokens, target)
    return cached(key, lambda: explain.capture_seq2seq(get_model(model_name), source, output=first.output_ids,
                                                        target=target, display=True), heavy=True)


def digest(data: bytes) -> str:
    """A short content hash for cache keys."""
    return hashlib.sha256(data).hexdigest()[:16]


def model_names(kind: ModelKind) -> list[str]:
    """Registry names of one kind, in registry order (bundled first)."""
    return [name for name, entry in models.REGISTRY.items() if entry.kind is kind]


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
            "model": spec.name, "kind": spec.kind.label,
            "input": (f"{spec.image_size[0]}x{spec.image_size[1]} px, {spec.patch_grid[0]}x{spec.patch_grid[1]} patches"
                      if spec.kind.reads_images else f"up to {spec.max_length} tokens" if spec.kind.transformer
                      else f"up to {spec.max_length - 1} letters"),
            "layers x heads": (f"{spec.layers}+{spec.decoder_layers} x {spec.heads}" if spec.kind.cross_attention
                               else f"{spec.layers} x {spec.heads}" if spec.kind.transformer
                               else "GRU" + (" + additive attention" if spec.heads else ", no attention")),
            "size (MB)": f"{size / 1e6:.1f}",  # a string: st.table draws a float with four decimals
            "description": spec.description,
        })
    return rows
