"""Models: the registry (bundled models, presets, local checkpoints, hub ids), their kinds, loading with eager
attention, the operator's settings and what they allow (settings, access), and the model cards. Nothing here trains
or explains."""

from models.kinds import DECODER, IMAGE, KINDS, RECURRENT, SEQ2SEQ, TEXT, TRANSFORMER_KINDS, ModelKind, kind_named
from models.loading import (
    LoadedModel,
    list_models,
    load,
    load_spec,
    loading_slot,
    model_class,
    prepare_for_explanation,
    resolve,
)
from models.registry import REGISTRY, ModelLoadError, ModelSpec, spec_from_config
from models.settings import Settings, read_settings

__all__ = [
    "DECODER", "IMAGE", "KINDS", "RECURRENT", "REGISTRY", "SEQ2SEQ", "TEXT", "TRANSFORMER_KINDS", "LoadedModel",
    "ModelKind", "ModelLoadError", "ModelSpec", "Settings", "kind_named", "list_models", "load", "load_spec",
    "loading_slot", "model_class", "prepare_for_explanation", "read_settings", "resolve", "spec_from_config",
]
