"""ERASER over a file of texts: comprehensiveness, sufficiency and the area between the deletion curves (ABPC)
of every registered method's relevance, and of a random ranking, for a text encoder, a decoder or an
encoder-decoder (`python -m explain evaluate --texts`).

Targets: a classifier's predicted class; an embedding model's best zero-shot label among `labels`; a decoder's
predicted next token after the line; every (non-special) output token of an encoder-decoder's greedy output,
averaged. Each method explains each target once (its defaults: the last layer for attention, rollout from layer
0); then only the shortened inputs run (explain.metrics.faithfulness).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

import explain
import models
from explain.metrics import faithfulness as fx

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


def evaluate_texts(model_name: str, texts: list[str], labels: tuple[str, ...] = DEFAULT_LABELS, seed: int = 0,
                   methods: tuple[str, ...] = ()) -> dict:
    """AOPC comprehensiveness and sufficiency, ABPC and seconds per target of every method, and of a random ranking,
    averaged over the targets.

    Args:
        methods: registered method names (default: every one that applies to the model).

    Returns:
        {"model", "kind", "texts", "targets", "seconds", "removal", "methods": {method: {"comprehensiveness",
         "sufficiency", "abpc", "seconds"}} with a key per method name and "random"}.
    """
    loaded = models.load(model_name)
    kind = loaded.spec.kind
    if kind.reads_images:
        raise ValueError(f"'{model_name}' is an image model: evaluate it on scenes (--scenes), not on texts.")
    start = time.perf_counter()
    scores: dict[str, list[fx.TextScores]] = {}
    seconds: dict[str, list[float]] = {}
    for number, text in enumerate(texts):
        for capture in _captures(loaded, text, labels):
            task = fx.text_perturbation(capture, loaded)
            chosen = [explain.get_method(name) for name in methods] or explain.methods_for(capture, loaded)
            for method in chosen:
                explanation = explain.explain_capture(capture, method.name, loaded)
                relevance = explanation.relevance[:task.length].float().numpy()
                scores.setdefault(method.name, []).append(fx.text_scores(task.probability, relevance, task.removable))
                seconds.setdefault(method.name, []).append(explanation.seconds)
            random_seed = seed + 100 * number + capture.target.position if kind.cross_attention else seed + number
            scores.setdefault("random", []).append(fx.random_text_scores(task.probability, task.removable, seed=random_seed))
    return {
        "model": loaded.spec.name, "kind": kind.name, "texts": len(texts), "targets": len(scores["random"]),
        "seconds": round(time.perf_counter() - start, 1),
        "removal": "tokens deleted from the input (special tokens kept)",
        "methods": {method: {"comprehensiveness": float(np.mean([s.aopc_comprehensiveness for s in rows])),
                             "sufficiency": float(np.mean([s.aopc_sufficiency for s in rows])),
                             "abpc": float(np.mean([s.abpc for s in rows])),
                             **({"seconds": float(np.mean(seconds[method]))} if method in seconds else {})}
                    for method, rows in scores.items()},
    }
