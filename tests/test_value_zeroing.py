"""Value zeroing: parity with a plain reference written here from the definition (one unbatched forward pass
per layer and source, the value projection swapped for a module that zeroes one token's values, per-family
modules named explicitly) on tiny models of every single-stack family and the bundled MiniLM; the batch
size changes nothing; rows non-negative, summing to 1, causal for decoders; the bundled induction LM and
shapes ViT end to end; one sentence for encoder-decoders."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from attribution_examples import assert_rows_are_distributions, forward_inputs
from explain.methods.value_zeroing import combine_layers, value_zeroing_layers

ENCODERS = ("bert", "roberta-classifier", "electra-classifier", "distilbert-classifier", "vit", "deit-distilled",
            "beit-mean")
DECODERS = ("gpt2", "llama", "llama-gqa", "qwen2", "mistral", "phi", "opt", "gpt-neox")


def value_sites(model, name: str) -> list[tuple[torch.nn.Module, torch.nn.Module, str, slice | None]]:  # noqa: ANN001
    """Per layer, by hand: (the layer, the module owning the value projection, its attribute name, which of
    the projection's output features are values as a slice, or None for GPT-NeoX's per-head [q, k, v])."""
    base = model.base_model
    every = slice(None)
    if name in ("bert", "roberta-classifier", "electra-classifier", "minilm"):
        return [(layer, layer.attention.self, "value", every) for layer in base.encoder.layer]
    if name == "distilbert-classifier":
        return [(layer, layer.attention, "v_lin", every) for layer in base.transformer.layer]
    if name in ("vit", "deit-distilled", "beit-mean"):
        return [(layer, layer.attention, "v_proj", every) for layer in base.layers]
    if name == "gpt2":
        size = model.config.hidden_size
        return [(layer, layer.attn, "c_attn", slice(2 * size, 3 * size)) for layer in base.h]
    if name in ("llama", "llama-gqa", "qwen2", "mistral", "phi"):
        return [(layer, layer.self_attn, "v_proj", every) for layer in base.layers]
    if name == "opt":
        return [(layer, layer.self_attn, "v_proj", every) for layer in base.decoder.layers]
    if name == "gpt-neox":
        return [(layer, layer.attention, "query_key_value", None) for layer in base.layers]
    raise KeyError(name)


class ZeroOneToken(torch.nn.Module):
    """Stands in for a value projection: its output with token `token`'s values set to zero."""

    def __init__(self, projection: torch.nn.Module, token: int, columns: slice | None, heads: int) -> None:
        super().__init__()
        self.projection, self.token, self.columns, self.heads = projection, token, columns, heads

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        output = self.projection(hidden).clone()
        if self.columns is None:  # GPT-NeoX: each head's features are [q_h, k_h, v_h]
            per_head = output.view(*output.shape[:-1], self.heads, 3, -1)
            per_head[:, self.token, :, 2] = 0.0
        else:
            output[:, self.token, self.columns] = 0.0
        return output


@torch.no_grad()
def reference_value_zeroing(loaded, name: str, inputs: dict) -> torch.Tensor:  # noqa: ANN001
    """Value zeroing from the definition, one unbatched forward pass per layer and source: (L, T, T)."""
    model = loaded.model
    heads = model.config.num_attention_heads
    sites = value_sites(model, name)

    def layer_output(layer: torch.nn.Module) -> torch.Tensor:
        seen = []
        handle = layer.register_forward_hook(
            lambda _module, _args, out: seen.append(out[0] if isinstance(out, tuple) else out))
        try:
            model(**inputs)
        finally:
            handle.remove()
        return seen[0][0]  # (T, D)

    layers = []
    for layer, owner, attribute, columns in sites:
        original = layer_output(layer)
        tokens = original.shape[0]
        scores = torch.zeros(tokens, tokens)
        projection = getattr(owner, attribute)
        for j in range(tokens):
            setattr(owner, attribute, ZeroOneToken(projection, j, columns, heads))  # a direct edit of the model
            try:
                changed = layer_output(layer)  # earlier layers untouched: the layer's input is the original
            finally:
                setattr(owner, attribute, projection)
            scores[:, j] = (1 - F.cosine_similarity(original.double(), changed.double(), dim=-1)).clamp_min(0)
        if name in DECODERS:
            scores = scores.tril()  # a later token's values cannot reach an earlier position
        layers.append(scores / scores.sum(dim=-1, keepdim=True))
    return torch.stack(layers)


@pytest.mark.parametrize("name", ENCODERS + DECODERS)
def test_parity_with_the_reference(tiny_loaded, name):
    loaded = tiny_loaded(name)
    inputs = forward_inputs(loaded)
    layers = value_zeroing_layers(loaded, inputs, batch_size=5)  # several chunks, the last one short
    torch.testing.assert_close(layers, reference_value_zeroing(loaded, name, inputs), rtol=1e-3, atol=1e-5)
    assert_rows_are_distributions(layers, causal=name in DECODERS)


def test_minilm_parity_and_batch_size(minilm):
    inputs = forward_inputs(minilm, "the cat sat on the mat")
    layers = value_zeroing_layers(minilm, inputs)
    assert layers.shape == (6, 8, 8)
    torch.testing.assert_close(layers, reference_value_zeroing(minilm, "minilm", inputs), rtol=1e-3, atol=1e-5)
    torch.testing.assert_close(value_zeroing_layers(minilm, inputs, batch_size=1), layers, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(value_zeroing_layers(minilm, inputs, batch_size=3), layers, rtol=1e-4, atol=1e-6)
    assert_rows_are_distributions(layers, causal=False)


@pytest.mark.parametrize("name", ["gpt2", "llama", "gpt-neox"])
def test_decoder_rows_do_not_see_later_tokens(tiny_loaded, name):
    loaded = tiny_loaded(name)
    inputs = forward_inputs(loaded)
    full = value_zeroing_layers(loaded, inputs)
    prefix = 5
    shorter = value_zeroing_layers(loaded, {key: value[:, :prefix] for key, value in inputs.items()})
    torch.testing.assert_close(shorter, full[:, :prefix, :prefix], rtol=1e-3, atol=1e-5)


def test_induction_lm_end_to_end():
    import models

    loaded = models.load("induction-lm", allow_download=False)
    inputs = forward_inputs(loaded, "the cat sat on the mat and the dog lay on the rug")
    tokens = inputs["input_ids"].shape[1]
    layers = value_zeroing_layers(loaded, inputs, batch_size=4)
    assert layers.shape == (loaded.spec.layers, tokens, tokens)
    assert_rows_are_distributions(layers, causal=True)
    assert layers[:, 0, 0].tolist() == [1.0] * loaded.spec.layers  # the first token reads only itself
    joint = combine_layers(layers)
    torch.testing.assert_close(joint, layers[1] @ layers[0])  # two layers: C_1 @ C_0, no identity added
    assert (joint.triu(1) == 0).all()


def test_bundled_vit_end_to_end():
    import models

    loaded = models.load("shapes-vit", allow_download=False)
    layers = value_zeroing_layers(loaded, forward_inputs(loaded))
    tokens = loaded.spec.prefix_tokens + loaded.spec.patch_grid[0] * loaded.spec.patch_grid[1]  # [CLS], patches
    assert layers.shape == (loaded.spec.layers, tokens, tokens)
    assert_rows_are_distributions(layers, causal=False)


def test_bad_requests_get_one_sentence(tiny_loaded):
    bart = tiny_loaded("bart")
    with pytest.raises(ValueError, match="Value zeroing supports text encoders, ViTs and decoder-only language "
                                         "models, not encoder-decoders"):
        value_zeroing_layers(bart, dict(bart.tokenizer("24 November 2026", return_tensors="pt")))
    bert = tiny_loaded("bert")
    with pytest.raises(ValueError, match="Batch size 0 is out of range"):
        value_zeroing_layers(bert, forward_inputs(bert), batch_size=0)
    with pytest.raises(ValueError, match="one example"):
        value_zeroing_layers(bert, dict(bert.tokenizer(["a cat", "a dog"], return_tensors="pt")))
