"""The bundled encoder-decoder's world: dates spelled many ways, rewritten in ISO form.

"24 November 2026", "Nov 24, 2026", "11/24/2026" (slashes: month/day/year), "24.11.2026" (dots:
day.month.year), "Tuesday, the 24th of November 2026", "24-Nov-2026" ... -> "2026-11-24". Month names
full or abbreviated ("Sept" too, with or without a full stop), any capitalisation, days with or without
st/nd/rd/th, leading zeros or not, the true weekday when one is named, years 1900-2099, now and then a
doubled space. Every format is drawn equally often.

The tokenizer reads characters (lower-cased; offsets still point into the original text), so every
character of the source is a token: the cross-attention of the decoder step that writes a digit of the
month, day or year can be checked against the characters of the source word that spells that field.

Seeds: training < 10**6, evaluation >= 10**6 (training.seeds.check_seed).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from models.characters import character_tokenizer
from training.seeds import check_seed

EVAL_SEED = 20261125
MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
CHARACTERS = tuple("abcdefghijklmnopqrstuvwxyz0123456789 ,./-'")
FIRST_DAY, LAST_DAY = dt.date(1900, 1, 1), dt.date(2099, 12, 31)
FIELDS = ("year", "month", "day")
# Where each field sits in the ISO output "YYYY-MM-DD".
OUTPUT_FIELDS = {0: "year", 1: "year", 2: "year", 3: "year", 5: "month", 6: "month", 8: "day", 9: "day"}


@dataclass(frozen=True)
class Example:
    """A spelled date, its ISO form, and where each field is spelled in the source.

    Attributes:
        source: the text, e.g. "Tuesday, the 24th of November 2026".
        target: "2026-11-24".
        spans: field -> (start, stop) character range of the source WORD that spells it ("24th",
            "November", "Nov" without its full stop, "11" inside "11/24/2026").
        format: the format's name.
    """

    source: str
    target: str
    spans: dict[str, tuple[int, int]]
    format: str


def _ordinal(day: int) -> str:
    if 11 <= day % 100 <= 13:
        return f"{day}th"
    return f"{day}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(day % 10, 'th') }".replace(" ", "")


def _month_name(rng: np.random.Generator, month: int) -> str:
    full = MONTHS[month - 1]
    choice = rng.integers(3)
    if choice == 0 or len(full) <= 4:
        return full
    short = "sept" if month == 9 and rng.integers(2) else full[:3]
    return short + ("." if choice == 2 else "")


def _number(rng: np.random.Generator, value: int) -> str:
    return f"{value:02d}" if value < 10 and rng.integers(2) else str(value)


def _day_word(rng: np.random.Generator, day: int) -> str:
    return _ordinal(day) if rng.integers(2) else str(day)


def _weekday(rng: np.random.Generator, date: dt.date) -> str:
    name = WEEKDAYS[date.weekday()]
    return name if rng.integers(2) else name[:3]


# Each format writes pieces: (text, field or None). Fields mark the words the alignment is checked on.
Piece = tuple[str, str | None]
FORMATS: dict[str, Callable[[np.random.Generator, dt.date], list[Piece]]] = {
    "D Month YYYY": lambda r, d: [(_day_word(r, d.day), "day"), (" ", None), (_month_name(r, d.month), "month"),
                                  (" ", None), (str(d.year), "year")],
    "Month D, YYYY": lambda r, d: [(_month_name(r, d.month), "month"), (" ", None), (_day_word(r, d.day), "day"),
                                   (", ", None), (str(d.year), "year")],
    "M/D/YYYY": lambda r, d: [(_number(r, d.month), "month"), ("/", None), (_number(r, d.day), "day"), ("/", None),
                              (str(d.year), "year")],
    "D.M.YYYY": lambda r, d: [(_number(r, d.day), "day"), (".", None), (_number(r, d.month), "month"), (".", None),
                              (str(d.year), "year")],
    "Weekday, the Dth of Month YYYY": lambda r, d: [(_weekday(r, d), None), (", the ", None),
                                                    (_ordinal(d.day), "day"), (" of ", None),
                                                    (_month_name(r, d.month), "month"), (" ", None),
                                                    (str(d.year), "year")],
    "the Dth of Month, YYYY": lambda r, d: [("the ", None), (_ordinal(d.day), "day"), (" of ", None),
                                            (_month_name(r, d.month), "month"), (", ", None), (str(d.year), "year")],
    "D-Mon-YYYY": lambda r, d: [(_number(r, d.day), "day"), ("-", None), (MONTHS[d.month - 1][:3], "month"),
                                ("-", None), (str(d.year), "year")],
    "Weekday, D Month YYYY": lambda r, d: [(_weekday(r, d), None), (", ", None), (_day_word(r, d.day), "day"),
                                           (" ", None), (_month_name(r, d.month), "month"), (" ", None),
                                           (str(d.year), "year")],
    "Weekday, Month D, YYYY": lambda r, d: [(_weekday(r, d), None), (", ", None),
                                            (_month_name(r, d.month), "month"), (" ", None),
                                            (_day_word(r, d.day), "day"), (", ", None), (str(d.year), "year")],
    "Month D YYYY": lambda r, d: [(_month_name(r, d.month), "month"), (" ", None), (_day_word(r, d.day), "day"),
                                  (" ", None), (str(d.year), "year")],
    "YYYY Month D": lambda r, d: [(str(d.year), "year"), (" ", None), (_month_name(r, d.month), "month"),
                                  (" ", None), (_day_word(r, d.day), "day")],
    "D of Month YYYY": lambda r, d: [(_day_word(r, d.day), "day"), (" of ", None),
                                     (_month_name(r, d.month), "month"), (" ", None), (str(d.year), "year")],
}


def _case(rng: np.random.Generator, text: str) -> str:
    choice = rng.integers(4)
    if choice == 0:
        return text.lower()
    if choice == 1:
        return text.upper()
    if choice == 2:
        return text.title()
    return text[:1].upper() + text[1:]


def make_example(rng: np.random.Generator, format_name: str | None = None, date: dt.date | None = None) -> Example:
    """One random date in one format (drawn uniformly when not given)."""
    if date is None:
        date = FIRST_DAY + dt.timedelta(days=int(rng.integers((LAST_DAY - FIRST_DAY).days + 1)))
    names = list(FORMATS)
    format_name = names[int(rng.integers(len(names)))] if format_name is None else format_name
    pieces = FORMATS[format_name](rng, date)
    text, spans = "", {}
    for piece, field in pieces:
        if piece.strip() == "" and rng.random() < 0.05:
            piece = piece + " "  # now and then a doubled space
        if field is not None:
            word = piece.rstrip(".")
            spans[field] = (len(text), len(text) + len(word))
        text += piece
    return Example(_case(rng, text), date.isoformat(), spans, format_name)


def make_examples(n: int, seed: int) -> list[Example]:
    """`n` examples from a fresh generator seeded with `seed`, formats cycling evenly in random order."""
    rng = np.random.default_rng(seed)
    names = list(FORMATS)
    order = [names[i % len(names)] for i in range(n)]
    rng.shuffle(order)
    return [make_example(rng, name) for name in order]


def build_tokenizer():  # noqa: ANN201 - transformers.PreTrainedTokenizerFast
    """A fast character-level tokenizer (lower-cased, offsets into the original text); </s> ends every
    sequence; `decode` joins characters without spaces."""
    return character_tokenizer(CHARACTERS, model_max_length=64)


def encode_batch(tokenizer, examples: list[Example]) -> dict[str, torch.Tensor]:  # noqa: ANN001
    """Padded source ids and mask, and labels (target ids + </s>, padding as -100) for teacher forcing."""
    sources = tokenizer([e.source for e in examples], padding=True, return_tensors="pt")
    targets = tokenizer([e.target for e in examples], padding=True, return_tensors="pt")
    labels = targets["input_ids"].masked_fill(targets["attention_mask"] == 0, -100)
    return {"input_ids": sources["input_ids"], "attention_mask": sources["attention_mask"], "labels": labels}


@torch.no_grad()
def evaluate_dates(model, tokenizer, n: int = 1000, seed: int = EVAL_SEED, batch_size: int = 200) -> dict:  # noqa: ANN001
    """Exact match of greedy outputs and cross-attention alignment on `n` held-out dates (seed >= 10**6).

    Alignment: teacher-forcing the reference "YYYY-MM-DD" (eager attention), for each output character of
    the year, month and day, the source token with the largest cross-attention at the decoder step that
    writes it must lie inside the source word that spells that field (`Example.spans`). Counted per
    decoder layer with heads averaged, and per single head; the best of each is reported.

    Returns:
        {"exact_match", "per_format", "alignment": {"by_layer": [...], "by_head": [[...]],
         "per_field" (best layer), "best_layer", "best_head": {"layer", "head", "score"}}, "n", "seed"}.
    """
    check_seed(seed, "eval")
    model.eval()
    examples = make_examples(n, seed)
    layers = model.config.decoder_layers
    heads = model.config.decoder_attention_heads
    correct: dict[str, list[bool]] = {}
    layer_hits = torch.zeros(layers)
    head_hits = torch.zeros(layers, heads)
    field_hits = {f: torch.zeros(layers) for f in FIELDS}
    field_total = dict.fromkeys(FIELDS, 0)
    total = 0
    for start in range(0, n, batch_size):
        chunk = examples[start:start + batch_size]
        batch = encode_batch(tokenizer, chunk)
        generated = model.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                   max_new_tokens=16, do_sample=False, num_beams=1)  # "YYYY-MM-DD</s>" is 11
        texts = tokenizer.batch_decode(generated, skip_special_tokens=True)
        for example, text in zip(chunk, texts):
            correct.setdefault(example.format, []).append(text == example.target)
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                    labels=batch["labels"], output_attentions=True)
        cross = torch.stack(out.cross_attentions, dim=1).float()  # (B, L_dec, H, T, S)
        sources = tokenizer([e.source for e in chunk], return_offsets_mapping=True)["offset_mapping"]
        for row, example in enumerate(chunk):
            offsets = sources[row]
            for position, field in OUTPUT_FIELDS.items():
                low, high = example.spans[field]
                inside = torch.tensor([s >= low and e <= high and e > s for s, e in offsets]
                                      + [False] * (cross.shape[-1] - len(offsets)))
                maps = cross[row, :, :, position]  # (L_dec, H, S)
                layer_hits += inside[maps.mean(1).argmax(-1)].float()
                head_hits += inside[maps.argmax(-1)].float()
                field_hits[field] += inside[maps.mean(1).argmax(-1)].float()
                field_total[field] += 1
                total += 1
    by_layer = (layer_hits / total).tolist()
    by_head = (head_hits / total).tolist()
    best_layer = int(torch.tensor(by_layer).argmax())
    flat = int(torch.tensor(by_head).flatten().argmax())
    best_head = {"layer": flat // heads, "head": flat % heads, "score": round(by_head[flat // heads][flat % heads], 4)}
    return {
        "n": n, "seed": seed,
        "exact_match": float(np.mean([v for values in correct.values() for v in values])),
        "per_format": {name: round(float(np.mean(values)), 4) for name, values in sorted(correct.items())},
        "alignment": {
            "by_layer": [round(v, 4) for v in by_layer], "by_head": [[round(v, 4) for v in row] for row in by_head],
            "best_layer": {"layer": best_layer, "score": round(by_layer[best_layer], 4)}, "best_head": best_head,
            "per_field": {f: round(float(field_hits[f][best_layer] / field_total[f]), 4) for f in FIELDS},
        },
    }
