"""Classification figures of a multi-label classifier: per-class and macro F1 at a threshold, and the model's own
signal that an input is unlike what it was trained on (its largest logit)."""

from __future__ import annotations

import numpy as np

import torch

THRESHOLD = 0.5


def macro_f1(probs: np.ndarray, labels: np.ndarray, threshold: float = THRESHOLD) -> tuple[float, list[float]]:
    """Macro F1 and per-class F1 of (N, C) probabilities against (N, C) multi-hot labels.

    Per class 2TP / (2TP + FP + FN); a class with no positives and no predictions scores 1.

    Args:
        probs: (N, C) predicted probabilities; a class is predicted when its probability is >= ``threshold``.
        labels: (N, C) multi-hot targets (> 0.5 means present).
        threshold: Decision threshold on ``probs``.

    Returns:
        (mean of the per-class F1, the C per-class F1 values).
    """
    pred, truth = probs >= threshold, labels > 0.5
    tp = (pred & truth).sum(0)
    denom = 2 * tp + (pred & ~truth).sum(0) + (~pred & truth).sum(0)
    per_class = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 1.0)
    return float(per_class.mean()), [float(x) for x in per_class]


def max_logit(logits: torch.Tensor) -> torch.Tensor:
    """The largest logit per input, (..., C) -> (...): low when the model finds none of its classes (MaxLogit,
    Hendrycks et al., 2022). A threshold calibrated on held-out data (its 1st percentile there, say) flags inputs
    unlike the training distribution; unlike a sigmoid's or softmax's probability it does not saturate at 1."""
    return logits.float().amax(dim=-1)
