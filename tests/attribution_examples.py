"""Inputs, explained scalars and closed-form models shared by the attribution tests (embeddings, gradients, occlusion).

The score of each kind is the scalar the capture differentiates today: a class logit (classifiers, ViTs),
the cosine similarity of the mean-pooled sentence embedding with a probe vector (embedding models), the
logit of a token at a position (decoders, encoder-decoders).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

import models
from models import TEXT, LoadedModel, ModelSpec

SENTENCE = "The cat sat on the mat."
TWO_SENTENCES = "The cat sat on the mat. The dog lay on the rug."  # the decompositions' tests: later tokens to read
TARGET_CLASS = 1


def probe_vector(size: int) -> torch.Tensor:
    """A fixed direction the embedding model's sentence vector is compared with: (size,)."""
    return torch.randn(size, generator=torch.Generator().manual_seed(7))


def example(loaded, text: str = SENTENCE) -> tuple[dict[str, Any], Callable[[Any], torch.Tensor]]:  # noqa: ANN001
    """(inputs for one example, score(outputs) -> (B,)) for a model from `models.load`."""
    kind = loaded.spec.kind
    if kind.reads_images:
        pixels = np.random.default_rng(0).integers(0, 256, (*loaded.spec.image_size, 3), dtype=np.uint8)
        inputs = {"pixel_values": loaded.processor(images=Image.fromarray(pixels), return_tensors="pt")["pixel_values"]}
        return inputs, lambda outputs: outputs.logits[:, TARGET_CLASS]
    if not kind.generates:
        inputs = dict(loaded.tokenizer(text, return_tensors="pt"))
        if loaded.spec.classifier:
            return inputs, lambda outputs: outputs.logits[:, TARGET_CLASS]
        mask = inputs["attention_mask"].unsqueeze(-1).float()  # (1, T, 1)
        probe = probe_vector(loaded.model.config.hidden_size)

        def similarity(outputs: Any) -> torch.Tensor:
            pooled = (outputs.last_hidden_state * mask).sum(1) / mask.sum(1)  # (B, D)
            return F.cosine_similarity(pooled, probe[None], dim=-1)

        return inputs, similarity
    ids = loaded.tokenizer(text, return_tensors="pt")["input_ids"]
    if kind.causal:
        target = int(ids[0, -1])
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}, lambda outputs: outputs.logits[:, -1, target]
    start = loaded.model.config.decoder_start_token_id
    output = loaded.tokenizer("2026-11-24", add_special_tokens=False)["input_ids"]
    decoder_ids = torch.tensor([[start] + output[:3]])
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "decoder_input_ids": decoder_ids}
    return inputs, lambda outputs: outputs.logits[:, 2, output[2]]


def forward_inputs(loaded, text: str = TWO_SENTENCES) -> dict[str, torch.Tensor]:  # noqa: ANN001
    """One forward pass's inputs: the text, or a seeded random 32 x 32 picture for an image model."""
    if loaded.spec.kind.reads_images:
        picture = Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8))
        return {"pixel_values": loaded.processor(images=picture, return_tensors="pt")["pixel_values"]}
    encoding = loaded.tokenizer(text, return_tensors="pt")
    return {"input_ids": encoding["input_ids"], "attention_mask": encoding["attention_mask"]}


def assert_rows_are_distributions(layers: torch.Tensor, causal: bool) -> None:
    """Per-layer token-to-token shares (L, T, T): non-negative rows summing to 1, lower triangular for a decoder."""
    assert (layers >= 0).all()
    torch.testing.assert_close(layers.sum(-1), torch.ones(layers.shape[:-1]), rtol=0, atol=1e-5)
    if causal:
        assert (layers.triu(1) == 0).all()
    else:
        assert (layers.triu(1) > 0).any()  # an encoder's tokens read later tokens too


def close(actual: torch.Tensor, expected: torch.Tensor, share: float = 1e-4) -> None:
    """Equal to within `share` of the expected map's largest magnitude (float32 sums in different orders)."""
    expected = expected.detach().float()
    torch.testing.assert_close(actual.float(), expected, rtol=0, atol=share * float(expected.abs().max()) + 1e-7)


class SummedEmbeddings(torch.nn.Module):
    """A text "model" whose logit is w . sum_t e_t (power 1) or (w . sum_t e_t)^2 (power 2)."""

    def __init__(self, weights: torch.Tensor, power: int) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(10, len(weights))
        torch.nn.init.normal_(self.embed.weight, generator=torch.Generator().manual_seed(3))
        self.register_buffer("weights", weights)
        self.power = power

    def get_input_embeddings(self) -> torch.nn.Module:
        return self.embed

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None):  # noqa: ANN001, ANN201
        embeddings = self.embed(input_ids) if inputs_embeds is None else inputs_embeds  # (B, T, D)
        return SimpleNamespace(logits=((embeddings.sum(1) @ self.weights) ** self.power)[:, None])  # (B, 1)


def summed_model(power: int) -> tuple[LoadedModel, dict, torch.Tensor, torch.Tensor]:
    """(loaded, inputs, w (D,), per-token w . e_t (T,)) for SummedEmbeddings."""
    weights = torch.tensor([0.5, -1.0, 2.0, 0.25])
    model = SummedEmbeddings(weights, power).requires_grad_(False)
    spec = ModelSpec(name="summed", kind=TEXT, source="test", layers=0, heads=0, prefix_tokens=0, patch_grid=None,
                     image_size=None, labels=("logit",), pooling="cls", max_length=8, classifier=True)
    ids = torch.tensor([[1, 4, 2, 7, 4]])
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    return LoadedModel(spec, model), inputs, weights, model.embed.weight[ids[0]] @ weights


def logit(outputs) -> torch.Tensor:  # noqa: ANN001
    return outputs.logits[:, 0]


@cache
def load_bundled(name: str) -> LoadedModel:
    return models.load(name, allow_download=False)


def bundled_example(name: str):  # noqa: ANN201
    """(loaded, inputs, score) for a bundled model and one of its sample inputs, with the capture's target."""
    loaded = load_bundled(name)
    bundled = Path(models.__file__).parent / "bundled"
    if name == "minilm":
        encode = lambda text: dict(loaded.tokenizer(text, return_tensors="pt"))  # noqa: E731
        inputs = encode("The red pizza tasted good!")
        with torch.no_grad():
            probe = loaded.model(**encode("A dog lay on the rug.")).last_hidden_state.mean(1)  # (1, D), no padding
        mask = inputs["attention_mask"].unsqueeze(-1).float()
        pooled = lambda out: (out.last_hidden_state * mask).sum(1) / mask.sum(1)  # noqa: E731
        return loaded, inputs, lambda out: F.cosine_similarity(pooled(out), probe)
    if name == "shapes-vit":
        image = Image.open(bundled / "samples" / "scene_03.png").convert("RGB")
        inputs = {"pixel_values": loaded.processor(images=image, return_tensors="pt")["pixel_values"]}
        with torch.no_grad():
            target = int(loaded.model(**inputs).logits[0].argmax())
        return loaded, inputs, lambda out: out.logits[:, target]
    if name == "induction-lm":
        ids = loaded.tokenizer("tall tree cold water small boat quiet lake . tall tree cold water small",
                               return_tensors="pt")["input_ids"]
        inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
        with torch.no_grad():
            target = int(loaded.model(**inputs).logits[0, -1].argmax())
        return loaded, inputs, lambda out: out.logits[:, -1, target]
    ids = loaded.tokenizer("Tuesday, the 24th of November 2026", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        output = loaded.model.generate(ids, max_new_tokens=12, do_sample=False)[0].tolist()  # start token first
    decoder_ids = torch.tensor([output[:-1]])
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "decoder_input_ids": decoder_ids}
    return loaded, inputs, lambda out: out.logits[:, 4, output[5]]
