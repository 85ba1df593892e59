"""Load a registered model, a local checkpoint directory or a Hugging Face hub id, with eager attention."""

from __future__ import annotations

import functools

import json
import os
import socket
import traceback
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from models import access
from models.access import ModelCache
from models.kinds import DECODER, IMAGE, RECURRENT, SEQ2SEQ
from models.registry import (
    REGISTRY,
    TRAIN_COMMANDS,
    ModelLoadError,
    ModelSpec,
    recurrent_spec,
    spec_from_config,
)
from models.runtime import SlotPool, release_free_memory
from models.settings import Settings, read_settings

# One download or load at a time per process, first come first served: on a shared server one visitor's download
# cannot run beside another's and double the memory and disk they take. It also keeps transformers' lazy imports of
# its modelling modules out of each other's way (two threads importing the same module at once can see it half
# initialised, "cannot import name ..."). Loads are rare (models are cached), so serialising them costs little;
# a page shows the queue (`loading_slot`). Reentrant: a load reads its spec under the same place.
LOADING = SlotPool(1)


DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass
class LoadedModel:
    """A model ready for explanation: eval mode, eager attention, with its tokenizer or image processor."""

    spec: ModelSpec
    model: torch.nn.Module
    tokenizer: Any | None = None
    processor: Any | None = None

    @property
    def device(self) -> torch.device:
        """Where inputs go: the device of the input embeddings (the first one when split over devices)."""
        embeddings = self.model.get_input_embeddings() if hasattr(self.model, "get_input_embeddings") else None
        if embeddings is not None and hasattr(embeddings, "weight"):
            return embeddings.weight.device
        return next(self.model.parameters()).device

    @functools.cached_property
    def parameter_count(self) -> int:
        """How many parameters the model holds (counted once: the weights are frozen)."""
        return sum(p.numel() for p in self.model.parameters())


def pick_device(device: str | None = None) -> torch.device:
    """The requested device, else CUDA when available, else the CPU."""
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def needs_splitting(parameter_bytes: int, device: torch.device, free_bytes: int | None = None) -> bool:
    """Whether a model of `parameter_bytes` must be spread over devices (accelerate's device_map="auto").

    Only on CUDA: a model that leaves less than a fifth of the device's free memory for activations
    and attention maps is split; on the CPU, memory is one pool and nothing is split.
    """
    if device.type != "cuda":
        return False
    if free_bytes is None:
        free_bytes = torch.cuda.mem_get_info(device)[0]
    return parameter_bytes > 0.8 * free_bytes


def _parameter_bytes(loader: Any, config: Any, dtype: torch.dtype) -> int:
    """Size of the model's parameters in `dtype`, from an empty (meta) model built from its config."""
    from accelerate import init_empty_weights

    with init_empty_weights():
        model = loader.from_config(config)
    return sum(p.numel() for p in model.parameters()) * torch.finfo(dtype).bits // 8


def _quiet_transformers() -> None:
    """Silence progress bars and the PIL-backend notice: the CLI and the app print their own messages."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def loading_slot(on_wait: Callable[[int], None] | None = None) -> AbstractContextManager[None]:
    """The one-load-at-a-time place: `with loading_slot(on_wait):` waits in line (telling `on_wait` how many loads
    are ahead) while another thread downloads or loads; models.load inside the block then enters at once."""
    return LOADING.slot(on_wait)


def resolve(name_or_path: str, *, local_paths: bool = True) -> tuple[str, str, bool, str]:
    """Map what the user typed to (name, source, bundled, description).

    Args:
        name_or_path: a registry name, a checkpoint directory or a hub id.
        local_paths: whether directories are accepted. When False no file is looked at for what is not a hub id,
            and a hub id that happens to name a directory under the working directory (which transformers would open
            instead of the hub's) gets the sentence a missing hub model gets, so refusals say nothing about files.

    Raises:
        ModelLoadError: unknown name that is neither a directory nor a hub id.
    """
    key = name_or_path.strip()
    if not key:
        raise ModelLoadError("No model was named: choose one of " + ", ".join(REGISTRY) + ".")
    if key in REGISTRY:
        entry = REGISTRY[key]
        source = entry.source()
        if entry.bundled and not Path(source).is_dir():
            fix = f"run `{TRAIN_COMMANDS[key]}` to train it" if key in TRAIN_COMMANDS else "reinstall the requirements"
            raise ModelLoadError(f"The bundled model '{key}' is missing from this installation ({source}): {fix}.")
        return entry.name, source, entry.bundled, entry.description
    if not local_paths:
        if not access.is_hub_id(key):
            raise ModelLoadError(f"This server does not open local paths: pick a model in the list or give a Hugging "
                                 f"Face hub id such as {access.HUB_EXAMPLE}.")
        if os.path.exists(key):
            raise ModelLoadError(_offline_message(key, key, local_paths=False))
        return key, key, False, f"Hugging Face hub model {key}"
    path = Path(key).expanduser()
    if path.is_dir():
        return key, str(path.resolve()), False, f"local checkpoint {path}"
    if path.exists():
        raise ModelLoadError(f"'{key}' is a file, not a checkpoint directory: give the directory that holds config.json.")
    if access.is_hub_id(key):
        return key, key, False, f"Hugging Face hub model {key}"
    raise ModelLoadError(
        f"Unknown model '{key}': choose one of {', '.join(REGISTRY)}, "
        f"or give a local checkpoint directory or a Hugging Face hub id such as {access.HUB_EXAMPLE}."
    )


def _offline_message(name: str, source: str, local_paths: bool = True) -> str:
    bundled = ", ".join(entry.name for entry in REGISTRY.values() if entry.bundled)
    return (
        f"Could not load '{name}' ({source}): there is no network and it is not in the local Hugging Face cache; "
        f"use a bundled model ({bundled}){' or a local checkpoint directory' if local_paths else ''}."
    )


def _custom_code_message(name: str) -> str:
    return (f"'{name}' needs Python code from its own repository (trust_remote_code), which this app never runs: pick "
            "a model whose architecture transformers includes.")


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub answers a TCP connection within `timeout` seconds.

    Without this check an offline machine waits through huggingface_hub's retries (about 20 s)
    before failing; with it the user gets the offline sentence at once.
    """
    from urllib.parse import urlparse

    from huggingface_hub import constants

    endpoint = urlparse(constants.ENDPOINT)
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        with socket.create_connection((endpoint.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def _from_pretrained(loader: Any, source: str, name: str, local_only: bool, local_paths: bool = True,
                     **kwargs: Any) -> Any:
    """Call `loader.from_pretrained` (never with remote code: transformers would otherwise ask on the terminal),
    turning download and cache failures into one clear sentence."""
    kwargs["trust_remote_code"] = False
    try:
        return loader.from_pretrained(source, local_files_only=True, **kwargs)
    except OSError:
        if local_only or Path(source).is_dir():
            raise
    if not hub_reachable():
        raise ModelLoadError(_offline_message(name, source, local_paths))
    try:
        return loader.from_pretrained(source, **kwargs)
    except OSError as error:
        raise ModelLoadError(_offline_message(name, source, local_paths)) from error


def load_spec(name_or_path: str, *, allow_download: bool = True, settings: Settings | None = None) -> ModelSpec:
    """Resolve a model and read its spec from its config, without loading weights.

    Args:
        name_or_path: a registry name, a checkpoint directory or a hub id.
        allow_download: when False only local files and the local cache are used.
        settings: the operator's settings (default: read from the environment, models.settings).

    Raises:
        ModelLoadError: one sentence: refused by the operator's settings, unknown, unreadable or offline.
    """
    settings = read_settings() if settings is None else settings
    with LOADING:
        return _load_spec(name_or_path, allow_download, settings)


def _load_spec(name_or_path: str, allow_download: bool, settings: Settings) -> ModelSpec:
    from transformers import AutoConfig

    _quiet_transformers()
    access.check(name_or_path, settings)
    name, source, bundled, description = resolve(name_or_path, local_paths=settings.local_paths)
    recurrent = _recurrent_config(source)
    if recurrent is not None:
        return recurrent_spec(name, source, recurrent, bundled=bundled, description=description)
    local_only = not allow_download or bool(os.environ.get("HF_HUB_OFFLINE"))
    try:
        config = _from_pretrained(AutoConfig, source, name, local_only, settings.local_paths)
    except ModelLoadError:
        raise
    except (OSError, ValueError) as error:
        if "trust_remote_code" in str(error):
            raise ModelLoadError(_custom_code_message(name)) from error
        if Path(source).is_dir():
            raise ModelLoadError(
                f"'{name}' is not a readable Hugging Face checkpoint ({error}); the directory needs a config.json."
            ) from error
        raise ModelLoadError(_offline_message(name, source, settings.local_paths)) from error
    return spec_from_config(name, source, config, bundled=bundled, description=description)


def _recurrent_config(source: str) -> dict | None:
    """The config.json of a recurrent teaching model (models/recurrent.py) in `source`, else None."""
    from models.recurrent import MODEL_TYPES

    path = Path(source) / "config.json"
    if not path.is_file():
        return None
    try:
        config = json.loads(path.read_text())
    except ValueError:
        return None
    return config if isinstance(config, dict) and config.get("model_type") in MODEL_TYPES else None


def load(
    name_or_path: str, *, allow_download: bool = True, dtype: str = "float32", device: str | None = None,
    settings: Settings | None = None, cache: ModelCache | None = None,
) -> LoadedModel:
    """Load a model for explanation: eval mode, `attn_implementation="eager"`, never remote code.

    Text encoders and image classifiers, causal language models (kind "decoder", via
    AutoModelForCausalLM) and encoder-decoders (kind "seq2seq", via AutoModelForSeq2SeqLM). The model
    goes to `device` (default: CUDA when available, else the CPU); a model too large for one GPU is
    spread over the available devices by accelerate (`device_map="auto"`).

    Before any weights are downloaded or read, the operator's settings are applied (models.access): what may be
    loaded, and its size from the checkpoint's metadata against the limit; pickle weights are refused unless
    allowed. One load at a time per process (`loading_slot`); a load that fails gives back what it took.

    Args:
        name_or_path: a registry name (see `list_models`), a checkpoint directory, or a hub id.
        allow_download: when False only local files and the local cache are used.
        dtype: "float32" (default), "float16" (CUDA only) or "bfloat16".
        device: "cpu", "cuda", "cuda:1", ...; None picks one.
        settings: the operator's settings (default: read from the environment, models.settings).
        cache: the program's cache of loaded models: a model larger than its budget is refused, and room is made in
            it before the weights load (the app passes its byte-bounded cache).

    Raises:
        ModelLoadError: with one sentence naming the problem and the fix.
    """
    settings = read_settings() if settings is None else settings
    with LOADING:
        try:
            return _load(name_or_path, allow_download, dtype, device, settings, cache)
        except BaseException as error:
            _give_back(error)
            raise


def _give_back(error: BaseException) -> None:
    """Free what a failed load took: the frames its exceptions keep (and the tensors in them), then the heap."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if error.__traceback__ is not None:
            traceback.clear_frames(error.__traceback__)
        error = error.__cause__ or error.__context__
    release_free_memory()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _load(name_or_path: str, allow_download: bool, dtype: str, device: str | None, settings: Settings,
          cache: ModelCache | None) -> LoadedModel:
    import transformers

    if dtype not in DTYPES:
        raise ModelLoadError(f"Unknown precision '{dtype}': choose one of {', '.join(DTYPES)}.")
    target = pick_device(device)
    if dtype == "float16" and target.type != "cuda":
        raise ModelLoadError("Half precision (float16) needs a CUDA device: use float32 or bfloat16 on the CPU.")
    spec = load_spec(name_or_path, allow_download=allow_download, settings=settings)
    if spec.kind is RECURRENT:
        size = None if spec.bundled else access.model_size(spec.source, local_only=True)
        if size is not None:  # a directory of ours: limited like any other checkpoint
            needed = access.check_size(spec.name, size, settings, dtype="float32",
                                       cache_bytes=None if cache is None else cache.max_bytes)
            if cache is not None:
                cache.make_room(needed)
        return _load_recurrent(spec)
    local_only = not allow_download or bool(os.environ.get("HF_HUB_OFFLINE"))
    kwargs: dict[str, Any] = {"attn_implementation": "eager", "dtype": DTYPES[dtype]}
    if not spec.bundled:
        size = access.model_size(spec.source, local_only=True)
        if size is None and not local_only and not Path(spec.source).is_dir():  # a hub model not downloaded yet
            if not hub_reachable():
                raise ModelLoadError(_offline_message(spec.name, spec.source, settings.local_paths))
            size = access.hub_size(spec.source)
        if size is not None:
            needed = access.check_size(spec.name, size, settings, dtype=dtype,
                                       cache_bytes=None if cache is None else cache.max_bytes)
            if cache is not None:
                cache.make_room(needed)
        if not settings.pickle_weights:
            kwargs["use_safetensors"] = True
    paths = settings.local_paths
    try:
        config = _from_pretrained(transformers.AutoConfig, spec.source, spec.name, local_only, paths)
        loader = model_class(spec, config)
        if spec.kind.generates and target.type == "cuda" and needs_splitting(
                _parameter_bytes(loader, config, DTYPES[dtype]), target):
            kwargs["device_map"] = "auto"
        model = _from_pretrained(loader, spec.source, spec.name, local_only, paths, **kwargs)
        if spec.kind.reads_images:
            processor = _from_pretrained(transformers.AutoImageProcessor, spec.source, spec.name, local_only, paths)
            loaded = LoadedModel(spec, model.eval(), processor=processor)
        else:
            tokenizer = _from_pretrained(transformers.AutoTokenizer, spec.source, spec.name, local_only, paths)
            if not getattr(tokenizer, "is_fast", False):
                raise ModelLoadError(f"'{spec.name}' has no fast tokenizer (tokenizer.json); token offsets and "
                                     "word alignment need one.")
            loaded = LoadedModel(spec, model.eval(), tokenizer=tokenizer)
    except ModelLoadError:
        raise
    except (OSError, ValueError, KeyError) as error:
        if "eager" in str(error) or "attn_implementation" in str(error):
            raise ModelLoadError(
                f"'{spec.name}' has no eager attention path, so it cannot return attention maps; pick another model."
            ) from error
        raise ModelLoadError(f"Could not load '{spec.name}' from {spec.source}: {error}".rstrip(".") + ".") from error
    if "device_map" not in kwargs:
        loaded.model.to(target)
    implementation = getattr(loaded.model.config, "_attn_implementation", "eager")
    if implementation != "eager":
        raise ModelLoadError(
            f"'{spec.name}' loaded with '{implementation}' attention, which returns no attention maps; "
            "it must support attn_implementation='eager'."
        )
    prepare_for_explanation(loaded.model)
    return loaded


def _load_recurrent(spec: ModelSpec) -> LoadedModel:
    """A recurrent teaching model, its character tokenizer, frozen (plain PyTorch: no transformers class).

    Always on the CPU, even where CUDA is available: the model steps through a string one letter at a time, so a
    GPU would spend its time launching kernels for a 200 k-parameter GRU, and the recurrent code keeps its
    tensors on the CPU."""
    from models.recurrent import load_recurrent

    try:
        model, tokenizer, _ = load_recurrent(Path(spec.source))
    except (OSError, ValueError, KeyError, RuntimeError) as error:
        raise ModelLoadError(f"Could not load '{spec.name}' from {spec.source}: {error}".rstrip(".") + ".") from error
    return LoadedModel(spec, model.eval().requires_grad_(False), tokenizer=tokenizer)


def model_class(spec: ModelSpec, config: Any) -> Any:
    """The transformers class that loads a model of this spec: a sequence classifier or a bare encoder for text,
    an image classifier (DeiT's with-teacher class for distilled DeiTs), a causal LM, a seq2seq LM."""
    import transformers

    if spec.kind is DECODER:
        return transformers.AutoModelForCausalLM
    if spec.kind is SEQ2SEQ:
        return transformers.AutoModelForSeq2SeqLM
    if spec.kind is IMAGE:
        if "DeiTForImageClassificationWithTeacher" in (getattr(config, "architectures", None) or ()):
            return transformers.DeiTForImageClassificationWithTeacher
        return transformers.AutoModelForImageClassification
    return transformers.AutoModelForSequenceClassification if spec.classifier else transformers.AutoModel


def _inputs_start_the_graph(module: torch.nn.Module, inputs: Any, output: Any) -> Any:
    """Forward hook on the input embeddings: with gradients on, their output is where the graph starts."""
    if torch.is_grad_enabled() and isinstance(output, torch.Tensor) and output.is_floating_point() and not output.requires_grad:
        output.requires_grad_()
    return output


def prepare_for_explanation(model: torch.nn.Module) -> torch.nn.Module:
    """Freeze the parameters and start autograd's graph at the input embeddings' output, in place.

    Explanations differentiate a target with respect to attention maps, never to weights. With frozen
    weights the forward pass stops saving what weight gradients would need and the backward pass skips
    them: at 512 tokens MiniLM's forward + backward to every layer's attention drops from about 210 ms to
    165 ms on two cores. The hook is kept for the model's life (the model belongs to this tool).
    """
    model.eval().requires_grad_(False)
    if getattr(model, "_explain_graph_hook", False):
        return model
    owners = [model]  # an encoder-decoder's encoder and decoder may hold their own (tied) embedding modules
    for part in ("get_encoder", "get_decoder"):
        if hasattr(model, part):
            try:
                owners.append(getattr(model, part)())
            except (AttributeError, NotImplementedError, TypeError):
                pass
    hooked: set[int] = set()
    for owner in owners:
        embeddings = owner.get_input_embeddings() if hasattr(owner, "get_input_embeddings") else None
        if isinstance(embeddings, torch.nn.Module) and id(embeddings) not in hooked:
            embeddings.register_forward_hook(_inputs_start_the_graph)
            hooked.add(id(embeddings))
    model._explain_graph_hook = True
    return model


def list_models() -> list[ModelSpec]:
    """Every registered model that can be described here: bundled ones from their config, presets statically."""
    specs = []
    for entry in REGISTRY.values():
        if entry.preset is not None:
            specs.append(entry.preset)
            continue
        try:
            specs.append(load_spec(entry.name, allow_download=False))
        except ModelLoadError:
            continue  # a bundled model not yet built (e.g. before training) is not available
    return specs
