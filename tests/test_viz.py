"""Tests for viz/: exact colours, overlay arithmetic, matrix reduction, figure contents, token HTML."""

from __future__ import annotations

import io
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import plotly.colors
import plotly.graph_objects as go
import pytest
from PIL import Image

from viz import (
    COLORMAPS,
    PLOTLY_CONFIG,
    apply_colormap,
    attention_heatmap,
    head_grid,
    image_overlay_figure,
    legend_html,
    normalize,
    overlay,
    plotly_colorscale,
    reduce_matrix,
    relevance_bar,
    scores_bar,
    stat_heatmap,
    to_png_bytes,
    tokens_html,
    unique_labels,
    upsample_grid,
)
from viz import colormaps as colormaps_module

REPO_ROOT = Path(__file__).resolve().parents[1]


def _rgb(colour: str) -> tuple[int, int, int]:
    """plotly colour string ('#440154' or 'rgb(0,0,131)') -> RGB ints."""
    if colour.startswith("#"):
        return tuple(plotly.colors.hex_to_rgb(colour))
    return tuple(int(round(float(c))) for c in plotly.colors.unlabel_rgb(colour))


# --- colormaps -------------------------------------------------------------------------------

PLOTLY_NAMES = {
    "viridis": "Viridis", "inferno": "Inferno", "magma": "Magma", "plasma": "Plasma",
    "cividis": "Cividis", "turbo": "Turbo", "jet": "Jet", "gray": "gray", "reds": "Reds",
    "blues": "Blues",
}


def test_colormap_names_cover_the_required_set():
    assert set(PLOTLY_NAMES) <= set(COLORMAPS)


@pytest.mark.parametrize("name", sorted(PLOTLY_NAMES))
def test_anchors_are_plotlys_own(name):
    # the literal copies must match plotly, or figures and PIL overlays would differ
    expected = [_rgb(c) for c in getattr(plotly.colors.sequential, PLOTLY_NAMES[name])]
    assert [tuple(a) for a in colormaps_module.colormap_anchors(name).tolist()] == expected
    assert [_rgb(c) for _, c in plotly_colorscale(name)] == expected


def test_viridis_ends_equal_plotly_anchors_exactly():
    colours = apply_colormap(np.array([0.0, 1.0]), "viridis")
    assert colours.dtype == np.uint8
    assert colours.tolist() == [[68, 1, 84], [253, 231, 37]]  # #440154, #fde725
    assert tuple(colours[0]) == _rgb(plotly.colors.sequential.Viridis[0])
    assert tuple(colours[-1]) == _rgb(plotly.colors.sequential.Viridis[-1])


def test_midpoint_interpolates_between_two_anchors(monkeypatch):
    monkeypatch.setitem(colormaps_module._ANCHORS, "two", ((0, 100, 255), (200, 0, 55)))
    colours = apply_colormap(np.array([0.5, 0.25]), "two")
    # (0+200)/2, (100+0)/2, (255+55)/2 ; 0.25: 50, 75, 205
    assert colours.tolist() == [[100, 50, 155], [50, 75, 205]]


def test_interpolation_between_real_anchors():
    # blues has 9 anchors at k/8; 3/16 is halfway between (222,235,247) and (198,219,239)
    assert apply_colormap(np.array(3 / 16), "blues").tolist() == [210, 227, 243]


def test_plotly_colorscale_positions_and_format():
    scale = plotly_colorscale("reds")
    assert scale[0] == [0.0, "rgb(255,245,240)"]
    assert scale[-1] == [1.0, "rgb(103,0,13)"]
    assert [p for p, _ in scale] == pytest.approx(np.linspace(0, 1, 9).tolist())


def test_apply_colormap_keeps_shape_and_clips():
    values = np.array([[[-1.0, 0.0], [1.0, 2.0]]])
    colours = apply_colormap(values, "gray")
    assert colours.shape == (1, 2, 2, 3)
    assert colours[0, 0, 0].tolist() == colours[0, 0, 1].tolist() == [0, 0, 0]
    assert colours[0, 1, 0].tolist() == colours[0, 1, 1].tolist() == [254, 254, 253]


def test_unknown_colormap_raises_with_valid_names():
    with pytest.raises(ValueError) as error:
        apply_colormap(np.zeros(3), "rainbow")
    message = str(error.value)
    assert "rainbow" in message
    for name in COLORMAPS:
        assert name in message
    with pytest.raises(ValueError, match="viridis"):
        plotly_colorscale("Viridis")  # names are lower case; no silent fallback


def test_apply_colormap_rejects_nan():
    with pytest.raises(ValueError, match="NaN"):
        apply_colormap(np.array([0.1, np.nan]), "viridis")


# --- overlay ---------------------------------------------------------------------------------

@pytest.fixture
def image() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(8, 6, 3), dtype=np.uint8)


GRID = np.array([[0.0, 1.0, 2.0], [3.0, 4.0, 8.0]])


def test_opacity_zero_returns_image_unchanged(image):
    out = overlay(image, GRID, opacity=0.0)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, image)


def test_opacity_one_returns_pure_colormap(image):
    out = overlay(image, GRID, colormap="viridis", opacity=1.0, smooth=False)
    expected_grid = apply_colormap(GRID / 8.0, "viridis")  # (2, 3, 3), min 0 max 8
    expected = np.repeat(np.repeat(expected_grid, 4, axis=0), 2, axis=1)  # 8x6 image, 4x2 blocks
    np.testing.assert_array_equal(out, expected)


def test_half_opacity_is_the_rounded_average(image):
    out = overlay(image, np.zeros((2, 2)), colormap="gray", opacity=0.5)
    # constant grid -> normalised zeros -> black; blend = image / 2
    np.testing.assert_array_equal(out, np.rint(image / 2.0).astype(np.uint8))


def test_overlay_rejects_bad_inputs(image):
    with pytest.raises(ValueError, match="uint8"):
        overlay(image.astype(np.float32), GRID)
    with pytest.raises(ValueError, match="opacity"):
        overlay(image, GRID, opacity=1.5)


def test_upsample_nearest_gives_blocks():
    grid = np.array([[1.0, 2.0], [3.0, 4.0]])
    expected = np.array([[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]], dtype=float)
    np.testing.assert_array_equal(upsample_grid(grid, 4, 4, smooth=False), expected)


def test_upsample_bilinear_hand_values():
    grid = np.array([[1.0, 2.0], [3.0, 4.0]])
    out = upsample_grid(grid, 4, 4, smooth=True)
    # pixel centres: source coordinates -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to 1)
    expected = np.array([
        [1.0, 1.25, 1.75, 2.0],
        [1.5, 1.75, 2.25, 2.5],
        [2.5, 2.75, 3.25, 3.5],
        [3.0, 3.25, 3.75, 4.0],
    ])
    np.testing.assert_allclose(out, expected)


def test_upsample_bilinear_matches_pil():
    grid = np.random.default_rng(1).random((14, 14)).astype(np.float32)
    pil = Image.fromarray(grid, mode="F").resize((224, 224), Image.Resampling.BILINEAR)
    np.testing.assert_allclose(upsample_grid(grid, 224, 224), np.asarray(pil), atol=1e-5)


def test_normalize_constant_gives_zeros():
    out = normalize(np.full((3, 4), 7.5))
    assert out.shape == (3, 4)
    assert np.all(out == 0.0)


def test_normalize_min_max_and_explicit_range():
    np.testing.assert_allclose(normalize(np.array([2.0, 4.0, 6.0])), [0.0, 0.5, 1.0])
    np.testing.assert_allclose(normalize(np.array([2.0, 4.0, 6.0]), vmin=0.0, vmax=4.0), [0.5, 1.0, 1.0])


def test_to_png_bytes_round_trips(image):
    decoded = np.asarray(Image.open(io.BytesIO(to_png_bytes(image))))
    np.testing.assert_array_equal(decoded, image)


# --- reduce_matrix / unique_labels ---------------------------------------------------------

def test_reduce_matrix_hand_computed_blocks():
    matrix = np.arange(16, dtype=float).reshape(4, 4)
    reduced, row_groups, col_groups = reduce_matrix(matrix, 2)
    # rows averaged, columns summed: top-left = mean(0+1, 4+5) = 5
    expected = np.array([
        [(0 + 1 + 4 + 5) / 2, (2 + 3 + 6 + 7) / 2],
        [(8 + 9 + 12 + 13) / 2, (10 + 11 + 14 + 15) / 2],
    ])
    np.testing.assert_array_equal(reduced, expected)
    assert row_groups == [(0, 2), (2, 4)]
    assert col_groups == [(0, 2), (2, 4)]


def test_reduce_matrix_keeps_rows_stochastic():
    rng = np.random.default_rng(2)
    matrix = rng.random((300, 300))
    matrix /= matrix.sum(axis=-1, keepdims=True)
    reduced, row_groups, col_groups = reduce_matrix(matrix, 128)
    assert reduced.shape == (len(row_groups), len(col_groups)) == (100, 100)
    np.testing.assert_allclose(reduced.sum(axis=-1), 1.0)


def test_reduce_matrix_uneven_and_small():
    reduced, row_groups, _ = reduce_matrix(np.ones((5, 3)), 2)
    assert row_groups == [(0, 3), (3, 5)]
    np.testing.assert_array_equal(reduced, [[2.0, 1.0], [2.0, 1.0]])  # column groups (0,2), (2,3)
    small = np.random.default_rng(3).random((3, 4))
    same, rows, cols = reduce_matrix(small, 10)
    np.testing.assert_array_equal(same, small)
    assert rows == [(0, 1), (1, 2), (2, 3)]


def test_unique_labels_prefix_position():
    assert unique_labels(["the", "cat", "the"]) == ["#0 the", "#1 cat", "#2 the"]


# --- figures ---------------------------------------------------------------------------------

def test_attention_heatmap_content_and_order():
    tokens = ["[CLS]", "the", "cat", "the", "<s>"]
    matrix = np.random.default_rng(4).random((5, 5)).astype(np.float32)
    fig = attention_heatmap(matrix, tokens, tokens, title="Layer 0", zmin=0.0, zmax=1.0)
    assert isinstance(fig, go.Figure)
    trace = fig.data[0]
    np.testing.assert_array_equal(np.asarray(trace.z), matrix)
    assert list(trace.x) == ["#0 [CLS]", "#1 the", "#2 cat", "#3 the", "#4 &lt;s&gt;"]
    assert list(trace.y) == list(trace.x)
    assert fig.layout.yaxis.autorange == "reversed"  # first query on top
    assert (trace.zmin, trace.zmax) == (0.0, 1.0)
    assert fig.layout.title.text == "Layer 0"
    assert fig.layout.xaxis.title.text == "key token"
    assert fig.layout.yaxis.title.text == "query token"
    assert "→" in trace.hovertemplate
    assert _rgb(trace.colorscale[0][1]) == (68, 1, 84)


def test_attention_heatmap_reduces_long_inputs():
    tokens = [f"t{i}" for i in range(512)]
    matrix = np.full((512, 512), 1.0 / 512)
    fig = attention_heatmap(matrix, tokens, tokens)
    z = np.asarray(fig.data[0].z)
    assert z.shape == (256, 256)
    np.testing.assert_allclose(z.sum(axis=1), 1.0, rtol=1e-5)
    assert fig.data[0].y[0] == "#0–1 t0…t1"
    assert "reduced" in fig.layout.title.text


def test_attention_heatmap_shape_mismatch_raises():
    with pytest.raises(ValueError, match="labels"):
        attention_heatmap(np.zeros((2, 3)), ["a", "b"], ["a", "b"])


def test_head_grid_shares_one_coloraxis():
    maps = np.random.default_rng(5).random((2, 3, 4, 4))
    fig = head_grid(maps, layers=[4, 7], zmin=0.0, zmax=0.5, colormap="magma")
    assert len(fig.data) == 6
    assert {trace.coloraxis for trace in fig.data} == {"coloraxis"}
    assert (fig.layout.coloraxis.cmin, fig.layout.coloraxis.cmax) == (0.0, 0.5)
    assert _rgb(fig.layout.coloraxis.colorscale[0][1]) == (0, 0, 4)
    assert [a.text for a in fig.layout.annotations] == [
        "L4 H0", "L4 H1", "L4 H2", "L7 H0", "L7 H1", "L7 H2",
    ]
    # layer-major order, each trace on its own axes
    np.testing.assert_allclose(np.asarray(fig.data[4].z), maps[1, 1], rtol=1e-6)
    assert fig.data[4].xaxis == "x5" and fig.data[4].yaxis == "y5"
    assert fig.layout.xaxis5.showticklabels is False


def test_head_grid_default_scale_is_global_and_image_cells_are_square():
    maps = np.arange(2 * 2 * 3 * 3, dtype=float).reshape(2, 2, 3, 3)
    fig = head_grid(maps, cells="image")
    assert (fig.layout.coloraxis.cmin, fig.layout.coloraxis.cmax) == (0.0, 35.0)
    assert fig.layout.yaxis3.scaleanchor == "x3"
    with pytest.raises(ValueError, match="cells"):
        head_grid(maps, cells="images")


def test_head_grid_is_fast_for_12x12_heads():
    maps = np.random.default_rng(6).random((12, 12, 64, 64))
    start = time.perf_counter()
    fig = head_grid(maps)
    fig.to_json()
    assert len(fig.data) == 144
    assert time.perf_counter() - start < 5.0  # generous; ~0.3-1 s here, 10+ s with per-axis updates


def test_stat_heatmap_shape_and_text():
    values = np.arange(6, dtype=float).reshape(2, 3)
    fig = stat_heatmap(values, title="Entropy", value_label="entropy (nats)")
    np.testing.assert_array_equal(np.asarray(fig.data[0].z), values)
    assert list(fig.data[0].x) == ["0", "1", "2"]
    assert list(fig.data[0].y) == ["0", "1"]
    assert fig.data[0].texttemplate is not None
    assert "entropy (nats)" in fig.data[0].hovertemplate
    assert fig.layout.xaxis.title.text == "head" and fig.layout.yaxis.title.text == "layer"


def test_relevance_bar_values_in_token_order():
    fig = relevance_bar(["a", "b", "a"], np.array([0.1, 0.7, 0.2]))
    assert list(fig.data[0].x) == ["#0 a", "#1 b", "#2 a"]
    np.testing.assert_array_equal(np.asarray(fig.data[0].y), [0.1, 0.7, 0.2])
    horizontal = relevance_bar(["a", "b"], np.array([0.1, 0.7]), orientation="h")
    assert list(horizontal.data[0].y) == ["#0 a", "#1 b"]
    assert horizontal.layout.yaxis.autorange == "reversed"


def test_image_overlay_figure_image_and_highlight(image):
    fig = image_overlay_figure(image, GRID, opacity=0.0, highlight_patch=(1, 2))
    picture = np.asarray(fig.data[0].z)
    assert picture.shape == (8, 6, 3)
    np.testing.assert_array_equal(picture, image)  # opacity 0
    rect = [s for s in fig.layout.shapes if s.type == "rect"][0]
    # patch (1, 2) of a 2x3 grid over 8x6 pixels: rows 4..8, cols 4..6 (pixel edges at -0.5)
    assert (rect.x0, rect.x1, rect.y0, rect.y1) == (3.5, 5.5, 3.5, 7.5)
    assert fig.layout.xaxis.visible is False and fig.layout.yaxis.scaleanchor == "x"
    with pytest.raises(ValueError, match="outside"):
        image_overlay_figure(image, GRID, highlight_patch=(2, 0))


def test_scores_bar_sorted_descending():
    fig = scores_bar(["cat", "dog", "car", "cat"], [0.1, 0.6, 0.05, 0.25], title="Zero-shot")
    np.testing.assert_array_equal(np.asarray(fig.data[0].x), [0.6, 0.25, 0.1, 0.05])
    assert list(fig.layout.yaxis.ticktext) == ["dog", "cat", "cat", "car"]
    assert fig.layout.xaxis.range == pytest.approx((0, 1.12))  # room beside the longest bar for its number
    assert fig.data[0].textposition == "outside" and fig.data[0].textfont.size >= 12  # not shrunk into the bar
    assert fig.layout.xaxis.exponentformat == "power"  # 2×10⁻⁵, never "20µ"
    top = scores_bar(["a", "b", "c"], [0.2, 0.5, 0.3], top_k=2)
    assert list(top.layout.yaxis.ticktext) == ["b", "c"]
    with pytest.raises(ValueError, match="softmax"):
        scores_bar(["a"], [3.2])
    with pytest.raises(ValueError, match="zmin=-1.0"):
        scores_bar(["a", "b"], [0.4, -0.1])  # cosine similarities need the wider axis
    similarities = scores_bar(["a", "b"], [0.4, -0.1], zmin=-1.0)
    assert similarities.layout.xaxis.range == pytest.approx((-1.0, 1.24))
    np.testing.assert_array_equal(np.asarray(similarities.data[0].x), [0.4, -0.1])
    fitted = scores_bar(["a", "b", "c"], [0.31, 0.22, 0.18], zmin=-1.0, fit_axis=True)
    low, high = fitted.layout.xaxis.range
    assert low == 0.0 and 0.31 < high < 0.4  # the bars fill the axis instead of a -1..1 sliver
    marked = scores_bar(["a", "b"], [0.7, 0.3], threshold=0.5)
    assert marked.layout.shapes[0].x0 == 0.5 and marked.layout.shapes[0].line.dash == "dash"


def test_plotly_config_downloads_png():
    assert PLOTLY_CONFIG["displaylogo"] is False
    assert PLOTLY_CONFIG["toImageButtonOptions"]["format"] == "png"
    assert PLOTLY_CONFIG["toImageButtonOptions"]["scale"] == 2


# --- tokens_html -----------------------------------------------------------------------------

def test_tokens_html_escapes():
    out = tokens_html(["<script>", "&", 'a"b'], np.array([0.0, 0.5, 1.0]))
    assert "<script>" not in out
    assert ">&lt;script&gt;</span>" in out
    assert ">&amp;</span>" in out
    assert 'title="#2 a&quot;b: 1.0"' in out


def test_tokens_html_spaces_and_titles():
    out = tokens_html(["[CLS]", "play", "ing", "[SEP]"], np.array([0.5, 0.25, 0.125, 0.9]),
                      spaces=[False, True, False, True], special=[True, False, False, True])
    assert '</span><span data-index="2"' in out  # "play" and "ing" glued, no space between spans
    assert 'title="#1 play: 0.25"' in out
    assert 'title="#2 ing: 0.125"' in out
    assert 'title="#3 [SEP]: 0.9"' in out
    assert ' <span data-index="1"' in out and ' <span data-index="2"' not in out
    with pytest.raises(ValueError, match="one space flag and one special flag per token"):
        tokens_html(["a", "b"], np.array([0.1, 0.2]), spaces=[True])


def test_tokens_html_default_spaces_between_every_token():
    out = tokens_html(["a", "b", "c"], np.array([0.1, 0.2, 0.3]))
    assert '<span data-index="0"' in out and ' <span data-index="0"' not in out
    assert ' <span data-index="1"' in out and ' <span data-index="2"' in out


def test_tokens_html_colours_and_contrast():
    out = tokens_html(["low", "high", "[SEP]"], np.array([0.0, 1.0, 5.0]), colormap="reds", special=[False, False, True])
    # [SEP] is left out of the scale, so low -> first anchor, high -> last anchor
    assert "background-color:rgb(255,245,240);color:#000" in out
    assert "background-color:rgb(103,0,13);color:#fff" in out


def test_tokens_html_selected_and_validation():
    out = tokens_html(["a", "b"], np.array([0.2, 0.4]), selected=1)
    second = out.split('data-index="1"')[1]
    assert "outline" in second and "outline" not in out.split('data-index="1"')[0]
    with pytest.raises(ValueError, match="normalize"):
        tokens_html(["a"], np.array([2.0]), normalize=False)
    with pytest.raises(ValueError, match="one weight per token"):
        tokens_html(["a", "b"], np.array([0.2]))


def test_legend_html_shows_range_and_gradient():
    out = legend_html("blues", 0.0, 0.75)
    assert ">0</span>" in out and ">0.75</span>" in out
    assert "rgb(247,251,255) 0.0%" in out and "rgb(8,48,107) 100.0%" in out


# --- import boundaries -----------------------------------------------------------------------

def test_overlay_path_does_not_import_plotly_torch_or_streamlit():
    code = (
        "import sys\n"
        "from viz.overlay import overlay, to_png_bytes\n"
        "import viz, viz.colormaps, viz.tokens\n"
        "bad = {'plotly', 'torch', 'streamlit'} & set(sys.modules)\n"
        "assert not bad, bad\n"
        "import viz.heatmaps, viz.bars, viz.image_figures\n"
        "bad = {'torch', 'streamlit'} & set(sys.modules)\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True)
