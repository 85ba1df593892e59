"""Command line: npz round trips recomputed with the library, overlay PNG, and one-line errors (exit 2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import explain
import models
from cli.main import main
from explain import input_relevance
from explain.rollout import attention_rollout

ROOT = Path(__file__).resolve().parent.parent
SENTENCE = "The cat sat on the mat."


@pytest.fixture
def cached_load(monkeypatch, minilm):
    """models.load as the CLI calls it, but MiniLM reuses the session's instance (the real load is tested)."""
    real = models.load

    def load(name, **kwargs):
        return minilm if name == "minilm" else real(name, **kwargs)

    monkeypatch.setattr(models, "load", load)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_module_entry_lists_models_as_json():
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "explain", "models"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    listed = {row["name"]: row for row in json.loads(done.stdout)}
    assert {"name", "kind", "layers", "heads", "source"} <= set(listed["minilm"])
    assert (listed["minilm"]["kind"], listed["minilm"]["layers"], listed["minilm"]["heads"]) == ("text", 6, 12)
    assert (listed["deit-tiny-distilled"]["layers"], listed["deit-tiny-distilled"]["heads"]) == (12, 3)


def test_text_attention_round_trip(cached_load, capsys, tmp_path):
    out = tmp_path / "a.npz"
    code, _, err = run(capsys, "text", SENTENCE, "--method", "attention", "--out", str(out))
    assert code == 0, err
    saved = np.load(out)
    attentions = saved["attentions"]
    assert attentions.dtype == np.float32 and attentions.shape == (6, 12, 9, 9)
    assert saved["tokens"].tolist() == ["[CLS]", "the", "cat", "sat", "on", "the", "mat", ".", "[SEP]"]
    assert saved["matrix"].dtype == np.float32 and saved["matrix"].shape == (9, 9)
    np.testing.assert_allclose(saved["matrix"], attentions[-1].mean(0), rtol=0, atol=1e-6)
    expected = input_relevance(torch.from_numpy(saved["matrix"]), torch.full((9,), 1 / 9)).numpy()
    assert saved["relevance"].dtype == np.float32 and saved["relevance"].shape == (9,)
    np.testing.assert_allclose(saved["relevance"], expected, rtol=0, atol=1e-6)

    code, _, err = run(capsys, "text", SENTENCE, "--method", "attention", "--layer", "2", "--head", "5", "--out", str(out))
    assert code == 0, err
    saved = np.load(out)
    np.testing.assert_array_equal(saved["matrix"], saved["attentions"][2, 5])


def test_text_rollout_and_gradient_rollout(cached_load, capsys, tmp_path):
    out = tmp_path / "r.npz"
    code, _, err = run(
        capsys, "text", SENTENCE, "--head-fusion", "max", "--discard-ratio", "0.3", "--start-layer", "1", "--out", str(out)
    )
    assert code == 0, err
    saved = np.load(out)
    expected = attention_rollout(torch.from_numpy(saved["attentions"]), "max", 0.3, 1).numpy()
    np.testing.assert_allclose(saved["matrix"], expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(saved["relevance"], saved["matrix"].mean(0), rtol=0, atol=1e-6)

    code, _, err = run(capsys, "text", SENTENCE, "--method", "gradient-rollout", "--target", "A dog lay on the rug.", "--out", str(out))
    assert code == 0, err
    saved = np.load(out)
    expected = input_relevance(torch.from_numpy(saved["matrix"]), torch.full((9,), 1 / 9), subtract_identity=True).numpy()
    np.testing.assert_allclose(saved["relevance"], expected, rtol=0, atol=1e-6)
    assert str(saved["target"]) == "A dog lay on the rug."


def test_image_round_trip_with_overlay(tiny_checkpoints, capsys, tmp_path):
    picture = tmp_path / "in.png"
    Image.new("RGB", (50, 40), (10, 200, 30)).save(picture)
    out, overlay = tmp_path / "i.npz", tmp_path / "o.png"
    model = str(tiny_checkpoints("vit"))
    code, stdout, err = run(capsys, "image", str(picture), "--model", model, "--out", str(out), "--overlay", str(overlay))
    assert code == 0, err
    saved = np.load(out)
    assert saved["grid"].tolist() == [4, 4]
    assert saved["attentions"].shape == (2, 2, 17, 17) and saved["matrix"].shape == (17, 17)
    assert saved["relevance"].shape == (4, 4)
    np.testing.assert_allclose(saved["relevance"].flatten(), saved["matrix"][0, 1:], rtol=0, atol=1e-6)
    top = int(saved["scores"].argmax())
    assert str(saved["target"]) == str(saved["score_labels"][top])
    assert f"target class '{saved['target']}', score {float(saved['scores'][top]):.3f}" in stdout
    with Image.open(overlay) as written:  # the 50 x 40 original, scaled to 512 px on its short side
        assert written.format == "PNG" and written.size == (640, 512)


def test_image_target_is_used_by_every_method_and_overlays_come_in_two_styles(tiny_checkpoints, capsys, tmp_path):
    picture = tmp_path / "in.png"
    Image.new("RGB", (700, 600), (10, 200, 30)).save(picture)
    model = str(tiny_checkpoints("vit"))
    smooth, patches = tmp_path / "smooth.png", tmp_path / "patches.png"
    code, stdout, err = run(capsys, "image", str(picture), "--model", model, "--target", "square", "--out",
                            str(tmp_path / "r.npz"), "--overlay", str(smooth))
    assert code == 0, err
    assert "target class 'square'" in stdout and "--target picks the score shown" in stdout
    saved = np.load(tmp_path / "r.npz")
    assert str(saved["target"]) == "square"
    assert float(saved["target_score"]) == pytest.approx(float(saved["scores"][list(saved["score_labels"]).index("square")]))
    code, _, err = run(capsys, "image", str(picture), "--model", model, "--out", str(tmp_path / "p.npz"),
                       "--overlay", str(patches), "--overlay-style", "patches")
    assert code == 0, err
    with Image.open(smooth) as a, Image.open(patches) as b:
        assert a.size == b.size == (700, 600)  # large originals keep their size
        crisp, blended = np.asarray(b).astype(int), np.asarray(a).astype(int)
        # inside patch (0, 0) (175 x 150 px here): one colour with crisp patches, a gradient when smooth
        assert np.abs(np.diff(crisp[10:140, 10:160], axis=1)).max() == 0
        assert np.abs(np.diff(blended[10:140, 10:160], axis=1)).max() > 0
        assert crisp.std() > 0  # and the patches differ from each other
    code, _, err = run(capsys, "image", str(picture), "--model", model, "--target", "hexagon", "--out",
                       str(tmp_path / "x.npz"))
    assert code == 2 and "hexagon" in err


def error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error:") and "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["text", "  ", "--out", "{out}"], "empty"),
        (["text", "hi", "--model", "no-such-model", "--out", "{out}"], "minilm"),
        (["text", "hi", "--discard-ratio", "1.5", "--out", "{out}"], "[0, 1)"),
        (["text", "hi", "--method", "attention", "--layer", "6", "--out", "{out}"], "0 to 5"),
        (["text", "hi", "--method", "attention", "--head", "12", "--out", "{out}"], "0 to 11"),
        (["text", "hi", "--head-fusion", "median", "--out", "{out}"], "mean, max, min"),
        (["text", "hi", "--method", "gradient-rollout", "--out", "{out}"], "--target"),
        (["image", "{missing}", "--out", "{out}"], "does not exist"),
        (["image", "{textfile}", "--out", "{out}"], "not a readable image"),
    ],
)
def test_errors_exit_2_with_one_line(cached_load, capsys, tmp_path, argv, message):
    textfile = tmp_path / "notes.txt"
    textfile.write_text("hello")
    names = {"out": str(tmp_path / "x.npz"), "missing": str(tmp_path / "missing.png"), "textfile": str(textfile)}
    code, _, err = run(capsys, *[part.format(**names) for part in argv])
    assert code == 2
    assert message in error_line(err)
    assert not (tmp_path / "x.npz").exists()


def test_long_text_warns_with_the_dropped_count(cached_load, capsys, tmp_path):
    code, _, err = run(capsys, "text", " ".join(["the"] * 600), "--out", str(tmp_path / "l.npz"))
    assert code == 0
    assert "warning:" in err and "90 tokens were dropped" in err
    assert np.load(tmp_path / "l.npz")["tokens"].shape == (512,)


# --- decoders and encoder-decoders ------------------------------------------------------------

PROMPT = "The cat sat on the mat. The dog lay on the"


def test_decoder_text_npz_matches_the_library(capsys, tmp_path, tiny_checkpoints, tiny_loaded):
    import explain

    directory = str(tiny_checkpoints("llama"))
    out = tmp_path / "prompt.npz"
    code, stdout, err = run(capsys, "text", PROMPT, "--model", directory, "--method", "gradient-rollout",
                            "--generate", "3", "--target", "the", "--out", str(out))
    assert code == 0, err
    assert "target ' the'" in stdout
    data = np.load(out)
    capture = explain.capture_decoder(tiny_loaded("llama"), PROMPT, generate=3, target="the")
    tokens = len(capture.tokens)
    assert data["attentions"].shape == (2, 2, tokens, tokens)
    assert list(data["tokens"]) == capture.tokens
    assert str(data["target"]) == " the"
    assert int(data["target_position"]) == tokens - 1 and int(data["prompt_length"]) == capture.prompt_length
    expected = explain.explain_capture(capture, "gradient-rollout")
    np.testing.assert_allclose(data["relevance"], expected.relevance.numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(data["matrix"], expected.matrix.numpy(), rtol=1e-5, atol=1e-7)


def test_decoder_default_target_is_the_predicted_next_token(capsys, tmp_path, tiny_checkpoints, tiny_loaded):
    out = tmp_path / "next.npz"
    code, _, err = run(capsys, "text", PROMPT, "--model", str(tiny_checkpoints("gpt2")), "--out", str(out))
    assert code == 0, err
    data = np.load(out)
    loaded = tiny_loaded("gpt2")
    logits = loaded.model(input_ids=torch.tensor([loaded.tokenizer(PROMPT)["input_ids"]])).logits[0, -1]
    assert str(data["target"]) == loaded.tokenizer.decode([int(logits.argmax())])
    # attention rollout: the last position's row of J
    np.testing.assert_allclose(data["relevance"], attention_rollout(torch.from_numpy(data["attentions"]))[-1].numpy(),
                               rtol=1e-5, atol=1e-7)


def test_seq2seq_npz_keys_and_rows(capsys, tmp_path, tiny_checkpoints, tiny_loaded):
    import explain

    out = tmp_path / "date.npz"
    code, stdout, err = run(capsys, "seq2seq", "24 November 2026", "--model", str(tiny_checkpoints("bart")),
                            "--output", "2026-11-24", "--method", "gradient-rollout", "--out", str(out))
    assert code == 0, err
    assert "(given)" in stdout
    data = np.load(out)
    capture = explain.capture_seq2seq(tiny_loaded("bart"), "24 November 2026", output="2026-11-24")
    relevance_source, relevance_output = explain.output_relevance(tiny_loaded("bart"), capture)
    sources, outputs = len(capture.source_tokens), len(capture.output_tokens)
    assert data["encoder_attentions"].shape == (2, 2, sources, sources)
    assert data["decoder_attentions"].shape == (2, 2, outputs, outputs)
    assert data["cross_attentions"].shape == (2, 2, outputs, sources)
    assert list(data["output_tokens"]) == capture.output_tokens and list(data["source_tokens"]) == capture.source_tokens
    assert data["relevance_source"].shape == (outputs, sources) and data["relevance_output"].shape == (outputs, outputs)
    np.testing.assert_allclose(data["relevance_source"], relevance_source.numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(data["relevance_output"], relevance_output.numpy(), rtol=1e-5, atol=1e-7)
    assert str(data["output_text"]) == capture.output_text
    code, _, err = run(capsys, "seq2seq", "24 November 2026", "--model", str(tiny_checkpoints("t5")),
                       "--method", "attention", "--layer", "1", "--head", "0", "--max-new-tokens", "4", "--out", str(out))
    assert code == 0, err
    data = np.load(out)
    np.testing.assert_allclose(data["relevance_source"], data["cross_attentions"][1, 0], rtol=1e-6)
    np.testing.assert_allclose(data["relevance_output"], data["decoder_attentions"][1, 0], rtol=1e-6)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["text", "  ", "--model", "{llama}"], "text is empty"),
        (["text", PROMPT, "--model", "{llama}", "--target", "hippopotamus"], "not one token"),
        (["text", PROMPT, "--model", "{llama}", "--generate", "999"], "0 to 256"),
        (["text", PROMPT, "--model", "{llama}", "--pair", "x"], "--pair and --label"),
        (["seq2seq", "24 Nov 2026", "--model", "{llama}"], "use `python -m explain text`"),
        (["text", "24 Nov 2026", "--model", "{bart}"], "use `python -m explain seq2seq`"),
        (["seq2seq", " ", "--model", "{bart}"], "source text is empty"),
        (["seq2seq", "24 Nov 2026", "--model", "{bart}", "--max-new-tokens", "0"], "1 to 256"),
        (["seq2seq", "24 Nov 2026", "--model", "no-such-model"], "Unknown model"),
    ],
)
def test_decoder_and_seq2seq_bad_input_exit_2(capsys, tmp_path, tiny_checkpoints, argv, message):
    paths = {"{llama}": str(tiny_checkpoints("llama")), "{bart}": str(tiny_checkpoints("bart"))}
    argv = [paths.get(a, a) for a in argv] + ["--out", str(tmp_path / "x.npz")]
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_evaluate_texts_gives_eraser_scores_per_method(capsys, tmp_path, tiny_checkpoints):
    lines = tmp_path / "prompts.txt"
    lines.write_text("# a comment\nThe cat sat on the mat. The cat sat on the\n\nThe dog lay on the rug. The dog\n")
    code, stdout, err = run(capsys, "evaluate", "--model", str(tiny_checkpoints("gpt2")), "--texts", str(lines), "--json")
    assert code == 0, err
    report = json.loads(stdout)
    assert report["texts"] == 2 and report["kind"] == "decoder"
    # GPT-2 is outside AttnLRP's families: every other registered method is scored, keyed by its one name
    expected = {name for name in explain.METHODS if name != "attn-lrp"} | {"random"}
    assert set(report["methods"]) == expected
    for name, scores in report["methods"].items():
        assert set(scores) == {"comprehensiveness", "sufficiency", "abpc"} | ({"seconds"} if name != "random" else set())
        assert 0 <= scores["comprehensiveness"] <= 1 and -1 <= scores["abpc"] <= 1
    code, stdout, err = run(capsys, "evaluate", "--model", str(tiny_checkpoints("gpt2")), "--texts", str(lines),
                            "--method", "rollout", "--method", "occlusion")
    assert code == 0, err
    assert set(json.loads(stdout)["methods"]) == {"rollout", "occlusion", "random"}
    code, _, err = run(capsys, "evaluate", "--model", str(tiny_checkpoints("gpt2")), "--texts", str(lines),
                       "--method", "lime")
    assert code == 2 and "Unknown method 'lime'" in err
    code, _, err = run(capsys, "evaluate", "--model", str(tiny_checkpoints("gpt2")), "--texts", str(tmp_path / "none.txt"))
    assert code == 2 and "does not exist" in err
    code, _, err = run(capsys, "evaluate", "--model", str(tiny_checkpoints("vit")), "--texts", str(lines))
    assert code == 2 and "image model" in err


def test_qkv_writes_the_issue_keys_and_matches_the_capture(capsys, tmp_path, minilm, cached_load):
    import explain

    out = tmp_path / "head.npz"
    code, stdout, err = run(capsys, "qkv", SENTENCE, "--layer", "2", "--head", "4", "--token", "3", "--out", str(out))
    assert code == 0, err
    data = np.load(out)
    for key in ("hidden", "q", "k", "v", "scores", "mask", "weights", "context", "tokens"):
        assert key in data.files, key
    capture = explain.capture_text(minilm, SENTENCE)
    tokens = len(capture.tokens)
    assert data["hidden"].shape == (tokens, 384) and data["q"].shape == data["k"].shape == data["v"].shape == (tokens, 32)
    np.testing.assert_allclose(data["weights"], capture.attentions[2, 4, 3].numpy(), atol=1e-6)
    np.testing.assert_allclose(data["context"], data["weights"] @ data["v"], atol=1e-6)
    np.testing.assert_allclose(data["scores"], data["q"][3] @ data["k"].T / np.sqrt(32), rtol=1e-5, atol=1e-6)
    assert data["mask"].dtype == bool and not data["mask"].any()
    assert "weights equal the model's" in stdout


def test_qkv_for_images_decoders_and_cross_attention(capsys, tmp_path, tiny_checkpoints):
    picture = tmp_path / "in.png"
    Image.new("RGB", (32, 32), (10, 200, 30)).save(picture)
    code, _, err = run(capsys, "qkv", "--image", str(picture), "--model", str(tiny_checkpoints("vit")), "--layer", "0",
                       "--head", "1", "--token", "0", "--out", str(tmp_path / "vit.npz"))
    assert code == 0, err
    code, _, err = run(capsys, "qkv", "The cat sat on the mat.", "--model", str(tiny_checkpoints("llama")), "--layer", "1",
                       "--head", "0", "--token", "2", "--out", str(tmp_path / "llama.npz"))
    assert code == 0, err
    data = np.load(tmp_path / "llama.npz")
    assert data["mask"][3:].all() and not data["mask"][:3].any() and bool(data["rotary"])
    code, _, err = run(capsys, "qkv", "24 November 2026", "--model", str(tiny_checkpoints("bart")), "--stack", "cross",
                       "--output", "2026-11-24", "--layer", "1", "--head", "1", "--token", "2", "--out", str(tmp_path / "x.npz"))
    assert code == 0, err
    data = np.load(tmp_path / "x.npz")
    assert data["k"].shape[0] == len(data["key_tokens"]) and list(data["key_tokens"]) != list(data["tokens"])
    assert data["key_tokens"][-1] == "Ġ2026" and data["tokens"][0] == "</s>"  # keys: the source; queries: the decoder
    code, _, err = run(capsys, "qkv", "hi", "--model", str(tiny_checkpoints("llama")), "--layer", "7", "--head", "0",
                       "--token", "0", "--out", str(tmp_path / "y.npz"))
    assert code == 2 and "Layer 7 is out of range" in err


EVERY_METHOD = sorted(explain.METHODS)


@pytest.fixture
def loads_once(monkeypatch, tiny_loaded, tiny_checkpoints):
    """models.load as the CLI calls it, each tiny checkpoint loaded once per session (the real load is tested)."""
    real = models.load
    loaded = {str(tiny_checkpoints(name)): tiny_loaded(name) for name in ("bert-classifier", "llama", "vit", "bart")}
    monkeypatch.setattr(models, "load", lambda name, **kw: loaded[name] if name in loaded else real(name, **kw))


@pytest.mark.parametrize("method", EVERY_METHOD)
def test_every_registered_method_runs_from_the_command_line_on_each_kind(method, capsys, tmp_path, tiny_checkpoints,
                                                                         loads_once):
    """text (a classifier), a decoder, a ViT and an encoder-decoder: the method's map has the input's shape, or the
    one sentence saying why the method does not apply (AttnLRP outside its families, decompositions on
    encoder-decoders)."""
    picture = tmp_path / "in.png"
    Image.new("RGB", (32, 32), (10, 200, 30)).save(picture)
    runs = {
        "text": ["text", SENTENCE, "--model", str(tiny_checkpoints("bert-classifier"))],
        "decoder": ["text", "The cat sat on the mat. The cat sat on the", "--model", str(tiny_checkpoints("llama"))],
        "image": ["image", str(picture), "--model", str(tiny_checkpoints("vit"))],
        "seq2seq": ["seq2seq", "24 November 2026", "--model", str(tiny_checkpoints("bart")), "--output", "2026-11-24"],
    }
    for kind, argv in runs.items():
        out = tmp_path / f"{kind}.npz"
        code, _, err = run(capsys, *argv, "--method", method, "--out", str(out))
        if code == 2:  # the one sentence of a method that does not cover this model
            assert kind == "seq2seq" and method in ("alti", "value-zeroing", "attn-lrp"), err
            assert "does not apply to an encoder-decoder" in err and err.count("\n") == 1
            continue
        assert code == 0, f"{kind}: {err}"
        saved = np.load(out)
        key = "relevance_source" if kind == "seq2seq" else "relevance"
        assert np.isfinite(saved[key]).all() and np.abs(saved[key]).sum() > 0, kind
        expected = {"text": (9,), "image": (4, 4)}.get(kind)
        if expected:
            assert saved[key].shape == expected
        if method == "integrated-gradients" and kind != "seq2seq":
            assert 0 <= float(saved["completeness_gap"]) < 0.02
