"""The recurrent encoder-decoders (models/recurrent.py) against a reference written here from the equations,
their attention weights, gradient norms, saving and loading, greedy decoding, and the reversal data."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from models.recurrent import (
    AdditiveAttention,
    RecurrentConfig,
    build_recurrent,
    build_tokenizer,
    config_for,
    load_recurrent,
    reverse_padded,
    save_recurrent,
)
from training.reversal import (
    BATCH_BUCKET,
    MAX_LENGTH,
    MIN_LENGTH,
    encode_pairs,
    evaluate_reversal,
    evaluation_strings,
    gradient_profile,
    training_batch,
)

TINY = {"embedding_size": 4, "hidden_size": 3, "decoder_size": 5, "attention_size": 4}
BUNDLED = Path(__file__).resolve().parent.parent / "models" / "bundled"


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


def tiny_model(model_type: str, tokenizer, seed: int = 0, dtype: torch.dtype = torch.float32,  # noqa: ANN001
               direction: str = "backward"):
    torch.manual_seed(seed)
    model = build_recurrent(config_for(model_type, tokenizer, encoder_direction=direction, **TINY)).to(dtype)
    return model.eval()


# ---- a reference written from the equations (torch.nn.GRU's gate convention), one sequence, no batching
def gru_step(x: torch.Tensor, h: torch.Tensor, w_ih, w_hh, b_ih, b_hh) -> torch.Tensor:  # noqa: ANN001
    """r = s(W_ir x + b_ir + W_hr h + b_hr), z = s(...), n = tanh(W_in x + b_in + r (W_hn h + b_hn)),
    h' = (1 - z) n + z h."""
    gi, gh = w_ih @ x + b_ih, w_hh @ h + b_hh
    size = h.shape[0]
    r = torch.sigmoid(gi[:size] + gh[:size])
    z = torch.sigmoid(gi[size:2 * size] + gh[size:2 * size])
    n = torch.tanh(gi[2 * size:] + r * gh[2 * size:])
    return (1 - z) * n + z * h


def reference_logits(model, source_embeddings: torch.Tensor, decoder_ids: list[int]):  # noqa: ANN001
    """Logits (N, V) and attention weights (N, S) of one unpadded sequence, step by step from the parameters."""
    gru, decoder, attention = model.encoder.gru, model.decoder, model.attention
    direction, hidden = model.config.encoder_direction, model.config.hidden_size
    forward_states, h = [], torch.zeros(hidden, dtype=source_embeddings.dtype)
    for x in source_embeddings:
        h = gru_step(x, h, gru.weight_ih_l0, gru.weight_hh_l0, gru.bias_ih_l0, gru.bias_hh_l0)
        forward_states.append(h)
    backward_states, h = [], torch.zeros(hidden, dtype=source_embeddings.dtype)
    reverse = "_reverse" if direction == "bidirectional" else ""  # a backward-only encoder is a GRU on the reversed input
    for x in source_embeddings.flip(0):
        h = gru_step(x, h, getattr(gru, "weight_ih_l0" + reverse), getattr(gru, "weight_hh_l0" + reverse),
                     getattr(gru, "bias_ih_l0" + reverse), getattr(gru, "bias_hh_l0" + reverse))
        backward_states.insert(0, h)
    if direction == "forward":
        states, final = torch.stack(forward_states), forward_states[-1]  # (S, H)
    elif direction == "backward":
        states, final = torch.stack(backward_states), backward_states[0]
    else:
        states = torch.stack([torch.cat([f, b]) for f, b in zip(forward_states, backward_states)])  # (S, 2H)
        final = torch.cat([forward_states[-1], backward_states[0]])
    s = torch.tanh(decoder.init_state.weight @ final + decoder.init_state.bias)
    logits, weights = [], []
    for token in decoder_ids:
        if attention is None:
            context = final
        else:
            scores = torch.stack([attention.score.weight[0] @ torch.tanh(
                attention.query.weight @ s + attention.key.weight @ h_j + attention.key.bias) for h_j in states])
            a = torch.exp(scores) / torch.exp(scores).sum()
            weights.append(a)
            context = (a[:, None] * states).sum(0)
        e = model.embedding.weight[token]
        s = gru_step(torch.cat([e, context]), s, decoder.gru.weight_ih_l0, decoder.gru.weight_hh_l0,
                     decoder.gru.bias_ih_l0, decoder.gru.bias_hh_l0)
        logits.append(decoder.readout.weight @ torch.cat([s, context, e]) + decoder.readout.bias)
    return torch.stack(logits), (torch.stack(weights) if weights else None)


@pytest.mark.parametrize("direction", ["backward", "forward", "bidirectional"])
@pytest.mark.parametrize("model_type", ["reverse-gru", "reverse-gru-attn"])
def test_forward_matches_the_equations_on_a_padded_batch(model_type, direction, tokenizer):
    model = tiny_model(model_type, tokenizer, dtype=torch.float64, direction=direction)
    batch = encode_pairs(tokenizer, ["abcdefg", "xyz"])  # the second source is padded
    decoder_ids = model.shift_right(batch["labels"])
    with torch.no_grad():
        out = model(batch["input_ids"], batch["attention_mask"], decoder_ids)
        for row, text in enumerate(["abcdefg", "xyz"]):
            length = len(text) + 1
            embeddings = model.embedding(batch["input_ids"][row, :length])
            logits, weights = reference_logits(model, embeddings, decoder_ids[row, :length].tolist())
            torch.testing.assert_close(out.logits[row, :length], logits)
            if weights is not None:
                torch.testing.assert_close(out.attentions[row, :length, :length], weights)
                assert torch.all(out.attentions[row, :, length:] == 0)  # padding gets no weight
    assert (out.attentions is None) == (model_type == "reverse-gru")


def test_attention_weights_returned_are_the_ones_the_decoder_used(tokenizer):
    model = tiny_model("reverse-gru-attn", tokenizer)
    batch = encode_pairs(tokenizer, ["hello", "abcdefghij", "qq qq"[:2] + "rst"])
    used = []
    hook = model.attention.register_forward_hook(lambda module, inputs, output: used.append((inputs, output)))
    try:
        with torch.no_grad():
            out = model(batch["input_ids"], batch["attention_mask"], model.shift_right(batch["labels"]))
    finally:
        hook.remove()
    assert len(used) == out.attentions.shape[1]
    for t, ((_, _, states, mask), (context, weights)) in enumerate(used):
        assert torch.equal(out.attentions[:, t], weights)
        torch.testing.assert_close(context, torch.einsum("bs,bsc->bc", weights, states))  # the context the decoder got
    sums = out.attentions.sum(-1)
    torch.testing.assert_close(sums, torch.ones_like(sums))
    assert torch.all(out.attentions.masked_select(batch["attention_mask"][:, None, :].expand_as(out.attentions) == 0) == 0)


def test_additive_score_by_hand():
    config = RecurrentConfig(decoder_size=2, hidden_size=2, attention_size=2)  # states of size 2
    attention = AdditiveAttention(config)
    with torch.no_grad():
        attention.query.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0]]))  # W_s
        attention.key.weight.copy_(torch.tensor([[0.5, 0.0], [0.0, -1.0]]))  # W_h
        attention.key.bias.zero_()
        attention.score.weight.copy_(torch.tensor([[1.0, 1.0]]))  # v
    s = torch.tensor([[0.2, -0.1]])
    states = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]]])  # (1, S=3, C=2)
    with torch.no_grad():
        context, weights = attention(s, attention.key(states), states, torch.tensor([[1, 1, 0]]))
    # W_s s = (0.2, -0.2); W_h h_1 = (0.5, 0), W_h h_2 = (0, -1); h_3 is padding
    score_1 = math.tanh(0.7) + math.tanh(-0.2)
    score_2 = math.tanh(0.2) + math.tanh(-1.2)
    a_1 = math.exp(score_1) / (math.exp(score_1) + math.exp(score_2))
    torch.testing.assert_close(weights, torch.tensor([[a_1, 1 - a_1, 0.0]]))
    torch.testing.assert_close(context, torch.tensor([[a_1, 1 - a_1]]))


@pytest.mark.parametrize("model_type", ["reverse-gru", "reverse-gru-attn"])
def test_gradient_norms_match_finite_differences_of_the_reference(model_type, tokenizer):
    model = tiny_model(model_type, tokenizer, seed=3, dtype=torch.float64)
    input_ids = torch.tensor(tokenizer("badcafe")["input_ids"])  # (S,) = 7 letters and </s>
    labels = torch.tensor(tokenizer("efacdab", add_special_tokens=False)["input_ids"])  # the last step: "b"
    norms = model.gradient_norms(input_ids, labels)
    decoder_ids = model.shift_right(labels[None])[0].tolist()
    with torch.no_grad():
        embeddings = model.embedding(input_ids)

        def last_loss(e: torch.Tensor) -> float:
            logits, _ = reference_logits(model, e, decoder_ids)
            return float(torch.nn.functional.cross_entropy(logits[-1], labels[-1]))

        eps = 1e-6
        gradient = torch.zeros_like(embeddings)
        for j in range(embeddings.shape[0]):
            for k in range(embeddings.shape[1]):
                up, down = embeddings.clone(), embeddings.clone()
                up[j, k] += eps
                down[j, k] -= eps
                gradient[j, k] = (last_loss(up) - last_loss(down)) / (2 * eps)
    torch.testing.assert_close(norms, gradient.norm(dim=-1), rtol=1e-5, atol=1e-8)
    assert norms.shape == (8,) and torch.all(norms > 0)
    # another step: the loss at the first output reaches the source too, with other norms
    assert not torch.allclose(model.gradient_norms(input_ids, labels, step=0), norms)


@pytest.mark.parametrize("model_type", ["reverse-gru", "reverse-gru-attn"])
def test_greedy_decoding_is_the_argmax_of_its_own_teacher_forced_forward(model_type, tokenizer):
    model = tiny_model(model_type, tokenizer, seed=5)
    batch = encode_pairs(tokenizer, ["abcabcab", "zz", "mnopq"])
    ids, attentions = model.generate(batch["input_ids"], batch["attention_mask"], max_new_tokens=9)
    assert ids.shape == (3, 9)  # random weights never write </s> here: every row runs to the limit
    with torch.no_grad():
        out = model(batch["input_ids"], batch["attention_mask"], model.shift_right(ids))
    assert torch.equal(out.logits.argmax(-1), ids)
    if attentions is not None:
        torch.testing.assert_close(attentions, out.attentions)
    decoding = model.decode(tokenizer, "Abc", max_new_tokens=6)
    assert decoding.input_tokens == ["a", "b", "c", "</s>"]
    assert len(decoding.output_tokens) == 6 and decoding.output_text == "".join(decoding.output_tokens)
    assert (decoding.alignment is None) == (model_type == "reverse-gru")
    if decoding.alignment is not None:
        assert decoding.alignment.shape == (6, 4)


@pytest.mark.parametrize("model_type", ["reverse-gru", "reverse-gru-attn"])
def test_save_and_load_round_trip(model_type, tokenizer, tmp_path):
    model = tiny_model(model_type, tokenizer, seed=7)
    save_recurrent(model, tokenizer, tmp_path)
    loaded, loaded_tokenizer, config = load_recurrent(tmp_path)
    assert config == model.config and type(loaded) is type(model)
    assert {p.name for p in tmp_path.iterdir()} >= {"config.json", "model.safetensors", "tokenizer.json"}
    batch = encode_pairs(loaded_tokenizer, ["roundtrip", "abc"])
    assert torch.equal(batch["input_ids"], encode_pairs(tokenizer, ["roundtrip", "abc"])["input_ids"])
    with torch.no_grad():
        expected = model(batch["input_ids"], batch["attention_mask"], model.shift_right(batch["labels"]))
        got = loaded(batch["input_ids"], batch["attention_mask"], loaded.shift_right(batch["labels"]))
    assert torch.equal(expected.logits, got.logits)


def test_load_refuses_a_directory_without_a_recurrent_model(tmp_path):
    with pytest.raises(ValueError, match="save_recurrent"):
        load_recurrent(tmp_path)
    (tmp_path / "config.json").write_text('{"model_type": "bart", "d_model": 16}')
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ValueError, match="d_model"):
        load_recurrent(tmp_path)


def test_tokenizer_reads_letters_and_closes_the_source(tokenizer):
    encoded = tokenizer("Hello")
    assert tokenizer.convert_ids_to_tokens(encoded["input_ids"]) == ["h", "e", "l", "l", "o", "</s>"]
    assert tokenizer.decode(encoded["input_ids"], skip_special_tokens=True) == "hello"
    batch = encode_pairs(tokenizer, ["abc", "de"])
    assert batch["input_ids"].tolist() == [[4, 5, 6, 2], [7, 8, 2, 0]]  # a=4 ... ; </s>=2, <pad>=0
    assert batch["labels"].tolist() == [[6, 5, 4, 2], [8, 7, 2, -100]]  # reversed, </s>, padding ignored


def test_training_batches_draw_one_bucket_of_lengths_and_cover_all_lengths_evenly(tokenizer):
    rng = np.random.default_rng(4)
    counts = np.zeros(MAX_LENGTH + 1)
    for index in range(6000):
        batch = training_batch(rng, tokenizer, 4)
        lengths = batch["attention_mask"].sum(1) - 1  # letters, without </s>
        assert lengths.min() >= MIN_LENGTH and lengths.max() <= MAX_LENGTH
        assert (lengths.min() - MIN_LENGTH) // BATCH_BUCKET == (lengths.max() - MIN_LENGTH) // BATCH_BUCKET
        for length in lengths.tolist():
            counts[length] += 1
        if index < 20:
            assert [tokenizer.decode(s[s != 0], skip_special_tokens=True)[::-1] for s in batch["input_ids"]] == [
                tokenizer.decode(l[l != -100], skip_special_tokens=True) for l in batch["labels"]]
    share = counts[MIN_LENGTH:] * 76 / counts.sum()  # 24,000 strings: about 316 of each length
    assert share.min() > 0.75 and share.max() < 1.25
    first = training_batch(np.random.default_rng(9), tokenizer, 8)
    again = training_batch(np.random.default_rng(9), tokenizer, 8)
    assert torch.equal(first["input_ids"], again["input_ids"])
    assert all(len(training_batch(rng, tokenizer, 4, max_length=20)["input_ids"][0]) <= 21 for _ in range(50))


def test_evaluation_strings_need_an_evaluation_seed_and_cycle_lengths():
    with pytest.raises(ValueError, match="evaluation seeds"):
        evaluation_strings(10, seed=5)
    strings = evaluation_strings(152, seed=10**6)
    assert [len(s) for s in strings[:76]] == list(range(5, 81)) == [len(s) for s in strings[76:]]
    assert strings == evaluation_strings(152, seed=10**6) and strings != evaluation_strings(152, seed=10**6 + 1)
    assert all(set(s) <= set("abcdefghijklmnopqrstuvwxyz") for s in strings)


class Oracle(torch.nn.Module):
    """A stand-in model that reverses perfectly, optionally dropping the last output character, and attends
    on the anti-diagonal; its gradient norms are 1 at the source character the step writes, 0 elsewhere."""

    def __init__(self, real, tokenizer, drop_last: bool) -> None:  # noqa: ANN001
        super().__init__()
        self.real, self.tokenizer, self.drop_last = real, tokenizer, drop_last
        self.attention = real.attention
        self.shift_right = real.shift_right

    def generate(self, input_ids, attention_mask, max_new_tokens=None):  # noqa: ANN001, ANN201
        texts = self.tokenizer.batch_decode(input_ids, skip_special_tokens=True)
        outputs = [t[::-1][:-1] if self.drop_last else t[::-1] for t in texts]
        encoded = self.tokenizer(outputs, padding=True, return_tensors="pt")["input_ids"]
        return encoded, None

    def forward(self, input_ids, attention_mask, decoder_input_ids):  # noqa: ANN001, ANN201
        lengths = attention_mask.sum(1) - 1
        n, s = decoder_input_ids.shape[1], input_ids.shape[1]
        weights = torch.zeros(input_ids.shape[0], n, s)
        for row, length in enumerate(lengths.tolist()):
            for t in range(length):
                weights[row, t, length - 1 - t] = 1.0
        return type("Out", (), {"attentions": weights})()

    def gradient_norms(self, input_ids, labels, step=-1):  # noqa: ANN001, ANN201
        norms = torch.zeros(input_ids.shape[0])  # S = L + 1
        norms[input_ids.shape[0] - 1 - len(labels)] = 1.0  # step len(labels) - 1 writes x_{L - len(labels)}
        return norms


@pytest.mark.parametrize("drop_last", [False, True])
def test_evaluate_reversal_scores_a_known_model(drop_last, tokenizer):
    oracle = Oracle(tiny_model("reverse-gru-attn", tokenizer), tokenizer, drop_last)
    result = evaluate_reversal(oracle, tokenizer, n=152, seed=10**6 + 3, batch_size=40, gradient_strings=2,
                               gradient_lengths=(6,))
    assert result["anti_diagonal"] == 1.0
    assert result["gradient_norms"][6]["first_output"] == [0, 0, 0, 0, 0, 1.0]  # writes the last character
    assert result["gradient_norms"][6]["last_output"] == [1.0, 0, 0, 0, 0, 0]  # writes the first
    assert set(result["by_bucket"]) == {"5-19", "20-39", "40-59", "60-80"}
    assert [v["n"] for v in result["by_bucket"].values()] == [30, 40, 40, 42]
    if not drop_last:
        assert result["exact_match"] == result["char_accuracy"] == 1.0
        assert set(result["by_length"].values()) == {1.0}
    else:
        assert result["exact_match"] == 0.0
        letters = sum(range(5, 81)) * 2
        assert result["char_accuracy"] == round(1 - 152 / letters, 4)  # one character missing per string
        assert result["by_bucket"]["5-19"]["char_accuracy"] == round(1 - 30 / (2 * sum(range(5, 20))), 4)


def test_training_resumes_to_the_weights_of_an_uninterrupted_run(tmp_path):
    from training.train_reverse import train

    common = {"steps": 6, "batch_size": 4, "eval_strings": 76, "gradient_strings": 1, **TINY}
    whole = train("reverse-gru-attn", out=tmp_path / "whole", checkpoints=tmp_path / "one", **common)
    stopped = train("reverse-gru-attn", out=tmp_path / "resumed", checkpoints=tmp_path / "two", stop_after=3, **common)
    assert stopped == {"stopped_at": 3} and not (tmp_path / "resumed").exists()
    resumed = train("reverse-gru-attn", out=tmp_path / "resumed", checkpoints=tmp_path / "two", **common)
    first, _, _ = load_recurrent(tmp_path / "whole")
    second, _, _ = load_recurrent(tmp_path / "resumed")
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items()):
        assert torch.equal(a, b), name
    assert [p["train_loss"] for p in whole["curve"]] == [p["train_loss"] for p in resumed["curve"]]
    assert whole["params"] == sum(p.numel() for p in first.parameters())
    at_init = whole["evaluation"]["gradient_norms_at_init"]
    assert at_init == resumed["evaluation"]["gradient_norms_at_init"]  # measured on the same initial weights
    assert at_init[20]["first_output"] != whole["evaluation"]["gradient_norms"][20]["first_output"]
    card = (tmp_path / "whole" / "README.md").read_text()
    evaluation = json.loads((tmp_path / "whole" / "reversal.json").read_text())
    assert f"| 60-80 | 21 | **{evaluation['by_bucket']['60-80']['exact_match']:.3f}** |" in card
    assert "python -m training.train_reverse --model reverse-gru-attn --steps 6 --batch-size 4" in card
    assert set(evaluation["gradient_norms"]) == {"20", "80"}
    assert len(evaluation["gradient_norms"]["80"]["first_output"]) == len(evaluation["gradient_norms"]["80"]["last_output"]) == 80
    assert "| 80 | last (t = 79) | 0 |" in card
    with pytest.raises(ValueError, match="training seeds"):
        train("reverse-gru", seed=10**6, out=tmp_path / "never", **common)


def test_reverse_padded_reverses_each_row_within_its_length():
    x = torch.tensor([[1, 2, 3, 0], [4, 5, 0, 0]])[..., None].float()  # (B=2, S=4, 1)
    flipped = reverse_padded(x, torch.tensor([3, 2]))
    assert flipped[..., 0].tolist() == [[3, 2, 1, 0], [5, 4, 0, 0]]
    assert torch.equal(reverse_padded(flipped, torch.tensor([3, 2])), x)


def test_card_helpers_on_hand_made_figures():
    from models.cards import first_drop, length_groups

    figures = {5: 1.0, 6: 1.0, 7: 1.0, 8: 0.0, 9: 0.0, 10: 0.0}
    # centred means over 5 lengths: 5 -> 1.0, 6 -> 0.75, 7 -> 0.6, 8 -> 0.4
    assert first_drop(figures, 0.5) == 8 and first_drop(figures, 0.9) == 6
    assert first_drop({5: 1.0, 6: 0.9}, 0.5) is None
    assert length_groups({5: 1.0, 6: 0.5, 7: 0.0, 8: 0.5, 9: 1.0, 10: 0.2}) == [("5-9", 0.6), ("10", 0.2)]


@pytest.mark.parametrize("name", ["reverse-gru", "reverse-gru-attn"])
def test_bundled_card_is_rendered_from_its_json(name):
    from models.cards import recurrent_card

    assert (BUNDLED / name / "README.md").read_text() == recurrent_card(BUNDLED / name)


@pytest.mark.parametrize("name", ["reverse-gru", "reverse-gru-attn"])
def test_bundled_figures_are_reproduced(name):
    model, tokenizer, config = load_recurrent(BUNDLED / name)
    evaluation = json.loads((BUNDLED / name / "reversal.json").read_text())
    strings = evaluation_strings(evaluation["n"], evaluation["seed"])
    for length in (6, 80):  # the 20 held-out strings of two lengths, decoded again
        chosen = [s for s in strings if len(s) == length]
        batch = encode_pairs(tokenizer, chosen)
        ids, _ = model.generate(batch["input_ids"], batch["attention_mask"], max_new_tokens=length + 6)
        outputs = tokenizer.batch_decode(ids, skip_special_tokens=True)
        exact = sum(o == s[::-1] for o, s in zip(outputs, chosen)) / len(chosen)
        assert abs(exact - evaluation["by_length"][str(length)]) <= 1 / len(chosen)  # one string (batching differs)
    # the gradient profile as initialised: the same seed rebuilds the same initial weights
    settings = json.loads((BUNDLED / name / "training.json").read_text())["settings"]
    torch.manual_seed(settings["seed"])
    initial = build_recurrent(config)
    profile = evaluation["gradient_norms_at_init"]["20"]
    again = gradient_profile(initial, tokenizer, profile["strings"], profile["seed"], (20,))[20]
    np.testing.assert_allclose(again["first_output"], profile["first_output"], rtol=1e-3)
    np.testing.assert_allclose(again["last_output"], profile["last_output"], rtol=1e-3)


def test_bundled_attention_model_reverses_and_reads_the_letter_it_writes():
    model, tokenizer, _ = load_recurrent(BUNDLED / "reverse-gru-attn")
    text = "theattentionmodelreadstheletteritwrites"
    decoding = model.decode(tokenizer, text)
    assert decoding.output_text == text[::-1]
    assert decoding.output_tokens[-1] == "</s>" and decoding.alignment.shape == (len(text) + 1, len(text) + 1)
    assert decoding.alignment[:len(text)].argmax(-1).tolist() == list(range(len(text) - 1, -1, -1))
    evaluation = json.loads((BUNDLED / "reverse-gru-attn" / "reversal.json").read_text())
    assert evaluation["by_bucket"]["60-80"]["exact_match"] >= 0.9 and evaluation["anti_diagonal"] >= 0.9


def test_bundled_plain_model_fails_where_the_attention_model_does_not():
    plain = json.loads((BUNDLED / "reverse-gru" / "reversal.json").read_text())
    attention = json.loads((BUNDLED / "reverse-gru-attn" / "reversal.json").read_text())
    assert plain["by_bucket"]["60-80"]["exact_match"] == 0.0 < attention["by_bucket"]["60-80"]["exact_match"]
    assert plain["by_length"]["5"] >= 0.9  # short strings pass through the final state
    init = plain["gradient_norms_at_init"]["80"]["first_output"]
    assert init[79] < 1e-6 * init[0]  # as initialised, the letter read first barely reaches the first output
    attention_init = attention["gradient_norms_at_init"]["80"]["first_output"]
    assert attention_init[79] > 0.01 * max(attention_init)  # attention's direct path


def test_the_recurrent_models_stay_on_the_cpu_where_cuda_would_be_picked() -> None:
    # pick_device("cuda") builds the device without touching a GPU; the recurrent code keeps its tensors on the CPU,
    # so the model must stay there too (a GPU machine would otherwise fail on the first letter).
    import explain
    import models

    loaded = models.load("reverse-gru-attn", device="cuda", allow_download=False)
    assert {p.device.type for p in loaded.model.parameters()} == {"cpu"}
    assert explain.run_recurrent(loaded, "abc").output_text == "cba"


def test_a_recurrent_checkpoint_in_a_directory_meets_the_size_limit(tmp_path) -> None:
    import shutil

    import models
    from models.settings import Settings

    folder = tmp_path / "my-gru"
    shutil.copytree(Path(models.load_spec("reverse-gru").source), folder)
    assert models.load(str(folder)).spec.kind is models.RECURRENT
    with pytest.raises(models.ModelLoadError, match=r"has 200 thousand parameters, over this server's limit"):
        models.load(str(folder), settings=Settings(max_parameters=100_000))
    models.load("reverse-gru", settings=Settings(max_parameters=100_000))  # bundled models always load
