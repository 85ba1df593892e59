"""explain.metrics.classification: macro F1 by hand on three scenes and three classes."""

from __future__ import annotations

import numpy as np
import pytest

from explain.metrics.classification import macro_f1


def test_macro_f1_by_hand() -> None:
    probs = np.array([[0.9, 0.1, 0.2], [0.6, 0.7, 0.1], [0.2, 0.4, 0.3]])
    labels = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0]], dtype=np.float32)
    macro, per_class = macro_f1(probs, labels)
    # class 0: predicted [1, 1, 0], true [1, 0, 1]: TP 1, FP 1, FN 1 -> 2 / (2 + 1 + 1) = 0.5
    # class 1: predicted [0, 1, 0], true [0, 1, 0]: TP 1 -> 1.0
    # class 2: never predicted, never present -> 1.0 by convention
    assert per_class == pytest.approx([0.5, 1.0, 1.0])
    assert macro == pytest.approx(2.5 / 3)


def test_threshold_decides_what_counts_as_predicted() -> None:
    probs, labels = np.array([[0.4], [0.6]]), np.array([[1.0], [1.0]])
    assert macro_f1(probs, labels)[1] == pytest.approx([2 / 3])  # TP 1, FN 1 at 0.5
    assert macro_f1(probs, labels, threshold=0.3)[1] == pytest.approx([1.0])
