"""Attention rollout, gradient rollout and relevance: hand-worked numbers, invariants, a loop reference.

Notation: A_l is layer l's attention (H, T, T); G_l its gradient; I the identity.
attention rollout: J = I; per layer F = fuse_h(A_l), zero the floor(r*T) smallest of each row,
    B = (F + I) / rowsum, J = B @ J.
gradient rollout: R = I; per layer Abar = mean_h relu(G_l * A_l); R = R + Abar @ R.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from explain import (
    Capture,
    ImageCapture,
    explain_capture,
    input_relevance,
    layer_attention,
    patch_grid,
    patch_tokens,
)
from explain.capture import pooling_weights_for
from explain.rollout import (
    HEAD_FUSIONS,
    attention_rollout,
    combine_layers,
    discard_smallest,
    fuse_heads,
    gradient_rollout,
    gradient_weighted,
    normalise_rows,
)
from models import IMAGE, TEXT

# Two layers, two heads, two tokens; every row sums to 1.
A_HAND = torch.tensor(
    [
        [[[1.0, 0.0], [0.5, 0.5]], [[0.6, 0.4], [0.0, 1.0]]],  # layer 0: head 0, head 1
        [[[0.5, 0.5], [0.5, 0.5]], [[0.5, 0.5], [1.0, 0.0]]],  # layer 1
    ],
    dtype=torch.float64,
)
G_HAND = torch.tensor(
    [
        [[[1.0, -1.0], [2.0, 0.0]], [[0.0, 1.0], [-1.0, 1.0]]],
        [[[2.0, 0.0], [0.0, -2.0]], [[0.0, 2.0], [1.0, 0.0]]],
    ],
    dtype=torch.float64,
)


def random_attention(*shape: int, generator: torch.Generator, dtype=torch.float64) -> torch.Tensor:
    """Random row-stochastic tensor with sharp rows (softmax of scaled normals)."""
    return torch.softmax(3 * torch.randn(*shape, generator=generator, dtype=dtype), dim=-1)


# ----------------------------------------------------------------------------- head fusion, discard


def test_fuse_heads_by_hand():
    layer0 = A_HAND[0]
    # mean: ([1,0]+[.6,.4])/2, ([.5,.5]+[0,1])/2
    assert torch.equal(fuse_heads(layer0, "mean"), torch.tensor([[0.8, 0.2], [0.25, 0.75]], dtype=torch.float64))
    assert torch.equal(fuse_heads(layer0, "max"), torch.tensor([[1.0, 0.4], [0.5, 1.0]], dtype=torch.float64))
    assert torch.equal(fuse_heads(layer0, "min"), torch.tensor([[0.6, 0.0], [0.0, 0.5]], dtype=torch.float64))


def test_discard_smallest_zeroes_the_smallest_entries_of_each_row():
    fused = torch.tensor([[0.1, 0.4, 0.2, 0.3], [0.7, 0.05, 0.15, 0.1]])
    # r = 0.5, T = 4: floor(2) entries per row
    expected = torch.tensor([[0.0, 0.4, 0.0, 0.3], [0.7, 0.0, 0.15, 0.0]])
    assert torch.equal(discard_smallest(fused, 0.5), expected)
    # r = 0.3: floor(1.2) = 1 entry per row
    assert torch.equal(discard_smallest(fused, 0.3), torch.tensor([[0.0, 0.4, 0.2, 0.3], [0.7, 0.0, 0.15, 0.1]]))
    # r small enough that floor(r*T) = 0: unchanged
    assert torch.equal(discard_smallest(fused, 0.2), fused)


def test_discard_smallest_ties_follow_topk():
    fused = torch.full((1, 4), 0.25)
    out = discard_smallest(fused, 0.25)  # exactly one of four equal entries
    zeroed = fused.topk(1, dim=-1, largest=False).indices
    expected = fused.clone()
    expected[0, zeroed[0]] = 0.0
    assert torch.equal(out, expected)
    assert int((out == 0).sum()) == 1
    assert float(out.sum()) == pytest.approx(0.75)


# ----------------------------------------------------------------------------- attention rollout by hand


def test_rollout_mean_by_hand():
    # B0 = ([[.8,.2],[.25,.75]] + I) / 2 = [[.9,.1],[.125,.875]]
    # B1 = ([[.5,.5],[.75,.25]] + I) / 2 = [[.75,.25],[.375,.625]]
    # J = B1 @ B0 = [[.75*.9+.25*.125, .75*.1+.25*.875], [.375*.9+.625*.125, .375*.1+.625*.875]]
    expected = torch.tensor([[0.70625, 0.29375], [0.415625, 0.584375]], dtype=torch.float64)
    torch.testing.assert_close(attention_rollout(A_HAND), expected, rtol=0, atol=1e-12)


def test_rollout_max_by_hand():
    # B0 = [[2,.4],[.5,2]] / [2.4, 2.5] = [[5/6,1/6],[.2,.8]]
    # B1 = [[1.5,.5],[1,1.5]] / [2, 2.5] = [[.75,.25],[.4,.6]]
    # J = B1 @ B0
    expected = torch.tensor(
        [[0.75 * 5 / 6 + 0.25 * 0.2, 0.75 / 6 + 0.25 * 0.8], [0.4 * 5 / 6 + 0.6 * 0.2, 0.4 / 6 + 0.6 * 0.8]],
        dtype=torch.float64,
    )
    torch.testing.assert_close(expected, torch.tensor([[0.675, 0.325], [0.4533333333333333, 0.5466666666666666]], dtype=torch.float64))
    torch.testing.assert_close(attention_rollout(A_HAND, "max"), expected, rtol=0, atol=1e-12)


def test_rollout_min_and_start_layer_by_hand():
    # start_layer=1 skips layer 0: J = B1 only.
    # min over heads of layer 1: [[.5,.5],[.5,0]]; B1 = [[1.5,.5],[.5,1]] / [2, 1.5]
    expected_min = torch.tensor([[0.75, 0.25], [1 / 3, 2 / 3]], dtype=torch.float64)
    torch.testing.assert_close(attention_rollout(A_HAND, "min", start_layer=1), expected_min, rtol=0, atol=1e-12)
    # mean: B1 = [[.75,.25],[.375,.625]]
    expected_mean = torch.tensor([[0.75, 0.25], [0.375, 0.625]], dtype=torch.float64)
    torch.testing.assert_close(attention_rollout(A_HAND, "mean", start_layer=1), expected_mean, rtol=0, atol=1e-12)


def test_rollout_discard_by_hand():
    attention = torch.tensor(
        [[[[0.5, 0.3, 0.2], [0.1, 0.6, 0.3], [0.25, 0.15, 0.6]]]], dtype=torch.float64
    )  # (L=1, H=1, T=3)
    # r = 0.34: floor(1.02) = 1 smallest per row -> [[.5,.3,0],[0,.6,.3],[.25,0,.6]]
    # + I -> [[1.5,.3,0],[0,1.6,.3],[.25,0,1.6]], row sums 1.8, 1.9, 1.85
    expected = torch.tensor(
        [[1.5 / 1.8, 0.3 / 1.8, 0.0], [0.0, 1.6 / 1.9, 0.3 / 1.9], [0.25 / 1.85, 0.0, 1.6 / 1.85]],
        dtype=torch.float64,
    )
    torch.testing.assert_close(attention_rollout(attention, discard_ratio=0.34), expected, rtol=0, atol=1e-12)


def test_one_layer_without_discard_is_half_attention_plus_identity():
    gen = torch.Generator().manual_seed(1)
    attention = random_attention(1, 4, 6, 6, generator=gen)
    fused = attention[0].mean(0)
    expected = (fused + torch.eye(6, dtype=torch.float64)) / 2
    torch.testing.assert_close(attention_rollout(attention), expected, rtol=0, atol=1e-12)


def test_combine_layers_by_hand_latest_layer_on_the_left():
    c0 = torch.tensor([[1.0, 0.0], [0.25, 0.75]])
    c1 = torch.tensor([[0.5, 0.5], [0.0, 1.0]])
    # C_1 @ C_0 = [[0.5 + 0.125, 0.375], [0.25, 0.75]]; C_0 @ C_1 would give [[0.5, 0.5], [0.125, 0.875]]
    torch.testing.assert_close(combine_layers(torch.stack([c0, c1])), torch.tensor([[0.625, 0.375], [0.25, 0.75]]))
    single = torch.stack([c0])
    joint = combine_layers(single)
    torch.testing.assert_close(joint, c0)
    assert joint.data_ptr() != single.data_ptr()  # a new tensor, not a view of the input


def test_normalise_rows_by_hand_and_an_empty_row_keeps_its_token():
    scores = torch.tensor([[1.0, 3.0, 0.0], [0.0, 0.0, 0.0], [2.0, 2.0, 4.0]])
    expected = torch.tensor([[0.25, 0.75, 0.0], [0.0, 1.0, 0.0], [0.25, 0.25, 0.5]])
    torch.testing.assert_close(normalise_rows(scores), expected)
    torch.testing.assert_close(normalise_rows(torch.stack([scores, scores])), torch.stack([expected, expected]))


@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (2, 3, 4, 4), (6, 12, 9, 9), (3, 2, 5, 4, 17, 17)])
@pytest.mark.parametrize("head_fusion", HEAD_FUSIONS)
@pytest.mark.parametrize("discard_ratio", [0.0, 0.5])
def test_rollout_rows_sum_to_one(shape, head_fusion, discard_ratio):
    gen = torch.Generator().manual_seed(sum(shape))
    attentions = random_attention(*shape, generator=gen)
    joint = attention_rollout(attentions, head_fusion, discard_ratio)
    assert joint.shape == shape[:-4] + shape[-2:]
    torch.testing.assert_close(joint.sum(-1), torch.ones(joint.shape[:-1], dtype=torch.float64))
    assert bool((joint >= 0).all())


# ----------------------------------------------------------------------------- gradient rollout by hand


def test_gradient_rollout_by_hand():
    # layer 0: G*A head0 = [[1,0],[1,0]], head1 = [[0,.4],[0,1]] -> Abar0 = [[.5,.2],[.5,.5]]
    # R1 = I + Abar0 = [[1.5,.2],[.5,1.5]]
    # layer 1: G*A head0 = [[1,0],[0,-1]] -> relu [[1,0],[0,0]]; head1 = [[0,1],[1,0]] -> Abar1 = [[.5,.5],[.5,0]]
    # Abar1 @ R1 = [[.5*1.5+.5*.5, .5*.2+.5*1.5], [.5*1.5, .5*.2]] = [[1,.85],[.75,.1]]
    # R2 = R1 + Abar1 @ R1 = [[2.5,1.05],[1.25,1.6]]
    expected = torch.tensor([[2.5, 1.05], [1.25, 1.6]], dtype=torch.float64)
    torch.testing.assert_close(gradient_rollout(gradient_weighted(A_HAND, G_HAND)), expected, rtol=0, atol=1e-12)
    # start_layer=1: R = I + Abar1
    torch.testing.assert_close(
        gradient_rollout(gradient_weighted(A_HAND, G_HAND), start_layer=1),
        torch.tensor([[1.5, 0.5], [0.5, 1.0]], dtype=torch.float64), rtol=0, atol=1e-12,
    )


def test_gradient_rollout_relu_per_head_before_mean():
    attention = torch.full((1, 2, 2, 2), 0.5, dtype=torch.float64)
    gradient = torch.zeros(1, 2, 2, 2, dtype=torch.float64)
    gradient[0, 0, 0, 0] = 2.0  # G*A = +1 in head 0
    gradient[0, 1, 0, 0] = -4.0  # G*A = -2 in head 1
    # relu then mean: (1 + 0) / 2 = 0.5 -> R = I + [[.5,0],[0,0]]
    # (mean then relu would give relu(-0.5) = 0 -> R = I)
    expected = torch.tensor([[1.5, 0.0], [0.0, 1.0]], dtype=torch.float64)
    torch.testing.assert_close(gradient_rollout(gradient_weighted(attention, gradient)), expected, rtol=0, atol=0)


def test_gradient_rollout_all_negative_products_are_clipped():
    gen = torch.Generator().manual_seed(2)
    attentions = random_attention(3, 2, 5, 5, generator=gen)
    gradients = -torch.rand(3, 2, 5, 5, generator=gen, dtype=torch.float64)
    assert torch.equal(gradient_rollout(gradient_weighted(attentions, gradients)), torch.eye(5, dtype=torch.float64))


def test_gradient_rollout_zero_gradients_is_identity():
    gen = torch.Generator().manual_seed(3)
    attentions = random_attention(4, 3, 7, 7, generator=gen)
    assert torch.equal(gradient_rollout(gradient_weighted(attentions, torch.zeros_like(attentions))), torch.eye(7, dtype=torch.float64))


# ----------------------------------------------------------------------------- loop reference


def reference_attention_rollout(attentions: np.ndarray, head_fusion: str, discard_ratio: float, start_layer: int) -> np.ndarray:
    """Plain loops over layers, rows and entries; (L, H, T, T) -> (T, T)."""
    layers, heads, tokens, _ = attentions.shape
    joint = [[1.0 if i == j else 0.0 for j in range(tokens)] for i in range(tokens)]
    for layer in range(start_layer, layers):
        block = []
        for q in range(tokens):
            row = []
            for k in range(tokens):
                values = [attentions[layer, h, q, k] for h in range(heads)]
                if head_fusion == "mean":
                    row.append(sum(values) / heads)
                elif head_fusion == "max":
                    row.append(max(values))
                else:
                    row.append(min(values))
            count = math.floor(discard_ratio * tokens)
            for k in sorted(range(tokens), key=lambda index: row[index])[:count]:
                row[k] = 0.0  # random inputs: no ties
            row[q] += 1.0
            total = sum(row)
            block.append([value / total for value in row])
        joint = [
            [sum(block[i][m] * joint[m][j] for m in range(tokens)) for j in range(tokens)] for i in range(tokens)
        ]
    return np.array(joint)


def reference_gradient_rollout(attentions: np.ndarray, gradients: np.ndarray, start_layer: int) -> np.ndarray:
    layers, heads, tokens, _ = attentions.shape
    relevance = [[1.0 if i == j else 0.0 for j in range(tokens)] for i in range(tokens)]
    for layer in range(start_layer, layers):
        bar = [
            [
                sum(max(0.0, gradients[layer, h, q, k] * attentions[layer, h, q, k]) for h in range(heads)) / heads
                for k in range(tokens)
            ]
            for q in range(tokens)
        ]
        relevance = [
            [relevance[i][j] + sum(bar[i][m] * relevance[m][j] for m in range(tokens)) for j in range(tokens)]
            for i in range(tokens)
        ]
    return np.array(relevance)


@pytest.mark.parametrize("head_fusion", HEAD_FUSIONS)
@pytest.mark.parametrize("discard_ratio", [0.0, 0.3])
@pytest.mark.parametrize("start_layer", [0, 1, 3])
def test_rollout_matches_loop_reference_with_batch(head_fusion, discard_ratio, start_layer):
    gen = torch.Generator().manual_seed(10 + start_layer)
    attentions = random_attention(2, 4, 3, 6, 6, generator=gen)  # (B, L, H, T, T)
    joint = attention_rollout(attentions, head_fusion, discard_ratio, start_layer)
    assert joint.shape == (2, 6, 6)
    for item in range(2):
        expected = reference_attention_rollout(attentions[item].numpy(), head_fusion, discard_ratio, start_layer)
        np.testing.assert_allclose(joint[item].numpy(), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("start_layer", [0, 1, 3])
def test_gradient_rollout_matches_loop_reference_with_batch(start_layer):
    gen = torch.Generator().manual_seed(20 + start_layer)
    attentions = random_attention(2, 4, 3, 5, 5, generator=gen)
    gradients = torch.randn(2, 4, 3, 5, 5, generator=gen, dtype=torch.float64)
    relevance = gradient_rollout(gradient_weighted(attentions, gradients), start_layer)
    assert relevance.shape == (2, 5, 5)
    for item in range(2):
        expected = reference_gradient_rollout(attentions[item].numpy(), gradients[item].numpy(), start_layer)
        np.testing.assert_allclose(relevance[item].numpy(), expected, rtol=0, atol=1e-12)


def test_batched_equals_unbatched_and_keeps_dtype_and_device():
    gen = torch.Generator().manual_seed(4)
    attentions = random_attention(3, 2, 2, 4, 4, generator=gen)
    gradients = torch.randn(3, 2, 2, 4, 4, generator=gen, dtype=torch.float64)
    joint = attention_rollout(attentions, "max", 0.25, 0)
    relevance = gradient_rollout(gradient_weighted(attentions, gradients))
    # Batched and single matrix products may take different BLAS kernels (summation order), so equal
    # to float64 rounding, not bit for bit.
    for item in range(3):
        torch.testing.assert_close(joint[item], attention_rollout(attentions[item], "max", 0.25, 0), rtol=0, atol=1e-14)
        torch.testing.assert_close(relevance[item], gradient_rollout(gradient_weighted(attentions[item], gradients[item])), rtol=0, atol=1e-14)
    assert joint.dtype == relevance.dtype == torch.float64
    assert joint.device == relevance.device == attentions.device
    single = attentions[0].float()
    assert attention_rollout(single).dtype == torch.float32
    assert gradient_rollout(gradient_weighted(single, gradients[0].float())).dtype == torch.float32
    meta = torch.empty(2, 2, 4, 4, device="meta")  # the only non-CPU device on this machine
    assert attention_rollout(meta, discard_ratio=0.5).device.type == "meta"
    assert gradient_rollout(gradient_weighted(meta, meta)).device.type == "meta"


# ----------------------------------------------------------------------------- bad options


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: attention_rollout(A_HAND, "median"), "mean, max, min"),
        (lambda: fuse_heads(A_HAND, "sum"), "mean, max, min"),
        (lambda: attention_rollout(A_HAND, discard_ratio=1.0), "[0, 1)"),
        (lambda: attention_rollout(A_HAND, discard_ratio=-0.1), "[0, 1)"),
        (lambda: attention_rollout(A_HAND, start_layer=2), "0 to 1"),
        (lambda: attention_rollout(A_HAND, start_layer=-1), "0 to 1"),
        (lambda: gradient_rollout(gradient_weighted(A_HAND, G_HAND), start_layer=2), "0 to 1"),
        (lambda: gradient_weighted(A_HAND, G_HAND[:1]), "same shape"),
        (lambda: gradient_weighted(list(A_HAND), list(G_HAND[:1])), "2 attention layers but 1 gradient"),
        (lambda: attention_rollout(A_HAND[0]), "(..., L, H, T, T)"),
    ],
)
def test_bad_options_raise_value_error_naming_the_valid_choice(call, message):
    with pytest.raises(ValueError) as error:
        call()
    assert message in str(error.value)


# ----------------------------------------------------------------------------- relevance and patch grid

M_HAND = torch.tensor([[0.7, 0.3], [0.4, 0.6]])


def test_input_relevance_one_hot_and_uniform():
    assert torch.equal(input_relevance(M_HAND, torch.tensor([1.0, 0.0])), torch.tensor([0.7, 0.3]))
    # mean of rows: [(.7+.4)/2, (.3+.6)/2]
    torch.testing.assert_close(input_relevance(M_HAND, torch.tensor([0.5, 0.5])), torch.tensor([0.55, 0.45]))


def test_input_relevance_subtract_identity_uses_rows_of_r_minus_i():
    relevance = torch.tensor([[2.5, 1.05], [1.25, 1.6]])  # R from the hand-worked gradient rollout
    # R - I = [[1.5, 1.05], [1.25, 0.6]]
    torch.testing.assert_close(input_relevance(relevance, torch.tensor([1.0, 0.0]), True), torch.tensor([1.5, 1.05]))
    torch.testing.assert_close(input_relevance(relevance, torch.tensor([0.5, 0.5]), True), torch.tensor([1.375, 0.825]))


def test_patch_grid_drops_prefix_and_reshapes():
    relevance = torch.tensor([9.0, 8.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0])  # 2 prefix tokens + a 2x3 grid
    assert torch.equal(patch_grid(relevance, 2, (2, 3)), torch.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]))
    batched = torch.stack([relevance, relevance + 10])
    assert torch.equal(patch_grid(batched, 2, (2, 3))[1], torch.tensor([[10.0, 11.0, 12.0], [13.0, 14.0, 15.0]]))
    with pytest.raises(ValueError, match="do not fill a 3x3 grid"):
        patch_grid(relevance, 2, (3, 3))


def test_image_relevance_cls_and_mean_pooling_through_the_registry():
    """An image capture's relevance: the pooling row(s) of the matrix, prefix tokens dropped, laid on the grid."""
    matrix = torch.arange(64, dtype=torch.float32).reshape(8, 8)  # 2 prefix tokens, 2x3 grid
    special = torch.tensor([True, True] + [False] * 6)

    def capture(pooling: str) -> ImageCapture:
        return ImageCapture(kind=IMAGE, tokens=patch_tokens(2, (2, 3)), attentions=matrix[None, None],
                            special=special, pooling_weights=pooling_weights_for(pooling, ~special), grid=(2, 3),
                            prefix_tokens=2)

    # cls: row 0 = [0..7], prefix columns 0, 1 dropped
    assert torch.equal(explain_capture(capture("cls"), "attention").grid, torch.tensor([[2.0, 3.0, 4.0], [5.0, 6.0, 7.0]]))
    # mean of rows 2..7: entry k = 8 * 4.5 + k = 36 + k
    expected = torch.tensor([[38.0, 39.0, 40.0], [41.0, 42.0, 43.0]])
    torch.testing.assert_close(explain_capture(capture("mean"), "attention").grid, expected)
    assert capture("cls").tokens[:3] == ["[CLS]", "[DIST]", "patch 0,0"]


def _hand_capture(**extra) -> Capture:
    return Capture(
        kind=TEXT, attentions=A_HAND.float(), tokens=["[CLS]", "a"], special=torch.tensor([True, False]),
        pooling_weights=torch.tensor([1.0, 0.0]), **extra,
    )


def test_explain_capture_methods_by_hand():
    capture = _hand_capture()
    attention = explain_capture(capture, "attention")
    torch.testing.assert_close(attention.matrix, torch.tensor([[0.5, 0.5], [0.75, 0.25]]))  # last layer, mean of heads
    torch.testing.assert_close(attention.relevance, torch.tensor([0.5, 0.5]))
    head = explain_capture(capture, "attention", layer=0, head=1)
    torch.testing.assert_close(head.matrix, torch.tensor([[0.6, 0.4], [0.0, 1.0]]))
    torch.testing.assert_close(head.relevance, torch.tensor([0.6, 0.4]))
    rollout = explain_capture(capture, "rollout")
    torch.testing.assert_close(rollout.matrix, torch.tensor([[0.70625, 0.29375], [0.415625, 0.584375]]))
    torch.testing.assert_close(rollout.relevance, torch.tensor([0.70625, 0.29375]))
    assert rollout.grid is None
    gradient = explain_capture(_hand_capture(gradients=G_HAND.float()), "gradient-rollout")
    torch.testing.assert_close(gradient.matrix, torch.tensor([[2.5, 1.05], [1.25, 1.6]]))
    torch.testing.assert_close(gradient.relevance, torch.tensor([1.5, 1.05]))  # row 0 of R - I


def test_explain_capture_errors():
    capture = _hand_capture()
    with pytest.raises(ValueError, match="needs a target"):
        explain_capture(capture, "gradient-rollout")
    with pytest.raises(ValueError, match="Unknown method 'nonsense': choose one of attention, attention-mean, rollout"):
        explain_capture(capture, "nonsense")
    with pytest.raises(ValueError, match="takes no option start_layer"):
        explain_capture(capture, "attention", start_layer=1)
    with pytest.raises(ValueError, match="mean, max, min"):
        explain_capture(capture, "rollout", head_fusion="avg")
    with pytest.raises(ValueError, match="choose 0 to 1"):
        explain_capture(capture, "attention", layer=2)
    with pytest.raises(ValueError, match="choose 0 to 1"):
        explain_capture(capture, "attention", layer=0, head=5)
    with pytest.raises(ValueError, match="choose 0 to 1"):
        layer_attention(capture.attentions, layer=-1)


@pytest.mark.parametrize("ratio, tokens, expected", [
    (0.7, 90, 63),    # 0.7 * 90 = 62.99999999999999 in floating point
    (0.3, 10, 3),     # 0.3 * 10 = 3.0000000000000004: still 3
    (0.1, 30, 3),     # 0.1 * 30 = 3.0000000000000004
    (0.35, 20, 7),    # 6.999999999999999 in floating point
    (0.9, 10, 9),     # exact boundary
    (0.55, 100, 55),  # 55.00000000000001
    (0.0, 512, 0),
    (0.95, 1, 0),
])
def test_discard_count_is_exact_at_the_boundaries(ratio, tokens, expected):
    from explain.rollout import discard_count

    assert discard_count(ratio, tokens) == expected
    fused = torch.arange(tokens * tokens, dtype=torch.float64).reshape(tokens, tokens) + 1
    assert int((discard_smallest(fused, ratio) == 0).sum(-1)[0]) == expected
