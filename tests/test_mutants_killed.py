"""Rules a mutation run (mutmut 3 and cosmic-ray over explain/) showed no test watched: each test here fails
when the rule it names is changed. Tiny hand-built tensors and captures, no model unless the rule lives in one.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from explain.capture import (
    Capture,
    attention_gradients,
    capture as capture_by_kind,
    cpu_inputs,
    layer_gradients,
    one_hot,
    pooling_weights_for,
    stack_attentions,
)
from explain.targets import ClassLogit
from models import DECODER, IMAGE, SEQ2SEQ, TEXT
from models.kinds import ModelKind

# ----------------------------------------------------------------------------- capture.py


def _capture(**extra) -> Capture:
    """Two tokens, two layers, two heads; every tensor a different dtype or size so that each one is counted."""
    fields = dict(
        kind=TEXT, tokens=["[CLS]", "a"],
        attentions=torch.full((2, 2, 2, 2), 0.5),  # 16 float32: 64 bytes
        special=torch.tensor([True, False]),  # 2 bool: 2 bytes
        pooling_weights=torch.tensor([1.0, 0.0]),  # 2 float32: 8 bytes
        inputs={"input_ids": torch.tensor([[101, 7]]), "note": "not a tensor"},  # 2 int64: 16 bytes
        weighted=torch.full((2, 2, 2), 0.25),  # 8 float32: 32 bytes
        gradients=torch.ones(2, 2, 2, 2),  # 64 bytes
    )
    fields.update(extra)
    return Capture(**fields)


def test_capture_nbytes_by_hand():
    capture = _capture()
    # 64 per token (the strings) + 64 + 2 + 8 + 16 (the dict's tensors; its string is not counted) + 32 + 64
    assert capture.nbytes == 64 * 2 + 64 + 2 + 8 + 16 + 32 + 64
    # a numpy array in a field is counted by its own nbytes
    capture.scores = np.zeros(3)  # 24 bytes
    assert capture.nbytes == 64 * 2 + 64 + 2 + 8 + 16 + 32 + 64 + 24
    # the display form: attentions in float16 (32 bytes), raw gradients dropped (numpy scores kept)
    assert capture.for_display().nbytes == 64 * 2 + 32 + 2 + 8 + 16 + 32 + 24


def test_for_display_halves_every_attention_stack_and_nothing_else():
    from explain.seq2seq import Seq2SeqCapture

    generator = torch.Generator().manual_seed(0)
    stacks = {name: torch.rand(2, 2, 3, shape, generator=generator) for name, shape in
              (("attentions", 3), ("decoder_attentions", 3), ("cross_attentions", 3))}
    capture = Seq2SeqCapture(kind=SEQ2SEQ, tokens=["a", "b", "c"], special=torch.tensor([True, False, False]),
                             pooling_weights=torch.full((3,), 1 / 3), weighted=torch.rand(2, 3, 3, generator=generator),
                             decoder_weighted=torch.rand(2, 3, 3, generator=generator),
                             gradients=torch.ones(2, 2, 3, 3), **stacks)
    shown = capture.for_display()
    for name, stack in stacks.items():
        assert getattr(shown, name).dtype == torch.float16
        assert torch.equal(getattr(shown, name), stack.half())
    # gradient rollout's input and every other tensor keep float32, the raw gradients are dropped
    assert shown.weighted is capture.weighted and shown.decoder_weighted is capture.decoder_weighted
    assert shown.pooling_weights.dtype == torch.float32 and shown.special.dtype == torch.bool
    assert shown.gradients is None
    assert capture.gradients is not None and capture.attentions.dtype == torch.float32  # the original is kept


def test_capture_properties_read_the_attention_shape_and_the_target():
    capture = _capture(attentions=torch.full((3, 4, 2, 2), 0.5))
    assert (capture.layers, capture.heads) == (3, 4)
    assert capture.target_label is None and capture.target_index is None
    capture.target = ClassLogit(1, "positive")
    assert (capture.target_label, capture.target_index) == ("positive", 1)
    assert torch.equal(capture.positions(), torch.tensor([[0.0], [1.0]]))
    assert capture.grid_of(torch.ones(2)) is None


def test_stack_attentions_converts_each_layer_and_refuses_missing_maps():
    layers = [torch.tensor([[[[0.25, 0.75], [1.0, 0.0]]]]), torch.tensor([[[[0.5, 0.5], [0.125, 0.875]]]])]
    stacked = stack_attentions(layers, torch.float16)
    assert stacked.shape == (2, 1, 2, 2) and stacked.dtype == torch.float16
    assert torch.equal(stacked, torch.cat(layers).half())
    assert torch.equal(stack_attentions(tuple(layers)), torch.cat(layers))  # float32 by default
    for missing in (None, [], [layers[0], None]):
        with pytest.raises(RuntimeError, match="attn_implementation='eager'"):
            stack_attentions(missing)


def test_layer_gradients_pair_by_layer_and_fill_unused_layers_with_zeros():
    first = torch.tensor([[[[0.5, 0.5], [0.25, 0.75]]]], requires_grad=True)  # (1, H=1, 2, 2)
    unused = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]], requires_grad=True)
    third = torch.tensor([[[[0.2, 0.8], [0.6, 0.4]]]], dtype=torch.float64, requires_grad=True)
    target = (first * torch.tensor([1.0, 2.0])).sum() + 3 * third[0, 0, 1, 0]
    grads = layer_gradients(target, [first, unused, third])
    assert [g.shape for g in grads] == [(1, 2, 2)] * 3 and all(g.dtype == torch.float32 for g in grads)
    assert torch.equal(grads[0], torch.tensor([[[1.0, 2.0], [1.0, 2.0]]]))
    assert torch.equal(grads[1], torch.zeros(1, 2, 2))
    assert torch.equal(grads[2], torch.tensor([[[0.0, 0.0], [3.0, 0.0]]]))
    with pytest.raises(RuntimeError, match="second time"):  # the graph is freed by default
        torch.autograd.grad(target, [first])


def test_attention_gradients_keep_raw_gradients_only_when_asked():
    attentions = [torch.tensor([[[[0.5, 0.5], [0.25, 0.75]], [[1.0, 0.0], [0.5, 0.5]]]], requires_grad=True)]
    weights = torch.tensor([[[2.0, -1.0], [0.0, 4.0]], [[-2.0, 1.0], [1.0, 1.0]]])

    def target() -> torch.Tensor:
        return (attentions[0][0] * weights).sum()

    # Abar = mean_h relu(G * A): head 0 [[1, 0], [0, 3]], head 1 [[0, 0], [.5, .5]] -> [[.5, 0], [.25, 1.75]]
    expected = torch.tensor([[[0.5, 0.0], [0.25, 1.75]]])
    raw, weighted = attention_gradients(target(), attentions, keep=True)
    assert torch.equal(raw, weights[None]) and torch.equal(weighted, expected)
    raw, weighted = attention_gradients(target(), attentions, keep=False)
    assert raw is None and torch.equal(weighted, expected)
    # the graph is freed after the one backward pass unless the caller keeps it for another
    kept_graph = target()
    attention_gradients(kept_graph, attentions, keep=False, retain_graph=True)
    assert torch.equal(torch.autograd.grad(kept_graph, attentions)[0], weights[None])
    freed_graph = target() * torch.ones(1, requires_grad=True)  # a graph with a saved tensor to free
    attention_gradients(freed_graph, attentions, keep=False)
    with pytest.raises(RuntimeError, match="second time"):
        torch.autograd.grad(freed_graph, attentions)


def test_pooling_weights_one_hot_and_inputs():
    pooled = torch.tensor([False, True, True, False])
    assert torch.equal(pooling_weights_for("mean", pooled), torch.tensor([0.0, 0.5, 0.5, 0.0]))
    assert torch.equal(pooling_weights_for("cls", pooled), torch.tensor([1.0, 0.0, 0.0, 0.0]))
    assert torch.equal(one_hot(4, 2), torch.tensor([0.0, 0.0, 1.0, 0.0]))
    source = torch.ones(2, requires_grad=True)
    kept = cpu_inputs({"input_ids": source * 2, "use_cache": False, "name": "x"})
    assert list(kept) == ["input_ids"] and not kept["input_ids"].requires_grad
    assert torch.equal(kept["input_ids"], torch.tensor([2.0, 2.0]))


def test_capture_dispatches_on_the_kind_and_refuses_a_kind_without_attention(monkeypatch):
    import explain.decoder
    import explain.encoder
    import explain.seq2seq
    import explain.vision

    for module, function in ((explain.encoder, "capture_text"), (explain.vision, "capture_image"),
                             (explain.decoder, "capture_decoder"), (explain.seq2seq, "capture_seq2seq")):
        monkeypatch.setattr(module, function, lambda loaded, *args, _name=function, **kwargs: (_name, args, kwargs))

    def loaded(kind: ModelKind) -> SimpleNamespace:
        return SimpleNamespace(spec=SimpleNamespace(kind=kind, name="tiny"))

    assert capture_by_kind(loaded(TEXT), "text", target=1) == ("capture_text", ("text",), {"target": 1})
    assert capture_by_kind(loaded(IMAGE), "image")[0] == "capture_image"
    assert capture_by_kind(loaded(DECODER), "prompt")[0] == "capture_decoder"
    assert capture_by_kind(loaded(SEQ2SEQ), "source")[0] == "capture_seq2seq"
    recurrent = ModelKind("rnn", "Recurrent", "a recurrent network", "gru", "rnn", "Source", "source", transformer=False)
    with pytest.raises(ValueError, match="'tiny' is a recurrent network, which has no attention to capture"):
        capture_by_kind(loaded(recurrent))


# ----------------------------------------------------------------------------- targets.py


def test_resolve_index_names_indices_and_errors():
    from explain.targets import resolve_index

    labels = ["negative", "positive"]
    assert resolve_index(None, labels, 1, "Class") == 1
    assert resolve_index(" Positive ", labels, 0, "Class") == 1
    assert resolve_index("0", labels, 1, "Class") == 0 and resolve_index(0, labels, 1, "Class") == 0
    with pytest.raises(ValueError, match=r"^Class index 2 is out of range: choose 0 to 1\.$"):
        resolve_index(2, labels, 0, "Class")
    with pytest.raises(ValueError, match=r"^Unknown label 'neutral': choose one of negative, positive\.$"):
        resolve_index("neutral", labels, 0, "Label")
    many = [f"c{i}" for i in range(13)]  # more than 12 names: the first 12, then "..."
    with pytest.raises(ValueError, match=r"choose one of c0, c1, .*, c11, \.\.\.\.$") as error:
        resolve_index("nope", many, 0, "Class")
    assert "c12" not in str(error.value)
    with pytest.raises(ValueError, match=r"choose one of c0, .*, c11\.$"):  # exactly 12: all of them, no "..."
        resolve_index("nope", many[:12], 0, "Class")


def test_pool_hidden_mean_over_kept_tokens_and_cls():
    from explain.targets import pool_hidden

    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [50.0, 60.0]],
                           [[5.0, 7.0], [9.0, 9.0], [9.0, 9.0]]], dtype=torch.float64)  # (B=2, T=3, D=2)
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])  # padding at the end of each row
    # row 0: mean of tokens 0, 1; row 1: token 0 alone, exactly
    pooled = pool_hidden(hidden, mask, "mean")
    assert torch.equal(pooled, torch.tensor([[2.0, 3.0], [5.0, 7.0]], dtype=torch.float64))
    # no mask: every token
    assert torch.equal(pool_hidden(hidden, None, "mean"), hidden.mean(1))
    assert pool_hidden(hidden.float(), None, "mean").dtype == torch.float32
    assert torch.equal(pool_hidden(hidden, mask, "cls"), hidden[:, 0])


def _embedding_outputs():
    hidden = torch.tensor([[[3.0, 4.0], [100.0, -100.0]], [[1.0, 0.0], [0.0, 1.0]]])  # (B=2, T=2, D=2)
    inputs = {"attention_mask": torch.tensor([[1, 0], [1, 1]])}  # input 0 is one real token then padding
    return SimpleNamespace(last_hidden_state=hidden), inputs


def test_embedding_similarity_pools_with_the_mask_by_hand():
    from explain.targets import ZERO_SHOT_TEMPERATURE, EmbeddingSimilarity

    outputs, inputs = _embedding_outputs()
    # pooled: input 0 -> [3, 4] (padding ignored), input 1 -> [.5, .5]; unit: [.6, .8], [1, 1] / sqrt 2
    references = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64)  # unit: [1, 0], [0, 1]
    probe = EmbeddingSimilarity(1, "up", references, zero_shot=False, pooling="mean")
    root = 2 ** -0.5
    expected = torch.tensor([[0.6, 0.8], [root, root]])
    similarities = probe.similarities(outputs, inputs)
    assert similarities.dtype == torch.float32
    torch.testing.assert_close(similarities, expected)
    torch.testing.assert_close(probe.score(outputs, inputs), expected[:, 1])
    torch.testing.assert_close(probe.probability(outputs, inputs), expected[:, 1])
    labels = EmbeddingSimilarity(0, "right", references, zero_shot=True, pooling="mean")
    torch.testing.assert_close(labels.score(outputs, inputs), expected[:, 0])
    torch.testing.assert_close(labels.probability(outputs, inputs),
                               torch.softmax(expected / ZERO_SHOT_TEMPERATURE, dim=-1)[:, 0])
    # cls pooling reads token 0 of each input: [3, 4] and [1, 0]
    cls = EmbeddingSimilarity(0, "right", references, zero_shot=False, pooling="cls")
    torch.testing.assert_close(cls.score(outputs, inputs), torch.tensor([0.6, 1.0]))


def test_class_and_token_logit_scores_and_probabilities_by_hand():
    from explain.targets import TokenLogit

    logits = torch.tensor([[0.0, np.log(3.0)], [2.0, -1.0]], dtype=torch.float64)  # (B=2, C=2)
    outputs = SimpleNamespace(logits=logits)
    single = ClassLogit(1, "positive")
    assert torch.equal(single.score(outputs, {}), logits[:, 1].float())
    # softmax: [1, 3] / 4 -> 0.75 for input 0
    torch.testing.assert_close(single.probability(outputs, {}), torch.softmax(logits.float(), -1)[:, 1])
    assert float(single.probability(outputs, {})[0]) == pytest.approx(0.75)
    multi = ClassLogit(1, "positive", multi_label=True)
    # independent sigmoids: sigmoid(ln 3) = 0.75, sigmoid(-1)
    torch.testing.assert_close(multi.probability(outputs, {}), torch.tensor([0.75, 1 / (1 + np.e)], dtype=torch.float32))
    sequence = torch.tensor([[[0.0, 1.0, 2.0], [np.log(2.0), 0.0, 0.0]]])  # (B=1, T=2, V=3)
    token = TokenLogit(position=1, token_id=0, label="a")
    assert torch.equal(token.score(SimpleNamespace(logits=sequence), {}), torch.tensor([np.log(2.0)], dtype=torch.float32))
    # softmax at position 1: [2, 1, 1] / 4
    torch.testing.assert_close(token.probability(SimpleNamespace(logits=sequence), {}), torch.tensor([0.5]))


# ----------------------------------------------------------------------------- methods/__init__.py: the registry


class _Gridded(Capture):
    """A capture class of its own, whose relevance lies on a 1 x T grid."""

    def grid_of(self, relevance: torch.Tensor) -> torch.Tensor:
        return relevance[None] * 10


def test_register_reads_keyword_options_and_keeps_one_body_per_capture_class(monkeypatch):
    import explain.methods as methods

    monkeypatch.setattr(methods, "METHODS", {})

    def probe(capture, loaded, extra=1, *, scale: float = 2.0, flip: bool = False):
        return methods.Explanation("probe", capture.pooling_weights * scale)

    def probe_gridded(capture, loaded, *, depth: int = 3):
        return methods.Explanation("probe", capture.pooling_weights + depth)

    def gridded_only(capture, loaded):
        return methods.Explanation("gridded-only", capture.pooling_weights)

    assert methods.register("probe", "Probe", "One line.", needs_gradients=True, signed=True, slow=True)(probe) is probe
    # a second body for a capture class: the first registration's label and flags stay
    methods.register("probe", "Other label", "", capture=_Gridded, needs_model=True)(probe_gridded)
    methods.register("gridded-only", "Gridded only", "Only for gridded captures.", capture=_Gridded)(gridded_only)
    method = methods.METHODS["probe"]
    assert (method.name, method.label, method.summary) == ("probe", "Probe", "One line.")
    assert (method.needs_gradients, method.needs_model, method.signed, method.slow) == (True, False, True, True)
    assert methods.get_method("probe") is method
    plain, gridded = _capture(), _Gridded(**vars(_capture()))
    # only keyword-only parameters after (capture, loaded) are options
    assert method.options_for(plain) == {"scale": 2.0, "flip": False}
    assert method.options_for(gridded) == {"depth": 3}
    assert method.body_for(plain) is probe and method.body_for(gridded) is probe_gridded
    assert method.accepted(plain, {"scale": 1.0, "depth": 2, "other": 0}) == {"scale": 1.0}
    assert method.accepted(gridded, {"scale": 1.0, "depth": 2}) == {"depth": 2}
    only = methods.METHODS["gridded-only"]
    assert only.applies_to(gridded) and not only.applies_to(plain)
    assert only.body_for(plain) is None and only.options_for(plain) == {} and only.accepted(plain, {"x": 1}) == {}
    assert methods.methods_for(plain) == [method]
    assert methods.methods_for(gridded) == [method, only]  # registration order
    with pytest.raises(ValueError, match=r"^Unknown method 'nope': choose one of probe, gridded-only\.$"):
        methods.get_method("nope")


def test_explain_capture_times_signs_grids_and_checks_options(monkeypatch):
    import time

    import explain.methods as methods

    monkeypatch.setattr(methods, "METHODS", {})

    @methods.register("slow", "Slow", "Sleeps.", signed=True)
    def slow(capture, loaded, *, scale: float = 1.0):
        time.sleep(0.02)
        return methods.Explanation("slow", capture.pooling_weights * scale, signed=False)

    @methods.register("model", "Model", "Runs the model.", needs_model=True)
    def model(capture, loaded):
        return methods.Explanation("model", capture.pooling_weights * loaded.scale, grid=torch.zeros(1, 1))

    @methods.register("rollout", "Rollout", "The default method.")
    def rollout(capture, loaded):
        return methods.Explanation("rollout", -capture.pooling_weights)

    plain, gridded = _capture(), _Gridded(**vars(_capture()))
    explanation = methods.explain_capture(gridded, "slow", scale=3.0)
    assert 0.02 <= explanation.seconds < 5
    assert explanation.signed  # the method's flag, not the body's
    assert torch.equal(explanation.relevance, torch.tensor([3.0, 0.0]))
    assert torch.equal(explanation.grid, torch.tensor([[30.0, 0.0]]))  # capture.grid_of(relevance)
    assert methods.explain_capture(plain, "slow").grid is None
    kept = methods.explain_capture(gridded, "model", loaded=SimpleNamespace(scale=5.0))
    assert torch.equal(kept.grid, torch.zeros(1, 1)) and not kept.signed  # a body's own grid is kept
    assert torch.equal(kept.relevance, torch.tensor([5.0, 0.0]))  # the body got the loaded model
    assert methods.explain_capture(plain).method == "rollout"  # the default method
    with pytest.raises(ValueError, match=r"^Model runs the model again: pass the loaded model \(loaded=\.\.\.\)\.$"):
        methods.explain_capture(plain, "model")
    with pytest.raises(ValueError, match=r"^Slow takes no option depth, flip here: its options are scale\.$"):
        methods.explain_capture(plain, "slow", flip=True, depth=1)
    with pytest.raises(ValueError, match=r"^Model takes no option scale here: its options are none\.$"):
        methods.explain_capture(plain, "model", loaded=SimpleNamespace(scale=1.0), scale=1.0)
    methods.register("gridded", "Gridded", "Gridded captures only.", capture=_Gridded)(model)
    with pytest.raises(ValueError, match=r"^Gridded does not apply to a text encoder: choose one of slow, model, rollout\.$"):
        methods.explain_capture(plain, "gridded")


# ----------------------------------------------------------------------------- methods/attention.py helpers


def test_input_relevance_keeps_dtype_device_and_batch_dimensions():
    from explain.methods.attention import input_relevance

    matrix = torch.tensor([[2.5, 1.05], [1.25, 1.6]], dtype=torch.float16)
    weights = torch.tensor([0.5, 0.5])  # float32 pooling weights, as captures hold them
    relevance = input_relevance(matrix, weights, subtract_identity=True)
    assert relevance.dtype == torch.float16  # neither the identity nor the weights promote it
    # mean of the rows of R - I = [[1.5, 1.05], [1.25, 0.6]]
    torch.testing.assert_close(relevance, torch.tensor([1.375, 0.825], dtype=torch.float16))
    # (..., T, T) with two leading dimensions: each matrix's own rows
    batch = torch.arange(2 * 3 * 2 * 2, dtype=torch.float64).reshape(2, 3, 2, 2)
    expected = (batch - torch.eye(2, dtype=torch.float64))[..., 0, :]
    assert torch.equal(input_relevance(batch, torch.tensor([1.0, 0.0]), subtract_identity=True), expected)
    meta = torch.empty(3, 3, device="meta")  # the only other device here: nothing may fall back to the CPU
    assert input_relevance(meta, torch.ones(3) / 3, subtract_identity=True).device.type == "meta"
    assert input_relevance(meta, torch.ones(3) / 3).device.type == "meta"


# ----------------------------------------------------------------------------- tokens.py


def test_token_text_of_byte_level_whitespace_inside_a_token():
    from explain.tokens import token_text

    # GPT-2 has tokens such as ".Ċ" (a full stop, then a newline) and "ĉĉ" (two tabs)
    assert token_text(".Ċ") == ".⏎"
    assert token_text("ĉĉ") == "⇥⇥"
    assert token_text("ĠĊ") == "⏎"


def test_spaced_bare_piece_after_a_special_token_and_a_bare_marker():
    from explain.tokens import spaced

    # a bare piece after a special token starts a word, even when the sequence does not end in a special token
    assert spaced(["<s>", "Hello", "Ġworld"], [True, False, False]) == (["<s>", "Hello", "world"], [False, True, True])
    # "##" alone is a token of its own, not a continuation
    assert spaced(["a", "##"], [False, False]) == (["a", "##"], [False, True])


def test_continue_word_ids_after_a_prompt_without_words_and_across_special_tokens():
    from explain.tokens import continue_word_ids

    # the prompt is only a start token: the first generated word is word 0
    assert continue_word_ids(["<s>", "Ġa", "Ġb"], [None], [True, False, False]) == [None, 0, 1]
    # a special token in the generated part is no word, and what follows it goes on (a bare piece starts a word)
    tokens = ["<s>", "Ġa", "</s>", "b", "Ġc"]
    assert continue_word_ids(tokens, [None, 0], [True, False, True, False, False]) == [None, 0, None, 1, 2]


def test_word_groups_keep_adjacent_special_tokens_apart():
    from explain.tokens import word_groups

    groups, labels = word_groups(["a", "##b", "[SEP]", "[PAD]"], [0, 0, None, None], [0, 0, None, None])
    assert groups == [0, 0, 1, 2] and labels == ["ab", "[SEP]", "[PAD]"]


def test_merge_matrix_count_and_merge_attention_dtype_device_batch():
    from explain.tokens import merge_attention, merge_matrix

    assert torch.equal(merge_matrix([0, 1, 1], count=3), torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 1.0, 0.0]]))
    matrix = torch.tensor([[0.2, 0.3, 0.5], [0.6, 0.1, 0.3], [0.4, 0.4, 0.2]], dtype=torch.float64)
    merged = merge_attention(matrix, [0, 1, 1])
    assert merged.dtype == torch.float64
    torch.testing.assert_close(merged, torch.tensor([[0.2, 0.8], [0.5, 0.5]], dtype=torch.float64))
    assert merge_attention(torch.empty(3, 3, device="meta"), [0, 1, 1]).device.type == "meta"


def test_hide_tokens_renormalises_each_row_of_a_batch():
    from explain.tokens import hide_tokens

    heads = torch.tensor([[[0.2, 0.3, 0.5], [0.6, 0.1, 0.3], [0.4, 0.4, 0.2]],
                          [[0.5, 0.5, 0.0], [0.0, 0.5, 0.5], [0.25, 0.25, 0.5]]])  # (H=2, T=3, T)
    kept = hide_tokens(heads, torch.tensor([False, True, True]))
    expected = torch.tensor([[[0.25, 0.75], [2 / 3, 1 / 3]], [[0.5, 0.5], [1 / 3, 2 / 3]]])
    torch.testing.assert_close(kept, expected)


def test_token_view_and_views_of_matrices_and_relevance_by_hand():
    from explain.tokens import token_view, view_matrix, view_relevance

    tokens = ["[CLS]", "play", "##ing", "now", "[SEP]"]
    special = [True, False, False, False, True]
    word_ids, sequence_ids = [None, 0, 0, 1, None], [None, 0, 0, 0, None]
    # the plain view: every token its own unit, all kept
    groups, labels, keep = token_view(tokens, special, word_ids, sequence_ids)
    assert groups == [0, 1, 2, 3, 4] and labels == tokens and keep.tolist() == [True] * 5
    # words merged and special tokens hidden
    groups, labels, keep = token_view(tokens, special, word_ids, sequence_ids, merge_words=True, hide_special=True)
    assert groups == [0, 1, 1, 2, 3] and labels == ["[CLS]", "playing", "now", "[SEP]"]
    assert keep.tolist() == [False, True, True, False]
    # when every unit is special, hiding them would leave nothing: all are kept
    assert token_view(["[CLS]", "[SEP]"], [True, True], [None, None], [None, None], hide_special=True)[2].tolist() == [True, True]
    # a merged unit is special when any of its tokens is
    merged_special = token_view(["a", "b", "c"], [False, True, False], [0, 0, 1], [0, 0, 0], merge_words=True,
                                hide_special=True)[2]
    assert merged_special.tolist() == [False, True]

    attention = torch.tensor([
        [0.2, 0.2, 0.2, 0.2, 0.2],
        [0.1, 0.4, 0.1, 0.2, 0.2],
        [0.3, 0.1, 0.3, 0.2, 0.1],
        [0.0, 0.5, 0.0, 0.5, 0.0],
        [0.2, 0.2, 0.2, 0.2, 0.2],
    ])
    # merged (rows of "playing" averaged, columns summed), then [CLS] and [SEP] dropped and rows renormalised:
    # playing: row mean [.2, .25, .2, .2, .15] -> columns [.2, .45, .2, .15] -> kept [.45, .2] / .65
    # now: [0, .5, .5, 0] -> kept [.5, .5]
    expected = torch.tensor([[0.45 / 0.65, 0.2 / 0.65], [0.5, 0.5]])
    torch.testing.assert_close(view_matrix(attention, groups, keep), expected)
    # nothing merged, nothing hidden: the matrix itself, not renormalised
    plain_groups, _, plain_keep = token_view(tokens, special, word_ids, sequence_ids)
    assert torch.equal(view_matrix(attention * 2, plain_groups, plain_keep), attention * 2)
    relevance = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    assert torch.equal(view_relevance(relevance, groups, keep), torch.tensor([5.0, 4.0]))  # pieces summed
    assert torch.equal(view_relevance(relevance, plain_groups, torch.tensor([True, False, True, True, False])),
                       torch.tensor([1.0, 3.0, 4.0]))
    assert torch.equal(view_relevance(torch.stack([relevance, -relevance]), groups, keep),
                       torch.tensor([[5.0, 4.0], [-5.0, -4.0]]))


# ----------------------------------------------------------------------------- head_stats.py


def test_token_positions_without_prefix_and_previous_token_scores_per_head():
    from explain.head_stats import head_statistics, previous_token_scores, token_positions

    assert torch.equal(token_positions(4, grid=(2, 2)), torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]))
    attentions = torch.tensor([[
        [[1.0, 0.0, 0.0], [0.25, 0.75, 0.0], [0.0, 0.5, 0.5]],  # head 0: a_10 = .25, a_21 = .5
        [[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.2, 0.2, 0.6]],  # head 1: a_10 = 1, a_21 = .2
    ]])  # (L=1, H=2, T=3, T)
    torch.testing.assert_close(previous_token_scores(attentions), torch.tensor([[0.375, 0.6]]))
    # two tokens: the score is a_10 itself; one token: no score, 0 in the statistics, an error when asked directly
    two = torch.tensor([[[[1.0, 0.0], [0.3, 0.7]]]])
    torch.testing.assert_close(previous_token_scores(two), torch.tensor([[0.3]]))
    torch.testing.assert_close(head_statistics(two, torch.tensor([False, False]), token_positions(2))["previous"],
                               torch.tensor([[0.3]]))
    one = torch.ones(1, 2, 1, 1)
    assert torch.equal(head_statistics(one, torch.tensor([False]), token_positions(1))["previous"], torch.zeros(1, 2))
    with pytest.raises(ValueError, match=r"^A previous-token score needs at least two tokens\.$"):
        previous_token_scores(one)


# ----------------------------------------------------------------------------- encoder_decoder.py


def test_normalize_residual_keeps_dtype_device_and_batches():
    from explain.encoder_decoder import normalize_residual

    single = torch.tensor([[1.0, 0.0, 0.0], [0.5, 2.5, 0.0], [0.0, 0.0, 1.0]])
    expected = torch.tensor([[1.0, 0.0, 0.0], [0.25, 1.75, 0.0], [0.0, 0.0, 1.0]])
    half = normalize_residual(single.half())
    assert half.dtype == torch.float16 and torch.equal(half, expected.half())
    # (..., N, N): every matrix of a (2, 2, 3, 3) batch on its own rows
    other = torch.tensor([[1.0, 1.0, 3.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])  # row 0 of R - I: [0, 1, 3] / 4
    other_expected = torch.tensor([[1.0, 0.25, 0.75], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    batch = torch.stack([torch.stack([single, other]), torch.stack([other, single])])
    assert torch.equal(normalize_residual(batch),
                       torch.stack([torch.stack([expected, other_expected]), torch.stack([other_expected, expected])]))
    assert normalize_residual(torch.empty(3, 3, device="meta")).device.type == "meta"


def test_encoder_decoder_relevance_stays_on_the_inputs_device():
    from explain.encoder_decoder import encoder_decoder_relevance

    r_ss, r_tt, r_ts = encoder_decoder_relevance(torch.empty(1, 3, 3, device="meta"), torch.empty(2, 2, 2, device="meta"),
                                                 torch.empty(2, 2, 3, device="meta"))
    assert r_ss.device.type == r_tt.device.type == r_ts.device.type == "meta"
    assert r_ts.shape == (2, 3)


@pytest.mark.parametrize("encoder, decoder, cross", [
    ((3, 3), (1, 2, 2), (1, 2, 3)),  # one stack of the wrong rank, the other two right
    ((1, 3, 3), (2, 2), (1, 2, 3)),
    ((1, 3, 3), (1, 2, 2), (2, 3)),
])
def test_encoder_decoder_relevance_refuses_a_stack_of_the_wrong_rank(encoder, decoder, cross):
    from explain.encoder_decoder import encoder_decoder_relevance

    with pytest.raises(ValueError, match=r"^Expected per-layer matrices: encoder \(L_enc, S, S\), decoder \(L_dec, T, T\), "
                                         r"cross \(L_dec, T, S\)\.$"):
        encoder_decoder_relevance(torch.zeros(encoder), torch.zeros(decoder), torch.zeros(cross))


def test_encoder_decoder_rollout_passes_its_options_to_every_part():
    from explain.encoder_decoder import encoder_decoder_rollout
    from explain.rollout import attention_rollout, fuse_heads

    generator = torch.Generator().manual_seed(5)

    def attention(*shape: int) -> torch.Tensor:
        return torch.softmax(3 * torch.randn(*shape, generator=generator, dtype=torch.float64), dim=-1)

    encoder, decoder, cross = attention(2, 2, 4, 4), torch.tril(attention(2, 2, 3, 3)), attention(2, 2, 3, 4)
    decoder = decoder / decoder.sum(-1, keepdim=True)
    for head_fusion, discard_ratio in (("max", 0.5), ("min", 0.0), ("mean", 0.25)):
        joint_source = attention_rollout(encoder, head_fusion, discard_ratio)
        joint_target = attention_rollout(decoder, head_fusion, discard_ratio)
        carried = fuse_heads(cross[-1], head_fusion) @ joint_source
        full = encoder_decoder_rollout(encoder, decoder, cross, head_fusion, discard_ratio, causal=False)
        torch.testing.assert_close(full, joint_target.T @ carried, rtol=0, atol=1e-12)
        causal = encoder_decoder_rollout(encoder, decoder, cross, head_fusion, discard_ratio)
        torch.testing.assert_close(causal, joint_target.diagonal()[:, None] * carried, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match=r"^Unknown head fusion 'sum': choose one of mean, max, min\.$"):
        encoder_decoder_rollout(encoder, decoder, cross, "sum")


# ----------------------------------------------------------------------------- the registered method bodies
# (mutmut 3 does not mutate decorated functions; cosmic-ray does: these are its survivors)

# Three layers, two heads, two tokens: enough layers that the last running matrix differs from the second.
A3 = torch.tensor([
    [[[1.0, 0.0], [0.5, 0.5]], [[0.6, 0.4], [0.0, 1.0]]],
    [[[0.5, 0.5], [0.5, 0.5]], [[0.5, 0.5], [1.0, 0.0]]],
    [[[0.2, 0.8], [0.9, 0.1]], [[0.4, 0.6], [0.3, 0.7]]],
])
WEIGHTED3 = torch.tensor([[[0.5, 0.2], [0.5, 0.5]], [[0.5, 0.5], [0.5, 0.0]], [[0.1, 0.3], [0.0, 0.2]]])


def test_dataclass_defaults_of_captures_explanations_and_methods():
    from explain.methods import Explanation, Method

    capture = Capture(kind=TEXT, tokens=["a"], attentions=torch.ones(1, 1, 1, 1), special=torch.tensor([False]),
                      pooling_weights=torch.ones(1))
    assert capture.dropped_tokens == 0 and capture.unknown_words == [] and capture.inputs == {}
    assert capture.target is None and capture.weighted is None and capture.gradients is None
    explanation = Explanation("x", torch.ones(1))
    assert explanation.signed is False and explanation.seconds == 0.0 and explanation.measures == {}
    assert explanation.matrix is None and explanation.grid is None and explanation.steps is None
    method = Method("x", "X", "One line.")
    assert (method.needs_gradients, method.needs_model, method.signed, method.slow) == (False, False, False, False)


def test_registered_flags_of_the_attention_methods():
    from explain.methods import METHODS

    assert [METHODS[name].needs_gradients for name in ("attention", "attention-mean", "rollout")] == [False] * 3
    assert METHODS["gradient-rollout"].needs_gradients
    assert not any(METHODS[name].needs_model or METHODS[name].signed or METHODS[name].slow
                   for name in ("attention", "attention-mean", "rollout", "gradient-rollout"))
    plain = _capture(attentions=A3)
    assert METHODS["rollout"].options_for(plain) == {"head_fusion": "mean", "discard_ratio": 0.0, "start_layer": 0,
                                                     "steps": False}
    assert METHODS["gradient-rollout"].options_for(plain) == {"start_layer": 0, "steps": False, "keep_self": None}
    assert METHODS["attention"].options_for(plain) == {"layer": None, "head": None}


def test_attention_mean_by_hand():
    from explain.methods import explain_capture

    capture = _capture(attentions=A3)
    explanation = explain_capture(capture, "attention-mean")
    expected = A3.mean(dim=(0, 1))
    # entry [0, 0]: (1 + .6 + .5 + .5 + .2 + .4) / 6
    assert float(expected[0, 0]) == pytest.approx(3.2 / 6)
    torch.testing.assert_close(explanation.matrix, expected)
    torch.testing.assert_close(explanation.relevance, expected[0])  # pooling weights one-hot on [CLS]


@pytest.mark.parametrize("method, options, steps_type", [
    ("rollout", {"head_fusion": "max", "start_layer": 0}, "rollout"),
    ("gradient-rollout", {"start_layer": 0}, "gradient"),
])
def test_steps_through_the_registry_end_in_the_result_itself(method, options, steps_type):
    from explain.methods import explain_capture

    capture = _capture(attentions=A3, weighted=WEIGHTED3, gradients=None)
    plain = explain_capture(capture, method, **options)
    assert plain.steps is None
    stepped = explain_capture(capture, method, steps=True, **options)
    assert stepped.steps.running.shape == (3, 2, 2)
    torch.testing.assert_close(stepped.matrix, plain.matrix)
    torch.testing.assert_close(stepped.matrix, stepped.steps.running[-1])
    torch.testing.assert_close(stepped.relevance, plain.relevance)
    assert not torch.allclose(stepped.steps.running[1], stepped.steps.running[2])  # the last layer counts
    if steps_type == "gradient":
        # R = (I + W2)(I + W1)(I + W0); relevance: row 0 of R - I
        identity = torch.eye(2)
        expected = (identity + WEIGHTED3[2]) @ (identity + WEIGHTED3[1]) @ (identity + WEIGHTED3[0])
        torch.testing.assert_close(plain.matrix, expected)
        torch.testing.assert_close(plain.relevance, (expected - identity)[0])
    later = explain_capture(capture, method, **{**options, "start_layer": 1})
    assert not torch.allclose(later.matrix, plain.matrix)


def _seq2seq_capture(**extra):
    from explain.seq2seq import Seq2SeqCapture
    from explain.targets import TokenLogit

    generator = torch.Generator().manual_seed(7)
    cross = torch.softmax(torch.randn(2, 2, 3, 4, generator=generator), dim=-1)  # (L_dec, H, N=3, S=4)
    decoder = torch.tril(torch.rand(2, 2, 3, 3, generator=generator)) + 0.01 * torch.eye(3)
    decoder = decoder / decoder.sum(-1, keepdim=True)
    encoder = torch.softmax(torch.randn(2, 2, 4, 4, generator=generator), dim=-1)
    fields = dict(kind=SEQ2SEQ, tokens=["a", "b", "c", "</s>"], attentions=encoder,
                  special=torch.tensor([False, False, False, True]), pooling_weights=torch.zeros(4),
                  target=TokenLogit(position=1, token_id=5, label="x"), decoder_attentions=decoder,
                  cross_attentions=cross)
    fields.update(extra)
    return Seq2SeqCapture(**fields)


def test_encoder_decoder_attention_methods_read_the_target_row_by_hand():
    from explain.encoder_decoder import encoder_decoder_rollout
    from explain.methods import explain_capture
    from explain.rollout import attention_rollout

    capture = _seq2seq_capture()
    cross, decoder = capture.cross_attentions, capture.decoder_attentions
    last = explain_capture(capture, "attention")  # last decoder layer, heads averaged, row of output 1
    torch.testing.assert_close(last.matrix, cross[-1].mean(0))
    torch.testing.assert_close(last.relevance, cross[-1].mean(0)[1])
    torch.testing.assert_close(last.decoder_relevance, decoder[-1].mean(0)[1])
    head = explain_capture(capture, "attention", layer=0, head=1)
    torch.testing.assert_close(head.relevance, cross[0, 1, 1])
    torch.testing.assert_close(head.decoder_relevance, decoder[0, 1, 1])
    mean = explain_capture(capture, "attention-mean")
    torch.testing.assert_close(mean.matrix, cross.mean(dim=(0, 1)))
    torch.testing.assert_close(mean.relevance, cross.mean(dim=(0, 1))[1])
    torch.testing.assert_close(mean.decoder_relevance, decoder.mean(dim=(0, 1))[1])
    rolled = explain_capture(capture, "rollout", head_fusion="max", discard_ratio=0.25)
    expected = encoder_decoder_rollout(capture.attentions, decoder, cross, "max", 0.25)
    torch.testing.assert_close(rolled.matrix, expected)
    torch.testing.assert_close(rolled.relevance, expected[1])
    torch.testing.assert_close(rolled.decoder_relevance, attention_rollout(decoder, "max", 0.25)[1])
    with pytest.raises(ValueError, match="mean, max, min"):
        explain_capture(capture, "rollout", head_fusion="sum")


def test_encoder_decoder_gradient_rollout_needs_every_weighted_stack():
    from explain.encoder_decoder import encoder_decoder_relevance
    from explain.methods import explain_capture

    generator = torch.Generator().manual_seed(8)
    weighted = dict(weighted=torch.rand(2, 4, 4, generator=generator) * 0.3,
                    decoder_weighted=torch.tril(torch.rand(2, 3, 3, generator=generator)) * 0.3,
                    cross_weighted=torch.rand(2, 3, 4, generator=generator) * 0.3)
    explanation = explain_capture(_seq2seq_capture(**weighted), "gradient-rollout")
    _, r_tt, r_ts = encoder_decoder_relevance(*weighted.values())
    torch.testing.assert_close(explanation.matrix, r_ts)
    torch.testing.assert_close(explanation.relevance, r_ts[1])
    torch.testing.assert_close(explanation.decoder_relevance, r_tt[1])
    for missing in ("weighted", "decoder_weighted"):
        with pytest.raises(ValueError, match="needs a target"):
            explain_capture(_seq2seq_capture(**{**weighted, missing: None}), "gradient-rollout")


@pytest.mark.parametrize("encoder, decoder, cross", [
    ((1, 3, 2), (1, 2, 2), (1, 2, 2)),  # encoder not square (cross fits its keys)
    ((1, 3, 2), (1, 2, 2), (1, 2, 3)),  # encoder not square (cross fits its queries)
    ((1, 3, 3), (1, 2, 3), (1, 2, 3)),  # decoder not square (cross fits its queries)
    ((1, 3, 3), (1, 2, 3), (1, 3, 3)),  # decoder not square (cross fits its keys)
])
def test_encoder_decoder_relevance_refuses_matrices_that_are_not_square(encoder, decoder, cross):
    from explain.encoder_decoder import encoder_decoder_relevance

    shapes = f"encoder {encoder}, decoder {decoder}, cross {cross}".replace("(", r"\(").replace(")", r"\)")
    with pytest.raises(ValueError, match=rf"^Shapes do not fit together: {shapes}; cross-attention must be \(L_dec, T, S\)\.$"):
        encoder_decoder_relevance(torch.zeros(encoder), torch.zeros(decoder), torch.zeros(cross))
    with pytest.raises(ValueError, match=r"^3 decoder self-attention layers but 1 cross-attention layers\.$"):
        encoder_decoder_relevance(torch.zeros(1, 3, 3), torch.zeros(3, 2, 2), torch.zeros(1, 2, 3))


# ----------------------------------------------------------------------------- rollout.py

A_HAND = torch.tensor([
    [[[1.0, 0.0], [0.5, 0.5]], [[0.6, 0.4], [0.0, 1.0]]],
    [[[0.5, 0.5], [0.5, 0.5]], [[0.5, 0.5], [1.0, 0.0]]],
], dtype=torch.float64)  # tests/test_rollout.py's hand-worked layers
G_HAND = torch.tensor([
    [[[1.0, -1.0], [2.0, 0.0]], [[0.0, 1.0], [-1.0, 1.0]]],
    [[[2.0, 0.0], [0.0, -2.0]], [[0.0, 2.0], [1.0, 0.0]]],
], dtype=torch.float64)
ABAR_HAND = torch.tensor([[[0.5, 0.2], [0.5, 0.5]], [[0.5, 0.5], [0.5, 0.0]]], dtype=torch.float64)


def test_gradient_weighted_takes_layers_in_every_form_a_model_gives_them():
    from explain.rollout import gradient_weighted

    assert torch.equal(gradient_weighted(A_HAND, G_HAND), ABAR_HAND)
    # per-layer lists of (H, T, T) and of (1, H, T, T) as a float32 model returns them, and a stacked tensor with
    # a list of layers
    attentions, gradients, expected = A_HAND.float(), G_HAND.float(), ABAR_HAND.float()
    torch.testing.assert_close(gradient_weighted(list(attentions), list(gradients)), expected)
    torch.testing.assert_close(gradient_weighted([a[None] for a in attentions], [g[None] for g in gradients]), expected)
    torch.testing.assert_close(gradient_weighted(attentions, list(gradients)), expected)


def test_gradient_weighted_overwrites_the_gradients_only_in_place():
    from explain.rollout import gradient_weighted

    gradients = [g.float().clone() for g in G_HAND]
    kept = [g.clone() for g in gradients]
    gradient_weighted(list(A_HAND.float()), gradients)
    assert all(torch.equal(g, k) for g, k in zip(gradients, kept))  # the caller's gradients are untouched
    weighted = gradient_weighted(list(A_HAND.float()), gradients, in_place=True)
    assert torch.equal(weighted, ABAR_HAND.float())
    assert torch.equal(gradients[0], (kept[0] * A_HAND[0].float()).clamp(min=0))  # overwritten with the product


def test_gradient_weighted_and_gradient_rollout_shape_messages():
    from explain.rollout import gradient_rollout, gradient_weighted

    with pytest.raises(ValueError, match=r"^Gradients \(1, 2, 2, 2\) and attentions \(2, 2, 2, 2\) must have the same "
                                         r"shape \(\.\.\., L, H, T_q, T_k\)\.$"):
        gradient_weighted(A_HAND, G_HAND[:1])
    with pytest.raises(ValueError, match=r"^Gradients \(2, 3, 3\) and attentions \(2, 2, 2\) must have the same shape\.$"):
        gradient_weighted(list(A_HAND), [torch.zeros(2, 3, 3)] * 2)
    for bad in (torch.eye(2), torch.zeros(1, 2, 3)):  # one matrix without a layer axis; a matrix that is not square
        shape = str(tuple(bad.shape)).replace("(", r"\(").replace(")", r"\)")
        with pytest.raises(ValueError, match=rf"^Expected gradient-weighted attention of shape \(\.\.\., L, T, T\), got {shape}\.$"):
            gradient_rollout(bad)


def test_gradient_rollout_steps_with_a_batch():
    from explain.rollout import gradient_rollout

    batch = torch.stack([ABAR_HAND, ABAR_HAND * 0.5])  # (B=2, L=2, T, T)
    steps = gradient_rollout(batch, steps=True)
    identity = torch.eye(2, dtype=torch.float64)
    assert steps.running.shape == (2, 2, 2, 2)  # (B, L, T, T)
    assert torch.equal(steps.fused, batch) and torch.equal(steps.augmented, batch + identity)
    for item in range(2):
        first = identity + batch[item, 0]
        torch.testing.assert_close(steps.running[item, 0], first)
        torch.testing.assert_close(steps.running[item, 1], first + batch[item, 1] @ first)
    torch.testing.assert_close(steps.running[0, 1], torch.tensor([[2.5, 1.05], [1.25, 1.6]], dtype=torch.float64))
    later = gradient_rollout(batch, start_layer=1, steps=True)
    assert torch.equal(later.fused, batch[:, 1:])
