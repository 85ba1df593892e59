"""Model registry and loaders: bundled models (offline), local checkpoints, Hugging Face hub ids."""

from models.loading import LoadedModel, list_models, load, load_spec, prepare_for_explanation, resolve
from models.registry import (
    DEFAULT_DECODER_MODEL,
    DEFAULT_IMAGE_MODEL,
    DEFAULT_MODELS,
    DEFAULT_SEQ2SEQ_MODEL,
    DEFAULT_TEXT_MODEL,
    REGISTRY,
    ModelLoadError,
    ModelSpec,
    spec_from_config,
)

__all__ = [
    "DEFAULT_DECODER_MODEL",
    "DEFAULT_IMAGE_MODEL",
    "DEFAULT_MODELS",
    "DEFAULT_SEQ2SEQ_MODEL",
    "DEFAULT_TEXT_MODEL",
    "REGISTRY",
    "LoadedModel",
    "ModelLoadError",
    "ModelSpec",
    "list_models",
    "load",
    "load_spec",
    "prepare_for_explanation",
    "resolve",
    "spec_from_config",
]
