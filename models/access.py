"""What a visitor may load on a shared server, and how large a model may be, checked before any weights are read.

`check(name, settings)` applies the operator's policy to what was typed (the registry is always allowed; then
whether models beyond it are, the allow-list, whether local paths are) without touching the server's files when
local paths are off, so a refusal says nothing about them. `model_size(source)` reads a checkpoint's parameter
count and dtype from its metadata only: each `.safetensors` file's JSON header (8 bytes of length, then the header;
never the tensors), a sharded checkpoint's index, or for a hub id not yet downloaded huggingface_hub's metadata
calls (HTTP range requests for the same headers). `check_size` refuses a model over the limit, or one stored only as
pickle files, with one sentence. models.load runs all three before any `from_pretrained` of weights.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import struct
from pathlib import Path
from typing import NamedTuple, Protocol

from models.registry import REGISTRY, ModelLoadError
from models.settings import Settings

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
HUB_EXAMPLE = "google-bert/bert-base-uncased"

# bytes per element of each safetensors dtype (huggingface_hub's names)
SAFETENSORS_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U64": 8,
                     "U32": 4, "U16": 2, "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}
SAFETENSORS_NAMES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16"}
TORCH_BYTES = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2}
MAX_HEADER_BYTES = 100 * 2**20  # the safetensors format's own limit on a header
PICKLE_WEIGHTS = re.compile(r"^pytorch_model(-\d+-of-\d+)?\.bin$")


class ModelSize(NamedTuple):
    """A checkpoint's size as stored, read from its metadata.

    Attributes:
        parameters: number of parameters (elements of every stored tensor).
        bytes: bytes of the stored weights.
        dtype: the dtype most parameters are stored in ("float32", "bfloat16", ...).
        pickle: the weights are pickle files (`pytorch_model.bin`), not safetensors.
    """

    parameters: int
    bytes: int
    dtype: str
    pickle: bool = False


class ModelCache(Protocol):
    """What the size check needs of a program's cache of loaded models (ui.cache.ByteBudgetCache has it)."""

    max_bytes: int

    def make_room(self, nbytes: int) -> None: ...


def is_hub_id(key: str) -> bool:
    """Whether `key` is spelt as a Hugging Face hub id (organisation/name), without looking at any file."""
    if not HUB_ID.match(key) or ".." in key or "--" in key or key.endswith(".git"):
        return False
    return not any(part in (".", "") for part in key.split("/"))


def _allowed_by_patterns(key: str, settings: Settings) -> bool:
    """Whether a pattern matches the hub id, or, for what will load as a local directory, its absolute path (so that
    `../` cannot reach past a pattern such as /srv/models/*)."""
    candidate = key
    if settings.local_paths and (not is_hub_id(key) or Path(key).expanduser().is_dir()):
        candidate = str(Path(key).expanduser().resolve())
    return any(fnmatch.fnmatchcase(candidate.lower(), pattern.lower()) for pattern in settings.allow)


def _what_visitors_may_give(settings: Settings) -> str:
    """The end of a refusal: what to give instead."""
    listed = "pick a model in the list"
    if not settings.other_models:
        return listed
    if settings.allow:
        return f"{listed} or give a Hugging Face hub id matching {', '.join(settings.allow)}"
    return f"{listed} or give a Hugging Face hub id such as {HUB_EXAMPLE}"


def check(name_or_path: str, settings: Settings) -> None:
    """Apply the operator's policy to what a visitor typed; return when it may be loaded.

    Registry names (bundled models and presets) are always allowed. With local paths off, nothing here or later
    looks at the server's files for a name that is not a hub id, so the refusal is the same sentence whether such a
    path exists or not.

    Raises:
        ModelLoadError: one sentence saying what this server accepts.
    """
    key = name_or_path.strip()
    if not key or key in REGISTRY:
        return  # an empty name gets models.resolve's sentence
    if not settings.other_models:
        raise ModelLoadError(f"This server offers only its listed models ({', '.join(REGISTRY)}): pick one of them.")
    if not settings.local_paths and not is_hub_id(key):
        raise ModelLoadError(f"This server does not open local paths: {_what_visitors_may_give(settings)}.")
    if settings.allow and not _allowed_by_patterns(key, settings):
        raise ModelLoadError(f"'{key}' is not among the models this server allows: "
                             f"{_what_visitors_may_give(settings)}.")


def safetensors_header(path: Path) -> dict:
    """The JSON header of a .safetensors file: tensor name -> {dtype, shape, data_offsets} (and "__metadata__").

    Reads the 8-byte little-endian header length and the header only, never the tensors.
    """
    with open(path, "rb") as file:
        prefix = file.read(8)
        if len(prefix) != 8:
            raise ValueError(f"{path.name} is too short to be a safetensors file")
        (length,) = struct.unpack("<Q", prefix)
        if length > MAX_HEADER_BYTES:
            raise ValueError(f"{path.name} declares a {length}-byte header, over the format's limit")
        header = json.loads(file.read(length))
    if not isinstance(header, dict):
        raise ValueError(f"{path.name} has no header table")
    return header


def _count(shape: list[int]) -> int:
    total = 1
    for extent in shape:
        total *= int(extent)
    return total


def size_from_counts(counts: dict[str, int]) -> ModelSize:
    """A ModelSize from parameters per safetensors dtype ({"BF16": 7_000_000, ...})."""
    parameters = sum(counts.values())
    stored = sum(count * SAFETENSORS_BYTES.get(dtype, 4) for dtype, count in counts.items())
    main = max(counts, key=counts.get) if counts else "F32"
    return ModelSize(parameters, stored, SAFETENSORS_NAMES.get(main, main.lower()))


def _config_dtype(directory: Path) -> str:
    """The dtype a checkpoint's config declares for its weights (transformers writes `dtype` or `torch_dtype`)."""
    try:
        config = json.loads((directory / "config.json").read_text())
    except (OSError, ValueError):
        return "float32"
    dtype = config.get("dtype") or config.get("torch_dtype") or "float32"
    return dtype if dtype in TORCH_BYTES else "float32"


def directory_size(directory: Path) -> ModelSize | None:
    """The size of the checkpoint in `directory` from its metadata, or None when it holds no weights.

    Safetensors: every file's header (a sharded checkpoint's shards named by its index; when some are missing, as
    in a partly downloaded hub cache, the index's metadata.total_size with the config's dtype). Pickle weights: the
    files' sizes and the config's dtype.
    """
    directory = Path(directory)
    index = directory / "model.safetensors.index.json"
    files = sorted(directory.glob("*.safetensors"))
    total_size = None
    if index.is_file():
        content = json.loads(index.read_text())
        files = [directory / name for name in sorted(set(content.get("weight_map", {}).values()))]
        total_size = (content.get("metadata") or {}).get("total_size")
    if files and all(file.is_file() for file in files):
        counts: dict[str, int] = {}
        for file in files:
            for name, tensor in safetensors_header(file).items():
                if name != "__metadata__":
                    counts[tensor["dtype"]] = counts.get(tensor["dtype"], 0) + _count(tensor["shape"])
        return size_from_counts(counts)
    if total_size:
        dtype = _config_dtype(directory)
        return ModelSize(int(total_size) // TORCH_BYTES[dtype], int(total_size), dtype)
    pickles = [file for file in directory.iterdir() if PICKLE_WEIGHTS.match(file.name)] if directory.is_dir() else []
    if pickles:
        stored = sum(file.stat().st_size for file in pickles)
        dtype = _config_dtype(directory)
        return ModelSize(stored // TORCH_BYTES[dtype], stored, dtype, pickle=True)
    return None


def _cached_snapshot(repo_id: str) -> Path | None:
    """The local Hugging Face cache's snapshot directory of `repo_id` (where its config.json was downloaded)."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, "config.json")
    return Path(found).parent if isinstance(found, str) else None


def hub_size(repo_id: str) -> ModelSize:
    """The size of a hub model from the hub's metadata: its safetensors headers (huggingface_hub reads them with
    range requests), else the sizes of its pickle weight files.

    Raises:
        ModelLoadError: the size cannot be read (no network, not found, no weights this app reads).
    """
    import huggingface_hub
    from huggingface_hub.utils import NotASafetensorsRepoError

    try:
        try:
            metadata = huggingface_hub.get_safetensors_metadata(repo_id)
            return size_from_counts(dict(metadata.parameter_count))
        except NotASafetensorsRepoError:
            pass
        info = huggingface_hub.HfApi().model_info(repo_id, files_metadata=True)
    except Exception as error:  # noqa: BLE001 - network, authorisation, not found: one sentence for all
        reason = str(error).splitlines()[0][:160] if str(error) else type(error).__name__
        raise ModelLoadError(f"The size of '{repo_id}' could not be read from the Hugging Face hub ({reason}), and "
                             "this server loads only models whose size it has checked: try again later.") from error
    pickles = [s for s in info.siblings or () if PICKLE_WEIGHTS.match(s.rfilename)]
    if not pickles or any(s.size is None for s in pickles):
        raise ModelLoadError(f"'{repo_id}' has no weights this app reads (model.safetensors or pytorch_model.bin) "
                             "on the Hugging Face hub: pick another model.")
    stored = sum(int(s.size) for s in pickles)
    snapshot = _cached_snapshot(repo_id)
    dtype = _config_dtype(snapshot) if snapshot else "float32"
    return ModelSize(stored // TORCH_BYTES[dtype], stored, dtype, pickle=True)


def model_size(source: str, *, local_only: bool = False) -> ModelSize | None:
    """A checkpoint's size from its metadata, without reading weights.

    Args:
        source: a checkpoint directory or a hub id.
        local_only: for a hub id, look only in the local Hugging Face cache (no network).

    Returns:
        The size, or None when there is nothing to load (a directory without weights; a hub id neither in the cache
        nor reachable): the loader then says why.

    Raises:
        ModelLoadError: a hub model whose size the hub does not give; weights whose headers cannot be read.
    """
    path = Path(source)
    try:
        if path.is_dir():
            return directory_size(path)
        snapshot = _cached_snapshot(source)
        cached = directory_size(snapshot) if snapshot is not None else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)  # never a path
        raise ModelLoadError(f"The weights' metadata of '{source}' cannot be read ({reason}): the checkpoint is "
                             "damaged or incomplete; pick another model.") from error
    if cached is not None or local_only:
        return cached
    return hub_size(source)


def memory_available() -> int | None:
    """Bytes of memory the system can give without swapping (MemAvailable, else free pages); None if unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def size_limit(settings: Settings, cache_bytes: int | None = None) -> tuple[int, str]:
    """The most bytes a model's parameters may take once loaded, and what sets that limit (for the sentence).

    The operator's max_model_bytes when set; else the smaller of half the memory available now and the model cache's
    budget. A program with a model cache (the app) passes its budget: a model it could not keep is refused too.
    """
    limits = []
    if settings.max_model_bytes is not None:
        limits.append((settings.max_model_bytes, "this server's limit"))
    else:
        memory = memory_available()
        if memory:
            limits.append((memory // 2, "half of this server's free memory"))
        limits.append((settings.model_cache_bytes, "the model cache's budget"))
    if cache_bytes is not None:
        limits.append((cache_bytes, "the model cache's budget"))
    return min(limits)


def check_loaded(name: str, parameters: int, settings: Settings, *, dtype: str = "float32") -> None:
    """Apply the operator's own limits (parameters, bytes) to a model already in memory, so that one loaded before
    the operator lowered them (secrets.toml is read again when it changes) is refused like a new one. The limit
    derived from free memory is left out: it guards a load, and this model's memory is taken already.

    Raises:
        ModelLoadError: the sentence check_size gives for the same model.
    """
    if settings.max_parameters is not None and parameters > settings.max_parameters:
        raise ModelLoadError(_over_parameters(name, parameters, settings.max_parameters))
    loaded = parameters * TORCH_BYTES[dtype]
    if settings.max_model_bytes is not None and loaded > settings.max_model_bytes:
        raise ModelLoadError(_over_bytes(name, parameters, loaded, dtype, settings.max_model_bytes,
                                         "this server's limit"))


def _over_parameters(name: str, parameters: int, limit: int) -> str:
    return (f"'{name}' has {human_count(parameters)} parameters, over this server's limit of {human_count(limit)}: "
            "pick a smaller model.")


def _over_bytes(name: str, parameters: int, loaded: int, dtype: str, limit: int, reason: str) -> str:
    return (f"'{name}' has {human_count(parameters)} parameters ({human_bytes(loaded)} in {dtype}), over the "
            f"{human_bytes(limit)} this server allows ({reason}): pick a smaller model.")


def human_count(parameters: int) -> str:
    """124000000 -> "124 million", 7615616512 -> "7.6 billion"."""
    for scale, word in ((1e12, "trillion"), (1e9, "billion"), (1e6, "million"), (1e3, "thousand")):
        if parameters >= scale:
            value = parameters / scale
            return f"{value:.1f} {word}" if value < 10 else f"{value:.0f} {word}"
    return str(parameters)


def human_bytes(nbytes: int) -> str:
    """Binary units, as the EXPLAIN_*_MB settings: 4294967296 -> "4.0 GB", 524288000 -> "500 MB"."""
    if nbytes >= 2**30:
        return f"{nbytes / 2**30:.1f} GB"
    return f"{nbytes / 2**20:.0f} MB" if nbytes >= 2**20 else f"{nbytes / 1024:.0f} KB"


def check_size(name: str, size: ModelSize, settings: Settings, *, dtype: str = "float32",
               cache_bytes: int | None = None) -> int:
    """Refuse a model over the size limit or stored only as pickle files (unless allowed); else return the bytes its
    parameters will take once loaded in `dtype`.

    Raises:
        ModelLoadError: one sentence naming the model's size and the limit, or why pickle weights are refused.
    """
    if size.pickle and not settings.pickle_weights:
        raise ModelLoadError(f"'{name}' stores its weights only as pickle files (pytorch_model.bin), which can run "
                             "code when loaded, and this server loads safetensors weights only: pick a model that has "
                             "model.safetensors.")
    loaded = size.parameters * TORCH_BYTES[dtype]
    if settings.max_parameters is not None and size.parameters > settings.max_parameters:
        raise ModelLoadError(_over_parameters(name, size.parameters, settings.max_parameters))
    limit, reason = size_limit(settings, cache_bytes)
    if loaded > limit:
        raise ModelLoadError(_over_bytes(name, size.parameters, loaded, dtype, limit, reason))
    return loaded
