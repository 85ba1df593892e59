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
from explain import faithfulness as fx

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


def _relevance_rows(capture) -> dict[str, np.ndarray]:  # noqa: ANN001
    return {method: explain.explain_capture(capture, _CAPTURE_METHODS[method]).relevance.numpy() for method in METHODS}


def evaluate_texts(model_name: str, texts: list[str], labels: tuple[str, ...] = DEFAULT_LABELS, seed: int = 0) -> dict:
    """AOPC comprehensiveness and sufficiency per method and for a random ranking, averaged over texts.

    Returns:
        {"model", "kind", "texts", "targets", "seconds", "methods": {method: {"comprehensiveness",
         "sufficiency"}} for raw_attention, attention_rollout, gradient_rollout and random}.
    """
    loaded = models.load(model_name)
    kind = loaded.spec.kind
    if kind == "image":
        raise ValueError(f"'{model_name}' is an image model: evaluate it on scenes (--scenes), not on texts.")
    start = time.perf_counter()
    scores: dict[str, list[fx.TextScores]] = {m: [] for m in METHODS + ("random",)}
    for number, text in enumerate(texts):
        if kind == "seq2seq":
            result = explain.capture_seq2seq(loaded, text)
            removable = [not s for s in result.source_special.tolist()]
            maps = {"raw_attention": explain.seq2seq_relevance(result, "attention"),
                    "attention_rollout": explain.seq2seq_relevance(result, "rollout"),
                    "gradient_rollout": explain.seq2seq_relevance(result, "gradient-rollout")}
            for n, special in enumerate(result.output_special.tolist()):
                if special:
                    continue
                probability = fx.seq2seq_probability(loaded, result.source_ids, result.output_ids, n)
                for method in METHODS:
                    scores[method].append(fx.text_scores(probability, maps[method][n].numpy(), removable))
                scores["random"].append(fx.random_text_scores(probability, removable, seed=seed + 100 * number + n))
            continue
        if kind == "decoder":
            capture = explain.capture_decoder(loaded, text, with_gradients=True)
            probability = fx.decoder_probability(loaded, capture.token_ids, capture.target_token_id)
        else:
            capture = explain.capture_text(loaded, text, labels=[] if loaded.spec.classifier else list(labels),
                                           with_gradients=True)
            probability = fx.encoder_probability(loaded, capture.token_ids, target=capture.target_label,
                                                 labels=() if loaded.spec.classifier else labels)
        removable = [not s for s in capture.special.tolist()]
        for method, relevance in _relevance_rows(capture).items():
            scores[method].append(fx.text_scores(probability, relevance, removable))
        scores["random"].append(fx.random_text_scores(probability, removable, seed=seed + number))
    return {
        "model": loaded.spec.name, "kind": kind, "texts": len(texts), "targets": len(scores["random"]),
        "seconds": round(time.perf_counter() - start, 1),
        "removal": "tokens deleted from the input (special tokens kept)",
        "methods": {method: {"comprehensiveness": float(np.mean([s.aopc_comprehensiveness for s in rows])),
                             "sufficiency": float(np.mean([s.aopc_sufficiency for s in rows]))}
                    for method, rows in scores.items()},
    }
