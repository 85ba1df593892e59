"""AttnLRP: each rule by hand, parity with an explicit layer-by-layer LRP written here, conservation on every
supported family and the bundled models, the model left as it was, and the unsupported-family sentence.

Conservation is checked as an exact account: the target equals the input relevances plus the position
embeddings' share plus what the biases absorb plus what the softmax's Taylor bias term absorbs. The last
term is not small (AttnLRP's softmax rule x * (R - s sum R) is not conservative), so "the inputs sum to the
logit" alone does not hold; the measured gaps are asserted as bounds and printed with `-s`.
"""

from __future__ import annotations

import copy
import math
import threading
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
import transformers
from PIL import Image

import models
from explain.internals import recorded_modules
from explain.methods.attnlrp import (
    UNSUPPORTED,
    attention_projections,
    attnlrp,
    attnlrp_relevance,
    attnlrp_rules,
    constant_scale_norm,
    held_norm_cosine,
    identity_rule,
    uniform_rule,
)
from models.loading import prepare_for_explanation
from models.registry import BUNDLED_DIR, spec_from_config

# ---------------------------------------------------------------------------------------------------------
# (a) Each rule on tiny tensors, by hand.
# ---------------------------------------------------------------------------------------------------------


def test_identity_rule_passes_relevance_unchanged():
    x = torch.tensor([-2.0, 0.5, 3.0], dtype=torch.float64, requires_grad=True)
    y = torch.tanh(x)  # [-0.96402758, 0.46211716, 0.99505475]
    out = identity_rule(x, y)
    assert torch.equal(out, y)  # the forward value is the activation's own
    weights = torch.tensor([1.0, 2.0, -1.0], dtype=torch.float64)
    (gradient,) = torch.autograd.grad((out * weights).sum(), x)
    # dTarget/dx = weights * tanh(x) / x
    torch.testing.assert_close(gradient, torch.tensor([0.48201379, 1.84846863, -0.33168492], dtype=torch.float64))
    # relevance at the input x * grad = relevance at the output y * weights
    torch.testing.assert_close(x.detach() * gradient, torch.tensor([-0.96402758, 0.92423431, -0.99505475],
                                                                    dtype=torch.float64))
    (plain,) = torch.autograd.grad((torch.tanh(x) * weights).sum(), x)  # 1 - tanh^2: not the rule
    assert not torch.allclose(plain, gradient, atol=0.1)


def test_uniform_rule_splits_a_product_evenly():
    a = torch.tensor([2.0, -3.0], requires_grad=True)
    b = torch.tensor([0.5, 4.0], requires_grad=True)
    product = uniform_rule(a * b, 2)  # [1, -12]
    grad_a, grad_b = torch.autograd.grad(product.sum(), (a, b))
    torch.testing.assert_close(grad_a, torch.tensor([0.25, 2.0]))  # b / 2
    torch.testing.assert_close(grad_b, torch.tensor([1.0, -1.5]))  # a / 2
    relevance_a, relevance_b = a.detach() * grad_a, b.detach() * grad_b
    torch.testing.assert_close(relevance_a, torch.tensor([0.5, -6.0]))
    torch.testing.assert_close(relevance_b, torch.tensor([0.5, -6.0]))
    torch.testing.assert_close(relevance_a + relevance_b, torch.tensor([1.0, -12.0]))  # = a * b


def test_layer_norm_with_its_scale_held_constant():
    norm = torch.nn.LayerNorm(4, eps=0.0, elementwise_affine=False)
    x = torch.tensor([1.0, 2.0, 3.0, 6.0], dtype=torch.float64, requires_grad=True)
    y = norm(x)  # (x - 3) / sqrt(3.5) = [-1.0690450, -0.5345225, 0, 1.6035675]
    out = constant_scale_norm(x, y, None, 0.0, centred=True)
    assert torch.equal(out, y)
    (gradient,) = torch.autograd.grad(out[0], x)
    # d/dx of (x - mean x)_0 / sigma with sigma constant: ([1, 0, 0, 0] - 1/4) / sqrt(3.5)
    torch.testing.assert_close(gradient, torch.tensor([0.40089186, -0.13363062, -0.13363062, -0.13363062],
                                                      dtype=torch.float64))
    torch.testing.assert_close((x.detach() * gradient).sum(), y[0].detach())  # conservative (no bias)
    (plain,) = torch.autograd.grad(norm(x)[0], x)
    assert not torch.allclose(plain, gradient, atol=0.01)


def test_rms_norm_with_its_scale_held_constant():
    x = torch.tensor([3.0, 4.0], dtype=torch.float64, requires_grad=True)
    weight = torch.tensor([2.0, 0.5], dtype=torch.float64)
    y = weight * x / torch.sqrt((x**2).mean())  # rms = sqrt(12.5) = 3.5355339: [1.6970563, 0.5656854]
    out = constant_scale_norm(x, y, weight, 0.0, centred=False)
    (gradient,) = torch.autograd.grad(out.sum(), x)
    torch.testing.assert_close(gradient, torch.tensor([0.56568542, 0.14142136], dtype=torch.float64))  # w / rms
    torch.testing.assert_close(x.detach() * gradient, y.detach())  # relevance passes element by element


# ---------------------------------------------------------------------------------------------------------
# (b) Parity with an explicit layer-by-layer LRP written from the rules' definitions.
# ---------------------------------------------------------------------------------------------------------

STABILIZER = 1e-30  # float64: only keeps 0 / 0 away; the rules themselves use epsilon -> 0


def safe(z: torch.Tensor) -> torch.Tensor:
    return z + torch.where(z >= 0, STABILIZER, -STABILIZER)


def lrp_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, relevance: torch.Tensor) -> torch.Tensor:
    """Epsilon rule on z = x W^T + b: R_x = x * ((R / z) W); the bias keeps its share."""
    z = x @ weight.T + (0 if bias is None else bias)
    return x * ((relevance / safe(z)) @ weight)


def lrp_add(a: torch.Tensor, b: torch.Tensor, relevance: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Epsilon rule on a + b: shares in proportion to the addends."""
    ratio = relevance / safe(a + b)
    return a * ratio, b * ratio


def lrp_matmul(a: torch.Tensor, b: torch.Tensor, relevance: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Uniform rule then epsilon rule on a @ b (paper Prop. 3.3): each factor gets half."""
    ratio = relevance / safe(2 * (a @ b))
    return a * (ratio @ b.transpose(-1, -2)), b * (a.transpose(-1, -2) @ ratio)


def lrp_softmax(x: torch.Tensor, s: torch.Tensor, relevance: torch.Tensor) -> torch.Tensor:
    """Taylor decomposition at x with its bias (paper Prop. 3.1): R_x = x * (R - s * sum R)."""
    return x * (relevance - s * relevance.sum(-1, keepdim=True))


def lrp_layer_norm(x, weight, bias, eps, relevance):  # noqa: ANN001, ANN201
    """Epsilon rule on the linear map x -> (x - mean x) * w / sigma + b, sigma a constant."""
    sigma = torch.sqrt(x.var(-1, unbiased=False, keepdim=True) + eps)
    y = (x - x.mean(-1, keepdim=True)) / sigma * weight + bias
    weighted = weight * relevance / safe(y)
    return x * (weighted - weighted.mean(-1, keepdim=True)) / sigma


def lrp_rms_norm(x, weight, eps, relevance):  # noqa: ANN001, ANN201
    """x -> x * w / rms with rms constant is element-wise: relevance passes unchanged (where y != 0)."""
    rms = torch.sqrt((x**2).mean(-1, keepdim=True) + eps)
    y = x * weight / rms
    return x * weight / rms * relevance / safe(y)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


def rotate_half_transposed(v: torch.Tensor) -> torch.Tensor:
    half = v.shape[-1] // 2
    return torch.cat([v[..., half:], -v[..., :half]], dim=-1)


def heads(x: torch.Tensor, count: int) -> torch.Tensor:
    """(T, H * d) -> (H, T, d)."""
    return x.view(x.shape[0], count, -1).transpose(0, 1)


def merge(x: torch.Tensor) -> torch.Tensor:
    """(H, T, d) -> (T, H * d)."""
    return x.transpose(0, 1).reshape(x.shape[1], -1)


def randomized(model: torch.nn.Module, seed: int) -> models.LoadedModel:
    """Every parameter (biases, norm weights) random, float64, frozen, graph started at the embeddings."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.5)
    model = model.double().eval()
    model.config._attn_implementation = "eager"
    prepare_for_explanation(model)
    return models.LoadedModel(spec_from_config("tiny", "memory", model.config), model)


def reference_llama(model: transformers.LlamaForCausalLM, ids: torch.Tensor, position: int, token: int):  # noqa: ANN201
    """One-layer Llama by hand from its weights; returns (logit, relevance per token (T,))."""
    config, layer = model.config, model.model.layers[0]
    attention, mlp = layer.self_attn, layer.mlp
    count, eps = config.num_attention_heads, config.rms_norm_eps
    T = ids.shape[1]
    head_dim = config.hidden_size // count
    embedded = model.model.embed_tokens.weight[ids[0]]  # (T, D)
    rms = lambda x, norm: x * norm.weight / torch.sqrt((x**2).mean(-1, keepdim=True) + eps)  # noqa: E731
    normed = rms(embedded, layer.input_layernorm)
    q = heads(normed @ attention.q_proj.weight.T, count)  # (H, T, d)
    k = heads(normed @ attention.k_proj.weight.T, count)
    v = heads(normed @ attention.v_proj.weight.T, count)
    inv_freq = 1.0 / (config.rope_parameters["rope_theta"] ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    angles = torch.arange(T, dtype=torch.float64)[:, None] * inv_freq  # (T, d / 2)
    cos, sin = torch.cat([angles, angles], -1).cos(), torch.cat([angles, angles], -1).sin()  # (T, d)
    q_rot, k_rot = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
    scores = q_rot @ k_rot.transpose(-1, -2) / math.sqrt(head_dim)  # (H, T, T)
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    weights = torch.softmax(scores.masked_fill(~causal, float("-inf")), -1)
    context = merge(weights @ v)  # (T, H * d)
    attended = context @ attention.o_proj.weight.T
    hidden1 = embedded + attended
    normed2 = rms(hidden1, layer.post_attention_layernorm)
    gate, up = normed2 @ mlp.gate_proj.weight.T, normed2 @ mlp.up_proj.weight.T
    activated = F.silu(gate)
    product = activated * up
    mlp_out = product @ mlp.down_proj.weight.T
    hidden2 = hidden1 + mlp_out
    final = rms(hidden2, model.model.norm)
    logits = final @ model.lm_head.weight.T  # (T, V)

    relevance = torch.zeros_like(logits)
    relevance[position, token] = logits[position, token]
    r_final = lrp_linear(final, model.lm_head.weight, None, relevance)
    r_hidden2 = lrp_rms_norm(hidden2, model.model.norm.weight, eps, r_final)
    r_hidden1, r_mlp = lrp_add(hidden1, mlp_out, r_hidden2)
    r_product = lrp_linear(product, mlp.down_proj.weight, None, r_mlp)
    r_gate = r_product / 2  # uniform rule on act(gate) * up, then the identity rule on the activation
    r_up = r_product / 2
    r_normed2 = lrp_linear(normed2, mlp.gate_proj.weight, None, r_gate) + lrp_linear(normed2, mlp.up_proj.weight, None, r_up)
    r_hidden1 = r_hidden1 + lrp_rms_norm(hidden1, layer.post_attention_layernorm.weight, eps, r_normed2)
    r_embedded, r_attended = lrp_add(embedded, attended, r_hidden1)
    r_context = heads(lrp_linear(context, attention.o_proj.weight, None, r_attended), count)  # (H, T, d)
    r_weights, r_v = lrp_matmul(weights, v, r_context)
    r_scores = lrp_softmax(scores.masked_fill(~causal, 0.0), weights, r_weights)  # 1/sqrt(d): element-wise
    r_q_rot, r_k_rot_t = lrp_matmul(q_rot, k_rot.transpose(-1, -2), r_scores)
    r_k_rot = r_k_rot_t.transpose(-1, -2)
    # RoPE is linear in q: epsilon rule with its transpose
    r_q = q * (cos * (r_q_rot / safe(q_rot)) + rotate_half_transposed(sin * (r_q_rot / safe(q_rot))))
    r_k = k * (cos * (r_k_rot / safe(k_rot)) + rotate_half_transposed(sin * (r_k_rot / safe(k_rot))))
    r_normed = (lrp_linear(normed, attention.q_proj.weight, None, merge(r_q))
                + lrp_linear(normed, attention.k_proj.weight, None, merge(r_k))
                + lrp_linear(normed, attention.v_proj.weight, None, merge(r_v)))
    r_embedded = r_embedded + lrp_rms_norm(embedded, layer.input_layernorm.weight, eps, r_normed)
    return logits[position, token], r_embedded.sum(-1)


def reference_bert(model: transformers.BertForSequenceClassification, ids: torch.Tensor, label: int):  # noqa: ANN201
    """One-layer BERT classifier by hand from its weights: (logit, token relevance (T,), position share (T,))."""
    config, bert = model.config, model.bert
    embeddings, layer = bert.embeddings, bert.encoder.layer[0]
    attention, count = layer.attention, config.num_attention_heads
    T = ids.shape[1]
    head_dim = config.hidden_size // count

    def layer_norm(x, norm):  # noqa: ANN001, ANN202
        return F.layer_norm(x, (x.shape[-1],), norm.weight, norm.bias, norm.eps)

    def linear(x, module):  # noqa: ANN001, ANN202
        return x @ module.weight.T + module.bias

    words = embeddings.word_embeddings.weight[ids[0]]  # (T, D)
    added = embeddings.position_embeddings.weight[:T] + embeddings.token_type_embeddings.weight[0]
    summed = words + added
    x0 = layer_norm(summed, embeddings.LayerNorm)
    q = heads(linear(x0, attention.self.query), count)
    k = heads(linear(x0, attention.self.key), count)
    v = heads(linear(x0, attention.self.value), count)
    scores = q @ k.transpose(-1, -2) / math.sqrt(head_dim)
    weights = torch.softmax(scores, -1)
    context = merge(weights @ v)
    attended = linear(context, attention.output.dense)
    x1 = layer_norm(attended + x0, attention.output.LayerNorm)
    inner = linear(x1, layer.intermediate.dense)
    activated = F.gelu(inner)
    outer = linear(activated, layer.output.dense)
    x2 = layer_norm(outer + x1, layer.output.LayerNorm)
    pooled_in = linear(x2[0], bert.pooler.dense)
    pooled = torch.tanh(pooled_in)
    logits = linear(pooled, model.classifier)

    relevance = torch.zeros_like(logits)
    relevance[label] = logits[label]
    r_pooled = lrp_linear(pooled, model.classifier.weight, model.classifier.bias, relevance)  # tanh: identity rule
    r_x2 = torch.zeros_like(x2)
    r_x2[0] = lrp_linear(x2[0], bert.pooler.dense.weight, bert.pooler.dense.bias, r_pooled)
    norm = layer.output.LayerNorm
    r_outer, r_x1 = lrp_add(outer, x1, lrp_layer_norm(outer + x1, norm.weight, norm.bias, norm.eps, r_x2))
    r_inner = lrp_linear(activated, layer.output.dense.weight, layer.output.dense.bias, r_outer)  # GELU: identity
    r_x1 = r_x1 + lrp_linear(x1, layer.intermediate.dense.weight, layer.intermediate.dense.bias, r_inner)
    norm = attention.output.LayerNorm
    r_attended, r_x0 = lrp_add(attended, x0, lrp_layer_norm(attended + x0, norm.weight, norm.bias, norm.eps, r_x1))
    r_context = heads(lrp_linear(context, attention.output.dense.weight, attention.output.dense.bias, r_attended), count)
    r_weights, r_v = lrp_matmul(weights, v, r_context)
    r_scores = lrp_softmax(scores, weights, r_weights)
    r_q, r_k_t = lrp_matmul(q, k.transpose(-1, -2), r_scores)
    projections = attention.self
    r_x0 = (r_x0 + lrp_linear(x0, projections.query.weight, projections.query.bias, merge(r_q))
            + lrp_linear(x0, projections.key.weight, projections.key.bias, merge(r_k_t.transpose(-1, -2)))
            + lrp_linear(x0, projections.value.weight, projections.value.bias, merge(r_v)))
    norm = embeddings.LayerNorm
    r_words, r_added = lrp_add(words, added, lrp_layer_norm(summed, norm.weight, norm.bias, norm.eps, r_x0))
    return logits[label], r_words.sum(-1), r_added.sum(-1)


def test_matches_explicit_lrp_on_one_layer_llama():
    config = transformers.LlamaConfig(vocab_size=20, hidden_size=8, intermediate_size=16, num_hidden_layers=1,
                                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=16)
    loaded = randomized(transformers.LlamaForCausalLM(config), seed=1)
    ids = torch.tensor([[3, 7, 1, 12, 5, 9]])
    position, token = 4, 11
    with torch.no_grad():
        logit, expected = reference_llama(loaded.model, ids, position, token)
        model_logit = loaded.model(input_ids=ids).logits[0, position, token]
    # the hand forward is the model's (Llama's RMSNorm and rotary tables compute in float32: 1e-7 apart)
    torch.testing.assert_close(logit, model_logit, rtol=1e-6, atol=0)
    relevance, target = attnlrp(loaded, {"input_ids": ids, "attention_mask": torch.ones_like(ids)},
                                lambda out: out.logits[0, position, token])
    assert target == float(model_logit)
    torch.testing.assert_close(relevance, expected, rtol=1e-5, atol=1e-6 * abs(target))
    assert relevance[position + 1:].abs().max() == 0  # causal: later tokens get nothing
    assert relevance[: position + 1].abs().min() > 0


def test_matches_explicit_lrp_on_one_layer_bert():
    config = transformers.BertConfig(vocab_size=30, hidden_size=8, intermediate_size=16, num_hidden_layers=1,
                                     num_attention_heads=2, max_position_embeddings=16, num_labels=2)
    loaded = randomized(transformers.BertForSequenceClassification(config), seed=2)
    ids = torch.tensor([[2, 17, 5, 23, 9]])
    with torch.no_grad():
        logit, expected, expected_position = reference_bert(loaded.model, ids, label=1)
        model_logit = loaded.model(input_ids=ids).logits[0, 1]
    torch.testing.assert_close(logit, model_logit, rtol=1e-10, atol=1e-12)
    result = attnlrp_relevance(loaded, {"input_ids": ids, "attention_mask": torch.ones_like(ids)},
                               lambda out: out.logits[0, 1])
    assert result.target == pytest.approx(float(logit), rel=1e-12)
    torch.testing.assert_close(result.relevance, expected, rtol=1e-7, atol=1e-9 * abs(result.target))
    torch.testing.assert_close(result.position_relevance, expected_position, rtol=1e-7, atol=1e-9 * abs(result.target))


# ---------------------------------------------------------------------------------------------------------
# (c) Conservation: the target is fully accounted for, on every family and on the bundled models.
# ---------------------------------------------------------------------------------------------------------


def relevance_account(loaded: models.LoadedModel, inputs: dict, score) -> dict[str, float]:  # noqa: ANN001
    """Where the target's relevance goes, measured here apart from attnlrp_relevance.

    inputs + positions: attnlrp_relevance. biases: sum of b * dTarget~/dz at every linear layer's and
    LayerNorm's output z. softmax: per attention layer, what reaches the attention weights (half of
    A * dTarget/dA, the other half goes to v) minus what leaves the softmax into q and k
    (q * dTarget~/dq + k * dTarget~/dk at the projections' outputs).
    """
    result = attnlrp_relevance(loaded, inputs, score)
    model = loaded.model
    outputs_of: dict[int, torch.Tensor] = {}

    def keep(module: torch.nn.Module, args: tuple, output: torch.Tensor) -> None:
        outputs_of[id(module)] = output

    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    norms = [m for m in model.modules() if isinstance(m, torch.nn.LayerNorm) and m.bias is not None]
    # Linear outputs before the rules' hooks (q, k, v: the gradient after the uniform rule's division);
    # LayerNorm outputs after them (the rule's output is the one the gradient reaches).
    handles = [m.register_forward_hook(keep) for m in linears]
    projections = [attention_projections(a)[:2] for a in recorded_modules(model, "attentions")]
    extra = {"use_cache": False} if model.config.model_type in ("llama", "qwen2", "mistral") else {}
    try:
        with torch.enable_grad(), attnlrp_rules(model):
            handles += [m.register_forward_hook(keep) for m in norms]
            outputs = model(**inputs, output_attentions=True, **extra)
            target = score(outputs)
            keys = list(outputs_of)
            tensors = list(outputs.attentions) + [outputs_of[k] for k in keys]
            gradients = torch.autograd.grad(target, tensors, allow_unused=True, materialize_grads=True)
    finally:
        for handle in handles:
            handle.remove()
    layers = len(outputs.attentions)
    gradient_of = dict(zip(keys, gradients[layers:]))
    biases = sum(float((m.bias * gradient_of[id(m)]).sum()) for m in linears + norms
                 if m.bias is not None and id(m) in gradient_of)
    softmax = 0.0
    for weights, weights_gradient, (query, key) in zip(outputs.attentions, gradients[:layers], projections):
        arriving = 0.5 * float((weights.detach() * weights_gradient).sum())
        leaving = sum(float((outputs_of[id(m)].detach() * gradient_of[id(m)]).sum()) for m in (query, key))
        softmax += arriving - leaving
    return {"target": result.target, "inputs": float(result.relevance.sum()),
            "positions": float(result.position_relevance.sum()), "biases": biases, "softmax": softmax}


def assert_accounted(account: dict[str, float], name: str) -> None:
    total = account["inputs"] + account["positions"] + account["biases"] + account["softmax"]
    gap = (account["inputs"] + account["positions"] - account["target"]) / abs(account["target"])
    print(f"\n{name}: target {account['target']:.5f} = inputs {account['inputs']:.5f} + positions "
          f"{account['positions']:.5f} + biases {account['biases']:.5f} + softmax {account['softmax']:.5f}; "
          f"inputs + positions miss the target by {gap:+.1%}")
    assert total == pytest.approx(account["target"], rel=1e-4, abs=1e-6)


def with_biases(loaded: models.LoadedModel, scale: float) -> models.LoadedModel:
    """A copy whose linear, norm and patch-projection biases are random * scale (0: zeroed); position and
    token-type embeddings kept. The tiny checkpoints start with zero biases, as transformers initialises them."""
    model = copy.deepcopy(loaded.model)
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (torch.nn.Linear, torch.nn.LayerNorm, torch.nn.Conv2d)) and module.bias is not None:
                module.bias.copy_(torch.randn(module.bias.shape, generator=generator) * scale)
    return models.LoadedModel(loaded.spec, model)


def tiny_case(loaded: models.LoadedModel):  # noqa: ANN201
    """(inputs, score) for a tiny model: the next-token logit, a class logit, or a probe cosine."""
    if loaded.spec.kind.reads_images:
        generator = torch.Generator().manual_seed(0)
        size = loaded.spec.image_size
        return {"pixel_values": torch.randn(1, 3, *size, generator=generator)}, lambda out: out.logits[0, 1]
    ids = loaded.tokenizer("The cat sat on the mat because it was tired.", return_tensors="pt")["input_ids"]
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    if loaded.spec.kind.causal:
        return inputs, lambda out: out.logits[0, -1, 5]
    if loaded.spec.classifier:
        return inputs, lambda out: out.logits[0, 1]
    probe = torch.randn(loaded.model.config.hidden_size, generator=torch.Generator().manual_seed(0))
    return inputs, lambda out: held_norm_cosine(out.last_hidden_state.mean(1), probe)


FAMILIES = ("llama", "llama-gqa", "qwen2", "mistral", "bert", "bert-classifier", "roberta-classifier",
            "electra-classifier", "distilbert-classifier", "vit", "deit-distilled")


@pytest.mark.parametrize("name", FAMILIES)
def test_every_family_accounts_for_its_target(tiny_loaded, name):
    inputs, score = tiny_case(tiny_loaded(name))
    biased_model = with_biases(tiny_loaded(name), 0.1)
    biased = relevance_account(biased_model, inputs, score)
    assert_accounted(biased, f"{name}, random biases")
    if any(getattr(m, "bias", None) is not None for m in biased_model.model.modules()):  # Llama, Mistral: none
        assert abs(biased["biases"]) > 1e-3 * abs(biased["target"])  # the biases did take a share
    unbiased = with_biases(tiny_loaded(name), 0.0)
    zeroed = relevance_account(unbiased, inputs, score)
    assert_accounted(zeroed, f"{name}, biases zeroed")
    assert zeroed["biases"] == 0.0
    # with the attention weights held constant (CP-LRP) nothing is left to absorb: exactly conservative
    constant = attnlrp_relevance(unbiased, inputs, score, attention_rule="cp-lrp")
    print(f"{name}, biases zeroed, cp-lrp: inputs + positions {constant.total:.6f}, target {constant.target:.6f}")
    assert constant.total == pytest.approx(constant.target, rel=1e-4)


def bundled_text(name: str) -> str:
    """The first prompt of the model's bundled text file (lines starting with # are comments)."""
    lines = (BUNDLED_DIR / "texts" / f"{name}.txt").read_text().splitlines()
    return next(line for line in lines if line.strip() and not line.startswith("#"))


@pytest.fixture(scope="module")
def induction_lm():
    return models.load("induction-lm", allow_download=False)


@pytest.fixture(scope="module")
def shapes_vit():
    return models.load("shapes-vit", allow_download=False)


def test_induction_lm_next_token_logit(induction_lm):
    text = bundled_text("induction-lm")  # "please buy an apple and i love red pizza . please buy ... i love"
    ids = induction_lm.tokenizer(text, return_tensors="pt")["input_ids"]
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    with torch.no_grad():
        token = int(induction_lm.model(**inputs).logits[0, -1].argmax())
    account = relevance_account(induction_lm, inputs, lambda out: out.logits[0, -1, token])
    assert_accounted(account, "induction-lm")
    assert account["biases"] == 0.0  # Llama: no biases, no position embeddings: the softmax is the only sink
    assert account["positions"] == 0.0
    assert 0.3 < account["inputs"] / account["target"] < 1.0  # measured: 45%


def test_minilm_probe_cosine(minilm):
    text = bundled_text("minilm")  # "The cat sat on the mat."
    encoding = minilm.tokenizer(text, return_tensors="pt")
    probe_encoding = minilm.tokenizer("A dog lay on the rug.", return_tensors="pt")
    with torch.no_grad():
        probe = minilm.model(**probe_encoding).last_hidden_state.mean(1)[0]
    inputs = {"input_ids": encoding["input_ids"], "attention_mask": encoding["attention_mask"]}
    score = lambda out: held_norm_cosine(out.last_hidden_state.mean(1), probe)  # noqa: E731
    account = relevance_account(minilm, inputs, score)
    assert_accounted(account, "minilm (probe cosine)")
    with torch.no_grad():
        cosine = F.cosine_similarity(minilm.model(**inputs).last_hidden_state.mean(1)[0], probe, dim=0)
    assert account["target"] == pytest.approx(float(cosine), rel=1e-5)
    # inputs + positions carry about half of the cosine (measured: 51%); the softmax and biases the rest.
    # (With F.cosine_similarity the gradient through the norm would cancel it: e . d cos / de = 0.)
    assert 0.3 < (account["inputs"] + account["positions"]) / account["target"] < 1.0


def test_shapes_vit_class_logit(shapes_vit):
    picture = Image.open(BUNDLED_DIR / "samples" / "scene_00.png").convert("RGB")
    pixel_values = shapes_vit.processor(images=picture, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        label = int(shapes_vit.model(pixel_values=pixel_values).logits[0].argmax())
    result = attnlrp_relevance(shapes_vit, {"pixel_values": pixel_values}, lambda out: out.logits[0, label])
    rows, cols = shapes_vit.spec.patch_grid
    assert result.relevance.shape == (1 + rows * cols,)  # [CLS] then the patches
    account = relevance_account(shapes_vit, {"pixel_values": pixel_values}, lambda out: out.logits[0, label])
    assert_accounted(account, "shapes-vit")
    assert 0.3 < (account["inputs"] + account["positions"]) / account["target"] < 1.0  # measured: 68%
    assert result.relevance[0] == pytest.approx(float(account["inputs"] - result.relevance[1:].sum()), rel=1e-5)


# ---------------------------------------------------------------------------------------------------------
# (d) The model is left as it was; other threads keep ordinary gradients.
# ---------------------------------------------------------------------------------------------------------


def hook_counts(model: torch.nn.Module) -> list[int]:
    return [len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in model.modules()]


def plain_input_gradient(loaded: models.LoadedModel, inputs: dict, score) -> torch.Tensor:  # noqa: ANN001
    seen = {}
    handle = loaded.model.get_input_embeddings().register_forward_hook(lambda m, a, out: seen.setdefault("x", out))
    try:
        with torch.enable_grad():
            target = score(loaded.model(**inputs))
            return torch.autograd.grad(target, seen["x"])[0]
    finally:
        handle.remove()


@pytest.mark.parametrize("name", ["llama", "bert-classifier", "roberta-classifier", "vit"])
def test_model_unchanged_after_the_call_and_after_an_error(tiny_loaded, name):
    loaded = tiny_loaded(name)
    inputs, score = tiny_case(loaded)
    hooks_before = hook_counts(loaded.model)
    forwards_before = [type(m).forward for m in loaded.model.modules()]
    with torch.no_grad():
        logits_before = loaded.model(**inputs).logits.clone()
    gradient_before = plain_input_gradient(loaded, inputs, score)

    relevance, target = attnlrp(loaded, inputs, score)
    with pytest.raises(RuntimeError, match="score failed"):
        attnlrp(loaded, inputs, lambda out: (_ for _ in ()).throw(RuntimeError("score failed")))
    with pytest.raises(KeyError), attnlrp_rules(loaded.model):
        loaded.model(**inputs)
        raise KeyError("inside the block")

    assert hook_counts(loaded.model) == hooks_before
    assert [type(m).forward for m in loaded.model.modules()] == forwards_before
    assert not any("forward" in vars(m) for m in loaded.model.modules())  # no instance-level patches
    with torch.no_grad():
        assert torch.equal(loaded.model(**inputs).logits, logits_before)
    assert torch.equal(plain_input_gradient(loaded, inputs, score), gradient_before)
    assert target == float(score(SimpleNamespace(logits=logits_before)))  # the forward value is the model's own
    assert torch.isfinite(relevance).all() and relevance.abs().sum() > 0


def test_other_threads_keep_ordinary_gradients(tiny_loaded):
    loaded = tiny_loaded("bert-classifier")
    inputs, score = tiny_case(loaded)
    expected = plain_input_gradient(loaded, inputs, score)
    seen: dict[str, torch.Tensor] = {}
    with attnlrp_rules(loaded.model):
        worker = threading.Thread(
            target=lambda: seen.setdefault("gradient", plain_input_gradient(loaded, inputs, score)))
        worker.start()
        worker.join()
        modified = plain_input_gradient(loaded, inputs, score)  # this thread: the rules' gradient
    assert torch.equal(seen["gradient"], expected)
    assert not torch.allclose(modified, expected)


def test_rules_do_not_nest(tiny_loaded):
    loaded = tiny_loaded("llama")
    with attnlrp_rules(loaded.model):
        with pytest.raises(ValueError, match="already active"):
            with attnlrp_rules(loaded.model):
                pass
    with attnlrp_rules(loaded.model):  # usable again after exit
        pass


# ---------------------------------------------------------------------------------------------------------
# (e) Families it does not cover.
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["gpt2", "phi", "opt", "gpt-neox", "bart", "t5", "beit-mean"])
def test_unsupported_family_says_which_are_supported(tiny_loaded, name):
    loaded = tiny_loaded(name)
    hooks_before = hook_counts(loaded.model)
    ids = torch.tensor([[1, 5, 6, 7]])
    with pytest.raises(ValueError) as error:
        attnlrp(loaded, {"input_ids": ids, "attention_mask": torch.ones_like(ids)}, lambda out: out.logits[0, -1, 0])
    assert str(error.value) == UNSUPPORTED
    assert hook_counts(loaded.model) == hooks_before


def test_batch_of_two_is_refused(tiny_loaded):
    loaded = tiny_loaded("bert-classifier")
    ids = torch.tensor([[101, 2000, 102], [101, 2001, 102]])
    with pytest.raises(ValueError, match="one example at a time"):
        attnlrp(loaded, {"input_ids": ids, "attention_mask": torch.ones_like(ids)}, lambda out: out.logits[0, 1])
