"""The recurrent teaching models through the registry, the library (explain.recurrent), the command line
(`python -m explain rnn`), their figures and the Learn page "Where attention came from"."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import explain
import models
from cli.main import main
from explain.recurrent import LettersError, check_letters, encoder_distances, run_recurrent
from models import RECURRENT, TRANSFORMER_KINDS
from models.cards import centred_mean, smoothed
from viz.recurrent import accuracy_figure, gradient_figure


@pytest.fixture(scope="module")
def plain() -> models.LoadedModel:
    return models.load("reverse-gru")


@pytest.fixture(scope="module")
def attention() -> models.LoadedModel:
    return models.load("reverse-gru-attn")


def test_the_registry_loads_both_as_their_own_kind(plain, attention) -> None:
    for loaded, heads in ((plain, 0), (attention, 1)):
        assert loaded.spec.kind is RECURRENT and loaded.spec.bundled and loaded.spec.heads == heads
        assert not any(p.requires_grad for p in loaded.model.parameters())
    assert RECURRENT not in TRANSFORMER_KINDS and not RECURRENT.transformer
    assert models.kind_named("recurrent") is RECURRENT
    listed = {spec.name: spec.summary() for spec in models.list_models()}
    assert listed["reverse-gru-attn"]["kind"] == "recurrent" and listed["reverse-gru"]["heads"] == 0


def test_letters_are_checked_with_a_sentence_saying_what_to_type() -> None:
    assert check_letters("  Attention ") == "attention"
    with pytest.raises(LettersError, match="empty"):
        check_letters("   ")
    with pytest.raises(LettersError, match=r"remove ' ' '1' and type letters only"):
        check_letters("abc 1")
    with pytest.raises(LettersError, match="100 letters; the models write at most 99"):
        check_letters("a" * 100)


def test_encoder_distances_by_hand() -> None:
    assert encoder_distances("backward", 4).tolist() == [0, 1, 2, 3]
    assert encoder_distances("forward", 4).tolist() == [3, 2, 1, 0]
    assert encoder_distances("bidirectional", 5).tolist() == [0, 1, 2, 1, 0]


def test_a_run_holds_the_models_own_numbers(attention) -> None:
    run = run_recurrent(attention, "attention")
    assert run.output_text == "noitnetta" and run.correct and run.letter_matches.all()
    assert run.input_tokens == list("attention") + ["</s>"] and run.output_tokens == list("noitnetta") + ["</s>"]
    # the alignment is the decoder's own attention during greedy decoding
    source = attention.tokenizer("attention", return_tensors="pt")
    _, weights = attention.model.generate(source["input_ids"], source["attention_mask"], 16)
    np.testing.assert_allclose(run.alignment, weights[0, :10].numpy(), atol=1e-6)
    np.testing.assert_allclose(run.alignment.sum(-1), 1.0, atol=1e-5)
    assert run.anti_diagonal == 1.0  # every letter's largest weight is on the letter it copies
    assert run.alignment[:9].argmax(-1).tolist() == list(range(8, -1, -1))
    labels = torch.tensor(attention.tokenizer("noitnetta", add_special_tokens=False)["input_ids"])
    np.testing.assert_allclose(run.gradient_norms, attention.model.gradient_norms(source["input_ids"][0], labels).numpy(),
                               rtol=1e-5)
    np.testing.assert_allclose(run.gradient_norms_first,
                               attention.model.gradient_norms(source["input_ids"][0], labels[:1]).numpy(), rtol=1e-5)
    assert run.distances.tolist() == list(range(10))


def test_the_anti_diagonal_rate_counts_only_letters_on_it() -> None:
    alignment = np.eye(4, dtype=np.float32)[[2, 1, 0, 3]]  # 3 letters + </s>: output t copies source 2 - t
    alignment[1] = [0.0, 0.2, 0.8, 0.0]  # the second letter looks at the wrong source letter
    run = explain.RecurrentRun("m", "abc", "cba", list("abc") + ["</s>"], list("cba") + ["</s>"], alignment,
                               np.ones(4, np.float32), np.ones(4, np.float32), np.arange(4))
    assert run.anti_diagonal == pytest.approx(2 / 3)
    assert run.letter_matches.tolist() == [True, True, True]
    short = explain.RecurrentRun("m", "abc", "cx", [], [], None, np.ones(4), np.ones(4), np.arange(4))
    assert short.letter_matches.tolist() == [True, False, False] and short.anti_diagonal is None and not short.correct


def test_the_bottleneck_and_the_vanishing_gradient_on_a_long_string(plain, attention) -> None:
    letters = "thequickbrownfoxjumpsoverthelazydogandrunsaway"  # 46 letters
    trained_plain, trained_attention = run_recurrent(plain, letters), run_recurrent(attention, letters)
    assert trained_attention.correct and not trained_plain.correct
    assert trained_attention.anti_diagonal > 0.95
    fresh_plain = run_recurrent(plain, letters, initialised=True)
    fresh_attention = run_recurrent(attention, letters, initialised=True)
    assert fresh_plain.initialised and fresh_plain.output_text != trained_plain.output_text
    # as initialised, the plain model's gradient falls by orders of magnitude with distance; attention keeps it flat
    norms = fresh_plain.gradient_norms[:-1]
    assert norms[0] / norms[-1] > 1e6 and np.all(np.diff(np.log(norms[:20])) < 0)
    flat = fresh_attention.gradient_norms[:-1]
    assert flat.max() / flat.min() < 20
    assert fresh_plain.gradient_norms.tolist() == run_recurrent(plain, letters, initialised=True).gradient_norms.tolist()


def test_cli_writes_the_issues_arrays(capsys, tmp_path) -> None:
    out = tmp_path / "attn.npz"
    assert main(["rnn", "attention", "--model", "reverse-gru-attn", "--out", str(out)]) == 0
    assert "'noitnetta', correct; largest attention on the anti-diagonal for 100% of letters" in capsys.readouterr().out
    saved = np.load(out)
    assert str(saved["output_text"]) == "noitnetta"
    assert saved["alignment"].shape == (10, 10) and saved["gradient_norms"].shape == (10,)
    assert saved["input_tokens"].tolist() == list("attention") + ["</s>"]
    assert saved["output_tokens"].tolist() == list("noitnetta") + ["</s>"]
    out = tmp_path / "plain.npz"
    assert main(["rnn", "attention", "--model", "reverse-gru", "--out", str(out)]) == 0
    saved = np.load(out)
    assert "alignment" not in saved and saved["gradient_norms"].shape == (10,) and saved["gradient_norms"].dtype == np.float32
    capsys.readouterr()
    assert main(["rnn", "a1b", "--out", str(out)]) == 2
    assert "only the letters a-z" in capsys.readouterr().err
    assert main(["rnn", "attention", "--model", "iso-dates", "--out", str(out)]) == 2
    assert "use `python -m explain seq2seq`" in capsys.readouterr().err
    assert main(["text", "hello", "--model", "reverse-gru", "--out", str(out)]) == 2
    assert "use `python -m explain rnn`" in capsys.readouterr().err
    assert main(["evaluate", "--model", "reverse-gru"]) == 2
    assert "reversal.json" in capsys.readouterr().err


def test_figures_by_hand() -> None:
    np.testing.assert_allclose(centred_mean([1.0, 2.0, 3.0, 4.0, 5.0], 3), [1.5, 2, 3, 4, 4.5])
    curve = {5: 1.0, 6: 0.0, 7: 1.0}
    assert smoothed(curve, 3) == pytest.approx({5: 0.5, 6: 2 / 3, 7: 0.5})
    figure = accuracy_figure({"a": curve}, {"a": smoothed(curve, 3)}, "t", window=3, mark=6)
    points, line = figure.data
    assert list(points.x) == [5, 6, 7] and list(line.y) == pytest.approx([0.5, 2 / 3, 0.5])
    figure = gradient_figure({"m": ([2, 0, 1], [1e-3, 1.0, 0.0])}, "g", needed={"m": 0})
    line, ring = figure.data
    assert list(line.x) == [0, 1, 2] and list(line.y) == [1.0, 1e-30, 1e-3]  # sorted; zero kept on a log axis
    assert figure.layout.yaxis.type == "log" and list(ring.y) == [1.0]


def test_the_learn_page(monkeypatch) -> None:
    from test_app_pages import assert_clean, figure, start

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    at = start("app_pages/learn_rnn.py", {"rn_text": "attentionisallyouneed"})
    assert_clean(at)
    rows = at.table[0].value
    assert rows["output"].tolist()[1] == "deenuoyllasinoitnetta" and rows["exact"].tolist()[1] == "yes"
    text = " ".join(m.value for m in at.markdown)
    assert "falls below 0.9 exact match at length **7** and below 0.5 at **11**" in text
    assert "for **100%** of the 21 letters written; on the held-out strings, for **99.5%**" in text
    accuracy = figure(at, "rn_accuracy")
    assert [trace["name"] for trace in accuracy["data"] if trace.get("mode") == "lines"] == [
        "reverse-gru (final state only)", "reverse-gru-attn (with attention)"]
    alignment = figure(at, "rn_alignment")
    assert len(alignment["data"][0]["y"]) == 22 and len(alignment["data"][0]["x"]) == 22
    gradient = figure(at, "rn_gradient")
    assert gradient["layout"]["yaxis"]["type"] == "log" and "as initialised" in gradient["layout"]["title"]["text"]
    at.radio(key="rn_weights").set_value("trained").run()
    assert "trained weights" in figure(at, "rn_gradient")["layout"]["title"]["text"]

    at.text_input(key="rn_text").input("Hello, world").run()
    assert_clean(at)
    assert any("only the letters a-z" in e.value for e in at.error) and not at.get("plotly_chart")
    at.text_input(key="rn_text").input("abc").run()
    assert any("trained on 5 to 80 letters; this string has 3" in i.value for i in at.info)
    at.button[0].click().run()
    assert_clean(at)
    drawn = at.text_input(key="rn_text").value
    assert len(drawn) == 60 and drawn.isalpha() and drawn.islower()


def test_the_learn_page_without_the_held_out_figures_gives_the_commands_that_measure_them(monkeypatch) -> None:
    import models.recurrent
    from test_app_pages import assert_clean, start

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(models.recurrent, "read_measurements",
                        lambda folder: None if folder.name == "reverse-gru" else {"by_length": {}})
    at = start("app_pages/learn_rnn.py", {"rn_text": "attention"})
    assert_clean(at)
    assert [i.value for i in at.info if "reversal.json" in i.value] == [
        "The held-out figures (reversal.json) are missing beside the bundled models: "
        "run `python -m training.train_reverse --model reverse-gru` to measure them again."]


def test_letters_right_and_the_anti_diagonal_by_hand() -> None:
    from explain.recurrent import anti_diagonal_share, letters_right

    assert letters_right("cbx", "abc").tolist() == [True, True, False]
    assert letters_right("c", "abc").tolist() == [True, False, False]  # missing letters are wrong
    assert letters_right("cbaXYZ", "abc").tolist() == [True, True, True]  # extra letters are not counted
    alignment = np.array([[0.1, 0.2, 0.7], [0.2, 0.6, 0.2], [0.5, 0.4, 0.1], [0.9, 0.05, 0.05]])  # 4th: </s>
    assert anti_diagonal_share(alignment, 3) == 1.0
    assert anti_diagonal_share(alignment[:, ::-1], 3) == pytest.approx(1 / 3)  # only the middle step
    assert anti_diagonal_share(alignment[:0], 3) is None
