"""Scores of a multi-label classifier's predictions: macro F1 over classes."""

from __future__ import annotations

import numpy as np


def macro_f1(probs: np.ndarray, labels: np.ndarray, threshold: float = 0.5) -> tuple[float, list[float]]:
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
