"""The Learn pages' numbers: by hand, against the one-shot computations, against the model's own embeddings;
and every Learn page driven through AppTest."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image
from test_app_pages import assert_clean, figure, start

import explain
from explain.learn import (
    patch_sequence,
    pca_2d,
    position_table,
    probe_similarity,
    similarity,
    sinusoidal_encoding,
    word_trajectories,
)


def test_sinusoids_by_hand():
    code = sinusoidal_encoding(3, 4)
    # dims (0, 1) at frequency 1, dims (2, 3) at 10000^(-2/4) = 0.01
    expected = torch.tensor([[0, 1, 0, 1], [math.sin(1), math.cos(1), math.sin(0.01), math.cos(0.01)],
                             [math.sin(2), math.cos(2), math.sin(0.02), math.cos(0.02)]], dtype=torch.float32)
    torch.testing.assert_close(code, expected)
    dots = similarity(sinusoidal_encoding(50, 64))
    # the dot product depends on the distance only: (0, 5) and (20, 25) alike, both below (0, 0)
    assert dots[0, 5] == pytest.approx(float(dots[20, 25]), abs=1e-4) and dots[0, 5] < dots[0, 0]
    with pytest.raises(ValueError, match="even dimension"):
        sinusoidal_encoding(4, 3)


def test_pca_by_hand():
    points = np.array([[2.0, 0, 0], [-2.0, 0, 0], [0, 1.0, 0], [0, -1.0, 0]])
    centre, axes, explained = pca_2d(points)
    np.testing.assert_allclose(centre, 0)
    np.testing.assert_allclose(np.abs(axes), [[1, 0, 0], [0, 1, 0]], atol=1e-12)
    assert explained == pytest.approx(1.0)


def test_rollout_steps_equal_a_plain_loop_through_the_path_the_app_uses(minilm):
    """The Learn page's per-layer matrices (explain_capture(..., steps=True)) against a loop written here."""
    capture = explain.capture_text(minilm, "The cat sat on the mat.", target="A dog lay on the rug.")
    attentions, tokens = capture.attentions, len(capture.tokens)
    identity = torch.eye(tokens)
    reduce = {"mean": lambda a: a.mean(0), "max": lambda a: a.amax(0), "min": lambda a: a.amin(0)}
    for fusion, first in (("mean", 0), ("max", 2), ("min", 1)):
        steps = explain.explain_capture(capture, "rollout", head_fusion=fusion, start_layer=first, steps=True).steps
        running = identity
        for index, layer in enumerate(range(first, 6)):
            augmented = reduce[fusion](attentions[layer]) + identity
            augmented = augmented / augmented.sum(-1, keepdim=True)
            running = augmented @ running
            torch.testing.assert_close(steps.augmented[index], augmented)
            torch.testing.assert_close(steps.running[index], running)
        assert steps.running.shape[0] == 6 - first
    for first in (0, 3):
        explanation = explain.explain_capture(capture, "gradient-rollout", start_layer=first, steps=True)
        relevance = identity
        for index, layer in enumerate(range(first, 6)):
            weighted = (capture.gradients[layer] * attentions[layer]).clamp(min=0).mean(0)
            relevance = relevance + weighted @ relevance
            torch.testing.assert_close(explanation.steps.augmented[index], identity + weighted)
            torch.testing.assert_close(explanation.steps.running[index], relevance)
        torch.testing.assert_close(explanation.matrix, relevance)


def test_position_tables_are_the_models_own(minilm, tiny_loaded):
    table = position_table(minilm)
    torch.testing.assert_close(table.table, minilm.model.embeddings.position_embeddings.weight)
    assert "added" in table.how
    gpt2 = tiny_loaded("gpt2")
    torch.testing.assert_close(position_table(gpt2).table, gpt2.model.transformer.wpe.weight)
    bart = tiny_loaded("bart")
    assert position_table(bart).table.shape[0] == 64  # BART's table without its offset of 2
    rotary = position_table(tiny_loaded("llama"))
    assert rotary.table is None and "rotate" in rotary.how


def test_patch_sequence_is_the_models_embedding_output():
    import models

    loaded = models.load("shapes-vit")
    image = Image.new("RGB", (64, 64), (20, 120, 220))
    result = patch_sequence(loaded, image)
    pixels = loaded.processor(images=image, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        expected = loaded.model.vit.embeddings(pixels)[0]
    torch.testing.assert_close(result.sequence, expected)
    assert result.grid == (8, 8) and result.patch == (8, 8) and result.projections.shape == (64, 128)
    assert result.picture.shape == (64, 64, 3)


def test_word_trajectories_and_the_lecture_example(minilm):
    paths = word_trajectories(minilm, "please buy an apple and an orange")
    assert paths.words == ["please", "buy", "an", "apple", "and", "an", "orange"]
    assert paths.states.shape == (7, 7, 384) and paths.points.shape == (7, 7, 2)
    assert 0.0 < paths.explained <= 1.0
    layers, fruit = probe_similarity(minilm, "please buy an apple and an orange", "apple", ["fruit", "phone"])
    _, phone = probe_similarity(minilm, "apple released a new phone", "apple", ["fruit", "phone"])
    assert layers[0] == "embeddings" and len(layers) == 7
    # the same word starts from the same embedding, then its context pulls it: toward fruit next to an orange,
    # toward the phone in the other sentence
    assert fruit[-1, 0] - fruit[0, 0] > 0.1 and fruit[-1, 0] > phone[-1, 0]
    assert phone[-1, 1] > fruit[-1, 1]
    with pytest.raises(ValueError, match="not a word of the sentence"):
        probe_similarity(minilm, "the cat sat", "dog", ["fruit"])


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_inside_one_head_page_shows_the_models_numbers() -> None:
    at = start("app_pages/learn_head.py")
    assert_clean(at)
    at.selectbox(key="lh_layer").select(2)
    at.selectbox(key="lh_head").select(3).run()
    at.selectbox(key="lh_token").select(2).run()
    assert_clean(at)
    table = at.dataframe[0].value
    np.testing.assert_allclose(table["softmax"], table["model's weight"], atol=1e-5)
    capture = explain.capture_text(__import__("models").load("minilm"), "The cat sat on the mat.")
    np.testing.assert_allclose(table["model's weight"], capture.attentions[2, 3, 2].numpy(), atol=1e-6)
    at.toggle(key="lh_bars").set_value(True).run()
    assert figure(at, "lh_dots")["data"][0]["type"] == "bar"
    at.radio(key="lh_kind").set_value("image").run()
    assert_clean(at)


def test_other_learn_pages_render() -> None:
    for page, chart in (("app_pages/learn_positions.py", "lp_sin_code"), ("app_pages/learn_words.py", "lw_paths"),
                        ("app_pages/learn_patches.py", "lpa_sequence"), ("app_pages/learn_rollout.py", "lr_gradient")):
        at = start(page)
        assert_clean(at)
        assert [c for c in at.get("plotly_chart") if chart in c.proto.id], page
    at = start("app_pages/learn_rollout.py")
    at.radio(key="lr_kind").set_value("image").run()
    at.selectbox(key="lr_class").select("circle").run()
    assert_clean(at)
    assert "**circle**" in " ".join(m.value for m in at.markdown)


def test_each_rollout_stage_has_a_colour_scale_that_shows_its_own_values(minilm) -> None:
    """The gradient-weighted maps are a thousand times smaller than attention: each stage's figure spans its own
    values (the identity's diagonal left out where it would swamp them), and its colour bar says what it shows."""
    at = start("app_pages/learn_rollout.py")
    capture = explain.capture_text(minilm, "The cat sat on the mat.", target="A dog lay on the rug.")
    steps = explain.explain_capture(capture, "gradient-rollout", steps=True).steps
    off = ~torch.eye(len(capture.tokens), dtype=torch.bool)
    expected = {"relevance weight": (float(steps.fused.min()), float(steps.fused.max())),
                "I + weight": (float(steps.augmented[..., off].min()), float(steps.augmented[..., off].max())),
                "relevance R": (float(steps.running[..., off].min()), float(steps.running[..., off].max()))}
    for label, (low, high) in expected.items():
        axis = figure(at, f"lr_gradient_{label}")["layout"]["coloraxis"]
        assert axis["colorbar"]["title"]["text"] == label
        assert axis["cmin"] == pytest.approx(low, rel=1e-3, abs=1e-9) and axis["cmax"] == pytest.approx(high, rel=1e-3)
    assert expected["relevance weight"][1] < 0.01  # far below attention's scale: one shared 0-1 scale hid it
    titles = [a["text"] for a in figure(at, "lr_gradient_relevance R")["layout"]["annotations"]]
    assert titles == [f"layer {layer}" for layer in range(6)]  # short subplot titles that cannot run together


def test_word_paths_keep_one_colour_per_word_and_the_legend_clear_of_the_axis() -> None:
    from viz.learn import FOLLOWED, trajectories_figure

    points = np.zeros((3, 3, 2))
    first = trajectories_figure(points, ["please", "apple", "orange"], highlight="apple")
    second = trajectories_figure(points, ["apple", "released", "phone"], highlight="apple")
    colour = {trace.name: trace.line.color for trace in first.data} | {trace.name: trace.line.color for trace in second.data}
    assert colour["apple"] == FOLLOWED and first.data[1].line.color == second.data[0].line.color
    assert len({colour[w] for w in ("please", "orange", "released", "phone")} & {FOLLOWED}) == 0
    assert first.layout.legend.y < 0 and first.layout.margin.b >= 100  # below the "PC 1" title, not over it


def test_a_recomputed_number_is_said_to_match_exactly_only_when_it_does() -> None:
    from ui.learn import agreement

    assert agreement(0.0) == "exactly"
    assert agreement(2.4e-7) == "to within 2.4e-07"
    assert agreement(1e-300) == "to within 1.0e-300"
