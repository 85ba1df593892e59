"""Training helpers of the ViT: the position code and the mimetic attention initialisation; a killed run resumes
to the weights of an uninterrupted one (the schedule and the loop: tests/test_loop.py)."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import ViTForImageClassification

from training.train_vit import build_config, mimetic_init, sincos_position_embeddings


def test_sincos_position_code_by_hand() -> None:
    code = sincos_position_embeddings(grid=2, dim=4)  # one frequency (1.0) per sin/cos pair
    s1, c1 = math.sin(1.0), math.cos(1.0)
    expected = torch.tensor([
        [0.0, 0.0, 0.0, 0.0],  # [CLS]
        [0.0, 1.0, 0.0, 1.0],  # row 0, col 0
        [0.0, 1.0, s1, c1],    # row 0, col 1
        [s1, c1, 0.0, 1.0],    # row 1, col 0
        [s1, c1, s1, c1],      # row 1, col 1
    ])
    torch.testing.assert_close(code, expected)


def test_sincos_neighbours_are_more_alike_than_far_patches() -> None:
    code = sincos_position_embeddings(grid=8, dim=128)[1:]
    sim = code @ code.T
    assert sim[0, 1] > sim[0, 7] and sim[0, 8] > sim[0, 63]


def _model(init_seed: int | None) -> ViTForImageClassification:
    torch.manual_seed(0)
    config = build_config(hidden_size=64, layers=2, heads=4)
    config._attn_implementation = "eager"
    model = ViTForImageClassification(config).eval()
    if init_seed is not None:
        mimetic_init(model, torch.Generator().manual_seed(init_seed))
    return model


def test_mimetic_value_output_product_is_minus_identity_plus_noise() -> None:
    attention = _model(0).vit.layers[0].attention
    product = attention.v_proj.weight.T @ attention.o_proj.weight.T  # x -> x W_v^T W_o^T
    dim = product.shape[0]
    assert product.diagonal().mean().item() == pytest.approx(-0.4, abs=0.05)
    off = product - torch.diag(product.diagonal())
    assert off.std().item() == pytest.approx(0.4 / math.sqrt(dim), rel=0.2)


def test_mimetic_query_key_product_is_low_rank_and_positive_per_head() -> None:
    attention = _model(0).vit.layers[1].attention
    head_dim = 64 // 4
    for h in range(4):
        rows = slice(h * head_dim, (h + 1) * head_dim)
        product = attention.q_proj.weight[rows].T @ attention.k_proj.weight[rows]
        assert torch.linalg.matrix_rank(product).item() == head_dim
        assert product.trace().item() > 0.2 * 64  # mostly +identity: a token attends to similar tokens


def test_mimetic_init_is_seeded() -> None:
    a, b, c = _model(3), _model(3), _model(4)
    wa, wb, wc = (m.vit.layers[0].attention.q_proj.weight for m in (a, b, c))
    torch.testing.assert_close(wa, wb)
    assert not torch.allclose(wa, wc)


def _mean_attention_distance(model: ViTForImageClassification) -> float:
    torch.manual_seed(1)
    pixels = torch.rand(4, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        attention = model(pixel_values=pixels, output_attentions=True).attentions[0].mean(dim=(0, 1))[1:, 1:]
    index = torch.arange(64)
    rows, cols = index // 8, index % 8
    distance = ((rows[:, None] - rows[None]) ** 2 + (cols[:, None] - cols[None]) ** 2).float().sqrt()
    return float((attention * distance).sum() / attention.sum())


def test_mimetic_init_makes_first_layer_attention_local() -> None:
    """The point of it: attention starts out looking at nearby patches, like a convolution."""
    default, mimetic = _mean_attention_distance(_model(None)), _mean_attention_distance(_model(0))
    assert default > 3.5  # close to uniform over the 8x8 grid (mean pair distance 4.1)
    assert mimetic < default - 0.8


def test_a_killed_run_resumes_to_the_same_weights(tmp_path) -> None:
    """Stopped after 3 of 5 steps and started again, training ends where an uninterrupted run does."""
    from training.train_vit import train

    tiny = dict(batch_size=4, hidden_size=32, layers=1, heads=2, eval_every=5, threads=1, checkpoint_every=2)
    whole = train(5, 7, tmp_path / "whole", None, checkpoints=tmp_path / "ckpt-whole", **tiny)
    stopped = train(5, 7, tmp_path / "resumed", None, checkpoints=tmp_path / "ckpt", stop_after=3, **tiny)
    assert stopped == {"stopped_at": 3}
    assert not (tmp_path / "resumed").exists()
    resumed = train(5, 7, tmp_path / "resumed", None, checkpoints=tmp_path / "ckpt", **tiny)
    a = ViTForImageClassification.from_pretrained(tmp_path / "whole").state_dict()
    b = ViTForImageClassification.from_pretrained(tmp_path / "resumed").state_dict()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0, msg=name)
    assert resumed["val_macro_f1"] == whole["val_macro_f1"] and len(resumed["curve"]) == len(whole["curve"]) == 1
    with pytest.raises(ValueError, match="other settings"):
        train(6, 7, tmp_path / "other", None, checkpoints=tmp_path / "ckpt", **tiny)

