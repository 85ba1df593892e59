"""Train the bundled encoder-decoder `iso-dates` to rewrite dates in ISO form (CPU).

Usage:
    python -m training.train_dates [--steps N] [--seed S] [--out DIR] [--checkpoints DIR]

A plain Hugging Face ``BartForConditionalGeneration`` (2 encoder and 2 decoder layers, few cross-attention
heads) over the character-level fast tokenizer of ``training.dates``, trained with the translation loss
alone (no attention supervision); the defaults are the committed model's settings. The output directory
loads with nothing but transformers (``AutoModelForSeq2SeqLM`` / ``AutoTokenizer``; ``generate`` works
from its generation config) and holds ``alignment.json``: the held-out evaluation
(``training.dates.evaluate_dates``) naming the cross-attention layer and head that align each output digit
with the source word spelling its field. Checkpoints every ``--checkpoint-every`` steps; started again
with the same arguments, a killed run continues from its last checkpoint.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from transformers import BartConfig, BartForConditionalGeneration

from training.dates import EVAL_SEED, build_tokenizer, encode_batch, evaluate_dates, make_example
from training.loop import seeded_stream, train_loop, write_summary

DEFAULT_OUT = Path("models/bundled/iso-dates")


def build_model(tokenizer, d_model: int = 128, encoder_heads: int = 4, decoder_heads: int = 2,  # noqa: ANN001
                layers: int = 2, dropout: float = 0.1) -> BartForConditionalGeneration:
    config = BartConfig(
        vocab_size=len(tokenizer), d_model=d_model, encoder_layers=layers, decoder_layers=layers,
        encoder_attention_heads=encoder_heads, decoder_attention_heads=decoder_heads,
        encoder_ffn_dim=4 * d_model, decoder_ffn_dim=4 * d_model, max_position_embeddings=64,
        dropout=dropout, attention_dropout=0.0, activation_dropout=0.0,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=tokenizer.bos_token_id,
        forced_bos_token_id=None, forced_eos_token_id=None, scale_embedding=True,
    )
    config._attn_implementation = "eager"
    model = BartForConditionalGeneration(config)
    generation = model.generation_config
    generation.decoder_start_token_id, generation.eos_token_id = tokenizer.bos_token_id, tokenizer.eos_token_id
    generation.pad_token_id, generation.bos_token_id = tokenizer.pad_token_id, tokenizer.bos_token_id
    generation.forced_bos_token_id = generation.forced_eos_token_id = None
    generation.max_new_tokens, generation.num_beams, generation.no_repeat_ngram_size = 16, 1, 0
    return model


def train(steps: int = 6000, seed: int = 0, out: Path = DEFAULT_OUT, batch_size: int = 128, peak_lr: float = 1e-3,
          d_model: int = 128, encoder_heads: int = 4, decoder_heads: int = 2, eval_every: int = 1000, threads: int = 1,
          checkpoints: Path | None = None, checkpoint_every: int = 250, stop_after: int | None = None,
          eval_dates: int = 1000) -> dict:
    """Train from scratch (or resume) and save model, tokenizer and alignment.json; returns the summary."""
    torch.set_num_threads(threads)
    rng = seeded_stream(seed)
    tokenizer = build_tokenizer()
    model = build_model(tokenizer, d_model, encoder_heads, decoder_heads)
    optimiser = torch.optim.AdamW(model.parameters(), lr=peak_lr, weight_decay=0.01)
    settings = {"steps": steps, "seed": seed, "batch_size": batch_size, "peak_lr": peak_lr, "d_model": d_model,
                "encoder_heads": encoder_heads, "decoder_heads": decoder_heads}

    def next_batch(stream: np.random.Generator) -> dict[str, torch.Tensor]:
        return encode_batch(tokenizer, [make_example(stream) for _ in range(batch_size)])

    def translation_loss(model: BartForConditionalGeneration, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return model(**batch).loss  # cross-entropy on the ISO string and its end token, teacher-forced

    def evaluate(model: BartForConditionalGeneration) -> dict:
        measured = evaluate_dates(model, tokenizer, n=240, seed=EVAL_SEED + 1)
        return {"exact_match": round(measured["exact_match"], 4),
                "alignment_layer": measured["alignment"]["best_layer"]["score"],
                "alignment_head": measured["alignment"]["best_head"]["score"]}

    run = train_loop(model, optimiser, rng, next_batch=next_batch, loss_of=translation_loss, evaluate=evaluate,
                     settings=settings, steps=steps, peak_lr=peak_lr, eval_every=eval_every,
                     checkpoint=None if checkpoints is None else Path(checkpoints) / "dates.pt",
                     checkpoint_every=checkpoint_every, stop_after=stop_after)
    if not run.finished:
        return {"stopped_at": run.step}
    measured = evaluate_dates(model, tokenizer, n=eval_dates, seed=EVAL_SEED)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    alignment = {"evaluation": {"seed": measured["seed"], "dates": measured["n"],
                                "command": "training.dates.evaluate_dates (run by python -m training.train_dates)"},
                 "exact_match": measured["exact_match"], **measured["alignment"]}
    (out / "alignment.json").write_text(json.dumps(alignment, indent=2) + "\n")
    return write_summary(out, settings, threads, run.wall_s, model, run.curve, measured)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=0, help="training seed, < 10**6")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--decoder-heads", type=int, default=2, help="heads of each decoder attention (cross included)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--checkpoints", type=Path, default=Path("/tmp/iso-dates-checkpoints"))
    parser.add_argument("--checkpoint-every", type=int, default=250)
    parser.add_argument("--eval-every", type=int, default=1000)
    args = parser.parse_args(argv)
    summary = train(args.steps, args.seed, args.out, batch_size=args.batch_size, peak_lr=args.lr,
                    decoder_heads=args.decoder_heads, threads=args.threads, checkpoints=args.checkpoints,
                    checkpoint_every=args.checkpoint_every, eval_every=args.eval_every)
    evaluation = summary["evaluation"]
    print(json.dumps({"wall_time_s": summary["wall_time_s"], "params": summary["params"],
                      "exact_match": evaluation["exact_match"], "alignment": evaluation["alignment"]}, indent=2))


if __name__ == "__main__":
    main()
