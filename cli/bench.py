"""`python -m explain bench`: median timings and peak memory of capture, rollout and gradient rollout
against a plain forward pass.

The plain forward is the model as a user would run it: default attention implementation (SDPA), no
attention output, inference mode. All timings are taken in the same process. Peak memory is the largest
rise of the process's resident memory over its level before the call, sampled every 2 ms in a thread
(the CPU allocator does not report tensors to tracemalloc); on CUDA it is torch's own peak counter.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from typing import Callable

import torch

from models.runtime import release_free_memory

TEXT_LENGTHS = (16, 128, 512)
DECODER_LENGTH = 60
LARGE_DECODER = {"layers": 8, "heads": 16, "hidden": 512, "intermediate": 1376, "vocab": 32000, "tokens": 1024}
TARGETS = {"capture_ratio": 1.5, "rollout_ratio": 0.1, "gradient_rollout_ratio": 4.0}
_WORDS = "the cat sat on the mat and the dog lay on the rug while it rained outside".split()
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _median_ms(function: Callable[[], object], repeats: int) -> float:
    function()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), 3)


def _resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * _PAGE


def peak_memory_mb(function: Callable[[], object]) -> float:
    """Largest rise in memory while `function` runs, in MB (resident memory on the CPU, torch's peak on CUDA)."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        function()
        torch.cuda.synchronize()
        return round((torch.cuda.max_memory_allocated() - before) / 1e6, 1)
    if not os.path.exists("/proc/self/statm"):
        return float("nan")
    release_free_memory()
    before = _resident_bytes()
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _resident_bytes())
            time.sleep(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        function()
    finally:
        done.set()
        sampler.join()
    peak[0] = max(peak[0], _resident_bytes())
    return round((peak[0] - before) / 1e6, 1)


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


def _measure(forward: Callable, capture: Callable, rollout: Callable, whole_gradient: Callable, repeats: int,
             full_capture: Callable | None = None) -> dict:
    """The timing row plus peak memory of capture and of the whole gradient rollout.

    `capture` and `whole_gradient` run as the app runs them (display form: float16 attentions, raw
    gradients not kept); `full_capture`, when given, is the float32 capture of the API and command line.
    """
    row = _row(_median_ms(forward, repeats), _median_ms(capture, repeats), _median_ms(rollout, repeats),
               _median_ms(whole_gradient, repeats))
    if full_capture is not None:
        row["capture_float32_ms"] = _median_ms(full_capture, repeats)
    row["capture_peak_mb"] = peak_memory_mb(capture)
    row["gradient_rollout_peak_mb"] = peak_memory_mb(whole_gradient)
    return row


def _plain(loaded):  # noqa: ANN001, ANN202
    """The same checkpoint loaded as a user would: default attention implementation."""
    import transformers

    from models import model_class

    config = transformers.AutoConfig.from_pretrained(loaded.spec.source, local_files_only=True)
    return model_class(loaded.spec, config).from_pretrained(loaded.spec.source, local_files_only=True).eval().to(loaded.device)


def bench_text(name: str = "minilm", lengths: tuple[int, ...] = TEXT_LENGTHS, repeats: int = 7) -> dict[str, dict]:
    import models
    from explain.encoder import capture_text, tokenize
    from explain.methods import explain_capture
    from explain.rollout import attention_rollout

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

        def whole_gradient() -> None:  # as the app runs it: display form, raw gradients not kept
            explain_capture(capture_text(loaded, text, target="A dog lay on the rug.", display=True), "gradient-rollout")

        row = _measure(forward, lambda: capture_text(loaded, text, display=True),
                       lambda: attention_rollout(captured.attentions), whole_gradient, repeats,
                       full_capture=lambda: capture_text(loaded, text))
        results[str(length)] = {"tokens": length, **row}
    return results


def bench_image(name: str, repeats: int = 7) -> dict[str, float]:
    import numpy as np
    from PIL import Image

    import models
    from explain.methods import explain_capture
    from explain.rollout import attention_rollout
    from explain.vision import capture_image

    loaded = models.load(name)
    plain = _plain(loaded)
    height, width = loaded.spec.image_size
    picture = Image.fromarray(np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8))
    pixel_values = loaded.processor(images=picture, return_tensors="pt")["pixel_values"]

    def forward() -> None:
        with torch.inference_mode():
            plain(pixel_values=pixel_values)

    captured = capture_image(loaded, picture)
    return {
        "tokens": len(captured.tokens),
        **_measure(forward, lambda: capture_image(loaded, picture, display=True),
                   lambda: attention_rollout(captured.attentions),
                   lambda: explain_capture(capture_image(loaded, picture, with_gradients=True, display=True),
                                           "gradient-rollout"),
                   repeats, full_capture=lambda: capture_image(loaded, picture)),
    }


def bench_decoder_model(loaded, plain, token_ids: list[int], repeats: int = 7) -> dict:  # noqa: ANN001
    """Capture, rollout and gradient rollout of a causal LM over `token_ids` (target: the next token)."""
    from explain.decoder import capture_decoder
    from explain.methods import explain_capture
    from explain.rollout import attention_rollout

    ids = torch.tensor([token_ids], device=loaded.device)

    def forward() -> None:
        with torch.inference_mode():
            plain(input_ids=ids)

    captured = capture_decoder(loaded, token_ids)
    row = _measure(forward, lambda: capture_decoder(loaded, token_ids, display=True),
                   lambda: attention_rollout(captured.attentions),
                   lambda: explain_capture(capture_decoder(loaded, token_ids, with_gradients=True, display=True),
                                           "gradient-rollout"),
                   repeats, full_capture=lambda: capture_decoder(loaded, token_ids))
    kept = captured.for_display()
    return {"tokens": len(token_ids), **row, "capture_mb": round(captured.nbytes / 1e6, 1),
            "cached_for_views_mb": round(kept.nbytes / 1e6, 1)}


def bench_decoder(name: str, tokens: int = DECODER_LENGTH, repeats: int = 7) -> dict:
    """A registered or local decoder over `tokens` tokens of a repeated word sequence."""
    import models

    loaded = models.load(name)
    words = " ".join(_WORDS[i % len(_WORDS)] for i in range(tokens))
    token_ids = loaded.tokenizer(words)["input_ids"][:tokens]
    return bench_decoder_model(loaded, _plain(loaded), token_ids, repeats)


def bench_large_decoder(repeats: int = 3, **shape: int) -> dict:
    """A random-weight Llama-architecture model (default 8 layers x 16 heads) at 1,024 tokens: the shape of
    a small modern LM's attention, built from a config (nothing downloaded)."""
    import transformers

    from models import LoadedModel, prepare_for_explanation
    from models.registry import spec_from_config

    size = {**LARGE_DECODER, **shape}
    config = transformers.LlamaConfig(
        hidden_size=size["hidden"], intermediate_size=size["intermediate"], num_hidden_layers=size["layers"],
        num_attention_heads=size["heads"], num_key_value_heads=size["heads"], vocab_size=size["vocab"],
        max_position_embeddings=max(2048, size["tokens"]),
    )
    torch.manual_seed(0)
    config._attn_implementation = "eager"
    model = prepare_for_explanation(transformers.LlamaForCausalLM(config))
    plain_config = transformers.LlamaConfig(**config.to_dict())
    plain_config._attn_implementation = "sdpa"
    plain = transformers.LlamaForCausalLM(plain_config).eval()
    plain.load_state_dict(model.state_dict())

    class _Tokenizer:  # the capture needs only ids, special ids and readable tokens
        all_special_ids: list[int] = []
        unk_token_id = None

        def convert_ids_to_tokens(self, ids):  # noqa: ANN001, ANN202
            return [f"t{i}" for i in ids]

        def decode(self, ids):  # noqa: ANN001, ANN202
            return " ".join(f"t{i}" for i in ids)

    loaded = LoadedModel(spec_from_config("random-llama", "random", config), model, tokenizer=_Tokenizer())
    token_ids = torch.randint(3, size["vocab"], (size["tokens"],), generator=torch.Generator().manual_seed(1)).tolist()
    row = bench_decoder_model(loaded, plain, token_ids, repeats)
    return {"shape": size, **row}


def bench_seq2seq(name: str, source: str = "Tuesday, the 24th of November 2026", repeats: int = 7) -> dict:
    """Capture (teacher-forced on the model's own output), rollout baseline and Chefer et al.'s relevance."""
    import models
    from explain.encoder_decoder import encoder_decoder_rollout
    from explain.methods import explain_capture
    from explain.seq2seq import capture_seq2seq

    loaded = models.load(name)
    plain = _plain(loaded)
    generated = capture_seq2seq(loaded, source)
    output = generated.output_ids
    source_ids = torch.tensor([generated.source_ids], device=loaded.device)
    decoder_ids = torch.tensor([[loaded.model.config.decoder_start_token_id] + output[:-1]], device=loaded.device)

    def forward() -> None:
        with torch.inference_mode():
            plain(input_ids=source_ids, decoder_input_ids=decoder_ids)

    def whole_gradient() -> None:  # Chefer et al.'s relevance of every output token: one backward pass each
        for n in range(len(output)):
            explain_capture(capture_seq2seq(loaded, source, output=output, target=n, display=True), "gradient-rollout")

    row = _measure(
        forward, lambda: capture_seq2seq(loaded, source, output=output),
        lambda: encoder_decoder_rollout(generated.encoder_attentions, generated.decoder_attentions,
                                        generated.cross_attentions), whole_gradient, repeats)
    return {"source_tokens": len(generated.source_ids), "output_tokens": len(output), **row}


METHOD_TOKENS = 128  # the length the methods are timed at (the issue's: MiniLM and the bundled decoder at 128)


def _method_inputs() -> dict[str, tuple]:
    """(loaded, a capture with a target, the plain model's forward) per bundled model, at the methods' length."""
    import numpy as np
    from PIL import Image

    import explain
    import models

    cases = {}
    loaded = models.load("minilm")
    text = text_of_length(loaded.tokenizer, METHOD_TOKENS)
    capture = explain.capture_text(loaded, text, target="A dog lay on the rug.")
    cases["minilm"] = (loaded, capture, _plain(loaded))
    loaded = models.load("induction-lm")
    words = " ".join(_WORDS[i % len(_WORDS)] for i in range(METHOD_TOKENS))
    ids = loaded.tokenizer(words)["input_ids"][:METHOD_TOKENS]
    cases["induction-lm"] = (loaded, explain.capture_decoder(loaded, ids, with_gradients=True), _plain(loaded))
    loaded = models.load("shapes-vit")
    height, width = loaded.spec.image_size
    picture = Image.fromarray(np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8))
    cases["shapes-vit"] = (loaded, explain.capture_image(loaded, picture, with_gradients=True), _plain(loaded))
    loaded = models.load("iso-dates")
    first = explain.capture_seq2seq(loaded, "Tuesday, the 24th of November 2026")
    capture = explain.capture_seq2seq(loaded, first.source_ids, output=first.output_ids, target=3, with_gradients=True)
    cases["iso-dates"] = (loaded, capture, _plain(loaded))
    return cases


def bench_methods(repeats: int = 3) -> dict[str, dict[str, dict]]:
    """Each registered method's time on each bundled model, as a ratio to a plain forward of the same input.

    The fast methods take the median of `repeats` runs, the slow ones (integrated gradients, occlusion, value
    zeroing) one run. Integrated gradients is also given against its own steps x one forward-and-backward
    (`saliency` is exactly one forward and one backward), occlusion and value zeroing against tokens x one forward
    (tokens x layers layer evaluations).
    """
    import explain

    result = {}
    for name, (loaded, capture, plain) in _method_inputs().items():
        inputs = {key: value.to(loaded.device) for key, value in capture.inputs.items()}

        def forward() -> None:
            with torch.inference_mode():
                plain(**inputs)

        forward_ms = _median_ms(forward, max(repeats, 5))
        rows = {"tokens": len(capture.tokens), "forward_ms": forward_ms}
        for method in explain.methods_for(capture, loaded):
            runs = 1 if method.slow else repeats
            explained = {}

            def run(method_name: str = method.name) -> None:
                explained["last"] = explain.explain_capture(capture, method_name, loaded)

            elapsed = _median_ms(run, runs)
            row = {"ms": elapsed, "ratio_to_forward": round(elapsed / forward_ms, 3)}
            if method.name == "integrated-gradients":
                row["completeness_gap"] = round(explained["last"].measures["completeness_gap"], 5)
                row["steps"] = int(explained["last"].measures["steps"])
            rows[method.name] = row
        if "saliency" in rows and "integrated-gradients" in rows:  # saliency: one forward and one backward
            ig = rows["integrated-gradients"]
            ig["ratio_to_steps_forward_backward"] = round(ig["ms"] / (ig["steps"] * rows["saliency"]["ms"]), 3)
        for slow in ("occlusion", "value-zeroing"):
            if slow in rows:
                rows[slow]["ratio_to_tokens_x_forward"] = round(rows[slow]["ms"] / (len(capture.tokens) * forward_ms), 3)
        result[name] = rows
    return result


def benchmark(repeats: int = 7, large: bool = True, methods: bool = True) -> dict:
    """Every figure of `python -m explain bench --json`."""
    import models

    result = {
        "torch_threads": torch.get_num_threads(),
        "targets": TARGETS,
        "text": {"minilm": bench_text("minilm", repeats=repeats)},
        "image": {},
        "decoder": {},
        "seq2seq": {},
    }
    for spec in models.list_models():
        if not spec.bundled:
            continue
        bench = {models.IMAGE: bench_image, models.DECODER: bench_decoder, models.SEQ2SEQ: bench_seq2seq}.get(spec.kind)
        if bench is not None:
            result[spec.kind.name][spec.name] = bench(spec.name, repeats=repeats)
    if large:
        result["decoder"]["random-llama-8x16"] = bench_large_decoder(repeats=max(1, min(repeats, 3)))
    rows = [row for rows in result["text"].values() for row in rows.values()] + list(result["image"].values())
    result["meets_targets"] = all(row[key] <= limit for row in rows for key, limit in TARGETS.items())
    if methods:
        result["methods"] = bench_methods(repeats=max(1, min(repeats, 3)))
    return result
