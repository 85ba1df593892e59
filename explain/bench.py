"""`python -m explain bench`: median timings of capture, rollout and gradient rollout against a plain forward.

The plain forward is the model as a user would run it: default attention implementation (SDPA), no
attention output, inference mode. All timings are taken in the same process.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable

import torch

TEXT_LENGTHS = (16, 128, 512)
TARGETS = {"capture_ratio": 1.5, "rollout_ratio": 0.1, "gradient_rollout_ratio": 4.0}
_WORDS = "the cat sat on the mat and the dog lay on the rug while it rained outside".split()


def _median_ms(function: Callable[[], object], repeats: int) -> float:
    function()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), 3)


def text_of_length(tokenizer, tokens: int) -> str:  # noqa: ANN001
    """A sentence that tokenises to exactly `tokens` tokens, [CLS] and [SEP] included."""
    words = [_WORDS[i % len(_WORDS)] for i in range(tokens - 2)]
    text = " ".join(words)
    count = len(tokenizer(text)["input_ids"])
    if count != tokens:
        raise RuntimeError(f"benchmark text has {count} tokens, expected {tokens}")
    return text


def _row(forward: float, capture: float, rollout: float, gradient: float) -> dict[str, float]:
    return {
        "forward_ms": forward,
        "capture_ms": capture,
        "rollout_ms": rollout,
        "gradient_rollout_ms": gradient,
        "capture_ratio": round(capture / forward, 3),
        "rollout_ratio": round(rollout / forward, 3),
        "gradient_rollout_ratio": round(gradient / forward, 3),
    }


def _plain(loaded):  # noqa: ANN001, ANN202
    """The same checkpoint loaded as a user would: default attention implementation."""
    import transformers

    spec = loaded.spec
    if spec.kind == "text":
        loader = transformers.AutoModelForSequenceClassification if spec.classifier else transformers.AutoModel
    else:
        loader = transformers.AutoModelForImageClassification
    return loader.from_pretrained(spec.source, local_files_only=True).eval()


def bench_text(name: str = "minilm", lengths: tuple[int, ...] = TEXT_LENGTHS, repeats: int = 7) -> dict[str, dict]:
    import models
    from explain.capture import capture_text, tokenize
    from explain.rollout import attention_rollout, gradient_rollout

    loaded = models.load(name)
    plain = _plain(loaded)
    results = {}
    for length in lengths:
        text = text_of_length(loaded.tokenizer, length)
        encoding, _ = tokenize(loaded, text)

        def forward() -> None:
            with torch.inference_mode():
                plain(**encoding)

        captured = capture_text(loaded, text)

        def whole_gradient() -> None:
            capture = capture_text(loaded, text, target="A dog lay on the rug.")
            gradient_rollout(capture.attentions, capture.gradients)

        row = _row(
            _median_ms(forward, repeats),
            _median_ms(lambda: capture_text(loaded, text), repeats),
            _median_ms(lambda: attention_rollout(captured.attentions), repeats),
            _median_ms(whole_gradient, repeats),
        )
        results[str(length)] = {"tokens": length, **row}
    return results


def bench_image(name: str, repeats: int = 7) -> dict[str, float]:
    import numpy as np
    from PIL import Image

    import models
    from explain.capture import capture_image
    from explain.rollout import attention_rollout, gradient_rollout

    loaded = models.load(name)
    plain = _plain(loaded)
    height, width = loaded.spec.image_size
    picture = Image.fromarray(np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8))
    pixel_values = loaded.processor(images=picture, return_tensors="pt")["pixel_values"]

    def forward() -> None:
        with torch.inference_mode():
            plain(pixel_values=pixel_values)

    captured = capture_image(loaded, picture)

    def whole_gradient() -> None:
        capture = capture_image(loaded, picture, with_gradients=True)
        gradient_rollout(capture.attentions, capture.gradients)

    return {
        "tokens": len(captured.tokens),
        **_row(
            _median_ms(forward, repeats),
            _median_ms(lambda: capture_image(loaded, picture), repeats),
            _median_ms(lambda: attention_rollout(captured.attentions), repeats),
            _median_ms(whole_gradient, repeats),
        ),
    }


def benchmark(repeats: int = 7) -> dict:
    """Every figure of `python -m explain bench --json`."""
    import models

    result = {
        "torch_threads": torch.get_num_threads(),
        "targets": TARGETS,
        "text": {"minilm": bench_text("minilm", repeats=repeats)},
        "image": {},
    }
    for spec in models.list_models():
        if spec.kind == "image" and spec.bundled:
            result["image"][spec.name] = bench_image(spec.name, repeats=repeats)
    rows = [row for rows in result["text"].values() for row in rows.values()] + list(result["image"].values())
    result["meets_targets"] = all(row[key] <= limit for row in rows for key, limit in TARGETS.items())
    return result
