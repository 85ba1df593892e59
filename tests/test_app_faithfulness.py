"""The "Is this faithful?" panel on the image, text rollout, decoder and encoder-decoder pages (AppTest):
nothing runs until asked; the table holds the library's numbers."""

from __future__ import annotations

import numpy as np
import pytest
from test_app_generative import with_model
from test_app_pages import assert_clean, open_tab, start


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def press(at, label_part: str) -> None:  # noqa: ANN001
    buttons = [b for b in at.button if label_part in b.label]
    assert buttons, [b.label for b in at.button]
    buttons[0].click().run()
    assert_clean(at)


def test_image_panel_scores_on_request_with_the_librarys_numbers() -> None:
    from PIL import Image

    import explain
    import models
    from explain.metrics import faithfulness as fx
    from ui.widgets import SAMPLES_DIR

    at = start("app_pages/image.py")
    at.radio(key="im_source").set_value("sample").run()
    open_tab(at, "im_tab", "Is this faithful?")
    assert not at.dataframe  # nothing scored before the button
    press(at, "Is this faithful")
    table = at.dataframe[0].value
    assert set(table.index) == {"attention", "attention rollout", "gradient rollout", "random"}
    abpc = table["ABPC (higher is better)"].to_numpy()
    assert list(abpc) == sorted(abpc, reverse=True)  # a leaderboard: the best-separating ranking first
    assert table["seconds"].drop("random").notna().all() and np.isnan(table.loc["random", "seconds"])
    loaded = models.load("shapes-vit")
    image = Image.open(SAMPLES_DIR / "scene_00.png").convert("RGB")
    capture = explain.capture_image(loaded, image, with_gradients=True)
    pixels = loaded.processor(images=image, return_tensors="pt")["pixel_values"]
    probability = fx.image_probability(loaded, capture)
    expected = fx.image_curves(probability, pixels, explain.explain_capture(capture, "gradient-rollout").grid, (8, 8))
    assert table.loc["gradient rollout", "deletion AUC (lower is better)"] == pytest.approx(expected.aucs["deletion"], abs=1e-3)
    assert "Reading:" in " ".join(m.value for m in at.markdown)
    assert len([c for c in at.get("plotly_chart") if "faithful_" in c.proto.id]) == 2


def test_text_rollout_panel_gives_eraser_scores() -> None:
    at = start("app_pages/text_rollout.py")
    press(at, "Is this faithful")
    table = at.dataframe[0].value
    assert set(table.index) == {"attention", "attention rollout", "gradient rollout", "random"}
    assert np.isfinite(table.drop(columns="seconds").to_numpy()).all()
    assert any("deleting its top 20% of tokens" in m.value for m in at.markdown)


def test_decoder_and_seq2seq_panels(tiny_checkpoints) -> None:
    at = with_model("decoder", str(tiny_checkpoints("gpt2")), "app_pages/decoder.py")
    at.text_area(key="dec_text").input("The cat sat on the mat. The cat sat on the").run()
    open_tab(at, "dec_tab", "Relevance of one token")
    press(at, "Is this faithful")
    assert set(at.dataframe[0].value.index) == {"attention", "attention rollout", "gradient rollout", "random"}
    at = with_model("seq2seq", str(tiny_checkpoints("bart")), "app_pages/seq2seq.py")
    at.text_area(key="s2s_text").input("24 November 2026")
    at.text_input(key="s2s_output").input("2026-11-24").run()
    open_tab(at, "s2s_tab", "Relevance of one output token")
    press(at, "Is this faithful")
    assert set(at.dataframe[0].value.index) == {"attention", "attention rollout", "gradient rollout", "random"}
