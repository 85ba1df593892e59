"""The bundled decoder's data, tokenizer, head scores and training, and the committed model's figures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import LlamaForCausalLM

from explain.head_stats import induction_scores, previous_token_scores, repeated_token_induction
from training.induction import (
    EVAL_SEED,
    LENGTHS,
    SEGMENT_LENGTHS,
    WORDS,
    build_tokenizer,
    content_ids,
    evaluate_induction,
    make_batch,
)

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "models" / "bundled" / "induction-lm"
LECTURE = ("The cat sat on the mat.", "I grew up in France, so I speak fluent French.",
           "Please buy an apple and an orange.", "The red pizza tasted good!", "I love transformers!",
           "The animal didn't cross the street because it was too tired.")


def test_scores_by_hand():
    attentions = torch.zeros(1, 2, 6, 6)
    # segment of 2 tokens at 1 and again at 3: queries 3, 4 should attend to 2, 3
    attentions[0, 0, 3, 2], attentions[0, 0, 4, 3] = 0.8, 0.4
    attentions[0, 1, 3, 2] = 1.0
    torch.testing.assert_close(induction_scores(attentions, 1, 3, 2), torch.tensor([[0.6, 0.5]]))
    for t in range(1, 6):
        attentions[0, 1, t, t - 1] = 0.5
    # head 0: 0.8 at (3, 2) and 0.4 at (4, 3) over five queries t >= 1; head 1: 0.5 everywhere
    torch.testing.assert_close(previous_token_scores(attentions), torch.tensor([[0.24, 0.5]]))
    with pytest.raises(ValueError, match="does not fit"):
        induction_scores(attentions, 1, 2, 2)  # overlapping copies


def test_induction_on_any_input_by_hand():
    ids = [5, 6, 7, 5, 6, 9]  # 5 repeats at 3 (follower 6 at 1), 6 repeats at 4 (follower 7 at 2)
    attentions = torch.zeros(1, 1, 6, 6)
    attentions[0, 0, 3, 1], attentions[0, 0, 4, 2] = 0.9, 0.5
    torch.testing.assert_close(repeated_token_induction(attentions, ids), torch.tensor([[0.7]]))
    torch.testing.assert_close(repeated_token_induction(attentions, torch.tensor(ids)), torch.tensor([[0.7]]))  # ids as a tensor
    assert torch.isnan(repeated_token_induction(attentions, [1, 2, 3, 4, 5, 6])).all()
    # adjacent repeats [3, 3, 3]: at position 2 the earlier 3 at 0 is followed by position 1 (counted); at 1 the
    # earlier 3's follower is position 1 itself, which is the query: skipped
    chain = torch.zeros(1, 1, 3, 3)
    chain[0, 0, 2, 1], chain[0, 0, 1, 1] = 0.4, 1.0
    torch.testing.assert_close(repeated_token_induction(chain, [3, 3, 3]), torch.tensor([[0.4]]))


def test_induction_scores_refuse_an_empty_segment():
    with pytest.raises(ValueError, match="at least one token"):
        induction_scores(torch.zeros(1, 1, 6, 6), 1, 3, 0)


def test_sequences_repeat_a_segment_at_a_random_distance():
    tokenizer = build_tokenizer()
    batch = make_batch(np.random.default_rng(3), 300, content_ids(tokenizer), tokenizer.pad_token_id,
                       tokenizer.bos_token_id)
    words = batch.lengths - 1
    assert words.min() >= LENGTHS[0] and words.max() <= LENGTHS[1]
    assert batch.segment.min() >= SEGMENT_LENGTHS[0] and batch.segment.max() <= SEGMENT_LENGTHS[1]
    assert (batch.ids[:, 0] == tokenizer.bos_token_id).all()
    for row in range(300):
        first, second, length = int(batch.first[row]), int(batch.second[row]), int(batch.segment[row])
        assert first >= 1 and first + length <= second and second + length <= int(batch.lengths[row])
        assert torch.equal(batch.ids[row, first:first + length], batch.ids[row, second:second + length])
        assert (batch.ids[row, int(batch.lengths[row]):] == tokenizer.pad_token_id).all()
    distances = (batch.second - batch.first).tolist()
    assert len(set(distances)) > 20 and len(set(batch.first.tolist())) > 20  # neither position nor distance fixed


def test_tokenizer_is_fast_word_level_and_knows_the_lecture_sentences():
    tokenizer = build_tokenizer()
    assert tokenizer.is_fast and 300 <= len(WORDS) <= 600
    for sentence in LECTURE:
        encoding = tokenizer(sentence, return_offsets_mapping=True)
        assert tokenizer.unk_token_id not in encoding["input_ids"], sentence
        assert encoding["input_ids"][0] == tokenizer.bos_token_id
        tokens = tokenizer.convert_ids_to_tokens(encoding["input_ids"])[1:]
        assert [sentence[s:e].lower() for s, e in encoding["offset_mapping"][1:]] == tokens
    assert tokenizer.decode(tokenizer("The cat sat")["input_ids"], skip_special_tokens=True) == "the cat sat"
    assert tokenizer("a zebra 🙂")["input_ids"][2:] == [tokenizer.unk_token_id] * 2


def test_training_smoke_and_resume_equal_an_uninterrupted_run(tmp_path):
    from training.train_induction import train

    tiny = dict(batch_size=4, eval_every=3, checkpoint_every=2, eval_sequences=20)
    train(3, 5, tmp_path / "whole", checkpoints=tmp_path / "ckpt-whole", **tiny)
    assert train(3, 5, tmp_path / "resumed", checkpoints=tmp_path / "ckpt", stop_after=1, **tiny) == {"stopped_at": 1}
    train(3, 5, tmp_path / "resumed", checkpoints=tmp_path / "ckpt", **tiny)
    from safetensors.torch import load_file

    a, b = load_file(tmp_path / "whole" / "model.safetensors"), load_file(tmp_path / "resumed" / "model.safetensors")
    for name in a:
        assert torch.equal(a[name], b[name]), name
    heads = json.loads((tmp_path / "whole" / "heads.json").read_text())
    assert {"induction_head", "previous_token_head", "repeat_accuracy"} <= set(heads)
    whole, resumed = (json.loads((tmp_path / run / "training.json").read_text()) for run in ("whole", "resumed"))
    assert [point["step"] for point in resumed["curve"]] == [point["step"] for point in whole["curve"]] == [3]
    assert resumed["params"] == sum(p.numel() for p in LlamaForCausalLM.from_pretrained(tmp_path / "whole").parameters())
    with pytest.raises(ValueError, match="evaluation seeds"):
        evaluate_induction(None, build_tokenizer(), seed=5)


@pytest.fixture(scope="module")
def bundled():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(BUNDLED, attn_implementation="eager").eval()
    return model, AutoTokenizer.from_pretrained(BUNDLED)


def test_the_committed_model_has_its_heads_on_held_out_sequences(bundled):
    model, tokenizer = bundled
    assert tokenizer.is_fast and model.config.num_hidden_layers >= 2
    measured = evaluate_induction(model, tokenizer, n_sequences=200, seed=EVAL_SEED + 3)
    assert measured["best_induction"]["score"] >= 0.7
    assert measured["best_previous_token"]["score"] >= 0.7
    assert measured["repeat_accuracy"] >= 0.9
    recorded = json.loads((BUNDLED / "heads.json").read_text())
    assert (recorded["induction_head"]["layer"], recorded["induction_head"]["head"]) == (
        measured["best_induction"]["layer"], measured["best_induction"]["head"])


def test_the_committed_model_completes_a_repeated_lecture_sentence(bundled):
    model, tokenizer = bundled
    prompt = "please buy an apple and i love red pizza . please buy an apple and i love"
    ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
    out = model.generate(ids, max_new_tokens=2, do_sample=False)
    assert tokenizer.decode(out[0, ids.shape[1]:]) == "red pizza"
