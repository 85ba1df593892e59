"""ERASER over a file of texts: comprehensiveness and sufficiency of each method's relevance, and of a
random ranking, for a text encoder, a decoder or an encoder-decoder (`python -m explain evaluate --texts`).

Targets: a classifier's predicted class; an embedding model's best zero-shot label among `labels`; a
decoder's predicted next token after the line; every (non-special) output token of an encoder-decoder's
greedy output, averaged. Relevance per method: raw attention (last layer, heads averaged), attention
rollout and gradient rollout, over the input tokens, computed once per text; then only the shortened
inputs run (explain.faithfulness).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

import explain
import models
from explain.metrics import faithfulness as fx

METHODS = ("raw_attention", "attention_rollout", "gradient_rollout")
_CAPTURE_METHODS = {"raw_attention": "attention", "attention_rollout": "rollout", "gradient_rollout": "gradient-rollout"}
DEFAULT_LABELS = ("animals", "food", "language", "computers", "travel")
BUNDLED_TEXTS = Path(__file__).resolve().parent.parent / "models" / "bundled" / "texts"


def read_texts(path: str | Path) -> list[str]:
    """Non-empty, stripped lines of a UTF-8 file (lines starting with # are comments)."""
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"{path} does not exist: give a text file with one input per line.")
    lines = [line.strip() for line in file.read_text(encoding="utf-8").splitlines()]
    texts = [line for line in lines if line and not line.startswith("#")]
    if not texts:
        raise ValueError(f"{path} holds no text: write one input per line.")
    return texts


def _captures(loaded, text: str, labels: tuple[str, ...]) -> list:  # noqa: ANN001
    """The captures whose targets are scored for one text: an encoder's best label or predicted class, a decoder's
    predicted next token, and every non-special output token of an encoder-decoder's greedy output."""
    kind = loaded.spec.kind
    if kind.cross_attention:
        first = explain.capture_seq2seq(loaded, text)
        return [explain.capture_seq2seq(loaded, text, output=first.output_ids, target=n, with_gradients=True)
                for n, special in enumerate(first.output_special.tolist()) if not special]
    if kind.causal:
        return [explain.capture_decoder(loaded, text, with_gradients=True)]
    return [explain.capture_text(loaded, text, labels=[] if loaded.spec.classifier else list(labels),
                                 with_gradients=True)]


def evaluate_texts(model_name: str, texts: list[str], labels: tuple[str, ...] = DEFAULT_LABELS, seed: int = 0) -> dict:
    """AOPC comprehensiveness and sufficiency per method and for a random ranking, averaged over targets.

    Returns:
        {"model", "kind", "texts", "targets", "seconds", "methods": {method: {"comprehensiveness",
         "sufficiency"}} for raw_attention, attention_rollout, gradient_rollout and random}.
    """
    loaded = models.load(model_name)
    kind = loaded.spec.kind
    if kind.reads_images:
        raise ValueError(f"'{model_name}' is an image model: evaluate it on scenes (--scenes), not on texts.")
    start = time.perf_counter()
    scores: dict[str, list[fx.TextScores]] = {m: [] for m in METHODS + ("random",)}
    for number, text in enumerate(texts):
        for capture in _captures(loaded, text, labels):
            task = fx.text_perturbation(capture, loaded)
            for method in METHODS:
                relevance = explain.explain_capture(capture, _CAPTURE_METHODS[method]).relevance[:task.length]
                scores[method].append(fx.text_scores(task.probability, relevance.numpy(), task.removable))
            random_seed = seed + 100 * number + capture.target.position if kind.cross_attention else seed + number
            scores["random"].append(fx.random_text_scores(task.probability, task.removable, seed=random_seed))
    return {
        "model": loaded.spec.name, "kind": kind.name, "texts": len(texts), "targets": len(scores["random"]),
        "seconds": round(time.perf_counter() - start, 1),
        "removal": "tokens deleted from the input (special tokens kept)",
        "methods": {method: {"comprehensiveness": float(np.mean([s.aopc_comprehensiveness for s in rows])),
                             "sufficiency": float(np.mean([s.aopc_sufficiency for s in rows]))}
                    for method, rows in scores.items()},
    }
