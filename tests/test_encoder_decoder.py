"""Chefer et al.'s encoder-decoder rules and the rollout baseline: hand-worked numbers, a plain-loop
reference, invariants; and the seq2seq capture on tiny random BART, T5, Marian and mBART models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import SEQ2SEQ_TINY_MODELS

import explain
import models
from explain.encoder_decoder import (
    encoder_decoder_relevance,
    encoder_decoder_rollout,
    normalize_residual,
)


def test_rules_on_hand_worked_matrices():
    # Encoder: Abar = [[0, 1], [0, 0]] -> R_ss = I + Abar = [[1, 1], [0, 1]];
    # R_ss - I = [[0, 1], [0, 0]]: row 0 sums to 1, row 1 to 0 (stays 0) -> Rbar_ss = [[1, 1], [0, 1]].
    encoder = torch.tensor([[[0.0, 1.0], [0.0, 0.0]]], dtype=torch.float64)
    # Decoder self-attention: Abar = [[0, 0], [0.5, 0.5]] -> R_tt = [[1, 0], [0.5, 1.5]]; R_ts stays 0.
    decoder = torch.tensor([[[0.0, 0.0], [0.5, 0.5]]], dtype=torch.float64)
    # Cross-attention: Abar = [[1, 0], [0, 2]]; Rbar_tt = [[1, 0], [0.5, 1.5]] (row 1 of R_tt - I sums to 1);
    # Rbar_tt^T @ Abar = [[1, 0.5], [0, 1.5]] @ [[1, 0], [0, 2]] = [[1, 1], [0, 3]];
    # @ Rbar_ss = [[1, 1], [0, 3]] @ [[1, 1], [0, 1]] = [[1, 2], [0, 3]].
    cross = torch.tensor([[[1.0, 0.0], [0.0, 2.0]]], dtype=torch.float64)
    r_ss, r_tt, r_ts = encoder_decoder_relevance(encoder, decoder, cross)
    torch.testing.assert_close(r_ss, torch.tensor([[1.0, 1.0], [0.0, 1.0]], dtype=torch.float64))
    torch.testing.assert_close(r_tt, torch.tensor([[1.0, 0.0], [0.5, 1.5]], dtype=torch.float64))
    torch.testing.assert_close(r_ts, torch.tensor([[1.0, 2.0], [0.0, 3.0]], dtype=torch.float64))


def test_two_decoder_layers_by_hand():
    # Layer 2's self-attention mixes layer 1's R_ts: R_ts += Abar @ R_ts.
    encoder = torch.zeros(1, 2, 2, dtype=torch.float64)  # R_ss = Rbar_ss = I
    decoder = torch.tensor([[[0.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [1.0, 0.0]]], dtype=torch.float64)
    cross = torch.tensor([[[0.2, 0.4], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]], dtype=torch.float64)
    _, r_tt, r_ts = encoder_decoder_relevance(encoder, decoder, cross)
    # layer 1: R_tt = I, R_ts = I^T @ cross_1 @ I = [[0.2, 0.4], [0, 0]]
    # layer 2: R_tt = I + [[0, 0], [1, 0]]; R_ts += [[0, 0], [1, 0]] @ R_ts = [[0.2, 0.4], [0.2, 0.4]]
    torch.testing.assert_close(r_ts, torch.tensor([[0.2, 0.4], [0.2, 0.4]], dtype=torch.float64))
    torch.testing.assert_close(r_tt, torch.tensor([[1.0, 0.0], [1.0, 1.0]], dtype=torch.float64))


def test_normalize_residual_keeps_zero_rows_without_nan():
    relevance = torch.tensor([[1.0, 0.0, 0.0], [0.5, 2.5, 0.0], [0.0, 0.0, 1.0]])
    bar = normalize_residual(relevance)
    # row 1 of R - I is [0.5, 1.5, 0] (sum 2) -> [0.25, 0.75, 0] + I; rows 0 and 2 of R - I are zero
    torch.testing.assert_close(bar, torch.tensor([[1.0, 0.0, 0.0], [0.25, 1.75, 0.0], [0.0, 0.0, 1.0]]))
    assert not torch.isnan(bar).any()


def reference_relevance(encoder: np.ndarray, decoder: np.ndarray, cross: np.ndarray):
    """The rules written with explicit index loops, independent of the vectorised code."""
    sources, targets = encoder.shape[-1], decoder.shape[-1]

    def matmul(a, b):
        out = np.zeros((a.shape[0], b.shape[1]))
        for i in range(a.shape[0]):
            for j in range(b.shape[1]):
                out[i, j] = sum(a[i, k] * b[k, j] for k in range(a.shape[1]))
        return out

    def bar(r):
        out = r - np.eye(len(r))
        for i in range(len(r)):
            total = out[i].sum()
            out[i] = 0.0 if total == 0 else out[i] / total
        return out + np.eye(len(r))

    r_ss, r_tt, r_ts = np.eye(sources), np.eye(targets), np.zeros((targets, sources))
    for layer in encoder:
        r_ss = r_ss + matmul(layer, r_ss)
    for self_layer, cross_layer in zip(decoder, cross):
        r_tt, r_ts = r_tt + matmul(self_layer, r_tt), r_ts + matmul(self_layer, r_ts)
        r_ts = r_ts + matmul(matmul(bar(r_tt).T, cross_layer), bar(r_ss))
    return r_ss, r_tt, r_ts


def test_rules_equal_the_plain_loop_reference():
    generator = torch.Generator().manual_seed(11)
    encoder = torch.rand(3, 5, 5, generator=generator, dtype=torch.float64) * 0.3
    decoder = torch.tril(torch.rand(2, 4, 4, generator=generator, dtype=torch.float64)) * 0.3
    cross = torch.rand(2, 4, 5, generator=generator, dtype=torch.float64) * 0.3
    decoder[0, 0] = 0.0  # a zero row of R - I on the way
    ours = encoder_decoder_relevance(encoder, decoder, cross)
    theirs = reference_relevance(encoder.numpy(), decoder.numpy(), cross.numpy())
    for got, expected in zip(ours, theirs):
        np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-12)


def test_rules_refuse_mismatched_shapes():
    with pytest.raises(ValueError, match="cross-attention must be"):
        encoder_decoder_relevance(torch.zeros(1, 3, 3), torch.zeros(1, 2, 2), torch.zeros(1, 3, 2))
    with pytest.raises(ValueError, match="decoder self-attention layers"):
        encoder_decoder_relevance(torch.zeros(1, 3, 3), torch.zeros(2, 2, 2), torch.zeros(1, 2, 3))


def test_rollout_baseline_by_hand_and_causal():
    # One layer each, one head. Encoder A = I -> J_ss = I. Decoder A = [[1, 0], [0.5, 0.5]]
    # -> (A + I) row-normalised = [[1, 0], [0.25, 0.75]] = J_tt. Cross A = [[0.5, 0.5], [1, 0]].
    encoder = torch.eye(2).view(1, 1, 2, 2)
    decoder = torch.tensor([[[[1.0, 0.0], [0.5, 0.5]]]])
    cross = torch.tensor([[[[0.5, 0.5], [1.0, 0.0]]]])
    full = encoder_decoder_rollout(encoder, decoder, cross, causal=False)
    # J_tt^T @ cross = [[1, 0.25], [0, 0.75]] @ [[0.5, 0.5], [1, 0]] = [[0.75, 0.5], [0.75, 0]]
    torch.testing.assert_close(full, torch.tensor([[0.75, 0.5], [0.75, 0.0]]))
    causal = encoder_decoder_rollout(encoder, decoder, cross)
    # row t from the prefix up to t: J_tt[t, t] * cross[t] = [[0.5, 0.5], [0.75, 0]]
    torch.testing.assert_close(causal, torch.tensor([[0.5, 0.5], [0.75, 0.0]]))


@pytest.fixture(scope="module")
def seq2seq_models(tiny_loaded):
    return {name: tiny_loaded(name) for name in SEQ2SEQ_TINY_MODELS}


@pytest.mark.parametrize("name", SEQ2SEQ_TINY_MODELS)
def test_every_family_runs_end_to_end(seq2seq_models, name):
    loaded = seq2seq_models[name]
    assert loaded.spec.kind.name == "seq2seq" and loaded.spec.decoder_layers == 2
    capture = explain.capture_seq2seq(loaded, "24 November 2026", output="2026-11-24")
    sources, outputs = len(capture.source_tokens), len(capture.output_tokens)
    assert capture.encoder_attentions.shape == (2, 2, sources, sources)
    assert capture.decoder_attentions.shape == (2, 2, outputs, outputs)
    assert capture.cross_attentions.shape == (2, 2, outputs, sources)
    # masked self-attention: nothing above the diagonal; every attention row sums to 1
    assert torch.equal(torch.triu(capture.decoder_attentions, diagonal=1), torch.zeros_like(capture.decoder_attentions))
    for stack in explain.STACKS:
        torch.testing.assert_close(capture.stack(stack).sum(-1), torch.ones(capture.stack(stack).shape[:-1]))
    assert capture.decoder_tokens[1:] == capture.output_tokens[:-1]
    for method in ("attention", "rollout", "gradient-rollout"):
        relevance, _ = explain.output_relevance(loaded, capture, method)
        assert relevance.shape == (outputs, sources) and torch.isfinite(relevance).all()
    # R_tt rows: nothing on decoder positions after the explained one, at least 1 on its own diagonal
    _, relevance_output = explain.output_relevance(loaded, capture)
    assert torch.equal(torch.triu(relevance_output, diagonal=1), torch.zeros(outputs, outputs))
    assert (relevance_output.diagonal() >= 1 - 1e-6).all()


@pytest.mark.parametrize("name", ["bart", "t5"])
def test_relevance_of_an_output_does_not_depend_on_later_outputs(seq2seq_models, name):
    loaded = seq2seq_models[name]
    whole = explain.capture_seq2seq(loaded, "Tuesday, the 24th of November 2026", output="2026-11-24")
    rows = {method: explain.output_relevance(loaded, whole, method) for method in ("attention", "rollout", "gradient-rollout")}
    for n in (0, 2, len(whole.output_ids) - 2):
        prefix = explain.capture_seq2seq(loaded, "Tuesday, the 24th of November 2026", output=whole.output_ids[: n + 1],
                                         target=n)
        for method, (source_rows, output_rows) in rows.items():
            explanation = explain.explain_capture(prefix, method)
            torch.testing.assert_close(explanation.relevance, source_rows[n], rtol=1e-4, atol=1e-6)
            torch.testing.assert_close(explanation.decoder_relevance[: n + 1], output_rows[n, : n + 1],
                                       rtol=1e-4, atol=1e-6)


def test_relevance_rows_follow_the_rules_from_the_models_own_gradients(seq2seq_models):
    """Recompute one row with torch.autograd directly on the model's attentions and the pure rules."""
    loaded = seq2seq_models["bart"]
    n = 3
    capture = explain.capture_seq2seq(loaded, "Nov 24, 2026", output="2026-11-24", target=n)
    model = loaded.model
    source = torch.tensor([capture.source_ids])
    start = model.config.decoder_start_token_id
    decoder_ids = torch.tensor([[start] + capture.output_ids[:-1]])
    out = model(input_ids=source, decoder_input_ids=decoder_ids, output_attentions=True)
    scalar = out.logits[0, n, capture.output_ids[n]]
    stacks = [out.encoder_attentions, out.decoder_attentions, out.cross_attentions]
    grads = torch.autograd.grad(scalar, [a for s in stacks for a in s])
    weighted, offset = [], 0
    for stack in stacks:
        pairs = zip(stack, grads[offset:offset + len(stack)])
        weighted.append(torch.stack([(g[0] * a[0]).clamp(min=0).mean(0) for a, g in pairs]).detach())
        offset += len(stack)
    _, r_tt, r_ts = encoder_decoder_relevance(*weighted)
    explanation = explain.explain_capture(capture, "gradient-rollout")
    torch.testing.assert_close(explanation.relevance, r_ts[n], rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(explanation.decoder_relevance, r_tt[n], rtol=1e-5, atol=1e-7)
    for stack, mine in zip(weighted, (capture.weighted, capture.decoder_weighted, capture.cross_weighted)):
        torch.testing.assert_close(mine, stack, rtol=1e-5, atol=1e-8)


def test_greedy_output_is_the_models_own_generation(seq2seq_models):
    loaded = seq2seq_models["t5"]
    capture = explain.capture_seq2seq(loaded, "24.11.2026", max_new_tokens=5)
    generated = loaded.model.generate(torch.tensor([capture.source_ids]), max_new_tokens=5, do_sample=False)
    assert capture.output_ids == generated[0, 1:].tolist()
    assert not capture.teacher_forced
    assert 0 < len(capture.output_ids) <= 5
    # each output token's probability where it was predicted: the greedy token is the argmax there
    assert (capture.output_probabilities > 0).all() and (capture.output_probabilities <= 1).all()


def test_seq2seq_bad_input_gets_one_sentence(seq2seq_models, tiny_loaded):
    loaded = seq2seq_models["bart"]
    with pytest.raises(ValueError, match="source text is empty"):
        explain.capture_seq2seq(loaded, "  ")
    with pytest.raises(ValueError, match="given output is empty"):
        explain.capture_seq2seq(loaded, "24 Nov 2026", output=" ")
    with pytest.raises(ValueError, match="1 to 256"):
        explain.capture_seq2seq(loaded, "24 Nov 2026", max_new_tokens=0)
    with pytest.raises(ValueError, match="not an encoder-decoder"):
        explain.capture_seq2seq(tiny_loaded("gpt2"), "24 Nov 2026")
    capture = explain.capture_seq2seq(loaded, "24 Nov 2026", output="2026-11-24")
    with pytest.raises(ValueError, match="Unknown attention stack"):
        capture.stack("memory")
    with pytest.raises(ValueError, match="Unknown method"):
        explain.explain_capture(capture, "lrp")
    with pytest.raises(ValueError, match="Output token 9 does not exist: choose 0 to"):
        explain.capture_seq2seq(loaded, "24 Nov 2026", output="2026", target=9)
    loaded_spec = models.load_spec(str(loaded.spec.source), allow_download=False)
    assert loaded_spec.summary()["decoder_layers"] == 2
