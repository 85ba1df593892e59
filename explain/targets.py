"""What an explanation explains: a target turns the model's outputs into the scalar to differentiate (and, for
faithfulness scores, into a probability), as pytorch-grad-cam's `ClassifierOutputTarget(281)` does.

A capture resolves what the user asked for (a class name, a probe sentence, zero-shot labels, a token) into one
of these objects against the model's own outputs; every method then asks the target for its scalar, so a new
kind of target is one class here, not a branch in every capture and method.

Every `score` and `probability` takes a batch: the model's outputs for B inputs and the inputs themselves, and
returns (B,).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
import torch.nn.functional as F

# Zero-shot labels of an embedding model become probabilities as softmax(similarity / 0.05): the temperature of
# contrastive sentence-embedding training (SimCSE, Gao et al. 2021); at 1 the labels' cosine similarities, a few
# hundredths apart, would give near-uniform probabilities.
ZERO_SHOT_TEMPERATURE = 0.05


def resolve_index(target: int | str | None, labels: Sequence[str], predicted: int, what: str) -> int:
    """A class name, index or None (the predicted one) as an index into `labels`, or a clear ValueError.

    A string is matched against the names first (case-insensitive), then read as an index.

    Args:
        what: "Class" or "Label", for the error sentence.
    """
    if target is None:
        return predicted
    if isinstance(target, str):
        key = target.strip().lower()
        lowered = [label.lower() for label in labels]
        if key in lowered:
            return lowered.index(key)
        if not key.isdigit():
            shown = ", ".join(labels[:12]) + (", ..." if len(labels) > 12 else "")
            raise ValueError(f"Unknown {what.lower()} '{target}': choose one of {shown}.")
    index = int(target)
    if not 0 <= index < len(labels):
        raise ValueError(f"{what} index {index} is out of range: choose 0 to {len(labels) - 1}.")
    return index


def pool_hidden(hidden: torch.Tensor, attention_mask: torch.Tensor | None, pooling: str) -> torch.Tensor:
    """A sentence embedding as the model's own pooling defines it: (B, T, D) -> (B, D).

    Args:
        pooling: "mean" (over the tokens the attention mask keeps) or "cls" (token 0).
    """
    if pooling == "mean":
        mask = torch.ones(hidden.shape[:2], device=hidden.device) if attention_mask is None else attention_mask
        mask = mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    return hidden[:, 0]


class Target:
    """The scalar an explanation explains. Subclasses say how to read it from the model's outputs.

    Attributes:
        label: what it is, for people (a class name, a probe sentence, a token).
        index: its place among the capture's scores (classes, labels or top next tokens), or None.
    """

    label: str
    index: int | None

    def score(self, outputs: Any, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The scalar to differentiate, one per input of the batch: (B,)."""
        raise NotImplementedError

    def probability(self, outputs: Any, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The target's probability (faithfulness scores), one per input of the batch: (B,)."""
        raise NotImplementedError


@dataclass(frozen=True)
class ClassLogit(Target):
    """A classifier's class (text or image): the scalar is its logit.

    Attributes:
        multi_label: the classes are independent sigmoids (else one softmax).
    """

    index: int
    label: str
    multi_label: bool = False

    def score(self, outputs: Any, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return outputs.logits[:, self.index].float()

    def probability(self, outputs: Any, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = outputs.logits.float()
        scores = torch.sigmoid(logits) if self.multi_label else torch.softmax(logits, dim=-1)
        return scores[:, self.index]


@dataclass(frozen=True, eq=False)
class EmbeddingSimilarity(Target):
    """An embedding model's similarity to reference sentences: a probe sentence, or zero-shot labels.

    The scalar is the cosine similarity of the input's pooled embedding with reference `index` (the references
    are held constant). Its probability is the similarity itself for a probe sentence, and for zero-shot labels
    the softmax over all labels' similarities at temperature ZERO_SHOT_TEMPERATURE, at `index`.

    Attributes:
        references: (C, D) the references' pooled embeddings (probe: C = 1).
        zero_shot: the references are labels competing for the input (else one probe sentence).
        pooling: "mean" or "cls", as the model pools.
    """

    index: int
    label: str
    references: torch.Tensor = field(repr=False)
    zero_shot: bool
    pooling: str

    def similarities(self, outputs: Any, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, C) cosine similarity of each input with every reference."""
        pooled = pool_hidden(outputs.last_hidden_state, inputs.get("attention_mask"), self.pooling).float()
        references = self.references.to(pooled.device, pooled.dtype)
        return F.normalize(pooled, dim=-1) @ F.normalize(references, dim=-1).T

    def score(self, outputs: Any, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        pooled = pool_hidden(outputs.last_hidden_state, inputs.get("attention_mask"), self.pooling).float()
        reference = self.references[self.index].to(pooled.device, pooled.dtype)
        return F.cosine_similarity(pooled, reference[None], dim=-1)

    def probability(self, outputs: Any, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        similarities = self.similarities(outputs, inputs)
        if not self.zero_shot:
            return similarities[:, self.index]
        return torch.softmax(similarities / ZERO_SHOT_TEMPERATURE, dim=-1)[:, self.index]


@dataclass(frozen=True)
class TokenLogit(Target):
    """A token of a language model's vocabulary at one position: a decoder's next token after query position
    `position`, or the output token an encoder-decoder writes at decoder position `position`. The scalar is
    the logit read there.

    Attributes:
        position: the query position whose logits are read.
        token_id: the vocabulary id.
        index: its place among the capture's top next-token scores (decoders), or None.
    """

    position: int
    token_id: int
    label: str
    index: int | None = None

    def score(self, outputs: Any, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return outputs.logits[:, self.position, self.token_id].float()

    def probability(self, outputs: Any, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.softmax(outputs.logits[:, self.position].float(), dim=-1)[:, self.token_id]
