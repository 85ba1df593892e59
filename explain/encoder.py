"""Text encoders (BERT, DistilBERT, RoBERTa, ELECTRA, sentence encoders such as MiniLM): one captured forward
pass over a sentence (or a pair), plus one backward pass for a target: a classifier's class, a probe sentence's
similarity, or one of several zero-shot labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch

from explain.capture import Capture, attention_gradients, cpu_inputs, pooling_weights_for, stack_attentions
from explain.targets import ClassLogit, EmbeddingSimilarity, Target, pool_hidden, resolve_index
from explain.tokens import unknown_words
from models import LoadedModel


@dataclass
class TextCapture(Capture):
    """A text input's capture (see Capture), with how its tokens form words.

    Attributes:
        token_ids: T input ids.
        word_ids: per token, the index of the word it belongs to (None for special tokens).
        sequence_ids: per token, 0 or 1 for the first or second text of a pair, None for special tokens.
    """

    token_ids: list[int] = field(default_factory=list)
    word_ids: list[int | None] = field(default_factory=list)
    sequence_ids: list[int | None] = field(default_factory=list)


def tokenize(loaded: LoadedModel, text: str, pair: str | None = None) -> tuple[dict, int]:
    """Tokenise one input (or pair) truncated to the model's maximum; returns (encoding, dropped tokens)."""
    if not text or not text.strip():
        raise ValueError("The text is empty: type a sentence to explain.")
    if pair is not None and not pair.strip():
        pair = None
    tokenizer = loaded.tokenizer
    full = tokenizer(text, pair, add_special_tokens=True, truncation=False)
    encoding = tokenizer(
        text, pair, add_special_tokens=True, truncation=True, max_length=loaded.spec.max_length, return_tensors="pt"
    )
    dropped = len(full["input_ids"]) - int(encoding["input_ids"].shape[1])
    return encoding, dropped


@torch.no_grad()
def sentence_embeddings(loaded: LoadedModel, sentences: Sequence[str]) -> torch.Tensor:
    """(C, D) the pooled embeddings of reference sentences (probe sentences, zero-shot labels), held constant."""
    spec = loaded.spec
    encoding = loaded.tokenizer(list(sentences), padding=True, truncation=True, max_length=spec.max_length,
                                return_tensors="pt").to(loaded.device)
    outputs = loaded.model(**encoding)
    return pool_hidden(outputs.last_hidden_state, encoding["attention_mask"], spec.pooling).float().cpu()


def text_target(loaded: LoadedModel, outputs, inputs: dict[str, torch.Tensor], target: int | str | None,  # noqa: ANN001
                labels: Sequence[str]) -> tuple[Target | None, torch.Tensor | None, tuple[str, ...]]:
    """Resolve what the user asked to explain against the model's outputs: (target or None, scores, score labels).

    Classifier: `target` is a class name or index (None: the predicted class); scores are class probabilities.
    Embedding model with `labels`: zero-shot; `target` picks a label (None: the most similar); scores are the
    labels' cosine similarities. Embedding model with a probe sentence as `target`: its similarity.
    """
    spec = loaded.spec
    if spec.classifier:
        logits = outputs.logits[0].detach().float()
        scores = torch.sigmoid(logits) if spec.multi_label else torch.softmax(logits, dim=-1)
        index = resolve_index(target, spec.labels, int(logits.argmax()), "Class")
        return ClassLogit(index, spec.labels[index], spec.multi_label), scores.cpu(), spec.labels
    if not labels and target is None:
        return None, None, ()
    references = list(labels) if labels else [str(target)]
    embeddings = sentence_embeddings(loaded, references)
    probe = EmbeddingSimilarity(0, references[0], embeddings, zero_shot=bool(labels), pooling=spec.pooling)
    similarities = probe.similarities(outputs, inputs)[0].detach().cpu()
    index = resolve_index(target, references, int(similarities.argmax()), "Label") if labels else 0
    chosen = EmbeddingSimilarity(index, references[index], embeddings, zero_shot=bool(labels), pooling=spec.pooling)
    return chosen, similarities, tuple(references)


def capture_text(
    loaded: LoadedModel,
    text: str,
    pair: str | None = None,
    *,
    target: int | str | None = None,
    labels: Sequence[str] | None = None,
    with_gradients: bool = False,
    display: bool = False,
) -> TextCapture:
    """One forward pass (plus one backward pass when gradients are asked for) over a text.

    Targets:
        classifier: `target` is a class name or index (None: the predicted class); the scalar is its logit.
        embedding model with `labels`: zero-shot; each label text is embedded (no gradient) and scored by
            cosine similarity with the input; `target` picks a label (name or index; None: best score).
        embedding model without labels: `target` is a probe sentence; the scalar is the cosine similarity
            of the input's pooled embedding with the probe's (the probe held constant).

    Args:
        loaded: a text model from `models.load`.
        text: the input sentence.
        pair: optional second sentence.
        target: see above.
        labels: zero-shot label texts (embedding models).
        with_gradients: also run the backward pass (always done when a probe or labels are given).
        display: keep only what views need (float16 attentions, no raw gradients).

    Raises:
        ValueError: empty text, unknown target, or gradients asked for with no target on an embedding model.
    """
    spec = loaded.spec
    if spec.kind.reads_images or spec.kind.generates:
        raise ValueError(f"'{spec.name}' is {spec.kind.article}, not a text encoder: pick one for this view.")
    encoding, dropped = tokenize(loaded, text, pair)
    encoding = encoding.to(loaded.device)
    labels = [label.strip() for label in labels or () if label.strip()]
    need_grad = with_gradients or target is not None or bool(labels)
    if need_grad and not spec.classifier and not (labels or target is not None):
        raise ValueError(
            "Gradient rollout on an embedding model needs a target: a probe sentence to compare with, "
            "or zero-shot labels."
        )
    inputs = dict(encoding)
    with torch.set_grad_enabled(need_grad):
        outputs = loaded.model(**inputs, output_attentions=True)
        resolved, scores, score_labels = text_target(loaded, outputs, inputs, target, labels)
        stacked = stack_attentions(outputs.attentions, torch.float16 if display else torch.float32)
        gradients = weighted = value = None
        if resolved is not None:
            scalar = resolved.score(outputs, inputs)[0]
            value = float(scalar.detach())
            if need_grad:
                gradients, weighted = attention_gradients(scalar, outputs.attentions, keep=not display)

    token_ids = encoding["input_ids"][0].tolist()
    sequence_ids = list(encoding.sequence_ids(0))
    # Special tokens are the ones the tokenizer added ([CLS], [SEP], padding): they belong to no input
    # sequence. Matching all_special_ids would also flag [UNK], which stands for a real word of the text.
    special = torch.tensor([sequence is None for sequence in sequence_ids], dtype=torch.bool)
    return TextCapture(
        kind=spec.kind, tokens=loaded.tokenizer.convert_ids_to_tokens(token_ids), attentions=stacked,
        special=special, pooling_weights=pooling_weights_for(spec.pooling, encoding["attention_mask"][0].bool().cpu()),
        inputs=cpu_inputs(inputs), target=resolved, target_value=value, scores=scores, score_labels=score_labels,
        weighted=weighted, gradients=gradients, dropped_tokens=dropped,
        unknown_words=unknown_words(loaded.tokenizer, encoding, text, pair), token_ids=token_ids,
        word_ids=list(encoding.word_ids(0)), sequence_ids=sequence_ids,
    )
