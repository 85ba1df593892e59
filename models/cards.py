"""Model cards of the bundled models this project trains, written from the JSON their training runs left beside
the weights (training.json, heads.json, alignment.json; for shapes-vit also evaluation.json and errors.json; for the
recurrent reversal models reversal.json), so that every figure in a card comes from code.

    python -m models.cards models/bundled/induction-lm models/bundled/iso-dates models/bundled/shapes-vit
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Sequence


def _curve_table(curve: list[dict], columns: dict[str, str]) -> str:
    header = "| step | " + " | ".join(columns.values()) + " | elapsed |\n|---|" + "---|" * len(columns) + "---|\n"
    rows = "".join(f"| {p['step']:,} | " + " | ".join(f"{p[k]:.3f}" if isinstance(p[k], float) else str(p[k])
                                                     for k in columns) + f" | {p['elapsed_s'] / 60:.1f} min |\n" for p in curve)
    return header + rows


def induction_card(directory: Path) -> str:
    training = json.loads((directory / "training.json").read_text())
    heads = json.loads((directory / "heads.json").read_text())
    settings = training["settings"]
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
`training/induction.py`: {len(json.loads((directory / 'tokenizer.json').read_text())['model']['vocab'])} tokens: 4 special
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
python -m training.train_induction
```
(defaults: `--steps {settings['steps']} --batch-size {settings['batch_size']} --lr {settings['peak_lr']:g} --schedule {settings.get('schedule', 'cosine')} --seed {settings['seed']}`;
AdamW, weight decay 0.01, 5% warm-up then a {settings.get('schedule', 'cosine')} learning rate, gradient clipping at 1.0; checkpoints every 250 steps,
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
`training/dates.py`: {len(evaluation['per_format'])} formats drawn equally often, dates uniform over 1900-01-01 ..
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
python -m training.train_dates
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


def vit_card(directory: Path) -> str:
    """The shapes-vit card, from training.json (the run's summary and curve), evaluation.json (`python -m
    explain evaluate --json`), errors.json (the error analysis before and after) and ../samples/samples.json."""
    training = json.loads((directory / "training.json").read_text())
    evaluation = json.loads((directory / "evaluation.json").read_text())
    errors = json.loads((directory / "errors.json").read_text())
    samples = json.loads((directory.parent / "samples" / "samples.json").read_text())["samples"]
    config = json.loads((directory / "config.json").read_text())
    exact = sum(sorted(s["predicted"]) == sorted(s["labels"]) for s in samples)
    classification = evaluation["classification"]
    per_class = ", ".join(f"{name} {value:.3f}" for name, value in classification["per_class_f1"].items())
    pointing = evaluation["pointing_game"]
    faithful = evaluation.get("faithfulness", {})
    size = sum(p.stat().st_size for p in directory.iterdir() if p.is_file()) / 2**20

    def breakdown(name: str) -> str:
        data = errors[name]
        missed = data["missed"]
        sizes = ", ".join(f"{k} {v:.3f}" for k, v in missed["by_size"].items())
        counts = ", ".join(f"{k} {v:.3f}" for k, v in missed["by_count"].items())
        classes = ", ".join(f"{k} {v:.3f}" for k, v in missed["by_class"].items())
        swaps = "; ".join(f"{k}: {v}" for k, v in data["false_alarms"]["digit_swaps"].items())
        return (f"- **{name}** ({data['n_scenes']:,} scenes of seed {data['seed']}, generator {data['generator']}): "
                f"macro F1 {data['macro_f1']:.3f}, exact match {data['exact_match']:.3f}. Objects missed by size "
                f"(area terciles at {data['area_terciles_px'][0]:.0f} and {data['area_terciles_px'][1]:.0f} px): "
                f"{sizes}; by object count: {counts}; by class: {classes}. Digit swaps: {swaps}.")

    rows = "\n".join(f"| {method.replace('_', ' ')} | {values['single']:.3f} | {values['multi']:.3f} | {values['all']:.3f} |"
                     for method, values in pointing.items())
    random = evaluation["random_pointer"]
    faith_rows = "\n".join(
        f"| {method.replace('_', ' ')} | {v['deletion_auc']:.3f} | {v['insertion_auc']:.3f} | {v['pixel_accuracy']:.3f} | "
        f"{v['mean_iou']:.3f} | {v['average_precision']:.3f} |" for method, v in faithful.items())
    curve = _curve_table(training["curve"], {"val_loss": "held-out BCE", "val_macro_f1": "held-out macro F1"})
    return f"""# shapes-vit

A small multi-label Vision Transformer trained **by this project, offline, from random initialisation** on
synthetic scenes from `training/scenes.py`, so that explanations (attention maps, attention rollout, gradient
rollout) can be scored against known object masks. It is a plain `transformers.ViTForImageClassification`; load
it with `ViTForImageClassification.from_pretrained(dir, attn_implementation="eager")` and
`AutoImageProcessor.from_pretrained(dir)` (no project code needed). {size:.1f} MB on disk.

## Figures ({evaluation['n_scenes']:,} held-out scenes, seed {evaluation['seed']}, generator {evaluation['generator_version']}: `python -m explain evaluate --scenes {evaluation['n_scenes']} --no-perturbation --json`, {evaluation['seconds'] / 60:.0f} min)

| metric | value | target |
|---|---|---|
| macro F1 (threshold 0.5) | **{classification['macro_f1']:.3f}** | >= 0.95 |
| lowest per-class F1 | **{min(classification['per_class_f1'].values()):.3f}** | >= 0.9 |
| gradient-rollout pointing game, 2+-object scenes | **{pointing['gradient_rollout']['multi']:.3f}** | >= 0.9 |
| sample scenes predicted exactly (the first 8 of seed {json.loads((directory.parent / 'samples' / 'samples.json').read_text())['seed']}, not picked) | **{exact} of {len(samples)}** | >= 7 |
| exact match | {classification['exact_match']:.3f} | |
| class sensitivity of gradient rollout (random patch) | {evaluation['class_sensitivity']['gradient_rollout']:.3f} ({evaluation['class_sensitivity']['random_pointer']:.3f}) | |

Per-class F1: {per_class}.

Pointing game (top patch inside the object's patch mask grown by one patch), {evaluation['n_objects']['single']:,}
objects in 1-object scenes and {evaluation['n_objects']['multi']:,} in 2+-object scenes:

| method | 1-object | 2+-object | all |
|---|---|---|---|
{rows}
| random patch (expected) | {random['single']:.3f} | {random['multi']:.3f} | {random['all']:.3f} |

Faithfulness and localisation on the first {evaluation.get('faithfulness_scenes', evaluation['n_scenes']):,} of these scenes
(`python -m explain evaluate --scenes {evaluation.get('faithfulness_scenes', evaluation['n_scenes'])} --json`,
{evaluation.get('faithfulness_seconds', 0) / 60:.0f} min; explain.faithfulness; per object, its class's probability;
deletion: lower is better; insertion, pixel accuracy, mean IoU and average precision: higher is better):

| method | deletion AUC | insertion AUC | pixel accuracy | mean IoU | average precision |
|---|---|---|---|---|---|
{faith_rows}

## Where the errors were, before and after (`cli.evaluate.error_breakdown`)
{breakdown('before')}
{breakdown('after')}

The misses of the previous model fell with object size, not with the number of objects: small objects (a 3 or
a 7 a few patches wide) were the problem, so generator 2.0.0 draws radii of 9-14 px instead of 7-12 px (still
1-3 objects with masks, clutter and both digit classes), and the training runs {training['steps'] / 7000:.1f} times
as long as the previous model's 7,000 steps.

## Classes (multi-label, sigmoid outputs)
`circle, square, triangle, star, cross, ring, digit_3, digit_7` (the digits are handwritten glyphs from
scikit-learn's bundled `load_digits`).

## Data
Generator `training/scenes.py`, version {training['generator_version']}: 64x64 RGB, 1-3 objects of different classes
(30% / 40% / 30%), radius 9-14 px, random colour and rotation (digits tilted at most 30 degrees), textured noisy
background, clutter lines and blobs. Training scenes are generated on the fly from seed {training['seed']}
(< 10**6); the held-out batch during training is 512 scenes of seed 999999; evaluation seeds are >= 10**6.

## Architecture
ViT, 64x64 input, 8x8 patches (8x8 grid + [CLS] = 65 tokens), {config['num_hidden_layers']} layers,
{config['num_attention_heads']} heads, hidden {config['hidden_size']}, MLP {config['intermediate_size']}, no dropout,
{training['params'] / 1e6:.2f} M parameters.

## Training
```
python -m training.train_vit
```
(the defaults are this model's settings: {training['steps']:,} steps of {training['batch_size']} scenes, seed {training['seed']},
peak lr 1e-3 with 5% warm-up and cosine decay, AdamW (weight decay 0.05 on matrices), mimetic attention
initialisation with 2-D sine-cosine position codes as the position embeddings' start, token labelling (every
patch token also trained, through the same classifier head, on the classes of the objects covering it);
checkpoints every 500 steps, resumed when started again.) Wall time {training['wall_time_s'] / 60:.0f} min on a
2-core machine{training.get('wall_note', '')}.

Held-out curve (512 scenes of seed 999999):

{curve}
{training.get('notes', '')}
"""


def length_groups(by_length: dict[int, float], width: int = 5) -> list[tuple[str, float]]:
    """Exact match by input length pooled over groups of `width` lengths (5-9, 10-14, ..., 80)."""
    first, last = min(by_length), max(by_length)
    groups: dict[str, list[float]] = {}
    for length in sorted(by_length):
        low = first + (length - first) // width * width
        name = f"{low}-{min(low + width - 1, last)}" if low != last else str(low)
        groups.setdefault(name, []).append(by_length[length])
    return [(name, sum(values) / len(values)) for name, values in groups.items()]


def centred_mean(values: Sequence[float], window: int = 5) -> list[float]:
    """Each value averaged with its neighbours, `window` values centred on it (fewer at the ends)."""
    half = window // 2
    return [sum(values[max(i - half, 0):i + half + 1]) / len(values[max(i - half, 0):i + half + 1])
            for i in range(len(values))]


def smoothed(by_length: dict[int, float], window: int = 5) -> dict[int, float]:
    """Exact match by length, each length averaged with its neighbours (centred_mean over the sorted lengths)."""
    lengths = sorted(by_length)
    return dict(zip(lengths, centred_mean([by_length[k] for k in lengths], window)))


def first_drop(by_length: dict[int, float], threshold: float, window: int = 5) -> int | None:
    """The first input length whose exact match, averaged over the `window` lengths centred on it (fewer at the
    ends), is below `threshold`; None when it never is."""
    return next((length for length, mean in smoothed(by_length, window).items() if mean < threshold), None)


def _gradient_table(profiles: dict) -> str:
    """One row per length and output step (first, last): the mean norm at the source position the step writes,
    the largest norm and where it is, their ratio, and the norms at five positions."""
    rows = []
    for length, profile in profiles.items():
        length = int(length)
        samples = sorted({0, length // 4, length // 2, 3 * length // 4, length - 1})
        for step, needed in (("first_output", length - 1), ("last_output", 0)):
            norms = profile[step]
            largest = max(range(length), key=norms.__getitem__)
            rows.append(
                f"| {length} | {'first (t = 0)' if needed else f'last (t = {length - 1})'} | {needed} | "
                f"{norms[needed]:.3g} | {norms[largest]:.3g} (j = {largest}) | **{norms[needed] / norms[largest]:.3g}** | "
                + ", ".join(f"{norms[j]:.2g}" for j in samples) + f" (j = {', '.join(map(str, samples))}) |")
    return ("| length | output step | needed position | norm there | largest norm | needed / largest | "
            "norms at five positions |\n|---|---|---|---|---|---|---|\n" + "\n".join(rows))


DIRECTION_NOTES = {
    "backward": """The encoder reads right to left, in both models: each encoder state h_j holds x_j and, fading, the letters
after it, never the letters before it, so the letter the decoder writes is freshest in one state only, and
attention lands on it. With a forward or bidirectional encoder h_{j+1} holds x_j too, and in this project's
prototypes the attention model learnt to look one letter to the right of the one it wrote, or to spread its weight
over both. For the plain model this order is the harder one: it must write first the letter it read first
(Sutskever et al., 2014, reversed their source sentences so that the first words to write were the last read).
""",
    "forward": "The encoder reads left to right.\n",
    "bidirectional": "The encoder reads both ways (Bahdanau et al., 2015); h_j is the two directions' states concatenated.\n",
}


def recurrent_card(directory: Path) -> str:
    """The card of `reverse-gru` or `reverse-gru-attn`, from training.json (settings, wall time, curve),
    reversal.json (``training.reversal.evaluate_reversal``) and config.json."""
    directory = Path(directory)
    training = json.loads((directory / "training.json").read_text())
    evaluation = json.loads((directory / "reversal.json").read_text())
    config = json.loads((directory / "config.json").read_text())
    settings = training["settings"]
    attention = config["model_type"] == "reverse-gru-attn"
    name = config["model_type"]
    sibling = "reverse-gru" if attention else "reverse-gru-attn"
    buckets = evaluation["by_bucket"]
    by_length = {int(length): value for length, value in evaluation["by_length"].items()}  # JSON keys are strings
    bucket_rows = "\n".join(
        f"| {bucket} | {values['n']} | **{values['exact_match']:.3f}** | {values['char_accuracy']:.3f} |"
        + (f" {values['anti_diagonal']:.3f} |" if attention else "") for bucket, values in buckets.items())
    diagonal_header = " anti-diagonal argmax |" if attention else ""
    group_rows = "\n".join(f"| {group} | {value:.3f} |" for group, value in length_groups(by_length))
    drop_90, drop_50 = first_drop(by_length, 0.9), first_drop(by_length, 0.5)
    strings_per_length = evaluation["n"] // len(by_length)

    def drop(length: int | None, threshold: float) -> str:
        return (f"stays >= {threshold} at every length" if length is None else
                f"first falls below {threshold} at length **{length}**")
    target = (f"The target of this model: exact match >= 0.9 at lengths 60-80; measured "
              f"**{buckets['60-80']['exact_match']:.3f}**." if attention else
              "This model is the baseline of the lesson: it is expected to fail on long strings.")
    gradient_strings = next(iter(evaluation["gradient_norms"].values()))["strings"]
    gradient_seed = next(iter(evaluation["gradient_norms"].values()))["seed"]
    reading = {"backward": "right to left, so x_j is read j steps before the encoder's final state",
               "forward": "left to right, so x_j is read L - 1 - j steps before the encoder's final state",
               "bidirectional": "both ways"}[config["encoder_direction"]]
    final_state = {"backward": "the state after reading the first letter, the encoder's last step",
                   "forward": "the state after reading </s>, the encoder's last step",
                   "bidirectional": "the forward GRU's last state and the backward GRU's first, concatenated",
                   }[config["encoder_direction"]]
    context = ("Bahdanau's additive attention: at each output step t the decoder state s_{t-1} scores every encoder "
               "state, score_tj = v^T tanh(W_s s_{t-1} + W_h h_j), the softmax over the source positions gives the "
               "weights a_tj, and the context c_t = sum_j a_tj h_j is concatenated to the decoder input "
               f"(attention size {config['attention_size']})" if attention else
               f"the final encoder state only ({final_state}), the same context at every output step; the decoder's "
               "first state is computed from it too. Everything the decoder knows about the source passes through "
               f"this one vector of {config['hidden_size'] * (2 if config['encoder_direction'] == 'bidirectional' else 1)} "
               "numbers")
    diagonal_text = ""
    if attention:
        diagonal_text = f"""
Alignment: teacher-forcing the reference, the share of output characters t whose largest attention weight lies
on source position L - 1 - t (the anti-diagonal of the output x input matrix) is
**{evaluation['anti_diagonal']:.3f}** over all {evaluation['n']:,} strings (per length bucket in the table above).
The alignment was learnt from the reversal loss alone (no attention supervision).
"""
    curve_columns = {"train_loss": "train loss", "exact_match": "exact match", "exact_5-19": "5-19",
                     "exact_20-39": "20-39", "exact_40-59": "40-59", "exact_60-80": "60-80"}
    if attention:
        curve_columns["anti_diagonal"] = "anti-diagonal"
    return f"""# {name}

A small recurrent encoder-decoder trained **by this project, offline, from random initialisation**, to reverse a
string of lower-case letters ("attention" -> "noitnetta"). Its sibling `{sibling}` has every size, the data and the
optimiser in common (the number of steps of each is below); the two differ only in what the decoder sees of the
source. This one sees {context}.
Plain PyTorch modules (`models/recurrent.py`; transformers has no such architecture): load with
`models.recurrent.load_recurrent(dir)` -> (model, tokenizer, config); the tokenizer is a fast character-level
tokenizer (`PreTrainedTokenizerFast.from_pretrained(dir)`).

## Figures ({evaluation['n']:,} held-out strings, evaluation seed {evaluation['seed']}, every length 5-80 equally often)

| input length | strings | greedy exact match | per-character accuracy |{diagonal_header}
|---|---|---|---|{'---|' if attention else ''}
{bucket_rows}
| all | {evaluation['n']} | **{evaluation['exact_match']:.3f}** | {evaluation['char_accuracy']:.3f} |{f" {evaluation['anti_diagonal']:.3f} |" if attention else ''}

{target} Exact match (each length averaged with its two neighbours on either side, {5 * strings_per_length} strings)
{drop(drop_90, 0.9)} and {drop(drop_50, 0.5)}; every length's own figure is in `reversal.json` (`by_length`,
{strings_per_length} strings each).
Per-character accuracy counts the target positions whose greedy character is right (a missing character is wrong).
{diagonal_text}
Exact match by input length (grouped by 5 lengths):

| input length | exact match |
|---|---|
{group_rows}

## The vanishing gradient, measured
The L2 norm of the gradient of the loss at one output step (teacher-forced on the reference) with respect to the
embedding of each source character j, averaged over {gradient_strings} held-out strings of each length L (seed
{gradient_seed}). The first output step (t = 0) must write the LAST source character (j = L - 1), the last output step
(t = L - 1) the FIRST (j = 0). The encoder reads {reading}.

Trained:

{_gradient_table(evaluation['gradient_norms'])}

As initialised, before training (the same seed, the same strings):

{_gradient_table(evaluation['gradient_norms_at_init'])}

Every value is in `reversal.json` (`gradient_norms` and `gradient_norms_at_init`: `first_output` and
`last_output`, one mean norm per source position j).

## Data
`training/reversal.py`: letters uniform over a-z, lengths 5-80; a training batch draws one bucket of 4 consecutive
lengths and each string's length uniformly inside it (every length equally often over the run, little padding).
The source is the letters and </s>; the target is the reversed letters and </s>. Training strings come from seed
{settings['seed']} (< 10**6), evaluation strings from seeds >= 10**6.

## Architecture
Embedding {config['embedding_size']} (shared by source and target), {config['encoder_direction']} GRU
encoder with {config['hidden_size']} units{' per direction' if config['encoder_direction'] == 'bidirectional' else ''}, GRU decoder with {config['decoder_size']} units whose input is the
previous character's embedding concatenated with the context, readout Linear([s_t; c_t; embedding]) -> {config['vocab_size']} tokens;
{training['params']:,} parameters.
{DIRECTION_NOTES[config['encoder_direction']]}
## Training
```
python -m training.train_reverse --model {name} --steps {settings['steps']} --batch-size {settings['batch_size']} \\
    --lr {settings['peak_lr']:g} --seed {settings['seed']} --embedding-size {settings['embedding_size']} \\
    --hidden-size {settings['hidden_size']} --decoder-size {settings['decoder_size']} \\
    --attention-size {settings['attention_size']} --encoder-direction {settings['encoder_direction']}
```
(Adam, 5% warm-up then cosine decay, gradient clipping at 1.0, teacher forcing, cross-entropy on the reversed
string and its </s>; checkpoints every 100 steps, resumed when started again.) Wall time
{training['wall_time_s'] / 60:.1f} min, CPU time {training['cpu_time_s'] / 60:.1f} min, with {training['threads']} torch
thread on a 2-core machine shared with other jobs{training.get('wall_note', '')}.

Held-out curve (304 strings of seed {evaluation['seed'] + 2} at each point; exact match by input length):

{_curve_table(training['curve'], curve_columns)}
{training.get('notes', '')}
"""


def main(argv: list[str] | None = None) -> None:
    for directory in map(Path, argv if argv is not None else sys.argv[1:]):
        if (directory / "reversal.json").is_file():
            card = recurrent_card(directory)
        elif (directory / "evaluation.json").is_file():
            card = vit_card(directory)
        elif (directory / "heads.json").is_file():
            card = induction_card(directory)
        else:
            card = dates_card(directory)
        (directory / "README.md").write_text(card)
        print(f"wrote {directory / 'README.md'}")


if __name__ == "__main__":
    main()
