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
from pathlib import Path

import numpy as np
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from training.induction import EVAL_SEED, Batch, build_tokenizer, content_ids, evaluate_induction, make_batch
from training.loop import seeded_stream, train_loop, write_summary

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


def next_token_loss(model: LlamaForCausalLM, batch: Batch) -> torch.Tensor:
    """Mean next-token cross-entropy over each sequence's real tokens (padding masked out of attention and loss)."""
    mask = (torch.arange(batch.ids.shape[1])[None, :] < batch.lengths[:, None]).long()  # (B, T)
    return model(input_ids=batch.ids, attention_mask=mask, labels=batch.ids.masked_fill(mask == 0, -100)).loss


def train(steps: int = 4000, seed: int = 0, out: Path = DEFAULT_OUT, batch_size: int = 64, peak_lr: float = 1e-3,
          hidden_size: int = 128, layers: int = 2, heads: int = 4, eval_every: int = 500, threads: int = 1,
          checkpoints: Path | None = None, checkpoint_every: int = 250, stop_after: int | None = None,
          eval_sequences: int = 1000, schedule: str = "cosine") -> dict:
    """Train from scratch (or resume) and save model, tokenizer and heads.json; returns the summary."""
    torch.set_num_threads(threads)
    rng = seeded_stream(seed)
    tokenizer = build_tokenizer()
    words = content_ids(tokenizer)
    model = build_model(tokenizer, hidden_size, layers, heads)
    optimiser = torch.optim.AdamW(model.parameters(), lr=peak_lr, weight_decay=0.01)
    settings = {"steps": steps, "seed": seed, "batch_size": batch_size, "peak_lr": peak_lr,
                "hidden_size": hidden_size, "layers": layers, "heads": heads}
    if schedule != "cosine":
        settings["schedule"] = schedule
    validation = make_batch(np.random.default_rng(VALIDATION_SEED), 256, words, tokenizer.pad_token_id,
                            tokenizer.bos_token_id)

    def next_batch(stream: np.random.Generator) -> Batch:
        return make_batch(stream, batch_size, words, tokenizer.pad_token_id, tokenizer.bos_token_id)

    def evaluate(model: LlamaForCausalLM) -> dict:
        val_loss = next_token_loss(model, validation).item()
        measured = evaluate_induction(model, tokenizer, n_sequences=200, seed=EVAL_SEED + 1)
        return {"val_loss": round(val_loss, 4), "induction": measured["best_induction"]["score"],
                "previous_token": measured["best_previous_token"]["score"],
                "repeat_accuracy": measured["repeat_accuracy"]}

    run = train_loop(model, optimiser, rng, next_batch=next_batch, loss_of=next_token_loss, evaluate=evaluate,
                     settings=settings, steps=steps, peak_lr=peak_lr, schedule=schedule, eval_every=eval_every,
                     checkpoint=None if checkpoints is None else Path(checkpoints) / "induction.pt",
                     checkpoint_every=checkpoint_every, stop_after=stop_after)
    if not run.finished:
        return {"stopped_at": run.step}
    model.eval()
    measured = evaluate_induction(model, tokenizer, n_sequences=eval_sequences, seed=EVAL_SEED)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    command = "python -m training.train_induction (last step) / training.induction.evaluate_induction"
    heads = {"evaluation": {"seed": measured["seed"], "sequences": measured["sequences"], "command": command},
             "induction_head": measured["best_induction"], "previous_token_head": measured["best_previous_token"],
             "repeat_accuracy": measured["repeat_accuracy"], "induction_scores": measured["induction"],
             "previous_token_scores": measured["previous_token"]}
    (out / "heads.json").write_text(json.dumps(heads, indent=2) + "\n")
    return write_summary(out, settings, threads, run.wall_s, model, run.curve, measured)


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
