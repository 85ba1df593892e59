"""The load script (tools/load_test.py): its plan and checks on their own, then its core against a real
server: two browser sessions at once, each must see its own sentence's and its own scene's map, the very
numbers the library computes for that input, and nothing of the other's input."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tools import load_test
from tools.browser import chromium_path, tree_cpu_seconds
from ui.examples import TEXT_EXAMPLES


def test_every_marker_is_one_whole_token_that_no_example_contains(minilm) -> None:  # noqa: ANN001
    assert len(set(load_test.MARKERS)) == len(load_test.MARKERS)
    for marker in load_test.MARKERS:
        assert minilm.tokenizer.tokenize(marker) == [marker]
        assert not load_test.foreign_inputs(TEXT_EXAMPLES, [marker])


def test_plans_give_every_session_its_own_marker_and_its_own_scene_each_round() -> None:
    plans = load_test.make_plans(sessions=8, rounds=3)
    markers = [plan.marker for row in plans for plan in row]
    assert len(set(markers)) == 24
    for row in plans:
        assert len({plan.scene for plan in row}) == 8  # 8 bundled scenes: none shared within a round
        assert all(plan.sentence.lower().startswith(f"{plan.marker} ") for plan in row)
    assert [plans[r][0].scene for r in range(3)] == ["scene_00.png", "scene_01.png", "scene_02.png"]
    assert plans[0][3].scene_labels == tuple(load_test.sample_scenes()["scene_03.png"])
    assert len(load_test.make_plans(1, 1, filler_words=10)[0][0].sentence.split()) == 11 + 10
    with pytest.raises(ValueError, match="use fewer"):
        load_test.make_plans(sessions=8, rounds=len(load_test.MARKERS) // 8 + 1)


def test_foreign_inputs_are_found_as_whole_words_only() -> None:
    page = ["Yesterday the cobras waited.", "?text=the+volcano+waited", "scene_011.png, as the model sees it"]
    assert load_test.foreign_inputs(page, ["cobra", "volcano", "scene_01.png", "scene_011.png"]) == [
        "volcano", "scene_011.png"]
    assert load_test.foreign_inputs(["0 [CLS]", "3 penguin"], ["penguin"]) == ["penguin"]
    assert load_test.foreign_inputs(["a.volcano"], ["volcano"]) == []  # a file or host name, not the word
    assert load_test.foreign_inputs(["Volcano waited near the bridge"], ["volcano"]) == ["volcano"]


def test_a_marker_is_shown_by_its_own_label_or_at_the_end_of_a_token_range() -> None:
    # The labels as viz.plotting.unique_labels and viz.heatmaps' ranges write them.
    assert load_test.marker_shown(["#0 [CLS]", "#1 volcano", "#2 waited"], "volcano")
    assert load_test.marker_shown(["#0–1 [CLS]…volcano", "#2–3 waited…near"], "volcano")
    assert not load_test.marker_shown(["#0 [CLS]", "#1 volcanoes"], "volcano")
    assert not load_test.marker_shown(["#0–1 [CLS]…the", "#2–3 waited…near"], "volcano")
    assert not load_test.marker_shown(["#7 volcano-like"], "volcano")


def test_percentiles_interpolate_between_ranks_as_numpy_does() -> None:
    assert load_test.percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5
    assert load_test.percentile([1.0, 2.0, 3.0, 4.0], 95) == pytest.approx(3.85)  # 3 + 0.85 * (4 - 3)
    assert load_test.percentile([7.0], 95) == 7.0
    values = [0.4, 2.5, 1.1, 9.0, 3.3, 0.9, 5.0]
    assert load_test.percentile(values, 95) == pytest.approx(np.percentile(values, 95))
    assert load_test.timing([]) == {"n": 0, "median": None, "p95": None, "max": None}
    assert load_test.timing([1.0, 3.0]) == {"n": 2, "median": 2.0, "p95": 2.9, "max": 3.0}


def last_layer_mean_attention(loaded, **inputs) -> torch.Tensor:  # noqa: ANN001, ANN003
    """The model's own last-layer attention averaged over heads, (T, T): what the pages draw by default."""
    with torch.no_grad():
        attentions = loaded.model(**inputs, output_attentions=True).attentions
    return attentions[-1][0].float().mean(0)  # (H, T, T) -> (T, T)


def test_two_sessions_at_once_each_see_only_their_own_input(minilm) -> None:  # noqa: ANN001
    if chromium_path() is None:
        pytest.skip("Chromium not found: install Debian's chromium package (apt-get install chromium) to run the load test")
    import models

    summary = load_test.run(sessions=2, rounds=1, timeout=90.0, warm_up=False)

    assert summary["failures"] == [], summary["failures"]
    assert summary["sessions_without_failure"] == 2 and summary["synchronised"]
    visits = {(v.session, v.page): v for v in summary["visits"]}
    assert len(visits) == 4 and all(v.seconds is not None and v.seconds > 0 for v in visits.values())
    assert all(v.server_seconds is not None and v.server_seconds > 0 for v in visits.values())
    assert summary["seconds_to_heatmap"]["all"]["n"] == 4
    plans = load_test.make_plans(2, 1)[0]
    shapes_vit = models.load("shapes-vit", allow_download=False)
    image_maps = []
    for plan in plans:
        text, image = visits[(plan.session, "text")], visits[(plan.session, "image")]
        assert text.own_seen and not text.foreign_seen and image.own_seen and not image.foreign_seen
        # Its own sentence's map: token labels and values of MiniLM's last layer, mean of heads.
        encoded = minilm.tokenizer(plan.sentence, return_tensors="pt")
        tokens = minilm.tokenizer.convert_ids_to_tokens(encoded["input_ids"][0])
        assert text.labels == [f"#{i} {token}" for i, token in enumerate(tokens)]
        expected = last_layer_mean_attention(minilm, **encoded)  # (T, T)
        assert torch.allclose(torch.tensor(text.map), expected, atol=2e-3)  # the page keeps float16 attentions
        # Its own scene's map: [CLS]'s last-layer attention to each patch, mean of heads.
        picture = Image.open(load_test.SAMPLES_DIR / plan.scene).convert("RGB")
        cls_row = last_layer_mean_attention(shapes_vit, pixel_values=shapes_vit.processor(images=picture, return_tensors="pt")["pixel_values"])[0]
        grid = torch.tensor(image.map)  # (rows, cols)
        assert torch.allclose(grid, cls_row[-grid.numel():].reshape(grid.shape), atol=2e-3)
        image_maps.append(grid)
    assert not torch.allclose(image_maps[0], image_maps[1], atol=1e-2)  # two scenes, two different maps


def test_tree_cpu_seconds_counts_a_busy_child_unless_it_is_left_out(tmp_path) -> None:  # noqa: ANN001
    ready = tmp_path / "ready"
    burn = ("import time, pathlib, sys\nend = time.process_time() + 0.6\nwhile time.process_time() < end: pass\n"
            "pathlib.Path(sys.argv[1]).write_text('1')\ntime.sleep(30)")
    child = subprocess.Popen([sys.executable, "-c", burn, str(ready)])
    try:
        while not ready.exists():
            time.sleep(0.05)
        # Read only once the child sleeps: between writing the file and its sleep it still uses a little CPU,
        # which a busy machine can spread over the three readings below.
        while Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "S":
            time.sleep(0.01)
        without = tree_cpu_seconds(os.getpid(), exclude=[child.pid])
        with_child = tree_cpu_seconds(os.getpid())  # this process's own time only grows meanwhile
        alone = tree_cpu_seconds(child.pid)
        assert 0.6 <= alone < 5.0  # its 0.6 s of CPU, plus its start-up
        assert with_child - without >= alone
    finally:
        child.kill()
        child.wait()
