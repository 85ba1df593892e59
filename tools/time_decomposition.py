"""Time ALTI and value zeroing against a plain forward pass, one thread, interleaved rounds.

    python tools/time_decomposition.py [ROUNDS=15]

MiniLM at 128 tokens and the bundled induction LM at 60 tokens (the texts of `explain.bench`). Each round
runs every function once, so that load from other processes hits them alike; ratios are medians of the
per-round ratios. "plain" is the model as a user runs it (as in `explain.bench`: default attention,
inference mode); "eager" the explained model (eager attention); "layer_evals" every layer once at batch 1 on its
recorded input, the unit of value zeroing's budget (tokens x layers such evaluations). Prints JSON.
"""

import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

import models
from explain.bench import text_of_length
from explain.internals import recording_calls, self_attention_layers
from explain.methods.alti import alti_layers
from explain.methods.value_zeroing import value_zeroing_layers

WORDS = ["the", "cat", "sat", "on", "the", "mat", "and", "the", "dog", "lay", "on", "the", "rug", "while", "it",
         "rained", "outside"]  # the words of explain.bench's decoder text


def plain_model(loaded, loader):  # noqa: ANN001, ANN201
    """The same checkpoint as a user loads it: default attention implementation."""
    return loader.from_pretrained(loaded.spec.source, local_files_only=True).eval()


def milliseconds(function) -> float:  # noqa: ANN001
    start = time.perf_counter()
    function()
    return (time.perf_counter() - start) * 1000


def row(name: str, loader, inputs: dict, rounds: int, zeroing_every: int) -> dict:  # noqa: ANN001
    from transformers.cache_utils import Cache

    loaded = models.load(name, allow_download=False)
    plain = plain_model(loaded, loader)
    tokens = inputs["input_ids"].shape[1]
    stack = self_attention_layers(loaded, "Timing")
    with torch.no_grad(), recording_calls({index: layer for index, (_, layer) in enumerate(stack)}) as calls:
        loaded.model(**inputs)

    def no_cache(value):  # noqa: ANN001, ANN202
        return None if isinstance(value, Cache) else value

    def plain_forward() -> None:
        with torch.inference_mode():
            plain(**inputs)

    def eager_forward() -> None:
        with torch.no_grad():
            loaded.model(**inputs)

    def layer_evals() -> None:
        with torch.no_grad():
            for index, (_, layer) in enumerate(stack):
                call = calls[index]
                layer(*map(no_cache, call.args), **{key: no_cache(value) for key, value in call.kwargs.items()})

    functions = {"plain": plain_forward, "eager": eager_forward, "alti": lambda: alti_layers(loaded, inputs),
                 "layer_evals": layer_evals}
    for function in functions.values():
        function()  # warm-up
    times: dict[str, list[float]] = {key: [] for key in [*functions, "value_zeroing", "layer_evals_beside"]}
    for number in range(rounds):
        for key, function in functions.items():
            times[key].append(milliseconds(function))
        if number % zeroing_every == 0:
            times["value_zeroing"].append(milliseconds(lambda: value_zeroing_layers(loaded, inputs)))
            times["layer_evals_beside"].append(times["layer_evals"][-1])

    def ratio(a: str, b: str) -> float:
        return round(statistics.median(x / y for x, y in zip(times[a], times[b])), 2)

    budget = statistics.median(v / (tokens * e) for v, e in zip(times["value_zeroing"], times["layer_evals_beside"]))
    return {
        "tokens": tokens,
        "median_ms": {key: round(statistics.median(values), 1) for key, values in times.items() if values},
        "alti_over_plain": ratio("alti", "plain"),
        "alti_over_eager": ratio("alti", "eager"),
        "value_zeroing_over_tokens_x_layers_layer_evals": round(budget, 2),
    }


def main() -> None:
    import transformers

    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    torch.set_num_threads(1)
    minilm = models.load("minilm", allow_download=False)
    encoding = minilm.tokenizer(text_of_length(minilm.tokenizer, 128), return_tensors="pt")
    result = {"threads": torch.get_num_threads(), "minilm": row(
        "minilm", transformers.AutoModel,
        {"input_ids": encoding["input_ids"], "attention_mask": encoding["attention_mask"]}, rounds, 5)}
    induction = models.load("induction-lm", allow_download=False)
    words = " ".join(WORDS[i % len(WORDS)] for i in range(60))
    ids = torch.tensor([induction.tokenizer(words)["input_ids"][:60]])
    result["induction-lm"] = row("induction-lm", transformers.AutoModelForCausalLM,
                                 {"input_ids": ids, "attention_mask": torch.ones_like(ids)}, rounds, 3)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
