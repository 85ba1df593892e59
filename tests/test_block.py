"""Inside the block: the residual decomposition of pre-norm layers, the two normalisations of post-norm layers,
layer norm recomputed by hand, the feed-forward's neurons recomputed from its own weights, and the logit lens
(its last layer equals the logits) for every decoder family; the `lens` command's keys."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import models
from cli.main import main
from explain.block import (
    activation_of,
    block_parts,
    inside_block,
    logit_lens,
    norm_step,
    top_neurons,
)
from explain.qkv import head_internals

SENTENCE = "The cat sat on the mat. The dog lay on the rug."
PRE_NORM = ("gpt2", "llama", "llama-gqa", "qwen2", "mistral", "opt", "phi", "gpt-neox", "vit", "beit-mean")
DECODERS = ("gpt2", "llama", "llama-gqa", "qwen2", "mistral", "opt", "phi", "gpt-neox")


def input_of(name: str) -> dict:
    return {"image": Image.new("RGB", (32, 32), (200, 30, 30))} if name in ("vit", "beit-mean") else {"text": SENTENCE}


@pytest.mark.parametrize("name", PRE_NORM)
def test_pre_norm_layers_are_their_input_plus_two_additions(tiny_loaded, name):
    loaded = tiny_loaded(name)
    trace = inside_block(loaded, **input_of(name))
    assert trace.pre_norm
    torch.testing.assert_close(trace.inputs + trace.attention + trace.mlp, trace.outputs, rtol=0, atol=1e-5)
    torch.testing.assert_close(trace.inputs[1:], trace.outputs[:-1])  # one layer's output is the next one's input
    if name != "phi":  # Inside one head does not rotate Phi's partial rotary dimensions
        # what attention adds, read with other hooks (Inside one head's W_o output for token 3)
        step = head_internals(loaded, **input_of(name), layer=1, head=0, token=3)
        scale = block_parts(loaded)[1].attention_scale
        expected = step.projected * (1.0 if scale is None else scale.detach())
        torch.testing.assert_close(trace.attention[1, 3], expected, rtol=1e-5, atol=1e-6)
    assert trace.residual_norms.shape == trace.attention_norms.shape == trace.mlp_norms.shape == (2, len(trace.tokens))
    torch.testing.assert_close(trace.mlp_norms, trace.mlp.norm(dim=-1))


def test_the_first_layer_reads_the_embeddings(tiny_loaded):
    loaded = tiny_loaded("llama")
    trace = inside_block(loaded, text=SENTENCE)
    ids = loaded.tokenizer(SENTENCE, return_tensors="pt")["input_ids"]
    torch.testing.assert_close(trace.inputs[0], loaded.model.model.embed_tokens(ids)[0].detach())


def test_post_norm_layers_normalise_after_each_addition(minilm):
    trace = inside_block(minilm, text=SENTENCE)
    assert not trace.pre_norm
    assert trace.norm_names == ["attention.output.LayerNorm", "output.LayerNorm"]
    first, second = trace.norm_names
    for layer in range(6):
        torch.testing.assert_close(trace.norm_inputs[layer][first], trace.inputs[layer] + trace.attention[layer],
                                   rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(trace.norm_inputs[layer][second], trace.norm_outputs[layer][first] + trace.mlp[layer],
                                   rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(trace.norm_outputs[layer][second], trace.outputs[layer])
    states = minilm.model(**minilm.tokenizer(SENTENCE, return_tensors="pt"), output_hidden_states=True).hidden_states
    torch.testing.assert_close(trace.outputs, torch.stack(states[1:])[:, 0].detach(), rtol=1e-5, atol=1e-5)
    assert trace.logits is None  # an encoder has no unembedding


def test_layer_norm_by_hand(minilm):
    trace = inside_block(minilm, text=SENTENCE)
    step = norm_step(minilm, trace, 2, "output.LayerNorm", 4)
    x = trace.norm_inputs[2]["output.LayerNorm"][4].double()
    module = minilm.model.encoder.layer[2].output.LayerNorm
    assert step.kind == "LayerNorm" and step.eps == module.eps
    assert step.mean == pytest.approx(float(x.mean())) and step.spread == pytest.approx(float(x.std(unbiased=False)))
    assert float(step.normalised.mean()) == pytest.approx(0, abs=1e-5)
    assert float(step.normalised.std(unbiased=False)) == pytest.approx(1, abs=1e-4)
    torch.testing.assert_close(step.gain, module.weight.detach())
    torch.testing.assert_close(step.output, module(x.float()).detach(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(step.output, step.model_output, rtol=1e-5, atol=1e-5)
    # batch norm statistics: each feature over the tokens
    states = trace.norm_inputs[2]["output.LayerNorm"]
    torch.testing.assert_close(step.batch_mean, states.mean(0))
    batch = (x.float() - states.mean(0)) / (states.var(0, unbiased=False) + module.eps).sqrt()
    torch.testing.assert_close(step.batch_output, module.weight.detach() * batch + module.bias.detach(), rtol=1e-4,
                               atol=1e-4)
    with pytest.raises(ValueError, match="no normalisation"):
        norm_step(minilm, trace, 2, "ln_9", 0)


def test_rms_norm_by_hand(tiny_loaded):
    loaded = tiny_loaded("llama")
    trace = inside_block(loaded, text=SENTENCE)
    step = norm_step(loaded, trace, 1, "input_layernorm", 5)
    x = trace.inputs[1, 5].double()  # pre-norm: the first norm reads the stream itself
    assert step.kind == "RMSNorm" and step.mean == 0.0
    assert step.spread == pytest.approx(float(x.pow(2).mean().sqrt()))
    torch.testing.assert_close(step.bias, torch.zeros_like(step.bias))
    torch.testing.assert_close(step.output, step.model_output, rtol=1e-5, atol=1e-6)


def test_feed_forward_neurons_are_its_own_units(tiny_loaded):
    loaded = tiny_loaded("llama")
    trace = inside_block(loaded, text=SENTENCE)
    mlp = loaded.model.model.layers[0].mlp
    x = trace.norm_outputs[0]["post_attention_layernorm"]
    with torch.no_grad():
        expected = mlp.act_fn(mlp.gate_proj(x)) * mlp.up_proj(x)  # SwiGLU: the units down_proj reads
    torch.testing.assert_close(trace.neurons[0], expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(trace.activation_in[0], mlp.gate_proj(x).detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(trace.activation_out[0], activation_of(loaded, 0, trace.activation_in[0]))
    assert trace.gated and trace.activation == "SiLUActivation"
    grid = torch.linspace(-3, 3, 7)
    torch.testing.assert_close(activation_of(loaded, 1, grid), grid * torch.sigmoid(grid))
    _, values = top_neurons(trace, 0, 2, 5)
    assert (values[:-1] >= values[1:]).all() and values[0] == trace.neurons[0, 2].max()
    gpt2 = tiny_loaded("gpt2")
    trace = inside_block(gpt2, text=SENTENCE)
    block = gpt2.model.transformer.h[1]
    with torch.no_grad():
        expected = block.mlp.act(block.mlp.c_fc(trace.norm_outputs[1]["ln_2"]))
    torch.testing.assert_close(trace.neurons[1], expected, rtol=1e-5, atol=1e-6)
    assert trace.activation == "NewGELUActivation" and not trace.gated  # GPT-2's units are the activation's output


@pytest.mark.parametrize("name", DECODERS)
def test_logit_lens_last_layer_is_the_models_logits(tiny_loaded, name):
    loaded = tiny_loaded(name)
    trace = inside_block(loaded, text=SENTENCE)
    lens = logit_lens(loaded, trace, top=5, keep_logits=True)
    encoding = loaded.tokenizer(SENTENCE, return_tensors="pt")
    with torch.no_grad():
        logits = loaded.model(**encoding).logits[0]
    torch.testing.assert_close(lens.layer_logits[-1], logits, rtol=1e-5, atol=1e-5)
    assert lens.max_difference < 1e-5
    assert lens.layer_logits.shape == (3, len(trace.tokens), logits.shape[-1])
    assert (lens.ranks[-1] == 0).all() and (lens.top_ids[-1, :, 0] == logits.argmax(-1)).all()
    assert (lens.top_probs[..., :-1] >= lens.top_probs[..., 1:]).all()
    # the ranks count the logits above the eventual prediction, layer by layer
    chosen = lens.layer_logits.gather(-1, lens.predicted[None, :, None].expand(3, -1, 1))
    torch.testing.assert_close(lens.ranks, (lens.layer_logits > chosen).sum(-1))


def test_logit_lens_of_the_embeddings_by_hand(tiny_loaded):
    loaded = tiny_loaded("gpt2")
    trace = inside_block(loaded, text=SENTENCE)
    lens = logit_lens(loaded, trace, top=3, keep_logits=True)
    transformer = loaded.model.transformer
    with torch.no_grad():
        expected = loaded.model.lm_head(transformer.ln_f(trace.inputs[0]))
    torch.testing.assert_close(lens.layer_logits[0], expected, rtol=1e-5, atol=1e-5)


def test_logit_lens_needs_a_decoder(minilm):
    with pytest.raises(ValueError, match="needs a decoder"):
        logit_lens(minilm, inside_block(minilm, text=SENTENCE))


def test_encoder_decoders_are_refused(tiny_loaded):
    with pytest.raises(ValueError, match="not encoder-decoders"):
        inside_block(tiny_loaded("bart"), text=SENTENCE)


def test_lens_command_writes_the_issue_keys(capsys, tmp_path, monkeypatch, tiny_loaded, tiny_checkpoints):
    loaded = tiny_loaded("llama")
    path = str(tiny_checkpoints("llama"))
    real = models.load
    monkeypatch.setattr(models, "load", lambda name, **kw: loaded if name == path else real(name, **kw))
    out = tmp_path / "lens.npz"
    assert main(["lens", SENTENCE, "--model", path, "--top", "4", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    data = np.load(out)
    tokens = len(data["tokens"])
    for key in ("tokens", "layer_logits", "top_ids", "top_probs", "residual_norms", "attention_norms", "mlp_norms"):
        assert key in data.files, key
    assert data["layer_logits"].shape == (3, tokens, len(loaded.tokenizer))  # a small vocabulary: every logit
    assert data["top_ids"].shape == data["top_probs"].shape == (3, tokens, 4)
    assert data["residual_norms"].shape == data["attention_norms"].shape == data["mlp_norms"].shape == (2, tokens)
    with torch.no_grad():
        logits = loaded.model(**loaded.tokenizer(SENTENCE, return_tensors="pt")).logits[0].numpy()
    np.testing.assert_allclose(data["layer_logits"][-1], logits, rtol=1e-5, atol=1e-5)
    trace = inside_block(loaded, text=SENTENCE)
    np.testing.assert_allclose(data["attention_norms"], trace.attention_norms.numpy(), rtol=1e-6)
    assert "equals the model's logits" in printed
    # a large vocabulary writes only the top k, unless asked
    monkeypatch.setattr("cli.main.FULL_LOGITS_VOCABULARY", 10)
    assert main(["lens", SENTENCE, "--model", path, "--out", str(out)]) == 0
    assert "layer_logits" not in np.load(out).files and np.load(out)["top_ids"].shape == (3, tokens, 10)
    assert main(["lens", SENTENCE, "--model", path, "--full-logits", "--out", str(out)]) == 0
    assert "layer_logits" in np.load(out).files
    capsys.readouterr()
    assert main(["lens", SENTENCE, "--model", "minilm", "--out", str(out)]) == 2
    assert "needs a decoder" in capsys.readouterr().err


def test_a_long_prompt_keeps_its_end_for_a_decoder_and_its_start_otherwise(capsys, tmp_path, minilm):
    decoder = models.load("induction-lm", allow_download=False)
    prompt = " ".join(["please buy an apple and i love red pizza ."] * 30) + " i love"
    every = decoder.tokenizer(prompt)["input_ids"]
    trace = inside_block(decoder, text=prompt)
    assert trace.dropped_tokens == len(every) - 128 > 0
    kept = decoder.tokenizer.convert_ids_to_tokens(every[:1] + every[-127:])  # <bos>, then the prompt's last 127
    assert trace.tokens == kept and trace.tokens[-2:] == ["i", "love"]
    out = tmp_path / "lens.npz"
    assert main(["lens", prompt, "--model", "induction-lm", "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert f"the first {len(every) - 128} prompt tokens were dropped" in printed.err
    assert "after 'love' the model predicts 'red'" in printed.out
    text = "word " * 600
    trace = inside_block(minilm, text=text)
    assert trace.dropped_tokens == len(minilm.tokenizer(text)["input_ids"]) - 512
    assert len(trace.tokens) == 512 and trace.tokens[-1] == "[SEP]"
    assert inside_block(minilm, text="the cat").dropped_tokens == 0


# The page, through AppTest (offline: the bundled models).


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_the_page_shows_the_models_norms_and_its_logit_lens(offline, minilm) -> None:
    from test_app_pages import array, assert_clean, figure, start

    at = start("app_pages/learn_block.py")
    trace = inside_block(minilm, text="The cat sat on the mat.")
    norms = figure(at, "lb_norms")["data"]
    np.testing.assert_allclose(array(norms[0]["y"]), trace.residual_norms[:, 1].numpy(), rtol=1e-5)
    np.testing.assert_allclose(array(norms[1]["y"]), trace.attention_norms[:, 1].numpy(), rtol=1e-5)
    assert any("Post-norm" in m.value for m in at.markdown)
    assert any("choose **Decoder** above" in i.value for i in at.info)
    at.radio(key="lb_kind").set_value("decoder").run()
    assert_clean(at)
    assert any("Pre-norm" in m.value for m in at.markdown)
    decoder = models.load("induction-lm")
    prompt = "please buy an apple and i love red pizza . please buy an apple and i love"
    with torch.no_grad():
        logits = decoder.model(**decoder.tokenizer(prompt, return_tensors="pt")).logits[0]
    lens = figure(at, "lb_lens")["data"][0]
    last = [str(text) for text in lens["text"][-1]]
    assert last == decoder.tokenizer.convert_ids_to_tokens(logits.argmax(-1).tolist())  # the model's own predictions
    assert lens["y"][-1] == "after layer 1" and lens["y"][0] == "embeddings"
    ranks = figure(at, "lb_ranks")["data"][0]
    assert [str(t) for t in ranks["text"][-1]] == ["0"] * len(last)
    at.selectbox(key="lb_norm").select("post_attention_layernorm").run()
    assert_clean(at)
    long = " ".join([prompt] * 10)
    dropped = len(decoder.tokenizer(long)["input_ids"]) - 128  # 171 tokens with <bos>: 43
    at.text_area(key="lb_decoder_text").input(long).run()
    assert_clean(at)
    assert [i.value for i in at.info if "maximum" in i.value] == [
        f"The prompt is longer than induction-lm's maximum of 128 tokens: the first {dropped} prompt tokens were "
        "dropped."]
    at.text_area(key="lb_decoder_text").input(prompt).run()
    at.radio(key="lb_kind").set_value("image").run()
    assert_clean(at)
    assert figure(at, "lb_norm_step")["data"][0]["type"] == "scatter"


def test_the_lens_command_names_layers_as_the_page_does() -> None:
    from cli.main import first_top_layer

    # Rows: the embeddings, after layer 0, after layer 1.
    assert first_top_layer([0, 0, 0]) == "the embeddings"
    assert first_top_layer([147, 0, 0]) == "layer 0"
    assert first_top_layer([147, 449, 0]) == "layer 1"
