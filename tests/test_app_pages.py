"""App-level tests: every page through Streamlit's AppTest, driven by widget keys, no network.

MiniLM loads once per process (st.cache_resource). Image tests use the bundled shapes-vit with a
sample scene when it is installed; otherwise a tiny random ViT saved to a tmp directory, chosen through
the sidebar's "other" field and fed a generated PNG through the file uploader (same code path).
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
OTHER = "other (directory or hub id)…"
SHAPES_VIT = ROOT / "models" / "bundled" / "shapes-vit"
SAMPLES = ROOT / "models" / "bundled" / "samples"
SENTENCE = "Tokenization of unbelievably long words works."  # MiniLM splits two words into pieces


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No hub request may hang a test: models.loading reads HF_HUB_OFFLINE on every load."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def start(page: str | None = None, query: dict[str, str] | None = None) -> AppTest:
    """An app run once (navigation registered), then switched to `page` with `query` in the URL."""
    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    if query:
        at.query_params.update(query)
    if page:
        at.switch_page(page).run()
    assert_clean(at)
    return at


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def array(value) -> np.ndarray:  # noqa: ANN001
    """A plotly JSON array: a list, or a typed array {"dtype", "bdata" (base64), "shape"}."""
    if isinstance(value, dict):
        shape = tuple(int(n) for n in str(value.get("shape", "-1")).split(","))
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"]).reshape(shape)
    return np.array(value, dtype=float)


def open_tab(at: AppTest, key: str, label: str) -> None:
    """Choose a tab whose choice lives in the URL (ui/url.tabs): the page then draws that tab's content."""
    at.session_state[key] = label
    at.run()
    assert_clean(at)
    assert at.query_params[key] == label


def figure(at: AppTest, key_part: str) -> dict:
    """The plotly figure JSON of the chart whose element id contains `key_part`."""
    charts = [c for c in at.get("plotly_chart") if key_part in c.proto.id]
    assert charts, f"no plotly chart with key {key_part!r}: {[c.proto.id for c in at.get('plotly_chart')]}"
    return json.loads(charts[0].proto.spec)


def heatmap_labels(at: AppTest) -> list[str]:
    return figure(at, "ta_heatmap")["data"][0]["x"]


def png_bytes(size: int = 48) -> bytes:
    image = Image.new("RGB", (size, size), "white")
    for x in range(8, 24):
        for y in range(8, 24):
            image.putpixel((x, y), (200, 30, 30))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_home_renders_with_models_table_and_page_links() -> None:
    at = start()
    assert at.title[0].value == "Transformer attention explorer"
    assert len(at.get("page_link")) == 15  # every Explore (6) and Learn (9) page
    table = at.table[0].value
    assert "minilm" in set(table["model"])
    assert set(table["size (MB)"]) >= {"91.6", "3.3"}  # one decimal, as MB on disk (MiniLM's 91.6 MB, shapes-vit's)
    assert at.selectbox(key="text_model_choice").value == "minilm"


def test_text_attention_layer_head_merge_and_hide() -> None:
    at = start("app_pages/text_attention.py")
    at.text_area(key="ta_text").input(SENTENCE).run()
    assert_clean(at)
    labels = heatmap_labels(at)
    assert labels[0] == "#0 [CLS]" and labels[-1].endswith("[SEP]")
    assert any("##" in label for label in labels), labels
    assert len(at.get("download_button")) == 2

    at.selectbox(key="ta_layer").select(2)
    at.selectbox(key="ta_head").select(3).run()
    assert "layer 2 · head 3" in figure(at, "ta_heatmap")["layout"]["title"]["text"]
    at.selectbox(key="ta_head").select("mean").run()
    assert "layer 2 · mean of heads" in figure(at, "ta_heatmap")["layout"]["title"]["text"]

    at.toggle(key="ta_merge").set_value(True).run()
    merged = heatmap_labels(at)
    assert not any("##" in label for label in merged) and len(merged) < len(labels)
    assert any("unbelievably" in label for label in merged), merged
    at.toggle(key="ta_hide").set_value(True).run()
    hidden = heatmap_labels(at)
    assert not any("[CLS]" in label or "[SEP]" in label for label in hidden)
    assert len(hidden) == len(merged) - 2
    # the token view follows the shown labels
    assert len(at.select_slider(key="ta_token").options) == len(hidden)
    assert at.query_params["ta_merge"] == "1" and at.query_params["ta_hide"] == "1"
    assert_clean(at)


def test_empty_text_warns_and_other_fields_survive() -> None:
    at = start("app_pages/text_attention.py")
    at.text_input(key="ta_pair").input("A second sentence.")
    at.text_area(key="ta_text").input("   ").run()
    assert_clean(at)
    assert any("empty" in w.value for w in at.warning)
    assert not at.get("plotly_chart")
    assert at.text_input(key="ta_pair").value == "A second sentence."

    at = start("app_pages/text_rollout.py")
    at.text_input(key="tr_labels").input("weather, sports").run()
    at.text_area(key="tr_text").input("").run()
    assert_clean(at)
    assert any("empty" in w.value for w in at.warning)
    at.text_area(key="tr_text").input("The match was cancelled because of rain.").run()
    assert_clean(at)
    assert at.text_input(key="tr_labels").value == "weather, sports"


def test_text_rollout_labels_probe_and_token_options() -> None:
    at = start("app_pages/text_rollout.py")
    assert len(at.get("plotly_chart")) == 4  # label scores + raw, rollout, gradient rollout
    at.text_input(key="tr_labels").input("weather, sports, cooking").run()
    assert_clean(at)
    chart = figure(at, "tr_scores")
    assert sorted(chart["layout"]["yaxis"]["ticktext"]) == ["cooking", "sports", "weather"]
    # the axis fits the similarities shown (0 kept in view), instead of -1..1 where the bars were slivers
    low, high = chart["layout"]["xaxis"]["range"]
    shown = [s for s in chart["data"][0]["x"]] if isinstance(chart["data"][0]["x"], list) else None
    assert low <= 0.0 < high < 1.0 and high - low < 1.0
    assert chart["data"][0]["textposition"] == "outside" and chart["data"][0]["textfont"]["size"] >= 12
    assert "Gradient target" in " ".join(m.value for m in at.markdown)

    at.text_input(key="tr_labels").input(" , ").run()
    assert_clean(at)
    assert any("label" in w.value for w in at.warning)
    assert any("explain a target" in i.value for i in at.info)

    at.radio(key="tr_mode").set_value("probe").run()
    at.text_input(key="tr_probe").input("A dog lay on the rug.").run()
    assert_clean(at)
    assert "**A dog lay on the rug.**" in " ".join(m.value for m in at.markdown)
    shown = figure(at, "tr_bar_rollout")["data"][0]["x"]
    assert not any("[CLS]" in t for t in shown)  # specials hidden by default here
    at.toggle(key="tr_hide").set_value(False).run()
    assert figure(at, "tr_bar_rollout")["data"][0]["x"][0] == "#0 [CLS]"
    at.selectbox(key="tr_fusion").select("max").run()
    assert_clean(at)


def test_head_comparison_text_grid_and_statistics() -> None:
    at = start("app_pages/head_comparison.py")
    assert not [c for c in at.get("plotly_chart") if "hc_grid_chart" in c.proto.id]
    at.toggle(key="hc_grid").set_value(True).run()
    assert_clean(at)
    grid = figure(at, "hc_grid_chart")
    assert sum(trace["type"] == "heatmap" for trace in grid["data"]) == 6 * 12  # MiniLM: 6 layers x 12 heads
    for stat in ("distance", "self", "entropy"):
        at.selectbox(key="hc_stat").select(stat).run()
        assert_clean(at)
        assert figure(at, "hc_stat_chart")["data"][0]["type"] == "heatmap"
    at.selectbox(key="hc_a_layer").select(1)
    at.selectbox(key="hc_a_head").select(4).run()
    assert "layer 1 · head 4" in figure(at, "hc_a_chart")["layout"]["title"]["text"]
    assert len(at.dataframe[0].value) == 6 * 12


def test_url_state_restores_and_invalid_values_fall_back() -> None:
    at = start("app_pages/text_attention.py", {"ta_layer": "2", "ta_head": "3"})
    assert at.selectbox(key="ta_layer").value == 2
    assert at.selectbox(key="ta_head").value == 3
    assert "layer 2 · head 3" in figure(at, "ta_heatmap")["layout"]["title"]["text"]

    at = start("app_pages/text_attention.py", {"ta_layer": "99", "ta_head": "banana", "ta_merge": "maybe"})
    assert at.selectbox(key="ta_layer").value == 5  # default: last layer
    assert at.selectbox(key="ta_head").value == "mean"
    assert at.toggle(key="ta_merge").value is False


def test_model_that_fails_to_load_shows_an_error_and_the_app_recovers() -> None:
    at = start("app_pages/text_attention.py")
    at.selectbox(key="text_model_choice").select(OTHER).run()
    at.text_input(key="text_model_other").input("nobody/does-not-exist").run()
    assert_clean(at)
    assert any("nobody/does-not-exist" in e.value for e in at.error)
    assert not at.get("plotly_chart")
    at.selectbox(key="text_model_choice").select("minilm").run()
    assert_clean(at)
    assert not at.error
    assert heatmap_labels(at)


@pytest.fixture(scope="module")
def image_app_setup(tiny_checkpoints) -> dict:  # noqa: ANN001 - conftest factory
    """How to point the app at an image model: the bundled one when trained, else a tiny random ViT."""
    if SHAPES_VIT.is_dir() and any(SAMPLES.glob("*.png")):
        return {"bundled": True}
    return {"bundled": False, "directory": str(tiny_checkpoints("vit"))}


def image_app(page: str, setup: dict) -> AppTest:
    at = start()
    if not setup["bundled"]:
        at.selectbox(key="image_model_choice").select(OTHER).run()
        at.text_input(key="image_model_other").input(setup["directory"]).run()
        assert at.session_state["image_model"] == setup["directory"]
    at.switch_page(page).run()
    assert_clean(at)
    return at


def give_image(at: AppTest, prefix: str, setup: dict) -> None:
    if setup["bundled"]:
        at.radio(key=f"{prefix}_source").set_value("sample").run()
    else:
        at.radio(key=f"{prefix}_source").set_value("upload").run()
        at.get("file_uploader")[0].set_value(("scene.png", png_bytes(), "image/png")).run()
    assert_clean(at)


def test_image_page_class_selector_and_tabs(image_app_setup: dict) -> None:
    at = image_app("app_pages/image.py", image_app_setup)
    give_image(at, "im", image_app_setup)
    assert not at.error, [e.value for e in at.error]
    assert [tab.label for tab in at.tabs] == ["Attention", "Methods", "Is this faithful?"]
    images = [c for c in at.get("plotly_chart") if "im_scores" not in c.proto.id]
    assert len(images) == 1  # only the chosen tab is drawn: attention
    assert figure(at, "attention")["data"][0]["type"] == "image"
    open_tab(at, "im_tab", "Methods")
    assert sorted(c.proto.id.split("all_")[-1] for c in at.get("plotly_chart") if "all_" in c.proto.id) == [
        "attention", "gradient-rollout", "rollout"]  # the default methods
    at.multiselect(key="im_methods").select("input-x-gradient").run()
    assert_clean(at)
    signed = figure(at, "all_input-x-gradient")["layout"]["coloraxis"]
    assert signed["cmin"] == -signed["cmax"] and signed["cmax"] > 0  # a signed map: a scale symmetric about zero
    assert "input-x-gradient" in at.query_params["im_methods"].split(",")
    open_tab(at, "im_tab", "Attention")
    classes = at.selectbox(key="im_class").options
    at.selectbox(key="im_class").select(classes[-1]).run()
    assert_clean(at)
    assert f"**{classes[-1]}**" in " ".join(m.value for m in at.markdown)
    at.selectbox(key="im_layer").select(0)
    at.selectbox(key="im_head").select(1)
    at.selectbox(key="im_query").select("0,0").run()
    assert_clean(at)
    title = figure(at, "attention")["layout"]["title"]["text"]
    assert "Layer 0, head 1, from 0,0" in title
    at.selectbox(key="im_fusion").select("min")
    at.slider(key="im_opacity").set_value(0.3).run()
    assert_clean(at)


def test_image_page_shows_a_sample_scenes_ground_truth() -> None:
    """The bundled samples' true classes sit under the picture, beside the model's predictions."""
    truth = json.loads((SAMPLES / "samples.json").read_text())["samples"]
    at = image_app("app_pages/image.py", {"bundled": True})
    give_image(at, "im", {"bundled": True})
    for sample in truth[:2]:
        at.selectbox(key="im_sample").select(sample["file"]).run()
        assert_clean(at)
        assert "Ground truth: " + ", ".join(sample["labels"]) in [c.value for c in at.caption]


def test_image_upload_that_is_not_an_image_gives_a_message(image_app_setup: dict) -> None:
    at = image_app("app_pages/image.py", image_app_setup)
    at.radio(key="im_source").set_value("upload").run()
    at.get("file_uploader")[0].set_value(("notes.png", b"this is not a picture", "image/png")).run()
    assert_clean(at)
    assert at.error and at.error[0].value
    assert not at.get("plotly_chart")


def test_head_comparison_image_grid(image_app_setup: dict) -> None:
    at = image_app("app_pages/head_comparison.py", image_app_setup)
    at.radio(key="hc_kind").set_value("image").run()
    give_image(at, "hc", image_app_setup)
    at.toggle(key="hc_grid").set_value(True).run()
    assert_clean(at)
    grid = figure(at, "hc_grid_chart")
    assert any(trace["type"] in ("heatmap", "image") for trace in grid["data"])
    assert figure(at, "hc_a_chart")["data"][0]["type"] == "image"
    at.selectbox(key="hc_stat").select("distance").run()
    assert_clean(at)


def test_every_method_on_the_text_page_slow_ones_on_request_signed_ones_centred() -> None:
    """The methods multiselect offers every registered method that applies; slow ones run only after their button;
    a signed method is drawn on a scale symmetric about zero, or as its magnitude on request; each shows its time."""
    import explain

    at = start("app_pages/text_rollout.py")
    offered = set(at.multiselect(key="tr_methods").options)
    assert offered == {method.label for method in explain.METHODS.values()}  # MiniLM is inside every family
    at.multiselect(key="tr_methods").select("input-x-gradient").select("integrated-gradients").run()
    assert_clean(at)
    assert not [c for c in at.get("plotly_chart") if "integrated-gradients" in c.proto.id]  # not before it is asked
    assert any(b.label == "Run integrated gradients" for b in at.button)
    [button] = [b for b in at.button if b.label == "Run integrated gradients"]
    button.click().run()
    assert_clean(at)
    bars = figure(at, "tr_bar_integrated-gradients")["data"][0]["marker"]
    assert bars["cmin"] == -bars["cmax"] and array(bars["color"]).min() < 0 < array(bars["color"]).max()
    assert any("completeness gap" in c.value and " ms" in c.value for c in at.caption)
    at.toggle(key="tr_absolute").set_value(True).run()
    bars = figure(at, "tr_bar_input-x-gradient")["data"][0]["marker"]
    assert array(bars["color"]).min() >= 0  # the magnitude, on one sequential scale
    assert "integrated-gradients" in at.query_params["tr_methods"]


def test_a_long_text_keeps_the_url_short_and_a_reload_finds_it() -> None:
    """A pasted page of text: the URL holds a 17-character reference the server resolves, not 25,000 characters."""
    from ui.url import URL_VALUE_LIMIT

    long_text = " ".join(["The cat sat on the mat while the dog lay on the rug."] * 60)  # about 3,200 characters
    at = start("app_pages/text_attention.py")
    at.text_area(key="ta_text").input(long_text).run()
    assert_clean(at)
    reference = at.query_params["text"]
    assert reference.startswith("~") and len(reference) == 17 and len(long_text) > URL_VALUE_LIMIT
    again = start("app_pages/text_attention.py", {"text": reference})  # a new session opening the shared link
    assert again.text_area(key="ta_text").value == long_text
    short = start("app_pages/text_attention.py", {"text": "A short one."})
    assert short.query_params["text"] == "A short one."
    lost = start("app_pages/text_attention.py", {"text": "~0000000000000000"})  # the server no longer has it
    assert any("no longer keeps" in i.value for i in lost.info)
