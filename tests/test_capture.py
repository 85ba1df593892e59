"""Capture on the bundled MiniLM end to end, and gradients paired with the right layer on tiny models.

Every target value is recomputed here with independent code (a fresh forward, our own pooling).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from explain import capture_image, capture_text
from explain.methods import explain_capture

SENTENCE = "The cat sat on the mat."


def mean_pooled(loaded, text: str) -> torch.Tensor:
    """Sentence embedding by mean pooling over last_hidden_state, written independently of explain.capture."""
    encoding = loaded.tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        hidden = loaded.model(**encoding).last_hidden_state[0]  # (T, D); one sentence, no padding
    return hidden.mean(0)


@pytest.fixture(scope="module")
def sentence_capture(minilm):
    return capture_text(minilm, SENTENCE)


def test_minilm_tokens_attentions_and_special_mask(sentence_capture):
    capture = sentence_capture
    assert capture.tokens == ["[CLS]", "the", "cat", "sat", "on", "the", "mat", ".", "[SEP]"]
    assert capture.attentions.shape == (6, 12, 9, 9)
    assert capture.attentions.dtype == torch.float32
    torch.testing.assert_close(capture.attentions.sum(-1), torch.ones(6, 12, 9), rtol=0, atol=1e-5)
    assert capture.special.tolist() == [True] + [False] * 7 + [True]
    assert capture.gradients is None
    assert capture.dropped_tokens == 0
    assert capture.word_ids == [None, 0, 1, 2, 3, 4, 5, 6, None]


def test_minilm_pools_by_mean(minilm, sentence_capture):
    assert minilm.spec.pooling == "mean"
    torch.testing.assert_close(sentence_capture.pooling_weights, torch.full((9,), 1 / 9))


def test_minilm_attentions_are_the_models_own(minilm, sentence_capture):
    encoding = minilm.tokenizer(SENTENCE, return_tensors="pt")
    with torch.no_grad():
        attentions = minilm.model(**encoding, output_attentions=True).attentions
    torch.testing.assert_close(sentence_capture.attentions, torch.stack([a[0] for a in attentions]))


def test_unknown_word_piece_is_not_special(minilm):
    capture = capture_text(minilm, "I love 🦜 birds")
    assert capture.tokens == ["[CLS]", "i", "love", "[UNK]", "birds", "[SEP]"]
    # [UNK] stands for a real word of the input: only [CLS] and [SEP] are special
    assert capture.special.tolist() == [True, False, False, False, False, True]


def test_probe_target_value_is_the_cosine_similarity(minilm):
    probe = "A dog lay on the rug."
    capture = capture_text(minilm, SENTENCE, target=probe)
    assert capture.gradients is not None
    assert capture.gradients.shape == capture.attentions.shape == (6, 12, 9, 9)
    assert float(capture.gradients.abs().sum()) > 0
    expected = F.cosine_similarity(mean_pooled(minilm, SENTENCE), mean_pooled(minilm, probe), dim=0)
    assert capture.target_value == pytest.approx(float(expected), abs=1e-5)
    assert capture.target_label == probe
    assert capture.target_index == 0


def test_zero_shot_scores_and_target_selection(minilm):
    labels = ["a pet animal", "the stock market", "rainy weather"]
    capture = capture_text(minilm, SENTENCE, labels=labels)
    sentence = mean_pooled(minilm, SENTENCE)
    expected = torch.stack([F.cosine_similarity(sentence, mean_pooled(minilm, label), dim=0) for label in labels])
    torch.testing.assert_close(capture.scores, expected, rtol=0, atol=1e-5)
    assert capture.score_labels == tuple(labels)
    assert capture.target_index == int(expected.argmax()) == 0
    assert capture.target_value == pytest.approx(float(expected[0]), abs=1e-5)
    assert capture.gradients.shape == (6, 12, 9, 9)

    by_name = capture_text(minilm, SENTENCE, labels=labels, target="rainy weather")
    assert (by_name.target_index, by_name.target_label) == (2, "rainy weather")
    assert by_name.target_value == pytest.approx(float(expected[2]), abs=1e-5)
    by_index = capture_text(minilm, SENTENCE, labels=labels, target=1)
    assert (by_index.target_index, by_index.target_label) == (1, "the stock market")
    assert by_index.target_value == pytest.approx(float(expected[1]), abs=1e-5)
    # a different target is a different scalar, so different gradients
    assert not torch.allclose(by_index.gradients, by_name.gradients)

    with pytest.raises(ValueError, match="Unknown label 'sports'"):
        capture_text(minilm, SENTENCE, labels=labels, target="sports")
    with pytest.raises(ValueError, match="out of range"):
        capture_text(minilm, SENTENCE, labels=labels, target=3)


def test_minilm_input_errors(minilm):
    with pytest.raises(ValueError, match="needs a target"):
        capture_text(minilm, SENTENCE, with_gradients=True)
    for empty in ("", "   \n"):
        with pytest.raises(ValueError, match="empty"):
            capture_text(minilm, empty)


def test_long_text_is_truncated_and_counts_dropped_tokens(minilm):
    text = " ".join(["the"] * 600)  # [CLS] + 600 + [SEP] = 602 tokens
    capture = capture_text(minilm, text)
    assert len(capture.tokens) == 512
    assert capture.attentions.shape == (6, 12, 512, 512)
    assert capture.dropped_tokens == 90
    assert capture.tokens[0] == "[CLS]" and capture.tokens[-1] == "[SEP]"


def test_sentence_pair(minilm):
    capture = capture_text(minilm, "The cat sat.", pair="A dog ran.")
    assert capture.tokens == ["[CLS]", "the", "cat", "sat", ".", "[SEP]", "a", "dog", "ran", ".", "[SEP]"]
    assert capture.tokens.count("[SEP]") == 2
    assert capture.sequence_ids == [None, 0, 0, 0, 0, None, 1, 1, 1, 1, None]
    assert capture.special.tolist() == [True, False, False, False, False, True, False, False, False, False, True]


def test_text_model_refuses_an_image(minilm):
    with pytest.raises(ValueError, match="is a text encoder"):
        capture_image(minilm, Image.new("RGB", (8, 8)))


# ----------------------------------------------------------------------------- gradients paired by layer


def independent_gradients(model, inputs: dict, target_index: int, pick=lambda logits, i: logits[0, i]) -> list[torch.Tensor]:
    """dTarget/dA_l by retain_grad on a fresh forward and .backward(), one (H, T, T) per layer in layer order."""
    model.zero_grad(set_to_none=True)
    outputs = model(**inputs, output_attentions=True)
    for attention in outputs.attentions:
        attention.retain_grad()
    pick(outputs.logits, target_index).backward()
    grads = [attention.grad[0].detach().clone() for attention in outputs.attentions]
    model.zero_grad(set_to_none=True)
    return grads


def test_text_classifier_gradients_belong_to_their_layer(tiny_loaded):
    loaded = tiny_loaded("bert-classifier")  # 3 layers, [CLS]-pooled
    capture = capture_text(loaded, "the quick brown fox jumps", target="positive")
    gradients = capture.gradients
    assert gradients.shape == capture.attentions.shape == (3, 2, 7, 7)
    assert capture.target_index == 1
    # The logit sees the last layer only through row 0 (the [CLS] query): other rows get exactly 0.
    assert torch.equal(gradients[-1, :, 1:, :], torch.zeros(2, 6, 7))
    assert float(gradients[-1, :, 0, :].abs().sum()) > 0
    for layer in range(2):  # earlier layers reach the logit through every row
        assert float(gradients[layer, :, 1:, :].abs().sum()) > 1e-4
    encoding = loaded.tokenizer("the quick brown fox jumps", return_tensors="pt")
    expected = independent_gradients(loaded.model, dict(encoding), 1)
    for layer in range(3):
        torch.testing.assert_close(gradients[layer], expected[layer], rtol=1e-4, atol=1e-7)
    logits = loaded.model(**encoding).logits[0].detach()
    assert capture.target_value == pytest.approx(float(logits[1]), abs=1e-5)
    torch.testing.assert_close(capture.scores, torch.softmax(logits, -1))


def test_weighted_attention_is_the_raw_gradients_times_attention(tiny_loaded):
    """The capture weights the gradients in place; the kept raw gradients stay raw (checked against an
    independent backward above) and the display form, which keeps none, gets the same weighted stack."""
    loaded = tiny_loaded("bert-classifier")
    capture = capture_text(loaded, "the quick brown fox jumps", target="positive")
    expected = torch.stack([(g * a).clamp(min=0).mean(0) for g, a in zip(capture.gradients, capture.attentions)])
    assert float(expected.abs().sum()) > 0
    torch.testing.assert_close(capture.weighted, expected, rtol=0, atol=1e-7)
    display = capture_text(loaded, "the quick brown fox jumps", target="positive", display=True)
    assert display.gradients is None and display.attentions.dtype == torch.float16
    torch.testing.assert_close(display.weighted, expected, rtol=0, atol=1e-7)


def test_text_classifier_target_defaults_to_prediction(tiny_loaded):
    loaded = tiny_loaded("bert-classifier")
    capture = capture_text(loaded, "the quick brown fox jumps", with_gradients=True)
    assert capture.target_index == int(capture.scores.argmax())
    with pytest.raises(ValueError, match="negative, positive"):
        capture_text(loaded, "the quick brown fox jumps", target="neutral")


def picture() -> Image.Image:
    generator = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (40, 50, 3), generator=generator, dtype=torch.uint8)
    return Image.fromarray(pixels.numpy())


@pytest.mark.parametrize("name, pooled_rows", [("vit", 1), ("deit-distilled", 2)])
def test_image_classifier_gradients_belong_to_their_layer(tiny_loaded, name, pooled_rows):
    loaded = tiny_loaded(name)
    capture = capture_image(loaded, picture(), target="square")
    prefix = loaded.spec.prefix_tokens
    tokens = prefix + 16
    assert capture.gradients.shape == capture.attentions.shape == (2, 2, tokens, tokens)
    assert capture.target_index == 1
    # ViT pools [CLS] (row 0); DeiT with teacher averages the [CLS] and distillation heads (rows 0, 1)
    assert torch.equal(capture.gradients[-1, :, pooled_rows:, :], torch.zeros(2, tokens - pooled_rows, tokens))
    assert float(capture.gradients[-1, :, :pooled_rows, :].abs().sum()) > 0
    assert float(capture.gradients[0, :, pooled_rows:, :].abs().sum()) > 1e-4
    pixel_values = loaded.processor(images=picture(), return_tensors="pt")["pixel_values"]
    expected = independent_gradients(loaded.model, {"pixel_values": pixel_values}, 1)
    for layer in range(2):
        torch.testing.assert_close(capture.gradients[layer], expected[layer], rtol=1e-4, atol=1e-7)
    assert capture.tokens[:prefix] == ["[CLS]", "[DIST]"][:prefix]
    assert capture.tokens[prefix] == "patch 0,0" and capture.tokens[-1] == "patch 3,3"
    assert capture.image.shape == (32, 32, 3)


def test_image_capture_explanations_have_the_patch_grid(tiny_loaded):
    loaded = tiny_loaded("deit-distilled")
    capture = capture_image(loaded, picture(), with_gradients=True)
    for method in ("attention", "rollout", "gradient-rollout"):
        explanation = explain_capture(capture, method)
        assert explanation.matrix.shape == (18, 18)
        assert explanation.grid.shape == (4, 4)
        # the grid is the relevance with the two prefix tokens removed
        assert torch.equal(explanation.grid.flatten(), explanation.relevance[2:])
    with pytest.raises(ValueError, match="image model"):
        capture_text(loaded, "hello")
