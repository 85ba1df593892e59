"""The recurrent encoder-decoders' task: reverse a random string of lower-case letters ("hello" -> "olleh").

Strings are 5 to 80 letters long, each letter uniform over a-z. A training batch draws one bucket of
``BATCH_BUCKET`` consecutive lengths and each string's length uniformly inside it: over many batches every
length 5..80 is equally frequent, and a batch has at most three padding positions per string (a batch of
mixed lengths 5..80 would cost the time of length 80 at every step).

Seeds: training < 10**6, evaluation >= 10**6 (``check_seed``). ``evaluate_reversal`` measures a model on
held-out strings: exact match per input length, per-character accuracy, where the attention model's largest
weight lands, and how far back in the source the gradient of the first and the last output's loss reaches.
"""

from __future__ import annotations

import numpy as np
import torch

from explain.recurrent import anti_diagonal_share, letters_right
from models.recurrent import LETTERS, RecurrentEncoderDecoder
from training.seeds import check_seed

MIN_LENGTH, MAX_LENGTH = 5, 80
BATCH_BUCKET = 4  # lengths per training batch: 5-8, 9-12, ..., 77-80 (76 lengths, 19 buckets)
LENGTH_BUCKETS = ((5, 19), (20, 39), (40, 59), (60, 80))
EVAL_SEED = 20261201
GRADIENT_LENGTHS = (20, 80)


def random_strings(rng: np.random.Generator, lengths: list[int] | np.ndarray) -> list[str]:
    """One string of uniform random letters for each length."""
    letters = np.array(LETTERS)
    return ["".join(letters[rng.integers(len(LETTERS), size=int(length))]) for length in lengths]


def encode_pairs(tokenizer, sources: list[str]) -> dict[str, torch.Tensor]:  # noqa: ANN001
    """Right-padded source ids (characters and </s>) and mask, and labels: the reversed source and </s>,
    -100 on padding.

    Returns:
        {"input_ids": (B, S), "attention_mask": (B, S), "labels": (B, N)} with N = S.
    """
    encoded = tokenizer(sources, padding=True, return_tensors="pt")
    targets = tokenizer([source[::-1] for source in sources], padding=True, return_tensors="pt")
    labels = targets["input_ids"].masked_fill(targets["attention_mask"] == 0, -100)
    return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"], "labels": labels}


def training_batch(rng: np.random.Generator, tokenizer, batch_size: int,  # noqa: ANN001
                   max_length: int = MAX_LENGTH) -> dict[str, torch.Tensor]:
    """A batch of `batch_size` strings whose lengths lie in one random bucket of ``BATCH_BUCKET`` lengths.

    Args:
        rng: The training stream (seeded with a training seed).
        tokenizer: The character tokenizer (``models.recurrent.build_tokenizer``).
        batch_size: Strings per batch.
        max_length: The longest length drawn (a curriculum may start below ``MAX_LENGTH``).

    Returns:
        ``encode_pairs`` of the strings.
    """
    starts = np.arange(MIN_LENGTH, max_length + 1, BATCH_BUCKET)
    low = int(starts[rng.integers(len(starts))])
    high = min(low + BATCH_BUCKET - 1, max_length)
    lengths = rng.integers(low, high + 1, size=batch_size)
    return encode_pairs(tokenizer, random_strings(rng, lengths))


def evaluation_strings(n: int, seed: int = EVAL_SEED) -> list[str]:
    """`n` held-out strings (seed >= 10**6) whose lengths cycle through 5..80, so every length is
    (nearly) equally represented."""
    check_seed(seed, "eval")
    rng = np.random.default_rng(seed)
    lengths = [MIN_LENGTH + i % (MAX_LENGTH - MIN_LENGTH + 1) for i in range(n)]
    return random_strings(rng, lengths)


def bucket_of(length: int) -> str:
    """The length bucket's name, e.g. "60-80"."""
    for low, high in LENGTH_BUCKETS:
        if low <= length <= high:
            return f"{low}-{high}"
    raise ValueError(f"length {length} is outside {MIN_LENGTH}..{MAX_LENGTH}: give strings of 5 to 80 letters.")


@torch.no_grad()
def evaluate_reversal(model: RecurrentEncoderDecoder, tokenizer, n: int = 1520, seed: int = EVAL_SEED,  # noqa: ANN001
                      batch_size: int = 100, gradient_strings: int = 50,
                      gradient_lengths: tuple[int, ...] = GRADIENT_LENGTHS) -> dict:
    """Measure a reversal model on held-out strings.

    Exact match: the greedy output (up to </s>) equals the reversed string. Per-character accuracy: the
    share of target positions whose greedy character is right (a missing character counts as wrong).
    Anti-diagonal (attention model): teacher-forcing the reference, the share of output characters t
    whose largest attention weight lies on source position L - 1 - t. Gradient norms: ``gradient_profile``
    over `gradient_strings` strings of each length in `gradient_lengths` (another evaluation seed).

    Returns:
        {"n", "seed", "exact_match", "char_accuracy", "by_bucket": {bucket: {"exact_match", "char_accuracy",
        "n", "anti_diagonal"?}}, "by_length": {length: exact match}, "anti_diagonal" (attention model only),
        "gradient_norms": ``gradient_profile``}.
    """
    check_seed(seed, "eval")
    model.eval()
    sources = sorted(evaluation_strings(n, seed), key=len)  # similar lengths batched together
    exact: dict[int, list[bool]] = {}
    characters: dict[int, list[float]] = {}
    diagonal: dict[int, list[float]] = {}
    for start in range(0, len(sources), batch_size):
        chunk = sources[start:start + batch_size]
        batch = encode_pairs(tokenizer, chunk)
        ids, _ = model.generate(batch["input_ids"], batch["attention_mask"],
                                max_new_tokens=batch["input_ids"].shape[1] + 5)
        outputs = tokenizer.batch_decode(ids, skip_special_tokens=True)
        if model.attention is not None:
            attentions = model(batch["input_ids"], batch["attention_mask"], model.shift_right(batch["labels"])).attentions
        for row, (source, output) in enumerate(zip(chunk, outputs)):
            target, length = source[::-1], len(source)
            exact.setdefault(length, []).append(output == target)
            characters.setdefault(length, []).append(float(letters_right(output, source).mean()))
            if model.attention is not None:  # the characters' steps, teacher-forced
                diagonal.setdefault(length, []).append(anti_diagonal_share(attentions[row].detach().cpu().numpy(),
                                                                           length))

    def pooled(values: dict[int, list[float]], low: int, high: int) -> float:
        # each string weighted by its length for characters; plain mean for exact match
        chosen = [v for length in range(low, high + 1) for v in values.get(length, [])]
        return round(float(np.mean(chosen)), 4)

    def per_character(values: dict[int, list[float]], low: int, high: int) -> float:
        total = sum(v * length for length in range(low, high + 1) for v in values.get(length, []))
        count = sum(length * len(values.get(length, [])) for length in range(low, high + 1))
        return round(total / count, 4)

    by_bucket = {}
    for low, high in LENGTH_BUCKETS:
        entry = {"n": sum(len(exact.get(length, [])) for length in range(low, high + 1)),
                 "exact_match": pooled(exact, low, high), "char_accuracy": per_character(characters, low, high)}
        if diagonal:
            entry["anti_diagonal"] = per_character(diagonal, low, high)
        by_bucket[f"{low}-{high}"] = entry
    result = {
        "n": len(sources), "seed": seed,
        "exact_match": pooled(exact, MIN_LENGTH, MAX_LENGTH),
        "char_accuracy": per_character(characters, MIN_LENGTH, MAX_LENGTH),
        "by_bucket": by_bucket,
        "by_length": {length: round(float(np.mean(values)), 4) for length, values in sorted(exact.items())},
    }
    if diagonal:
        result["anti_diagonal"] = per_character(diagonal, MIN_LENGTH, MAX_LENGTH)
    result["gradient_norms"] = gradient_profile(model, tokenizer, gradient_strings, seed + 1, gradient_lengths)
    return result


def gradient_profile(model: RecurrentEncoderDecoder, tokenizer, strings: int, seed: int,  # noqa: ANN001
                     lengths: tuple[int, ...]) -> dict:
    """Mean gradient norms of the first and the last output character's loss over the source characters.

    For `strings` held-out strings of each length L: the L2 norm of the gradient of the loss at output step
    t (teacher-forced on the reference) with respect to the embedding of each source character j, for
    t = 0 (writes x_{L-1}, the LAST source character) and t = L - 1 (writes x_0, the FIRST).

    Returns:
        {L: {"first_output": [mean norm at j = 0 .. L - 1], "last_output": [...], "strings", "seed"}}.
    """
    check_seed(seed, "eval")
    rng = np.random.default_rng(seed)
    profiles = {}
    for length in lengths:
        first, last = torch.zeros(length), torch.zeros(length)
        for source in random_strings(rng, [length] * strings):
            input_ids = torch.tensor(tokenizer(source)["input_ids"])  # (L + 1,) characters and </s>
            labels = torch.tensor(tokenizer(source[::-1], add_special_tokens=False)["input_ids"])  # (L,)
            first += model.gradient_norms(input_ids, labels[:1])[:length]  # the first output step
            last += model.gradient_norms(input_ids, labels)[:length]  # the last output character
        profiles[length] = {"first_output": [float(f"{v:.4g}") for v in (first / strings).tolist()],
                            "last_output": [float(f"{v:.4g}") for v in (last / strings).tolist()],
                            "strings": strings, "seed": seed}
    return profiles
