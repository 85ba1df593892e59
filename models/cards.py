"""Model cards of the two bundled language models, written from the JSON their training runs left beside the
weights (training.json, heads.json, alignment.json), so that every figure in a card comes from code.

    python -m models.cards models/bundled/induction-lm models/bundled/iso-dates
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _curve_table(curve: list[dict], columns: dict[str, str]) -> str:
    header = "| step | " + " | ".join(columns.values()) + " | elapsed |\n|---|" + "---|" * len(columns) + "---|\n"
    rows = "".join(f"| {p['step']:,} | " + " | ".join(f"{p[k]:.3f}" if isinstance(p[k], float) else str(p[k])
                                                     for k in columns) + f" | {p['elapsed_s'] / 60:.1f} min |\n" for p in curve)
    return header + rows


def induction_card(directory: Path) -> str:
    training = json.loads((directory / "training.json").read_text())
    heads = json.loads((directory / "heads.json").read_text())
    settings, evaluation = training["settings"], training["evaluation"]
    config = json.loads((directory / "config.json").read_text())
    induction, previous = heads["induction_head"], heads["previous_token_head"]
    return f"""# induction-lm

A small decoder (causal language model) trained **by this project, offline, from random initialisation**, on
sequences of random English words in which a segment appears twice. Predicting the second copy needs the
two-head circuit the lecture notes' "attention as a skip" hints at: a **previous-token head** writes "the word
before me" into each position, and an **induction head** at the second copy's word [A] looks for the earlier
[A] through that and attends to the word that followed it ([A][B] ... [A] -> [B]). It is a plain
`transformers.LlamaForCausalLM`; load it with `AutoModelForCausalLM.from_pretrained(dir,
attn_implementation="eager")` and `AutoTokenizer.from_pretrained(dir)` (a fast word-level tokenizer with
offsets; no project code, no network).

## Heads found (held-out sequences, evaluation seed {heads['evaluation']['seed']}, {heads['evaluation']['sequences']:,} sequences)

| | layer | head | score | target |
|---|---|---|---|---|
| induction head (mean attention from each token of the second copy to the token that followed its first occurrence) | {induction['layer']} | {induction['head']} | **{induction['score']:.3f}** | >= 0.7 |
| previous-token head (mean attention to position t - 1) | {previous['layer']} | {previous['head']} | **{previous['score']:.3f}** | >= 0.7 |
| greedy next-token accuracy on the second copy after its first word | | | **{heads['repeat_accuracy']:.3f}** | >= 0.9 |

Every head's two scores are in `heads.json` (`induction_scores`, `previous_token_scores`, layer x head); the
app marks these heads on the Decoder page and recomputes both scores on any input.

## Data
`models/induction.py`: {len(json.loads((directory / 'tokenizer.json').read_text())['model']['vocab'])} tokens: 4 special
tokens, 5 punctuation marks and readable English words, every word of the lecture notes' example sentences among
them. A sequence is `<bos>` and 20-60 random words; a segment of 4-12 words at a random position appears a second
time later at a random distance (both randomised: with a fixed offset the model could cheat by position). The
loss is the ordinary next-token loss on every position (only the second copy is predictable). Training
sequences come from seed {settings['seed']} (training seeds are < 10**6); evaluation from seeds >= 10**6.

## Architecture
Llama-style: {config['num_hidden_layers']} layers, {config['num_attention_heads']} heads, hidden {config['hidden_size']},
MLP {config['intermediate_size']}, rotary positions (theta {config.get('rope_theta', 10000):g}), {training['params']:,} parameters.

## Training
```
python -m models.train_induction
```
(defaults: `--steps {settings['steps']} --batch-size {settings['batch_size']} --lr {settings['peak_lr']:g} --seed {settings['seed']}`;
AdamW, weight decay 0.01, 5% warm-up then cosine decay, gradient clipping at 1.0; checkpoints every 250 steps,
resumed when started again.) Wall time: {training['wall_time_s'] / 60:.1f} min with {training['threads']} torch thread
on a 2-core machine{training.get('wall_note', '')}.

Held-out curve (200 sequences of seed 20261125 at each point):

{_curve_table(training['curve'], {'val_loss': 'val loss', 'induction': 'induction', 'previous_token': 'previous token', 'repeat_accuracy': 'repeat accuracy'})}
Both heads appear together in a phase change, as Olsson et al. (2022) describe: the loss sits at ln(vocabulary)
while nothing repeats usefully, then falls once the previous-token head and the induction head form.
{training.get('notes', '')}
"""


def dates_card(directory: Path) -> str:
    training = json.loads((directory / "training.json").read_text())
    alignment = json.loads((directory / "alignment.json").read_text())
    settings, evaluation = training["settings"], training["evaluation"]
    config = json.loads((directory / "config.json").read_text())
    formats = "\n".join(f"| {name} | {score:.3f} |" for name, score in evaluation["per_format"].items())
    by_head = "\n".join(f"| {layer} | " + " | ".join(f"{v:.3f}" for v in row) + f" | {alignment['by_layer'][layer]:.3f} |"
                        for layer, row in enumerate(alignment["by_head"]))
    head_columns = " | ".join(f"head {h}" for h in range(len(alignment["by_head"][0])))
    best_head, best_layer = alignment["best_head"], alignment["best_layer"]
    return f"""# iso-dates

A small encoder-decoder trained **by this project, offline, from random initialisation**, to rewrite dates in
ISO form: "Tuesday, the 24th of November 2026", "Nov 24, 2026", "11/24/2026" (slashes: month/day/year),
"24.11.2026" (dots: day.month.year) ... -> "2026-11-24". It is a plain `transformers.BartForConditionalGeneration`;
load it with `AutoModelForSeq2SeqLM.from_pretrained(dir, attn_implementation="eager")` and
`AutoTokenizer.from_pretrained(dir)` (a fast character-level tokenizer with offsets); `generate` works from the
saved generation config.

## Figures ({evaluation['n']:,} held-out dates, evaluation seed {evaluation['seed']}, formats drawn evenly)

| metric | value | target |
|---|---|---|
| greedy exact match | **{evaluation['exact_match']:.3f}** | >= 0.99 |
| cross-attention alignment, best layer (heads averaged): layer {best_layer['layer']} | **{best_layer['score']:.3f}** | >= 0.9 |
| cross-attention alignment, best single head: layer {best_head['layer']}, head {best_head['head']} | **{best_head['score']:.3f}** | >= 0.9 |

Alignment: for each output character of the year, the month and the day, the source token with the largest
cross-attention at the decoder step that writes it (the reference teacher-forced, eager attention) must lie
inside the source word that spells that field ("November", "Nov" of "Nov.", "24th", "11" of "11/24/2026",
"2026"). Per field in the best layer: year {alignment['per_field']['year']:.3f}, month
{alignment['per_field']['month']:.3f}, day {alignment['per_field']['day']:.3f}. By decoder layer and head:

| layer | {head_columns} | heads averaged |
|---|{'---|' * (len(alignment['by_head'][0]) + 1)}
{by_head}

Exact match per format:

| format | exact match |
|---|---|
{formats}

The alignment was learnt from the translation loss alone (no attention supervision).

## Data
`models/dates.py`: {len(evaluation['per_format'])} formats drawn equally often, dates uniform over 1900-01-01 ..
2099-12-31; month names full or abbreviated ("Sept" too, with or without a full stop), any capitalisation,
days with or without st/nd/rd/th, leading zeros or not, the true weekday when one is named, now and then a
doubled space. Characters are tokens (lower-cased by the tokenizer's normaliser; offsets point into the original
text). Training dates come from seed {settings['seed']} (< 10**6), evaluation dates from seeds >= 10**6.

## Architecture
BART: {config['encoder_layers']} encoder and {config['decoder_layers']} decoder layers, d_model {config['d_model']},
{config['encoder_attention_heads']} encoder heads and {config['decoder_attention_heads']} heads per decoder attention
(self and cross), learned positions, dropout {config['dropout']}; {training['params']:,} parameters. Few
cross-attention heads are the design choice for alignment: with many, a head can read a field from a neighbour
that the encoder has already informed, and the largest weight lands off the word.

## Training
```
python -m models.train_dates
```
(defaults: `--steps {settings['steps']} --batch-size {settings['batch_size']} --lr {settings['peak_lr']:g}
--decoder-heads {settings['decoder_heads']} --seed {settings['seed']}`; AdamW, weight decay 0.01, 5% warm-up then
cosine decay, gradient clipping at 1.0, cross-entropy on the ISO string and its end token; checkpoints every 250
steps, resumed when started again.) Wall time: {training['wall_time_s'] / 60:.1f} min with {training['threads']} torch
thread on a 2-core machine{training.get('wall_note', '')}.

Held-out curve (240 dates of seed 20261126 at each point):

{_curve_table(training['curve'], {'train_loss': 'train loss', 'exact_match': 'exact match', 'alignment_layer': 'alignment (layer)', 'alignment_head': 'alignment (head)'})}
{training.get('notes', '')}
"""


def main(argv: list[str] | None = None) -> None:
    for directory in map(Path, argv if argv is not None else sys.argv[1:]):
        card = induction_card(directory) if (directory / "heads.json").is_file() else dates_card(directory)
        (directory / "README.md").write_text(card)
        print(f"wrote {directory / 'README.md'}")


if __name__ == "__main__":
    main()
