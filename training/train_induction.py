"""Train the bundled decoder `induction-lm` on repeated random word sequences (CPU).

Usage:
    python -m training.train_induction [--steps N] [--seed S] [--out DIR] [--checkpoints DIR]

A plain Hugging Face ``LlamaForCausalLM`` (rotary positions; 2 layers, 4 heads, hidden 128) with the
word-level fast tokenizer of ``training.induction``; the defaults are the committed model's settings. The
output directory loads with nothing but transformers (``AutoModelForCausalLM`` / ``AutoTokenizer``) and
holds ``heads.json``: the held-out evaluation (``training.induction.evaluate_induction``) that names the
induction and previous-token heads. Checkpoints every ``--checkpoint-every`` steps; started again with
the same arguments, a killed run continues from its last checkpoint.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from training.induction import EVAL_SEED, build_tokenizer, content_ids, evaluate_induction, make_batch
from training.loop import lr_at, resume, save_checkpoint, write_summary
from training.seeds import check_seed

DEFAULT_OUT = Path("models/bundled/induction-lm")
VALIDATION_SEED = 999_998  # training range, never part of the training stream


def build_model(tokenizer, hidden_size: int = 128, layers: int = 2, heads: int = 4) -> LlamaForCausalLM:  # noqa: ANN001
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=4 * hidden_size,
        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=heads,
        max_position_embeddings=128, rope_theta=10000.0, tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    config._attn_implementation = "eager"
    return LlamaForCausalLM(config)


def train(steps: int = 4000, seed: int = 0, out: Path = DEFAULT_OUT, batch_size: int = 64, peak_lr: float = 1e-3,
          hidden_size: int = 128, layers: int = 2, heads: int = 4, eval_every: int = 500, threads: int = 1,
          checkpoints: Path | None = None, checkpoint_every: int = 250, stop_after: int | None = None,
          eval_sequences: int = 1000, schedule: str = "cosine") -> dict:
    """Train from scratch (or resume) and save model, tokenizer and heads.json; returns the summary."""
    check_seed(seed, "train")
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    tokenizer = build_tokenizer()
    words = content_ids(tokenizer)
    model = build_model(tokenizer, hidden_size, layers, heads)
    optimiser = torch.optim.AdamW(model.parameters(), lr=peak_lr, weight_decay=0.01)
    settings = {"steps": steps, "seed": seed, "batch_size": batch_size, "peak_lr": peak_lr,
                "hidden_size": hidden_size, "layers": layers, "heads": heads}
    if schedule != "cosine":
        settings["schedule"] = schedule
    checkpoint = None if checkpoints is None else Path(checkpoints) / "induction.pt"
    first, elapsed, curve = resume(checkpoint, settings, model, optimiser, rng)
    validation = make_batch(np.random.default_rng(VALIDATION_SEED), 256, words, tokenizer.pad_token_id,
                            tokenizer.bos_token_id)
    start = time.time() - elapsed
    warmup = max(steps // 20, 1)
    for step in range(first, steps):
        model.train()
        batch = make_batch(rng, batch_size, words, tokenizer.pad_token_id, tokenizer.bos_token_id)
        mask = (torch.arange(batch.ids.shape[1])[None, :] < batch.lengths[:, None]).long()
        labels = batch.ids.masked_fill(mask == 0, -100)
        for group in optimiser.param_groups:
            group["lr"] = lr_at(step, steps, peak_lr, warmup, schedule)
        loss = model(input_ids=batch.ids, attention_mask=mask, labels=labels).loss
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        done = step + 1
        if done % eval_every == 0 or done == steps:
            model.eval()
            with torch.no_grad():
                vmask = (torch.arange(validation.ids.shape[1])[None, :] < validation.lengths[:, None]).long()
                val_loss = model(input_ids=validation.ids, attention_mask=vmask,
                                 labels=validation.ids.masked_fill(vmask == 0, -100)).loss.item()
            heads = evaluate_induction(model, tokenizer, n_sequences=200, seed=EVAL_SEED + 1)
            point = {"step": done, "train_loss": round(loss.item(), 4), "val_loss": round(val_loss, 4),
                     "induction": heads["best_induction"]["score"], "previous_token": heads["best_previous_token"]["score"],
                     "repeat_accuracy": heads["repeat_accuracy"], "elapsed_s": round(time.time() - start, 1)}
            curve.append(point)
            print(json.dumps(point), flush=True)
        if checkpoint is not None and (done % checkpoint_every == 0 or done == steps or done == stop_after):
            save_checkpoint(checkpoint, settings, model, optimiser, rng, done, time.time() - start, curve)
        if stop_after is not None and stop_after <= done < steps:
            return {"stopped_at": done}
    wall = time.time() - start
    model.eval()
    measured = evaluate_induction(model, tokenizer, n_sequences=eval_sequences, seed=EVAL_SEED)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    heads = {"evaluation": {"seed": measured["seed"], "sequences": measured["sequences"],
                            "command": "python -m training.train_induction (last step) / training.induction.evaluate_induction"},
             "induction_head": measured["best_induction"], "previous_token_head": measured["best_previous_token"],
             "repeat_accuracy": measured["repeat_accuracy"], "induction_scores": measured["induction"],
             "previous_token_scores": measured["previous_token"]}
    (out / "heads.json").write_text(json.dumps(heads, indent=2) + "\n")
    return write_summary(out, settings, threads, wall, model, curve, measured)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=0, help="training seed, < 10**6")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--checkpoints", type=Path, default=Path("/tmp/induction-lm-checkpoints"))
    parser.add_argument("--checkpoint-every", type=int, default=250)
    parser.add_argument("--eval-every", type=int, default=1000)
    parser.add_argument("--schedule", choices=("cosine", "constant"), default="constant",
                        help="learning rate after the warm-up: cosine decay to zero, or constant")
    args = parser.parse_args(argv)
    summary = train(args.steps, args.seed, args.out, batch_size=args.batch_size, peak_lr=args.lr, threads=args.threads,
                    checkpoints=args.checkpoints, checkpoint_every=args.checkpoint_every, eval_every=args.eval_every,
                    schedule=args.schedule)
    print(json.dumps({k: summary[k] for k in ("wall_time_s", "params")} | {"evaluation": {
        k: summary["evaluation"][k] for k in ("best_induction", "best_previous_token", "repeat_accuracy")}}, indent=2))


if __name__ == "__main__":
    main()
