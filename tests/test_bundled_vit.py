"""The committed ViT loads with plain transformers and gets the committed sample scenes right."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoImageProcessor, ViTForImageClassification

MODEL_DIR = Path(__file__).resolve().parents[1] / "models" / "bundled" / "shapes-vit"
SAMPLES_DIR = Path(__file__).resolve().parents[1] / "models" / "bundled" / "samples"


@pytest.fixture(scope="module")
def model() -> ViTForImageClassification:
    return ViTForImageClassification.from_pretrained(MODEL_DIR, attn_implementation="eager").eval()


@pytest.fixture(scope="module")
def processor():
    return AutoImageProcessor.from_pretrained(MODEL_DIR)


def test_files_and_size() -> None:
    for name in ("config.json", "model.safetensors", "preprocessor_config.json", "README.md"):
        assert (MODEL_DIR / name).is_file(), name
    total = sum(p.stat().st_size for p in MODEL_DIR.iterdir() if p.is_file())
    assert total <= 20 * 1024 * 1024


def test_config_is_multi_label_with_class_names(model: ViTForImageClassification) -> None:
    from training.scenes import CLASS_NAMES

    config = model.config
    assert config.problem_type == "multi_label_classification"
    assert tuple(config.id2label[i] for i in range(config.num_labels)) == CLASS_NAMES
    assert config.label2id == {name: i for i, name in enumerate(CLASS_NAMES)}
    assert config._attn_implementation == "eager"


def test_eager_attentions_have_the_right_shape(model: ViTForImageClassification, processor) -> None:
    config = model.config
    image = Image.open(SAMPLES_DIR / "scene_00.png").convert("RGB")
    pixel_values = processor(images=image, return_tensors="pt")["pixel_values"]
    assert tuple(pixel_values.shape) == (1, 3, config.image_size, config.image_size)
    with torch.no_grad():
        outputs = model(pixel_values=pixel_values, output_attentions=True)
    tokens = 1 + (config.image_size // config.patch_size) ** 2
    assert len(outputs.attentions) == config.num_hidden_layers
    for attention in outputs.attentions:
        assert tuple(attention.shape) == (1, config.num_attention_heads, tokens, tokens)
        torch.testing.assert_close(attention.sum(-1), torch.ones(1, config.num_attention_heads, tokens))


def test_processor_matches_training_normalisation(processor) -> None:
    """The saved processor feeds the model exactly what training fed it."""
    from training.train_vit import to_pixel_values

    image = np.asarray(Image.open(SAMPLES_DIR / "scene_00.png").convert("RGB"))
    ours = to_pixel_values(image[None])
    theirs = processor(images=Image.fromarray(image), return_tensors="pt")["pixel_values"]
    torch.testing.assert_close(theirs.float(), ours, atol=1e-5, rtol=0)


def live_predictions(model: ViTForImageClassification, processor, samples: list[dict]) -> list[list[str]]:
    """Class names scoring >= 0.5, per sample image, by plain transformers."""
    names = [model.config.id2label[i] for i in range(model.config.num_labels)]
    images = [Image.open(SAMPLES_DIR / sample["file"]).convert("RGB") for sample in samples]
    with torch.no_grad():
        probs = torch.sigmoid(model(**processor(images=images, return_tensors="pt")).logits)
    return [[names[i] for i in torch.nonzero(row >= 0.5).flatten().tolist()] for row in probs]


def test_predicts_the_samples(model: ViTForImageClassification, processor) -> None:
    """The issue's target: at least 7 of the 8 sample scenes (the first 8 of the sample seed, not picked)
    predicted exactly; samples.json records what the model predicts, not a hand-edited list."""
    samples = json.loads((SAMPLES_DIR / "samples.json").read_text())["samples"]
    assert len(samples) == 8
    assert any(len(s["labels"]) >= 2 for s in samples)
    predicted = live_predictions(model, processor, samples)
    assert [sorted(p) for p in predicted] == [sorted(s["predicted"]) for s in samples]
    exact = sum(sorted(p) == sorted(s["labels"]) for p, s in zip(predicted, samples))
    assert exact >= 7, f"{exact} of 8 samples predicted exactly"


def test_held_out_classification_meets_the_targets() -> None:
    """Macro F1 >= 0.95 and every class's F1 >= 0.9 on held-out scenes of the evaluation seed."""
    from explain.evaluate import error_breakdown

    result = error_breakdown("shapes-vit", n_scenes=600)
    assert result["macro_f1"] >= 0.95, result["macro_f1"]
    assert min(result["per_class_f1"].values()) >= 0.9, result["per_class_f1"]


def test_samples_are_the_generator_output() -> None:
    """samples.json's ground truth is what the generator made for that seed (not hand-edited)."""
    from training.scenes import make_scenes

    meta = json.loads((SAMPLES_DIR / "samples.json").read_text())
    scenes = make_scenes(len(meta["samples"]), seed=meta["seed"])
    for scene, sample in zip(scenes, meta["samples"]):
        assert scene.label_names == sample["labels"]
        np.testing.assert_array_equal(np.asarray(Image.open(SAMPLES_DIR / sample["file"])), scene.image)
