"""Inside one head: every intermediate equals the model's own computation (weights = the attention it
returns, context = the head's slice of what goes into W_o, W_o's output) for MiniLM, GPT-2, Llama (rotary,
with and without grouped key-value heads), Qwen2, Mistral, GPT-NeoX (q, k, v fused per head), the bundled
ViT and BART self- and cross-attention."""

from __future__ import annotations

import pytest
import torch

from explain.internals import attention_module
from explain.qkv import head_internals

SENTENCE = "The cat sat on the mat. The dog lay on the rug."


def assert_faithful_to_the_model(result, atol=1e-5):  # noqa: ANN001
    torch.testing.assert_close(result.weights, result.model_weights, rtol=0, atol=atol)
    torch.testing.assert_close(result.weights.sum(), torch.tensor(1.0), rtol=0, atol=1e-6)
    # context is this head's slice of W_o's input; W_o's output is the projection of all heads' contexts
    head_dim = result.q.shape[-1]
    torch.testing.assert_close(result.concatenated[result.head * head_dim:(result.head + 1) * head_dim],
                               result.context, rtol=1e-5, atol=atol)
    # scores by hand from q and k, and the weights from the masked scores
    expected = (result.q[result.token] @ result.k.T) * result.scaling
    torch.testing.assert_close(result.scores, expected)
    assert (result.weights[result.mask] == 0).all()
    torch.testing.assert_close(result.weights, torch.softmax(result.scores.masked_fill(result.mask, -torch.inf), -1))
    torch.testing.assert_close(result.context, result.weights @ result.v)


def test_minilm(minilm):
    result = head_internals(minilm, text=SENTENCE, layer=3, head=5, token=4)
    assert_faithful_to_the_model(result)
    assert not result.mask.any() and not result.rotary and result.scaling == pytest.approx(32 ** -0.5)
    # BERT is post-norm: the input of layer 3's attention is layer 2's output, the model's hidden state 3
    states = minilm.model(**minilm.tokenizer(SENTENCE, return_tensors="pt"), output_hidden_states=True).hidden_states
    torch.testing.assert_close(result.hidden, states[3][0], rtol=1e-5, atol=1e-5)
    dense = minilm.model.encoder.layer[3].attention.output.dense
    torch.testing.assert_close(result.projected, dense(result.concatenated), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["gpt2", "llama", "llama-gqa", "qwen2", "mistral", "gpt-neox"])
def test_decoders_with_the_causal_mask(tiny_loaded, name):
    loaded = tiny_loaded(name)
    result = head_internals(loaded, text=SENTENCE, layer=1, head=1, token=6)
    assert_faithful_to_the_model(result, atol=1e-6)
    tokens = len(result.tokens)
    assert result.mask.tolist() == [False] * 7 + [True] * (tokens - 7)  # the future is masked
    assert result.rotary == (name != "gpt2")
    if name in ("llama-gqa", "mistral"):
        assert result.kv_heads == 1 < result.heads


def test_rotary_q_and_k_are_rotated_and_pre_norm_input(tiny_loaded):
    loaded = tiny_loaded("llama")
    result = head_internals(loaded, text=SENTENCE, layer=0, head=0, token=3)
    block = loaded.model.model.layers[0]
    ids = loaded.tokenizer(SENTENCE, return_tensors="pt")["input_ids"]
    embedded = loaded.model.model.embed_tokens(ids)
    torch.testing.assert_close(result.hidden, block.input_layernorm(embedded)[0])  # after the pre-attention norm
    unrotated = block.self_attn.q_proj(result.hidden[None])[0].view(len(result.tokens), -1, result.q.shape[-1])[:, 0]
    assert not torch.allclose(unrotated[3], result.q[3])  # rotated by position 3
    torch.testing.assert_close(unrotated[0], result.q[0])  # position 0: rotation by angle 0


def test_vit(tiny_loaded):
    from PIL import Image

    loaded = tiny_loaded("vit")
    result = head_internals(loaded, image=Image.new("RGB", (32, 32), (200, 30, 30)), layer=1, head=0, token=0)
    assert_faithful_to_the_model(result)
    assert result.tokens[0] == "[CLS]" and len(result.tokens) == 17


@pytest.mark.parametrize("stack, side, queries_from", [("cross", "decoder", "decoder"), ("self", "decoder", "decoder"),
                                                       ("self", "encoder", "encoder")])
def test_bart(tiny_loaded, stack, side, queries_from):
    loaded = tiny_loaded("bart")
    result = head_internals(loaded, text="24 November 2026", output="2026-11-24", layer=1, head=1, token=2,
                            stack=stack, side=side)
    assert_faithful_to_the_model(result, atol=1e-6)
    if stack == "cross":
        assert result.key_tokens != result.tokens and not result.mask.any()  # keys: the whole source
        assert result.key_hidden.shape[0] == len(result.key_tokens)
    elif side == "decoder":
        assert result.mask.tolist()[3:] == [True] * (len(result.tokens) - 3)


def test_bad_requests_get_one_sentence(minilm, tiny_loaded):
    with pytest.raises(ValueError, match="Layer 9 is out of range"):
        head_internals(minilm, text=SENTENCE, layer=9, head=0, token=0)
    with pytest.raises(ValueError, match="Head 12 is out of range"):
        head_internals(minilm, text=SENTENCE, layer=0, head=12, token=0)
    with pytest.raises(ValueError, match="Token 99 is out of range"):
        head_internals(minilm, text=SENTENCE, layer=0, head=0, token=99)
    with pytest.raises(ValueError, match="no cross-attention"):
        attention_module(minilm, 0, "cross")
    with pytest.raises(ValueError, match="text is empty"):
        head_internals(minilm, text=" ", layer=0, head=0, token=0)
