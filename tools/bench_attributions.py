"""Timings of the embedding attributions against a plain forward pass, on one thread.

    python tools/bench_attributions.py [REPEATS=3]

MiniLM at 128 tokens (target: cosine similarity with a probe sentence) and induction-lm at 60 tokens
(target: the logit of its next-token prediction at the last position). The plain forward is the model as
a user runs it (default attention, inference mode: explain.bench's `_plain`); "forward+backward" is one
forward and one backward from the embeddings at batch 1 (what saliency costs, the unit of the integrated
gradients target). Prints medians in ms and the ratios the issue sets targets for, as JSON.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import models  # noqa: E402
from explain.bench import _WORDS, _plain, text_of_length  # noqa: E402
from explain.methods import gradients  # noqa: E402
from explain.methods.gradients import embedding_gradient, input_x_gradient, integrated_gradients, saliency  # noqa: E402
from explain.methods.occlusion import occlusion  # noqa: E402


def median_ms(function, repeats: int) -> float:  # noqa: ANN001
    function()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), 2)


def minilm_case() -> tuple:
    loaded = models.load("minilm")
    inputs = dict(loaded.tokenizer(text_of_length(loaded.tokenizer, 128), return_tensors="pt"))
    with torch.no_grad():
        probe = loaded.model(**loaded.tokenizer("A dog lay on the rug.", return_tensors="pt")).last_hidden_state.mean(1)
    mask = inputs["attention_mask"].unsqueeze(-1).float()

    def score(outputs) -> torch.Tensor:  # noqa: ANN001
        pooled = (outputs.last_hidden_state * mask).sum(1) / mask.sum(1)
        return torch.nn.functional.cosine_similarity(pooled, probe, dim=-1)

    return loaded, inputs, score


def induction_case(tokens: int = 60) -> tuple:
    loaded = models.load("induction-lm")
    words = " ".join(_WORDS[i % len(_WORDS)] for i in range(tokens))
    ids = torch.tensor([loaded.tokenizer(words)["input_ids"][:tokens]])
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    with torch.no_grad():
        target = int(loaded.model(**inputs).logits[0, -1].argmax())
    return loaded, inputs, lambda outputs: outputs.logits[:, -1, target]


def measure(loaded, inputs, score, repeats: int) -> dict:  # noqa: ANN001
    plain = _plain(loaded)
    tokens = int(inputs["input_ids"].shape[1])

    def forward() -> None:
        with torch.inference_mode():
            plain(**inputs)

    steps_used = []
    original = gradients.path_terms

    def counting(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        steps_used.append(len(args[4]))
        return original(*args, **kwargs)

    gradients.path_terms = counting
    try:
        _, gap = integrated_gradients(loaded, inputs, score)
        nodes = sum(steps_used) - 1  # without the baseline
        ig = median_ms(lambda: integrated_gradients(loaded, inputs, score), repeats)
    finally:
        gradients.path_terms = original
    row = {
        "tokens": tokens,
        "forward_ms": median_ms(forward, max(repeats, 5)),
        "forward_backward_ms": median_ms(lambda: embedding_gradient(loaded, inputs, score), max(repeats, 5)),
        "saliency_ms": median_ms(lambda: saliency(loaded, inputs, score), max(repeats, 5)),
        "input_x_gradient_ms": median_ms(lambda: input_x_gradient(loaded, inputs, score), max(repeats, 5)),
        "integrated_gradients_ms": ig,
        "ig_steps_used": nodes,
        "ig_completeness_gap": round(gap, 5),
        "occlusion_ms": median_ms(lambda: occlusion(loaded, inputs, score), repeats),
    }
    row["saliency_ratio"] = round(row["saliency_ms"] / row["forward_ms"], 2)  # target <= 4
    row["input_x_gradient_ratio"] = round(row["input_x_gradient_ms"] / row["forward_ms"], 2)  # target <= 4
    # target <= 1.5: IG against its steps' forwards-and-backwards (steps used, and the default maximum)
    row["ig_ratio_steps_used"] = round(ig / (nodes * row["forward_backward_ms"]), 3)
    row["ig_ratio_default_steps"] = round(ig / (gradients.DEFAULT_STEPS * row["forward_backward_ms"]), 3)
    row["occlusion_ratio"] = round(row["occlusion_ms"] / (tokens * row["forward_ms"]), 3)  # target <= 1.5
    return row


if __name__ == "__main__":
    torch.set_num_threads(1)
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    result = {"torch_threads": torch.get_num_threads(), "default_steps": gradients.DEFAULT_STEPS,
              "minilm": measure(*minilm_case(), repeats), "induction-lm": measure(*induction_case(), repeats)}
    print(json.dumps(result, indent=2))
