"""ALTI: the contribution formula on hand-computed numbers; parity with a plain reference written here from
the definition (per-family modules named explicitly, explicit loops over i, j and heads) on tiny models of
every family, post-norm (BERT, RoBERTa, ELECTRA, DistilBERT, OPT with its norm after attention) and pre-norm
(ViT, DeiT, BEiT with layer scale, GPT-2, Llama with and without grouped key-value heads, Qwen2, Mistral,
Phi, OPT, GPT-NeoX); rows non-negative, summing to 1, causal for decoders; the bundled MiniLM, induction LM
and shapes ViT end to end; one sentence for encoder-decoders."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from attribution_examples import assert_rows_are_distributions, forward_inputs
from explain.methods.alti import alti_layers, combine_layers, contributions
from explain.rollout import normalise_rows

POST_NORM = ("bert", "roberta-classifier", "electra-classifier", "distilbert-classifier")
PRE_NORM_IMAGE = ("vit", "deit-distilled", "beit-mean")
PRE_NORM_DECODERS = ("gpt2", "llama", "llama-gqa", "qwen2", "mistral", "phi", "opt", "gpt-neox")


def layer_parts(model, name: str, index: int, x: torch.Tensor):  # noqa: ANN001, ANN201
    """What the definition needs, read by hand per family: values (T, KV * d) computed from the layer input x
    (T, D) as the model does, W_O as an (out, in) matrix, b_O, the LayerNorm after the residual (post-norm)
    or None, and the attention branch's layer scale or None."""
    base = model.base_model
    if name in ("bert", "roberta-classifier", "electra-classifier"):
        layer = base.encoder.layer[index]
        dense = layer.attention.output.dense
        return layer.attention.self.value(x), dense.weight, dense.bias, layer.attention.output.LayerNorm, None
    if name == "distilbert-classifier":
        layer = base.transformer.layer[index]
        out = layer.attention.out_lin
        return layer.attention.v_lin(x), out.weight, out.bias, layer.sa_layer_norm, None
    if name in PRE_NORM_IMAGE:
        layer = base.layers[index]
        out = layer.attention.o_proj
        scale = layer.lambda_1 if name == "beit-mean" else None
        return layer.attention.v_proj(layer.layernorm_before(x)), out.weight, out.bias, None, scale
    if name == "gpt2":
        layer = base.h[index]
        size, out = x.shape[-1], layer.attn.c_proj  # Conv1D: weight stored (in, out)
        return layer.attn.c_attn(layer.ln_1(x))[:, 2 * size:], out.weight.T, out.bias, None, None
    if name in ("llama", "llama-gqa", "qwen2", "mistral"):
        layer = base.layers[index]
        out = layer.self_attn.o_proj
        return layer.self_attn.v_proj(layer.input_layernorm(x)), out.weight, out.bias, None, None
    if name == "phi":
        layer = base.layers[index]
        out = layer.self_attn.dense
        return layer.self_attn.v_proj(layer.input_layernorm(x)), out.weight, out.bias, None, None
    if name in ("opt", "opt-post-norm"):
        layer = base.decoder.layers[index]
        out = layer.self_attn.out_proj
        if name == "opt":
            return layer.self_attn.v_proj(layer.self_attn_layer_norm(x)), out.weight, out.bias, None, None
        return layer.self_attn.v_proj(x), out.weight, out.bias, layer.self_attn_layer_norm, None
    if name == "gpt-neox":
        layer = base.layers[index]
        heads, tokens = model.config.num_attention_heads, x.shape[0]
        fused = layer.attention.query_key_value(layer.input_layernorm(x)).view(tokens, heads, 3, -1)  # [q, k, v]_h
        out = layer.attention.dense
        return fused[:, :, 2].reshape(tokens, -1), out.weight, out.bias, None, None
    raise KeyError(name)


@torch.no_grad()
def reference_alti(loaded, name: str, inputs: dict) -> torch.Tensor:  # noqa: ANN001
    """ALTI from the definition, with explicit loops: (L, T, T)."""
    model = loaded.model
    outputs = model(**inputs, output_attentions=True, output_hidden_states=True)
    layers = []
    for index, attention in enumerate(outputs.attentions):
        A = attention[0]  # (H, T, T)
        heads, tokens = A.shape[0], A.shape[-1]
        x = outputs.hidden_states[index][0]  # (T, D) the layer's input
        values, W_O, b_O, norm, scale = layer_parts(model, name, index, x)
        d = W_O.shape[1] // heads
        group = heads // (values.shape[1] // d)
        attended = torch.zeros(tokens, tokens, x.shape[1])  # [i, j]: sum_h A_h[i, j] W_O^h v_j^h
        for i in range(tokens):
            for j in range(tokens):
                for h in range(heads):
                    kv = h // group
                    attended[i, j] += A[h, i, j] * (W_O[:, h * d:(h + 1) * d] @ values[j, kv * d:(kv + 1) * d])
        bias = torch.zeros(x.shape[1]) if b_O is None else b_O
        if scale is not None:
            attended, bias = attended * scale, bias * scale
        transformed = attended + torch.diag_embed(x.T).permute(1, 2, 0)  # + x_i where j = i
        if norm is None:
            y = x + attended.sum(dim=1) + bias  # the attention block's output with the residual
        else:
            residual = x + attended.sum(dim=1) + bias  # (T, D) what the LayerNorm receives
            y = F.layer_norm(residual, residual.shape[-1:], norm.weight, norm.bias, norm.eps)
            scale_i = torch.sqrt(residual.var(dim=-1, unbiased=False) + norm.eps)  # (T,) held fixed
            transformed = norm.weight * (transformed - transformed.mean(-1, keepdim=True)) / scale_i[:, None, None]
        c = torch.zeros(tokens, tokens)
        for i in range(tokens):
            for j in range(tokens):
                c[i, j] = max(0.0, float(y[i].abs().sum() - (y[i] - transformed[i, j]).abs().sum()))
        layers.append(c / c.sum(dim=-1, keepdim=True))
    return torch.stack(layers)


def test_contribution_formula_by_hand():
    outputs = torch.tensor([[1.0, 1.0], [2.0, -1.0]])  # y_0, y_1
    transformed = torch.tensor([[[1.0, 0.0], [0.0, 3.0]],  # T_0(x_0), T_0(x_1)
                                [[1.0, -1.0], [1.0, 0.0]]])  # T_1(x_0), T_1(x_1)
    # row 0: ||y_0|| = 2, ||y_0 - T_0(x_0)|| = 1 -> 1; ||y_0 - T_0(x_1)|| = 1 + 2 = 3 -> max(0, -1) = 0
    # row 1: ||y_1|| = 3, ||y_1 - T_1(x_0)|| = 1 -> 2; ||y_1 - T_1(x_1)|| = 1 + 1 = 2 -> 1
    raw = contributions(outputs[:, None, :], transformed)
    torch.testing.assert_close(raw, torch.tensor([[1.0, 0.0], [2.0, 1.0]]))
    torch.testing.assert_close(normalise_rows(raw), torch.tensor([[1.0, 0.0], [2 / 3, 1 / 3]]))
    # a row that no source moves towards its output: the token keeps itself
    torch.testing.assert_close(normalise_rows(torch.tensor([[0.0, 0.0], [0.0, 0.0]])), torch.eye(2))


def test_reference_matches_the_models_own_outputs(tiny_loaded):
    """The reference's y is the model's: BERT's LayerNorm output feeds its feed-forward block to give the next
    hidden state; Llama's residual stream after attention plus its MLP gives the next hidden state."""
    with torch.no_grad():
        bert = tiny_loaded("bert")
        inputs = forward_inputs(bert)
        states = bert.model(**inputs, output_hidden_states=True).hidden_states
        layer = bert.model.encoder.layer[0]
        x = states[0][0]
        y = layer.attention.output.LayerNorm(layer.attention.output.dense(
            layer.attention.self(x[None], None)[0]) + x[None])
        torch.testing.assert_close(layer.output(layer.intermediate(y), y)[0], states[1][0])
        llama = tiny_loaded("llama")
        inputs = forward_inputs(llama)
        outputs = llama.model(**inputs, output_hidden_states=True, output_attentions=True)
        layer = llama.model.model.layers[0]
        x = outputs.hidden_states[0][0]
        values, W_O, _, _, _ = layer_parts(llama.model, "llama", 0, x)
        A = outputs.attentions[0][0]
        heads, d = A.shape[0], W_O.shape[1] // A.shape[0]
        context = torch.cat([A[h] @ values[:, h * d:(h + 1) * d] for h in range(heads)], dim=-1)  # (T, H * d)
        y = x + context @ W_O.T
        torch.testing.assert_close(y + layer.mlp(layer.post_attention_layernorm(y)), outputs.hidden_states[1][0])


@pytest.mark.parametrize("name", POST_NORM + PRE_NORM_IMAGE + PRE_NORM_DECODERS)
def test_parity_with_the_reference(tiny_loaded, name):
    loaded = tiny_loaded(name)
    inputs = forward_inputs(loaded)
    layers = alti_layers(loaded, inputs)
    torch.testing.assert_close(layers, reference_alti(loaded, name, inputs), rtol=1e-4, atol=1e-5)
    assert_rows_are_distributions(layers, causal=name in PRE_NORM_DECODERS)


def test_post_norm_is_read_from_the_data_flow_not_the_class():
    """OPT-350m puts the same self_attn_layer_norm after the residual: same classes, post-norm maths."""
    import transformers

    from models import LoadedModel, prepare_for_explanation, spec_from_config

    torch.manual_seed(0)
    config = transformers.OPTConfig(hidden_size=16, ffn_dim=32, word_embed_proj_dim=16, num_hidden_layers=2,
                                    num_attention_heads=2, max_position_embeddings=64, vocab_size=300,
                                    do_layer_norm_before=False)
    config._attn_implementation = "eager"
    model = prepare_for_explanation(transformers.OPTForCausalLM(config))
    loaded = LoadedModel(spec_from_config("opt-post-norm", "random", config), model)
    ids = torch.tensor([[1, 5, 9, 42, 7, 7, 100, 3]])
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    layers = alti_layers(loaded, inputs)
    torch.testing.assert_close(layers, reference_alti(loaded, "opt-post-norm", inputs), rtol=1e-4, atol=1e-5)
    assert_rows_are_distributions(layers, causal=True)


@pytest.mark.parametrize("name", ["gpt2", "llama", "gpt-neox"])
def test_decoder_rows_do_not_see_later_tokens(tiny_loaded, name):
    loaded = tiny_loaded(name)
    inputs = forward_inputs(loaded)
    full = alti_layers(loaded, inputs)
    prefix = 5
    shorter = alti_layers(loaded, {key: value[:, :prefix] for key, value in inputs.items()})
    torch.testing.assert_close(shorter, full[:, :prefix, :prefix], rtol=1e-4, atol=1e-6)


def test_encoder_decoders_and_batches_get_one_sentence(tiny_loaded):
    bart = tiny_loaded("bart")
    inputs = bart.tokenizer("24 November 2026", return_tensors="pt")
    with pytest.raises(ValueError, match="ALTI supports text encoders, ViTs and decoder-only language models, not "
                                         "encoder-decoders"):
        alti_layers(bart, dict(inputs))
    bert = tiny_loaded("bert")
    two = bert.tokenizer(["a cat", "a dog"], return_tensors="pt")
    with pytest.raises(ValueError, match="one example"):
        alti_layers(bert, dict(two))


@pytest.mark.parametrize("name", ["minilm", "induction-lm", "shapes-vit"])
def test_bundled_models_end_to_end(minilm, name):
    import models

    loaded = minilm if name == "minilm" else models.load(name, allow_download=False)
    inputs = forward_inputs(loaded, "the cat sat on the mat and the dog lay on the rug")
    layers = alti_layers(loaded, inputs)
    if "input_ids" in inputs:
        tokens = inputs["input_ids"].shape[1]
    else:  # the class token(s) and the patches
        tokens = loaded.spec.prefix_tokens + loaded.spec.patch_grid[0] * loaded.spec.patch_grid[1]
    assert layers.shape == (loaded.spec.layers, tokens, tokens)
    assert_rows_are_distributions(layers, causal=name == "induction-lm")
    joint = combine_layers(layers)
    product = torch.eye(tokens)
    for layer in layers:  # C_{L-1} @ ... @ C_0, no identity added
        product = layer @ product
    torch.testing.assert_close(joint, product)
    torch.testing.assert_close(joint.sum(-1), torch.ones(tokens), rtol=0, atol=1e-5)
