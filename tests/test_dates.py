"""The bundled encoder-decoder's date formats, tokenizer and training, and the committed model's figures."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from training.dates import (
    EVAL_SEED,
    FORMATS,
    MONTHS,
    build_tokenizer,
    evaluate_dates,
    make_example,
    make_examples,
)

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "models" / "bundled" / "iso-dates"


def parse_back(example) -> dt.date:  # noqa: ANN001
    """Read the date back from the example's own field spans (independent of how the format wrote it)."""
    fields = {name: example.source[a:b].lower() for name, (a, b) in example.spans.items()}
    year = int(fields["year"])
    day = int(re.match(r"\d+", fields["day"]).group())
    month_text = fields["month"]
    if month_text.isdigit():
        month = int(month_text)
    else:
        month = next(i + 1 for i, name in enumerate(MONTHS) if name.startswith(month_text[:3]))
        assert MONTHS[month - 1].startswith(month_text) or month_text == "sept"
    return dt.date(year, month, day)


def test_every_format_parses_back_to_its_target_and_spans_cover_words():
    examples = make_examples(1200, seed=12)
    counts = {name: 0 for name in FORMATS}
    for example in examples:
        counts[example.format] += 1
        date = parse_back(example)
        assert date.isoformat() == example.target
        assert 1900 <= date.year <= 2099
        for name, (a, b) in example.spans.items():
            word = example.source[a:b]
            assert word and word.strip() == word and "." not in word  # the word, without its abbreviation dot
            assert b == len(example.source) or not example.source[b].isalnum()  # the whole word
            assert a == 0 or not example.source[a - 1].isalnum()
        if "," in example.source and "weekday" in example.format.lower():
            weekday = example.source.split(",")[0].lower()
            assert dt.date.fromisoformat(example.target).strftime("%A").lower().startswith(weekday)
    assert set(counts.values()) == {100}  # formats drawn evenly


def test_spelling_variants_appear():
    sources = [make_example(np.random.default_rng(i)).source for i in range(600)]
    joined = "\n".join(sources)
    assert any(s.isupper() for s in sources) and any(s.islower() for s in sources)
    assert re.search(r"\d(st|nd|rd|th)\b", joined, re.I) and "  " in joined
    assert re.search(r"\b0\d[/.]", joined) and re.search(r"\bsept\b", joined, re.I)
    assert re.search(r"\b[a-z]{3}\.", joined, re.I)  # abbreviated month with a full stop


def test_tokenizer_is_fast_character_level_with_offsets():
    tokenizer = build_tokenizer()
    text = "Tuesday, the 24th of November 2026"
    encoding = tokenizer(text, return_offsets_mapping=True)
    assert tokenizer.is_fast and encoding["input_ids"][-1] == tokenizer.eos_token_id
    assert [text[a:b].lower() for a, b in encoding["offset_mapping"][:-1]] == list(text.lower())
    assert tokenizer.decode(tokenizer("2026-11-24")["input_ids"], skip_special_tokens=True) == "2026-11-24"
    assert tokenizer.unk_token_id not in encoding["input_ids"]


def test_training_smoke_and_resume_equal_an_uninterrupted_run(tmp_path):
    from training.train_dates import train

    tiny = dict(batch_size=8, eval_every=3, checkpoint_every=2, eval_dates=24)
    train(3, 5, tmp_path / "whole", checkpoints=tmp_path / "ckpt-whole", **tiny)
    assert train(3, 5, tmp_path / "resumed", checkpoints=tmp_path / "ckpt", stop_after=1, **tiny) == {"stopped_at": 1}
    train(3, 5, tmp_path / "resumed", checkpoints=tmp_path / "ckpt", **tiny)
    from safetensors.torch import load_file

    a, b = load_file(tmp_path / "whole" / "model.safetensors"), load_file(tmp_path / "resumed" / "model.safetensors")
    for name in a:
        assert torch.equal(a[name], b[name]), name
    assert {"best_layer", "best_head", "exact_match"} <= set(json.loads((tmp_path / "whole" / "alignment.json").read_text()))
    with pytest.raises(ValueError, match="evaluation seeds"):
        evaluate_dates(None, build_tokenizer(), seed=3)


@pytest.fixture(scope="module")
def bundled():
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    model = AutoModelForSeq2SeqLM.from_pretrained(BUNDLED, attn_implementation="eager").eval()
    return model, AutoTokenizer.from_pretrained(BUNDLED)


@pytest.mark.parametrize("source", ["24 November 2026", "Nov 24, 2026", "11/24/2026", "24.11.2026",
                                    "Tuesday, the 24th of November 2026", "24-Nov-2026", "NOVEMBER 24TH, 2026",
                                    "the 24th of nov. 2026"])
def test_the_committed_model_converts_the_issues_spellings(bundled, source):
    model, tokenizer = bundled
    ids = tokenizer(source, return_tensors="pt")["input_ids"]
    assert tokenizer.decode(model.generate(ids)[0], skip_special_tokens=True) == "2026-11-24"


def test_the_committed_model_meets_its_targets_on_held_out_dates(bundled):
    model, tokenizer = bundled
    measured = evaluate_dates(model, tokenizer, n=240, seed=EVAL_SEED + 2)
    assert measured["exact_match"] >= 0.99
    alignment = measured["alignment"]
    assert max(alignment["best_layer"]["score"], alignment["best_head"]["score"]) >= 0.9
    recorded = json.loads((BUNDLED / "alignment.json").read_text())
    assert recorded["best_head"]["layer"] == alignment["best_head"]["layer"]
