"""explain.embeddings: the input embeddings of every kind, and a forward pass from them that is the model's own.

A forward pass from the real embeddings must reproduce `model(**inputs)` exactly, for every tiny model of
every family; a batch must give each row what that row alone gives; the ViT hook must never outlive a call.
"""

from __future__ import annotations

import pytest
import torch
from attribution_examples import example
from conftest import TINY_MODELS

from explain.embeddings import embedding_input, forward_from_embeddings, input_embeddings


def logits_of(outputs) -> torch.Tensor:  # noqa: ANN001
    return outputs.logits if hasattr(outputs, "logits") else outputs.last_hidden_state


@pytest.mark.parametrize("name", list(TINY_MODELS))
def test_forward_from_real_embeddings_is_the_models_forward(tiny_loaded, name):
    loaded = tiny_loaded(name)
    inputs, _ = example(loaded)
    with torch.no_grad():
        expected = logits_of(loaded.model(**inputs))
        embeddings = input_embeddings(loaded, inputs)
        actual = logits_of(forward_from_embeddings(loaded, inputs, embeddings))
    tokens = inputs["pixel_values"].shape[-1] // 8 if "pixel_values" in inputs else inputs["input_ids"].shape[1]
    expected_tokens = tokens ** 2 if "pixel_values" in inputs else tokens  # 32x32 images, 8x8 patches: 16
    assert embeddings.shape[:2] == (1, expected_tokens)
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", ["bert", "vit", "deit-distilled", "beit-mean", "llama", "gpt2", "bart", "t5",
                                  "marian"])
def test_batch_rows_equal_one_at_a_time(tiny_loaded, name):
    loaded = tiny_loaded(name)
    inputs, _ = example(loaded)
    embeddings = input_embeddings(loaded, inputs)  # (1, T, D)
    noise = torch.randn(embeddings.shape, generator=torch.Generator().manual_seed(0))
    batch = torch.cat([embeddings, 0.5 * embeddings, embeddings + 0.1 * noise])  # (3, T, D)
    with torch.no_grad():
        together = logits_of(forward_from_embeddings(loaded, inputs, batch))
        alone = torch.cat([logits_of(forward_from_embeddings(loaded, inputs, row[None])) for row in batch])
    assert together.shape[0] == 3
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(together[0], together[1])  # the rows are really different inputs


@pytest.mark.parametrize("name", ["bart", "mbart", "marian"])
def test_scaled_source_embeddings_reproduce_the_forward(tiny_checkpoints, tiny_loaded, name):
    """With scale_embedding=True, BART and mBART scale inside their embedding module and Marian's encoder
    scales ids only: the embeddings must carry sqrt(d_model) either way, and the forward must match."""
    import transformers

    from models import LoadedModel, prepare_for_explanation, spec_from_config

    config = transformers.AutoConfig.from_pretrained(tiny_checkpoints(name), scale_embedding=True)
    config._attn_implementation = "eager"
    torch.manual_seed(0)
    model = prepare_for_explanation(transformers.AutoModelForSeq2SeqLM.from_config(config).eval())
    loaded = LoadedModel(spec_from_config(name, "random", config), model, tokenizer=tiny_loaded(name).tokenizer)
    inputs, _ = example(loaded)
    words = model.get_encoder().embed_tokens.weight[inputs["input_ids"][0]]  # (T, D) rows of the table, unscaled
    embeddings = input_embeddings(loaded, inputs)
    torch.testing.assert_close(embeddings[0], words * config.d_model ** 0.5)
    with torch.no_grad():
        torch.testing.assert_close(forward_from_embeddings(loaded, inputs, embeddings).logits,
                                   model(**inputs).logits, rtol=0, atol=1e-6)
    assert embedding_input(loaded).scale == (config.d_model ** 0.5 if name == "marian" else 1.0)


def test_vit_embeddings_are_the_patch_projection_and_the_hook_is_removed(tiny_loaded):
    loaded = tiny_loaded("deit-distilled")
    inputs, _ = example(loaded)
    patches = loaded.model.get_input_embeddings()
    conv = patches.projection
    expected = conv(inputs["pixel_values"]).flatten(2).transpose(1, 2)  # (1, 16, D), written out here
    torch.testing.assert_close(input_embeddings(loaded, inputs), expected)
    hooks = len(patches._forward_hooks)
    with torch.no_grad():
        forward_from_embeddings(loaded, inputs, torch.zeros(2, 16, expected.shape[-1]))
        with pytest.raises(ValueError, match="cannot replace the patch embeddings"):
            forward_from_embeddings(loaded, inputs, torch.zeros(2, 15, expected.shape[-1]))
    assert len(patches._forward_hooks) == hooks


def test_zero_patches_are_the_model_with_a_zeroed_projection(tiny_loaded):
    """Zero patch embeddings through the hook = the unhooked model whose patch projection outputs zeros:
    the [CLS] token and position embeddings are still added by the model."""
    loaded = tiny_loaded("vit")
    inputs, _ = example(loaded)
    projection = loaded.model.get_input_embeddings().projection
    saved = projection.weight.clone(), projection.bias.clone()
    with torch.no_grad():
        hooked = forward_from_embeddings(loaded, inputs, torch.zeros_like(input_embeddings(loaded, inputs))).logits
        projection.weight.zero_()
        projection.bias.zero_()
        try:
            reference = loaded.model(**inputs).logits
        finally:
            projection.weight.copy_(saved[0])
            projection.bias.copy_(saved[1])
    torch.testing.assert_close(hooked, reference, rtol=0, atol=1e-6)


def test_inputs_of_more_than_one_example_are_refused(tiny_loaded):
    loaded = tiny_loaded("bert-classifier")
    inputs, _ = example(loaded)
    embeddings = input_embeddings(loaded, inputs)
    two = {key: value.expand(2, -1) for key, value in inputs.items()}
    with pytest.raises(ValueError, match="one example"):
        forward_from_embeddings(loaded, two, embeddings.expand(2, -1, -1))
    with pytest.raises(ValueError, match="pixel_values"):
        input_embeddings(tiny_loaded("vit"), inputs)
