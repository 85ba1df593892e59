"""The seed split every generator here keeps: training seeds below ``TRAIN_SEED_LIMIT`` (10**6), evaluation
seeds at or above it, so that no held-out scene, date or sequence is ever drawn by a training stream."""

from __future__ import annotations

from typing import Literal

TRAIN_SEED_LIMIT = 10**6


def check_seed(seed: int, split: Literal["train", "eval"]) -> int:
    """Enforce the seed split between training and evaluation.

    Args:
        seed: The seed to check.
        split: ``"train"`` requires ``0 <= seed < TRAIN_SEED_LIMIT``;
            ``"eval"`` requires ``seed >= TRAIN_SEED_LIMIT``.

    Returns:
        The seed, unchanged.

    Raises:
        ValueError: If the seed lies in the other split's range.
    """
    if split == "train" and not 0 <= seed < TRAIN_SEED_LIMIT:
        raise ValueError(f"training seeds must be in [0, {TRAIN_SEED_LIMIT}); got {seed}. "
                         f"Seeds >= {TRAIN_SEED_LIMIT} are reserved for evaluation.")
    if split == "eval" and seed < TRAIN_SEED_LIMIT:
        raise ValueError(f"evaluation seeds must be >= {TRAIN_SEED_LIMIT} so that they never "
                         f"overlap training; got {seed}.")
    if split not in ("train", "eval"):
        raise ValueError(f"split must be 'train' or 'eval', got {split!r}")
    return seed
