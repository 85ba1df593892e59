"""App pages for decoders and encoder-decoders (AppTest, tiny random models chosen in the sidebar's "other"
field), and the state every page shares: one sentence, kept across pages and in the URL."""

from __future__ import annotations


import numpy as np
import pytest
from streamlit.testing.v1 import AppTest
from test_app_pages import APP, OTHER, array, assert_clean, figure, open_tab, start

PROMPT = "The cat sat on the mat. The cat sat on the"


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def with_model(kind: str, directory: str, page: str) -> AppTest:
    at = start()
    at.selectbox(key=f"{kind}_model_choice").select(OTHER).run()
    at.text_input(key=f"{kind}_model_other").input(directory).run()
    assert at.session_state[f"{kind}_model"] == directory
    at.switch_page(page).run()
    assert_clean(at)
    return at


def test_decoder_page_masks_the_future_and_explains_each_generated_token(tiny_checkpoints) -> None:
    at = with_model("decoder", str(tiny_checkpoints("llama")), "app_pages/decoder.py")
    at.text_area(key="dec_text").input(PROMPT)
    at.number_input(key="dec_generate").set_value(3).run()
    assert_clean(at)
    heatmap = figure(at, "dec_heatmap")
    tokens = len(heatmap["data"][0]["x"])
    masked = heatmap["data"][1]
    # the second trace marks exactly the upper triangle as masked, with its own hover text
    drawn_masked = ~np.isnan(array(masked["z"]))
    assert np.array_equal(drawn_masked, np.triu(np.ones((tokens, tokens), bool), 1))
    assert "masked" in masked["hovertemplate"]
    attention = array(heatmap["data"][0]["z"])
    assert np.isnan(attention[drawn_masked]).all() and not np.isnan(attention[~drawn_masked]).any()
    # one generated token: relevance bars stop at its position
    open_tab(at, "dec_tab", "Relevance of one token")
    options = at.selectbox(key="dec_position").options
    first_generated = int(options[0].split()[0][1:])  # "#7 'the' (generated)": the token's position in the sequence
    assert len(options) == 4 and "(generated)" in options[0] and options[-1].startswith(f"#{first_generated + 3}")
    first = at.session_state["dec_position"]  # the query position that predicts the first generated token
    at.selectbox(key="dec_position").select(first + 1).run()
    assert_clean(at)
    position = at.session_state["dec_position"]
    assert position == first + 1
    bars = figure(at, "dec_bar_gradient-rollout")["data"][0]
    assert len(bars["x"]) == position + 1
    open_tab(at, "dec_tab", "Every generated token")
    table = figure(at, "dec_table")
    assert len(table["data"][0]["y"]) == 3  # three generated tokens
    # rows numbered as the selector numbers them: by their positions in the sequence, as on the key axis
    assert [label.split()[0] for label in table["data"][0]["y"]] == [f"#{first_generated + i}" for i in range(3)]
    assert table["data"][0]["x"][first_generated].startswith(f"#{first_generated} ")
    assert [shape["x0"] for shape in table["layout"]["shapes"]] == [first_generated - 0.5]  # where generation began
    at.radio(key="dec_table_method").set_value("rollout").run()
    assert_clean(at)
    open_tab(at, "dec_tab", "Heads")
    assert figure(at, "heads_previous")["data"][0]["z"]  # previous-token scores per head
    assert at.query_params["prompt"] == PROMPT and at.query_params["dec_generate"] == "3"


def test_pages_refuse_a_model_of_another_kind(tiny_checkpoints) -> None:
    """One sentence naming what the chosen model is and what the page needs; nothing drawn."""
    for kind, family, page, said in (
        ("decoder", "bart", "app_pages/decoder.py", "is an encoder-decoder, not a decoder (causal LM): pick one"),
        ("seq2seq", "gpt2", "app_pages/seq2seq.py", "is a decoder (causal LM), not an encoder-decoder: pick one"),
        ("image", "gpt2", "app_pages/image.py", "is a decoder (causal LM), not an image model: pick one"),
    ):
        at = with_model(kind, str(tiny_checkpoints(family)), page)
        assert [e.value for e in at.error] == [f"'{tiny_checkpoints(family)}' {said} in the sidebar."]
        assert not at.get("plotly_chart")


def test_seq2seq_page_cross_attention_and_one_token(tiny_checkpoints) -> None:
    at = with_model("seq2seq", str(tiny_checkpoints("bart")), "app_pages/seq2seq.py")
    at.text_area(key="s2s_text").input("24 November 2026")
    at.text_input(key="s2s_output").input("2026-11-24").run()
    assert_clean(at)
    cross = figure(at, "s2s_cross_map")
    assert "source token" in cross["layout"]["xaxis"]["title"]["text"]
    assert "output token" in cross["layout"]["yaxis"]["title"]["text"]
    outputs = len(cross["data"][0]["y"])
    open_tab(at, "s2s_tab", "Relevance of one output token")
    assert outputs == len(at.selectbox(key="s2s_token").options) and outputs > 3
    at.selectbox(key="s2s_token").select(2).run()
    assert_clean(at)
    assert len(figure(at, "s2s_out_gradient-rollout")["data"][0]["x"]) == 3  # start token + two outputs
    open_tab(at, "s2s_tab", "Cross-attention")
    at.selectbox(key="s2s_cross_layer").select(0)
    at.selectbox(key="s2s_cross_head").select(1).run()
    assert "decoder layer 0 · head 1" in figure(at, "s2s_cross_map")["layout"]["title"]["text"]
    open_tab(at, "s2s_tab", "Decoder self-attention")
    decoder_map = figure(at, "s2s_dec_map")
    assert len(decoder_map["data"]) == 2  # masked future drawn apart
    assert at.query_params["source"] == "24 November 2026"


def test_head_comparison_for_decoders_and_each_encoder_decoder_stack(tiny_checkpoints) -> None:
    at = with_model("decoder", str(tiny_checkpoints("gpt2")), "app_pages/head_comparison.py")
    at.radio(key="hc_kind").set_value("decoder").run()
    at.text_area(key="hc_decoder_text").input(PROMPT).run()
    assert_clean(at)
    stats = at.selectbox(key="hc_stat").options
    assert any("previous-token score" in s for s in stats) and any("induction" in s for s in stats)
    at.selectbox(key="hc_stat").select("induction").run()
    assert_clean(at)
    at.selectbox(key="seq2seq_model_choice").select(OTHER).run()
    at.text_input(key="seq2seq_model_other").input(str(tiny_checkpoints("t5"))).run()
    at.radio(key="hc_kind").set_value("seq2seq").run()
    assert_clean(at)
    for stack in ("encoder", "decoder", "cross"):
        at.radio(key="hc_stack").set_value(stack).run()
        assert_clean(at)
        chart = figure(at, "hc_a_chart")
        assert chart["data"][0]["type"] == "heatmap"
    assert len(at.selectbox(key="hc_stat").options) == 2  # cross-attention: entropy and special share only
    assert any("entropy" in o for o in at.selectbox(key="hc_stat").options)


def test_one_sentence_follows_the_user_across_pages_and_into_the_url() -> None:
    at = start("app_pages/text_attention.py")
    at.text_area(key="ta_text").input("Giraffes eat leaves from tall trees.").run()
    at.selectbox(key="ta_layer").select(2).run()
    assert at.query_params["text"] == "Giraffes eat leaves from tall trees."
    at.switch_page("app_pages/text_rollout.py").run()
    assert_clean(at)
    assert at.text_area(key="tr_text").value == "Giraffes eat leaves from tall trees."
    at.text_area(key="tr_text").input("The red pizza tasted good!").run()
    at.switch_page("app_pages/head_comparison.py").run()
    assert at.text_area(key="hc_text_text").value == "The red pizza tasted good!"
    at.switch_page("app_pages/text_attention.py").run()
    assert_clean(at)
    assert at.text_area(key="ta_text").value == "The red pizza tasted good!"
    assert at.selectbox(key="ta_layer").value == 2  # the layer chosen before leaving the page
    labels = figure(at, "ta_heatmap")["data"][0]["x"]
    assert any("pizza" in label for label in labels)


def test_a_reload_keeps_the_sentence_from_the_url() -> None:
    at = AppTest.from_file(APP, default_timeout=90)
    at.query_params["text"] = "Transformers attend to everything."
    at.run()
    at.switch_page("app_pages/text_rollout.py").run()
    assert_clean(at)
    assert at.text_area(key="tr_text").value == "Transformers attend to everything."
