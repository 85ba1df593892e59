"""The numbers behind the Learn pages: position encodings, word trajectories through the layers, and an image
cut into the sequence a ViT reads. Everything is read from the loaded model. (Rollout one layer at a time is
`attention_rollout(..., steps=True)` and `gradient_rollout(..., steps=True)` in explain/rollout.py.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from explain.tokens import words_of
from explain.vision import model_picture, pixel_values
from models import LoadedModel


def sinusoidal_encoding(positions: int, dim: int, base: float = 10000.0) -> torch.Tensor:
    """The original transformer's position code (Vaswani et al. 2017): (positions, dim).

    PE[p, 2i] = sin(p / base^(2i / dim)), PE[p, 2i + 1] = cos(p / base^(2i / dim)).
    """
    if positions < 1 or dim < 2 or dim % 2:
        raise ValueError(f"Give at least one position and an even dimension, not {positions} x {dim}.")
    position = torch.arange(positions, dtype=torch.float64)[:, None]
    frequency = base ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    code = torch.zeros(positions, dim, dtype=torch.float64)
    code[:, 0::2] = torch.sin(position * frequency)
    code[:, 1::2] = torch.cos(position * frequency)
    return code.float()


def similarity(vectors: torch.Tensor, cosine: bool = False) -> torch.Tensor:
    """(N, D) -> (N, N) dot products (or cosine similarities) between every pair of rows."""
    vectors = vectors.float()
    if cosine:
        vectors = F.normalize(vectors, dim=-1)
    return vectors @ vectors.T


@dataclass
class PositionTable:
    """A model's learned position embeddings and how they enter the input.

    Attributes:
        table: (P, D) one row per position (for a ViT: [CLS] first, then the patches row by row), or None
            for models that rotate q and k instead of adding a vector (rotary: Llama, Qwen2, Mistral).
        how: two sentences on how the positions are added.
        prefix: rows before the first real position (a ViT's [CLS]; BART's offset of 2).
    """

    table: torch.Tensor | None
    how: str
    prefix: int = 0


def position_table(loaded: LoadedModel) -> PositionTable:
    """The position embeddings of a loaded model, read from its own parameters."""
    model, spec = loaded.model, loaded.spec
    if spec.kind.reads_images:
        embeddings = model.base_model.embeddings
        return PositionTable(embeddings.position_embeddings[0].detach().float(),
                             "One learned vector per patch position (and one for [CLS]) is added to each patch's "
                             "projection before the first layer. Training, not a formula, decides their shape: "
                             "neighbouring patches end up with similar vectors.", prefix=spec.prefix_tokens)
    for name, module in model.named_modules():
        leaf = name.rsplit(".", 1)[-1]
        if leaf in ("position_embeddings", "wpe", "embed_positions") and isinstance(module, torch.nn.Embedding):
            offset = int(getattr(module, "offset", 0))
            return PositionTable(module.weight.detach().float()[offset:],
                                 "One learned vector per position is added to each token's embedding before the first "
                                 "layer. The model learnt these vectors; nothing forces them to be sinusoids.")
    if any("rotary" in name for name, _ in model.named_modules()):
        return PositionTable(None, "No position vector is added: rotary embeddings (RoPE) rotate each head's q and k by "
                                   "an angle proportional to the position, so q . k depends on how far apart two "
                                   "tokens are. The Inside one head page shows q and k after that rotation.")
    return PositionTable(None, f"'{spec.name}' keeps no learned position table this view can read.")


@dataclass
class Trajectories:
    """Each word's hidden state after every layer, and a 2-D view of them.

    Attributes:
        words: W words of the sentence (pieces joined, special tokens left out).
        states: (L + 1, W, D) embedding output then each layer's output, a word's pieces averaged.
        points: (L + 1, W, 2) the states projected on the two principal axes of all of them together.
        explained: share of the variance the two axes hold.
    """

    words: list[str]
    states: torch.Tensor
    points: np.ndarray
    explained: float


def pca_2d(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(N, D) -> (the mean (D,), the two principal axes (2, D), the share of variance they explain)."""
    centre = points.mean(0)
    _, values, axes = np.linalg.svd(points - centre, full_matrices=False)
    return centre, axes[:2], float((values[:2] ** 2).sum() / max((values ** 2).sum(), 1e-12))


@torch.no_grad()
def word_states(loaded: LoadedModel, text: str) -> tuple[list[str], torch.Tensor]:
    """(words, (L + 1, W, D) hidden states per layer, pieces averaged) of a text encoder or decoder."""
    if loaded.spec.kind.reads_images or loaded.spec.kind.cross_attention:
        raise ValueError(f"'{loaded.spec.name}' is not a text encoder or a decoder: pick one to follow words.")
    if not text or not text.strip():
        raise ValueError("The sentence is empty: type one to follow its words through the layers.")
    encoding = loaded.tokenizer(text, return_tensors="pt", truncation=True, max_length=loaded.spec.max_length)
    outputs = loaded.model(**encoding.to(loaded.device), output_hidden_states=True)
    hidden = torch.stack(outputs.hidden_states)[:, 0].float().cpu()  # (L + 1, T, D)
    words, members = words_of(loaded.tokenizer.convert_ids_to_tokens(encoding["input_ids"][0].tolist()),
                              encoding.word_ids(0))
    if not words:
        raise ValueError("The sentence has no words the model can read.")
    return words, torch.stack([hidden[:, m].mean(1) for m in members], dim=1)


def word_trajectories(loaded: LoadedModel, text: str) -> Trajectories:
    """Every word of `text` through every layer, projected with PCA fitted on all these states."""
    words, states = word_states(loaded, text)
    flat = states.reshape(-1, states.shape[-1]).numpy()
    centre, axes, explained = pca_2d(flat)
    points = ((flat - centre) @ axes.T).reshape(states.shape[0], states.shape[1], 2)
    return Trajectories(words, states, points, explained)


def probe_similarity(loaded: LoadedModel, text: str, word: str, probes: list[str]) -> tuple[list[str], np.ndarray]:
    """Cosine similarity, at every layer, of `word` in `text` with each probe word read on its own:
    ((L + 1) layer names, (L + 1, len(probes)))."""
    words, states = word_states(loaded, text)
    lowered = [w.lower() for w in words]
    if word.lower() not in lowered:
        raise ValueError(f"'{word}' is not a word of the sentence: choose one of {', '.join(words)}.")
    chosen = states[:, lowered.index(word.lower())]  # (L + 1, D)
    table = []
    for probe in probes:
        _, probe_states = word_states(loaded, probe)
        table.append(F.cosine_similarity(chosen, probe_states.mean(1), dim=-1))
    layers = ["embeddings"] + [f"layer {i}" for i in range(1, states.shape[0])]
    return layers, torch.stack(table, dim=1).numpy()


@dataclass
class PatchSequence:
    """How a ViT turns an image into the sequence its encoder reads.

    Attributes:
        picture: (H, W, 3) uint8 the model's input picture; grid (rows, cols); patch (height, width) pixels.
        projections: (N, D) each patch flattened and projected (the patch embedding).
        cls: (D,) the learned [CLS] vector (prefix tokens: also DeiT's distillation token in `prefix`).
        positions: (prefix + N, D) learned position embeddings.
        sequence: (prefix + N, D) what the first layer reads: [CLS] (+ [DIST]) then the patch projections,
            position embeddings added (equal to the model's embedding output, tested).
    """

    picture: np.ndarray
    grid: tuple[int, int]
    patch: tuple[int, int]
    projections: torch.Tensor
    prefix: torch.Tensor
    positions: torch.Tensor
    sequence: torch.Tensor


@torch.no_grad()
def patch_sequence(loaded: LoadedModel, image) -> PatchSequence:  # noqa: ANN001 - a PIL image
    """Cut `image` into the model's patches and build the input sequence from the model's own weights."""
    spec = loaded.spec
    if not spec.kind.reads_images:
        raise ValueError(f"'{spec.name}' is not an image model: pick a ViT.")
    pixels = pixel_values(loaded, image)
    embeddings = loaded.model.base_model.embeddings
    projections = embeddings.patch_embeddings(pixels.to(loaded.device))[0].float()  # (N, D)
    prefix = [embeddings.cls_token[0, 0]]
    if spec.prefix_tokens == 2:
        prefix.append(embeddings.distillation_token[0, 0])
    prefix = torch.stack(prefix).float()
    positions = embeddings.position_embeddings[0].float()
    sequence = torch.cat([prefix, projections]) + positions
    picture = model_picture(loaded.processor, pixels)
    height, width = spec.image_size
    rows, cols = spec.patch_grid
    return PatchSequence(picture, (rows, cols), (height // rows, width // cols), projections.cpu(), prefix.cpu(),
                         positions.cpu(), sequence.cpu())
