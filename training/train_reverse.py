"""Train the bundled recurrent encoder-decoders `reverse-gru` and `reverse-gru-attn` to reverse strings (CPU).

Usage:
    python -m training.train_reverse --model reverse-gru|reverse-gru-attn [--steps N] [--seed S] [--out DIR]
        [--checkpoints DIR] [--checkpoint-every N] [--threads N]

The two models (``models.recurrent``) share every size and setting but the number of steps; they differ only
in the decoder's context: the final encoder state (``reverse-gru``) or Bahdanau's additive attention over the encoder states
(``reverse-gru-attn``). Random lower-case strings of 5 to 80 letters (``training.reversal``), teacher
forcing, cross-entropy on the reversed string and its </s>, Adam with 5% warm-up and cosine decay, gradient
clipping; the defaults are the committed models' settings. The output directory holds config.json,
model.safetensors and the tokenizer (``models.recurrent.load_recurrent``), training.json (settings, wall
time, held-out curve), reversal.json (``training.reversal.evaluate_reversal`` on held-out strings, and the
gradient profile of the model as initialised, before training) and the model card README.md rendered from them
(``models.cards``). Checkpoints every ``--checkpoint-every`` steps; started again with the same arguments, a
killed run continues from its last checkpoint, and a finished one writes its outputs again (a resumed run's
training.json counts only the last process's CPU time).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from models.cards import recurrent_card
from models.recurrent import (
    DIRECTIONS,
    MODEL_TYPES,
    RecurrentEncoderDecoder,
    build_recurrent,
    build_tokenizer,
    config_for,
    save_recurrent,
)
from training.loop import seeded_stream, train_loop, write_summary
from training.reversal import (
    EVAL_SEED,
    GRADIENT_LENGTHS,
    evaluate_reversal,
    gradient_profile,
    training_batch,
)

BUNDLED = Path("models/bundled")
# The committed models' steps: the plain model is cheaper per step and was given more of them (both runs took
# 10-12 CPU minutes).
DEFAULT_STEPS = {"reverse-gru": 4500, "reverse-gru-attn": 2000}


def train(model_type: str, steps: int | None = None, seed: int = 0, out: Path | None = None, batch_size: int = 64,
          peak_lr: float = 2e-3, embedding_size: int = 32, hidden_size: int = 128, decoder_size: int = 128,
          attention_size: int = 64, encoder_direction: str = "backward", eval_every: int = 250, threads: int = 1,
          checkpoints: Path | None = None, checkpoint_every: int = 100, stop_after: int | None = None, eval_strings: int = 1520,
          gradient_strings: int = 50) -> dict:
    """Train from scratch (or resume), then save the model and its evaluation; returns the summary.

    Returns:
        The summary written to training.json, or {"stopped_at": step} when stopped early by `stop_after`.
    """
    if model_type not in MODEL_TYPES:
        raise ValueError(f"Unknown model '{model_type}': choose one of {', '.join(MODEL_TYPES)}.")
    steps = DEFAULT_STEPS[model_type] if steps is None else steps
    torch.set_num_threads(threads)
    rng = seeded_stream(seed)
    tokenizer = build_tokenizer()
    sizes = {"embedding_size": embedding_size, "hidden_size": hidden_size, "decoder_size": decoder_size,
             "attention_size": attention_size, "encoder_direction": encoder_direction}
    model = build_recurrent(config_for(model_type, tokenizer, **sizes))
    optimiser = torch.optim.Adam(model.parameters(), lr=peak_lr)
    settings = {"model": model_type, "steps": steps, "seed": seed, "batch_size": batch_size, "peak_lr": peak_lr,
                **sizes}

    def next_batch(stream: np.random.Generator) -> dict[str, torch.Tensor]:
        return training_batch(stream, tokenizer, batch_size)

    def reversal_loss(model: RecurrentEncoderDecoder, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return model.loss(batch["input_ids"], batch["attention_mask"], batch["labels"])

    def evaluate(model: RecurrentEncoderDecoder) -> dict:
        measured = evaluate_reversal(model, tokenizer, n=304, seed=EVAL_SEED + 2, gradient_strings=0,
                                     gradient_lengths=())
        point = {"exact_match": measured["exact_match"], "char_accuracy": measured["char_accuracy"]}
        point.update({f"exact_{name}": bucket["exact_match"] for name, bucket in measured["by_bucket"].items()})
        if "anti_diagonal" in measured:
            point["anti_diagonal"] = measured["anti_diagonal"]
        return point

    # the gradient profile of the freshly initialised model (train_loop loads a checkpoint, if any, after this)
    at_init = gradient_profile(model, tokenizer, gradient_strings, EVAL_SEED + 1, GRADIENT_LENGTHS)
    run = train_loop(model, optimiser, rng, next_batch=next_batch, loss_of=reversal_loss, evaluate=evaluate,
                     settings=settings, steps=steps, peak_lr=peak_lr, eval_every=eval_every,
                     checkpoint=None if checkpoints is None else Path(checkpoints) / f"{model_type}.pt",
                     checkpoint_every=checkpoint_every, stop_after=stop_after)
    if not run.finished:
        return {"stopped_at": run.step}
    measured = evaluate_reversal(model, tokenizer, n=eval_strings, seed=EVAL_SEED, gradient_strings=gradient_strings)
    measured["gradient_norms_at_init"] = at_init
    out = BUNDLED / model_type if out is None else Path(out)
    save_recurrent(model, tokenizer, out)
    (out / "reversal.json").write_text(json.dumps(
        {"command": "training.reversal.evaluate_reversal (run by python -m training.train_reverse)", **measured},
        indent=2) + "\n")
    summary = write_summary(out, settings, threads, run.wall_s, model, run.curve, measured)
    (out / "README.md").write_text(recurrent_card(out))
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=MODEL_TYPES, required=True)
    parser.add_argument("--steps", type=int, default=None, help="default: 4500 (reverse-gru), 2000 (reverse-gru-attn)")
    parser.add_argument("--seed", type=int, default=0, help="training seed, < 10**6")
    parser.add_argument("--out", type=Path, default=None, help="default: models/bundled/<model>")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--embedding-size", type=int, default=32)
    parser.add_argument("--hidden-size", type=int, default=128, help="encoder GRU state (per direction)")
    parser.add_argument("--encoder-direction", choices=DIRECTIONS, default="backward")
    parser.add_argument("--decoder-size", type=int, default=128)
    parser.add_argument("--attention-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--checkpoints", type=Path, default=None, help="default: /tmp/<model>-checkpoints")
    parser.add_argument("--checkpoint-every", type=int, default=100)
    parser.add_argument("--eval-every", type=int, default=250)
    args = parser.parse_args(argv)
    checkpoints = args.checkpoints or Path(f"/tmp/{args.model}-checkpoints")
    summary = train(args.model, args.steps, args.seed, args.out, batch_size=args.batch_size, peak_lr=args.lr,
                    embedding_size=args.embedding_size, hidden_size=args.hidden_size,
                    decoder_size=args.decoder_size, attention_size=args.attention_size,
                    encoder_direction=args.encoder_direction, threads=args.threads,
                    checkpoints=checkpoints, checkpoint_every=args.checkpoint_every, eval_every=args.eval_every)
    evaluation = summary["evaluation"]
    print(json.dumps({"wall_time_s": summary["wall_time_s"], "params": summary["params"],
                      "exact_match": evaluation["exact_match"], "by_bucket": evaluation["by_bucket"],
                      "anti_diagonal": evaluation.get("anti_diagonal")}, indent=2))


if __name__ == "__main__":
    main()
