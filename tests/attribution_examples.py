"""One input and one explained scalar per model, as the captures build them: shared by the attribution tests.

The score of each kind is the scalar the capture differentiates today: a class logit (classifiers, ViTs),
the cosine similarity of the mean-pooled sentence embedding with a probe vector (embedding models), the
logit of a token at a position (decoders, encoder-decoders).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

SENTENCE = "The cat sat on the mat."
TARGET_CLASS = 1


def probe_vector(size: int) -> torch.Tensor:
    """A fixed direction the embedding model's sentence vector is compared with: (size,)."""
    return torch.randn(size, generator=torch.Generator().manual_seed(7))


def example(loaded, text: str = SENTENCE) -> tuple[dict[str, Any], Callable[[Any], torch.Tensor]]:  # noqa: ANN001
    """(inputs for one example, score(outputs) -> (B,)) for a model from `models.load`."""
    kind = loaded.spec.kind
    if kind == "image":
        pixels = np.random.default_rng(0).integers(0, 256, (*loaded.spec.image_size, 3), dtype=np.uint8)
        inputs = {"pixel_values": loaded.processor(images=Image.fromarray(pixels), return_tensors="pt")["pixel_values"]}
        return inputs, lambda outputs: outputs.logits[:, TARGET_CLASS]
    if kind == "text":
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
    if kind == "decoder":
        target = int(ids[0, -1])
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}, lambda outputs: outputs.logits[:, -1, target]
    start = loaded.model.config.decoder_start_token_id
    output = loaded.tokenizer("2026-11-24", add_special_tokens=False)["input_ids"]
    decoder_ids = torch.tensor([[start] + output[:3]])
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "decoder_input_ids": decoder_ids}
    return inputs, lambda outputs: outputs.logits[:, 2, output[2]]
