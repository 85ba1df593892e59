"""Model registry and loading: tiny random checkpoints of every supported family, presets, and errors."""

from __future__ import annotations

import pytest
import torch
from conftest import (
    IMAGE_LABELS,
    IMAGE_TINY_MODELS,
    TEXT_LABELS,
    TEXT_TINY_MODELS,
    TINY_MAX_POSITIONS,
    TINY_MODELS,
)
from PIL import Image

import models
from explain import capture_image, capture_text
from explain.methods import explain_capture
from models import ModelLoadError

# name -> (model_type, classifier, pooling, max_length)
TEXT_EXPECTED = {
    "bert": ("bert", False, "cls", TINY_MAX_POSITIONS),
    "bert-classifier": ("bert", True, "cls", TINY_MAX_POSITIONS),
    "distilbert-classifier": ("distilbert", True, "cls", TINY_MAX_POSITIONS),
    # RoBERTa positions start after the padding index: max_position_embeddings - pad_token_id - 1,
    # and these tiny checkpoints use the MiniLM tokenizer, whose padding id is 0.
    "roberta-classifier": ("roberta", True, "cls", TINY_MAX_POSITIONS - 0 - 1),
    "electra-classifier": ("electra", True, "cls", TINY_MAX_POSITIONS),
}
# name -> (model_type, prefix tokens, pooling)
IMAGE_EXPECTED = {
    "vit": ("vit", 1, "cls"),
    "deit-distilled": ("deit", 2, "cls"),
    "beit-mean": ("beit", 1, "mean"),
}


@pytest.mark.parametrize("name", TEXT_TINY_MODELS)
def test_text_checkpoint_spec_and_capture(tiny_checkpoints, tiny_loaded, name):
    path = str(tiny_checkpoints(name))
    model_type, classifier, pooling, max_length = TEXT_EXPECTED[name]
    _, layers, heads = TINY_MODELS[name]
    spec = models.load_spec(path, allow_download=False)
    assert spec == tiny_loaded(name).spec
    assert (spec.kind.name, spec.model_type, spec.source) == ("text", model_type, path)
    assert (spec.layers, spec.heads, spec.prefix_tokens) == (layers, heads, 0)
    assert spec.patch_grid is None and spec.image_size is None
    assert spec.classifier is classifier
    assert spec.labels == (tuple(TEXT_LABELS.values()) if classifier else ())
    assert spec.pooling == pooling
    assert spec.max_length == max_length
    assert spec.bundled is False and spec.multi_label is False

    loaded = tiny_loaded(name)
    assert loaded.model.config._attn_implementation == "eager"
    assert not loaded.model.training
    assert loaded.tokenizer.is_fast and loaded.processor is None
    capture = capture_text(
        loaded, "the cat sat on the mat", target=None if classifier else "a probe sentence", with_gradients=True
    )
    assert capture.attentions.shape == (layers, heads, 8, 8)
    torch.testing.assert_close(capture.attentions.sum(-1), torch.ones(layers, heads, 8), rtol=0, atol=1e-5)
    assert capture.gradients.shape == capture.attentions.shape
    assert capture.pooling_weights.tolist() == [1.0] + [0.0] * 7
    if classifier:
        assert capture.score_labels == ("negative", "positive")
        assert float(capture.scores.sum()) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("name", TEXT_TINY_MODELS)
def test_text_checkpoint_runs_at_its_maximum_length(tiny_loaded, name):
    loaded = tiny_loaded(name)
    limit = loaded.spec.max_length
    capture = capture_text(loaded, " ".join(["cat"] * (limit + 5)))  # limit + 7 tokens with [CLS], [SEP]
    assert len(capture.tokens) == limit
    assert capture.dropped_tokens == 7


@pytest.mark.parametrize("name", IMAGE_TINY_MODELS)
def test_image_checkpoint_spec_and_capture(tiny_checkpoints, tiny_loaded, name):
    path = str(tiny_checkpoints(name))
    model_type, prefix, pooling = IMAGE_EXPECTED[name]
    _, layers, heads = TINY_MODELS[name]
    spec = models.load_spec(path, allow_download=False)
    assert (spec.kind.name, spec.model_type, spec.source) == ("image", model_type, path)
    assert (spec.layers, spec.heads, spec.prefix_tokens) == (layers, heads, prefix)
    assert spec.patch_grid == (4, 4) and spec.image_size == (32, 32)
    assert spec.labels == tuple(IMAGE_LABELS.values())
    assert spec.pooling == pooling
    assert spec.max_length == prefix + 16
    assert spec.classifier is True

    loaded = tiny_loaded(name)
    assert loaded.spec == spec
    assert loaded.model.config._attn_implementation == "eager"
    assert loaded.processor is not None and loaded.tokenizer is None
    tokens = prefix + 16
    capture = capture_image(loaded, Image.new("RGB", (50, 40), (200, 30, 30)), with_gradients=True)
    assert capture.attentions.shape == (layers, heads, tokens, tokens)
    torch.testing.assert_close(capture.attentions.sum(-1), torch.ones(layers, heads, tokens), rtol=0, atol=1e-5)
    assert capture.special.tolist() == [True] * prefix + [False] * 16
    assert capture.grid == (4, 4) and capture.prefix_tokens == prefix
    if pooling == "mean":  # BEiT mean pooling averages the patch tokens, not the class token
        assert capture.pooling_weights.tolist() == [0.0] * prefix + [1 / 16] * 16
    else:
        assert capture.pooling_weights.tolist() == [1.0] + [0.0] * (tokens - 1)
    explanation = explain_capture(capture, "rollout")
    assert explanation.grid.shape == (4, 4)
    torch.testing.assert_close(explanation.grid, capture.grid_of(capture.pooling_weights @ explanation.matrix))
    torch.testing.assert_close(explanation.grid.flatten(), (capture.pooling_weights @ explanation.matrix)[prefix:])


def test_list_models_has_minilm_and_the_imagenet_presets():
    listed = {spec.name: spec for spec in models.list_models()}
    minilm = listed["minilm"]
    assert (minilm.kind.name, minilm.layers, minilm.heads, minilm.pooling, minilm.bundled) == ("text", 6, 12, "mean", True)
    assert minilm.max_length == 512
    presets = {
        "vit-base": (12, 12, 1, "google/vit-base-patch16-224"),
        "deit-tiny": (12, 3, 1, "facebook/deit-tiny-patch16-224"),
        "deit-small": (12, 6, 1, "facebook/deit-small-patch16-224"),
        "deit-tiny-distilled": (12, 3, 2, "facebook/deit-tiny-distilled-patch16-224"),
    }
    for name, (layers, heads, prefix, source) in presets.items():
        spec = listed[name]
        assert (spec.kind.name, spec.layers, spec.heads, spec.prefix_tokens, spec.source) == ("image", layers, heads, prefix, source)
        assert spec.patch_grid == (14, 14) and spec.image_size == (224, 224)
        assert spec.max_length == prefix + 196
        assert spec.bundled is False
    summary = minilm.summary()
    assert {"name", "kind", "layers", "heads", "source"} <= set(summary)


def test_minilm_loads_by_name_offline(minilm):
    assert minilm.spec.name == "minilm" and minilm.spec.bundled
    assert minilm.spec.classifier is False and minilm.spec.labels == ()
    assert minilm.model.config._attn_implementation == "eager"
    assert models.resolve("minilm")[1] == minilm.spec.source


def test_unknown_name_names_the_registry():
    with pytest.raises(ModelLoadError) as error:
        models.load("no-such-model", allow_download=False)
    message = str(error.value)
    for name in ("minilm", "vit-base", "deit-tiny"):
        assert name in message
    with pytest.raises(ModelLoadError, match="No model was named"):
        models.resolve("  ")


@pytest.mark.parametrize("config_class, model_type", [("ResNetConfig", "resnet"), ("WhisperConfig", "whisper")])
def test_unsupported_model_type_names_the_supported_ones(tmp_path, config_class, model_type):
    import transformers

    getattr(transformers, config_class)().save_pretrained(tmp_path)  # a CNN; a speech encoder-decoder
    with pytest.raises(ModelLoadError) as error:
        models.load(str(tmp_path), allow_download=False)
    message = str(error.value)
    assert f"'{model_type}'" in message
    for supported in ("bert", "distilbert", "roberta", "electra", "vit", "deit", "beit", "GPT-2", "Llama", "BART", "T5"):
        assert supported in message


def test_image_backbone_without_classifier_is_refused(tmp_path):
    import transformers

    config = transformers.ViTConfig(num_hidden_layers=1, num_attention_heads=2, hidden_size=16, image_size=32, patch_size=8)
    config.architectures = ["ViTModel"]
    config.save_pretrained(tmp_path)
    with pytest.raises(ModelLoadError, match="without an image-classification head"):
        models.load_spec(str(tmp_path), allow_download=False)


def test_directory_without_config_is_refused(tmp_path):
    with pytest.raises(ModelLoadError, match="config.json"):
        models.load(str(tmp_path), allow_download=False)


@pytest.mark.parametrize("name", ["deit-tiny", "explain-tests-nobody/not-a-real-model"])
def test_hub_model_without_download_says_no_network(name):
    with pytest.raises(ModelLoadError) as error:
        models.load(name, allow_download=False)
    message = str(error.value)
    assert "no network" in message and "not in the local Hugging Face cache" in message
    assert "minilm" in message  # the fix: a bundled model or a local directory


def test_a_file_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(b"\0" * 16)
    with pytest.raises(ModelLoadError, match="is a file, not a checkpoint directory"):
        models.load(str(path), allow_download=False)


def test_resolve_hub_id_and_directory(tmp_path):
    assert models.resolve("google/vit-base-patch16-224")[:3] == (
        "google/vit-base-patch16-224", "google/vit-base-patch16-224", False,
    )
    name, source, bundled, _ = models.resolve(str(tmp_path))
    assert (source, bundled) == (str(tmp_path.resolve()), False)
    with pytest.raises(ModelLoadError, match="Unknown model"):
        models.resolve("../not/a/dir/and-not-a-hub-id")


def test_a_model_without_an_eager_attention_path_gets_one_sentence(tmp_path, monkeypatch, tiny_checkpoints):
    import transformers

    def refuse(*args, **kwargs):
        raise ValueError("This model does not support `attn_implementation='eager'` yet.")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", refuse)
    with pytest.raises(ModelLoadError, match="no eager attention path, so it cannot return attention maps"):
        models.load(str(tiny_checkpoints("gpt2")), allow_download=False)


@pytest.mark.parametrize("name, kind", [("gpt2", "decoder"), ("opt", "decoder"), ("gpt-neox", "decoder"),
                                        ("bart", "seq2seq"), ("t5", "seq2seq"), ("marian", "seq2seq")])
def test_generative_kinds_are_read_from_the_config(tiny_checkpoints, name, kind):
    spec = models.load_spec(str(tiny_checkpoints(name)), allow_download=False)
    assert spec.kind.name == kind and spec.layers == 2 and spec.heads == 2
    assert spec.summary()["kind"] == kind
    if kind == "seq2seq":
        assert (spec.decoder_layers, spec.decoder_heads) == (2, 2)
        assert spec.max_length == (512 if name == "t5" else 64)  # T5: relative positions, trained on 512
    else:
        assert spec.max_length == 64


def test_loading_options_are_checked_and_models_are_frozen(tiny_checkpoints):
    with pytest.raises(ModelLoadError, match="Unknown precision"):
        models.load(str(tiny_checkpoints("gpt2")), dtype="float8", allow_download=False)
    with pytest.raises(ModelLoadError, match="needs a CUDA device"):
        models.load(str(tiny_checkpoints("gpt2")), dtype="float16", device="cpu", allow_download=False)
    loaded = models.load(str(tiny_checkpoints("gpt2")), dtype="bfloat16", allow_download=False)
    assert next(loaded.model.parameters()).dtype == torch.bfloat16
    assert not any(p.requires_grad for p in loaded.model.parameters())
    from models.loading import needs_splitting

    assert needs_splitting(9 * 2**30, torch.device("cuda"), free_bytes=10 * 2**30) is True
    assert needs_splitting(7 * 2**30, torch.device("cuda"), free_bytes=10 * 2**30) is False
    assert needs_splitting(10**12, torch.device("cpu")) is False
