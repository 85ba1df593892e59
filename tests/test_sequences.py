"""Rohrer's walk from one-hot vectors to attention: tables counted by hand on tiny corpora, the lecture notes' own
tables, and a model's embedding layer as a one-hot product."""

from __future__ import annotations

import pytest
import torch

from explain.sequences import (
    LECTURE_CORPORA,
    embedding_as_one_hot,
    one_hot,
    parse_corpus,
    select_rows,
    skip_table,
    skip_vote,
    table_growth,
    transition_table,
    words_of,
)

TINY = "2 x a b c\n1 x a b d\n"  # a->b three times; b->c twice, b->d once


def test_words_and_counts_are_parsed():
    assert words_of("Check whether the battery ran down, please.") == (
        "check", "whether", "the", "battery", "ran", "down", "please")
    corpus = parse_corpus("4 x one two\n\n6 × three four\n2* five six\nseven eight")
    assert corpus.weights == (4.0, 6.0, 2.0, 1.0)
    assert corpus.sentences[1] == ("three", "four")
    with pytest.raises(ValueError, match="two or more words"):
        parse_corpus("hello\n\n")
    with pytest.raises(ValueError, match="positive count"):
        parse_corpus("0 x one two")


def test_one_hot_rows_pick_rows_with_the_notes_numbers():
    b = torch.tensor([[.2, .9], [.7, 0], [.8, .3], [.1, .4]], dtype=torch.float64)
    rows, product = select_rows([0, 3, 2], b)
    assert rows.tolist() == [[1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]]  # the notes' matrix A
    torch.testing.assert_close(product, torch.tensor([[.2, .9], [.1, .4], [.8, .3]], dtype=torch.float64))
    with pytest.raises(ValueError, match="outside the vocabulary"):
        one_hot([4], 4)


def test_first_and_second_order_tables_by_hand():
    corpus = parse_corpus(TINY)
    assert corpus.vocabulary == ["a", "b", "c", "d"]
    first = transition_table(corpus)
    assert first.contexts == [("a",), ("b",), ("c",), ("d",)]  # every word is a row, as in the notes
    assert first.counts.tolist() == [[0, 3, 0, 0], [0, 0, 2, 1], [0, 0, 0, 0], [0, 0, 0, 0]]
    torch.testing.assert_close(first.probabilities[1], torch.tensor([0, 0, 2 / 3, 1 / 3], dtype=torch.float64))
    assert first.probabilities[2].sum() == 0  # nothing follows c: a row of zeros, not NaN
    second = transition_table(corpus, 2)
    assert second.contexts == [("a", "b")]  # only the contexts the corpus shows
    assert second.counts.tolist() == [[0, 0, 2, 1]]
    assert second.row(("b", "c")).sum() == 0
    possible, observed = table_growth(corpus, 3)
    assert possible == [4, 16, 64] and observed == [2, 1, 0]  # "a", "b"; "a b"; nothing has three words before it


def test_the_notes_tables():
    shows = parse_corpus(LECTURE_CORPORA["Show me my ... please (first order)"])
    table = transition_table(shows)
    assert table.vocabulary == ["directories", "files", "me", "my", "photos", "please", "show"]
    torch.testing.assert_close(table.row(("my",)), torch.tensor([.2, .3, 0, 0, .5, 0, 0], dtype=torch.float64))
    assert table.row(("show",)).tolist() == [0, 0, 1, 0, 0, 0, 0] and table.row(("please",)).sum() == 0
    battery = parse_corpus(LECTURE_CORPORA["The battery ran down (second order)"])
    first = transition_table(battery)
    column = {word: i for i, word in enumerate(first.vocabulary)}
    assert first.row(("ran",))[column["down"]] == pytest.approx(.4) and first.row(("ran",))[column["please"]] == pytest.approx(.6)
    second = transition_table(battery, 2)
    assert len(second.contexts) == 7  # the notes list seven rows
    assert second.row(("battery", "ran"))[column["down"]] == 1 and second.row(("program", "ran"))[column["please"]] == 1
    assert second.row(("whether", "the"))[column["battery"]] == pytest.approx(.4)


def test_skip_table_and_vote_by_hand():
    corpus = parse_corpus("the cat ran home\nthe dog ran away")
    table = skip_table(corpus)
    # (earlier, last) -> next: the/cat -> ran, the/dog -> ran, the/ran -> home or away, cat/ran -> home, dog/ran -> away
    assert table.contexts == [("cat", "ran"), ("dog", "ran"), ("the", "cat"), ("the", "dog"), ("the", "ran")]
    v = table.vocabulary  # away, cat, dog, home, ran, the
    assert table.row(("the", "ran")).tolist() == [.5, 0, 0, .5, 0, 0]
    assert table.row(("cat", "ran")).tolist() == [0, 0, 0, 1, 0, 0]
    vote = skip_vote(table, ("the", "cat", "ran"))
    assert vote.earlier == ["the", "cat"] and vote.last == "ran"
    # 1 x (.5 away + .5 home) + 1 x (1 home) = .5 away + 1.5 home
    assert vote.vote.tolist() == [.5, 0, 0, 1.5, 0, 0]
    assert vote.prediction.tolist() == [.25, 0, 0, .75, 0, 0]
    assert vote.decisive.tolist() == [0, 1]  # cat, ran always means home
    masked = skip_vote(table, ("the", "cat", "ran"), vote.decisive)
    assert masked.prediction[v.index("home")] == 1
    weighted = skip_vote(table, ("the", "cat", "ran"), [3.0, 0.0])
    assert weighted.prediction.tolist() == [.5, 0, 0, .5, 0, 0]
    unseen = skip_vote(table, ("the", "cow", "ran"))
    assert unseen.activity.tolist() == [1, 0]  # (cow, ran) never seen: it does not vote
    with pytest.raises(ValueError, match="one weight per earlier word"):
        skip_vote(table, ("the", "cat", "ran"), [1.0])
    with pytest.raises(ValueError, match="at least two words"):
        skip_vote(table, ("ran",))


def test_the_notes_skip_rows_and_mask():
    corpus = parse_corpus(LECTURE_CORPORA["Check the program log (skips)"])
    table = skip_table(corpus)
    index = table.vocabulary.index
    assert table.row(("battery", "ran"))[index("down")] == 1 and table.row(("program", "ran"))[index("please")] == 1
    assert table.row(("and", "ran"))[index("down")] == .5 and table.row(("and", "ran"))[index("please")] == .5
    assert table.row(("down", "ran")).sum() == 0
    context = words_of("Check the program log and find out whether it ran")
    vote = skip_vote(table, context)
    # every feature is active; only (program, ran) is decisive: the notes' mask
    assert vote.activity.tolist() == [1] * 9
    assert [w for w, d in zip(vote.earlier, vote.decisive.tolist()) if d] == ["program"]
    # unmasked the vote is nearly a tie (8 x .5 + 1 for please, 8 x .5 for down); masked it is certain
    assert vote.prediction[index("please")] == pytest.approx(5 / 9) and vote.prediction[index("down")] == pytest.approx(4 / 9)
    assert skip_vote(table, context, vote.decisive).prediction[index("please")] == 1


def test_a_models_embedding_layer_is_a_one_hot_product(tiny_loaded):
    for name in ("llama", "gpt2"):
        tokens, product, own = embedding_as_one_hot(tiny_loaded(name), "The cat sat on the mat.")
        assert len(tokens) == product.shape[0] == own.shape[0]
        torch.testing.assert_close(product, own, rtol=0, atol=1e-6)


# The page, through AppTest (offline: MiniLM and the bundled decoder).


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_the_page_draws_the_notes_tables_and_the_decoders_heads(offline) -> None:
    import numpy as np
    from test_app_pages import array, assert_clean, figure, start

    import explain
    import models

    at = start("app_pages/learn_sequences.py")
    first = figure(at, "lsq_first")["data"][0]
    rows, columns = first["y"], first["x"]
    ran = array(first["z"])[rows.index("ran")]
    assert ran[columns.index("down")] == .5 and ran[columns.index("please")] == .5  # the notes' skip corpus
    vote = figure(at, "lsq_vote")["data"][0]
    assert array(vote["y"])[vote["x"].index("please")] == pytest.approx(5 / 9)
    at.radio(key="lsq_mode").set_value("the notes' mask: decisive votes only").run()
    assert_clean(at)
    vote = figure(at, "lsq_vote")["data"][0]
    assert array(vote["y"])[vote["x"].index("please")] == 1
    # the decoder's heads: the bundled model's own attention from the last word, every layer and head
    heads = array(figure(at, "lsq_heads")["data"][0]["z"])
    capture = explain.capture_decoder(models.load("induction-lm"), "check the program log and find out whether it ran")
    np.testing.assert_allclose(heads, capture.attentions[:, :, -1].reshape(-1, heads.shape[1]).numpy(), atol=2e-3)
    # a corpus typed by hand: its first-order table counted as in test_first_and_second_order_tables_by_hand
    at.selectbox(key="lsq_corpus").select("my own sentences").run()
    at.text_area(key="lsq_text").input(TINY).run()
    assert_clean(at)
    table = figure(at, "lsq_first")["data"][0]
    np.testing.assert_allclose(array(table["z"]), [[0, 1, 0, 0], [0, 0, 2 / 3, 1 / 3], [0, 0, 0, 0], [0, 0, 0, 0]])
    at.text_area(key="lsq_text").input("hello").run()
    assert_clean(at)
    assert any("two or more words" in w.value for w in at.warning)


def test_tables_write_their_numbers_and_label_every_row():
    import numpy as np

    from viz.tables import bars, cell_text, labelled_heatmap

    assert cell_text(np.array([[0, 1, 0.25, 2 / 3]]), 2).tolist() == [["0", "1", "0.25", "0.67"]]
    fig = labelled_heatmap(np.array([[0.0, 1.0], [0.5, 0.0]]), ["my", "<s>"], ["files", "photos"], "t", "probability")
    heatmap = fig.data[0]
    assert list(heatmap.y) == ["my", "&lt;s&gt;"] and list(fig.layout.yaxis.tickvals) == ["my", "&lt;s&gt;"]
    assert heatmap.colorbar.title.text == "probability" and heatmap.texttemplate == "%{text}"
    signed = labelled_heatmap(np.array([[-2.0, 1.0]]), ["a"], ["x", "y"], "t", "value", colormap="rdbu")
    assert (signed.data[0].zmin, signed.data[0].zmax) == (-2.0, 2.0)  # centred at zero
    with pytest.raises(ValueError, match="labels"):
        labelled_heatmap(np.zeros((2, 2)), ["a"], ["x", "y"], "t", "value")
    assert list(bars(np.array([0.5, 0.25]), ["a", "b"], "t", "share").data[0].text) == ["0.5", "0.25"]
