"""Causal language models: greedy continuation, one captured forward over prompt + continuation, and a
target that is the logit of one token at one position.

Masked self-attention means position t sees only positions <= t, so every attention map is lower
triangular and the explanation of the token written at position p + 1 (the logit read at query p)
depends only on positions <= p: gradients of that logit are zero on every later row, and the rolled-out
matrices are lower triangular. The same numbers come out whether the forward pass saw the whole
sequence or only its prefix up to p (tested).
"""

from __future__ import annotations

from typing import Sequence

import torch

from explain.capture import (
    Capture,
    _gradient_outputs,
    _stack_attentions,
    gradient_weighted,
    layer_gradients,
    unknown_words,
)
from explain.methods import explain_capture
from models import LoadedModel

MAX_GENERATE = 256
TOP_K = 10
_SPACE_MARKERS = ("Ġ", "▁")


def resolve_token(tokenizer, target: str | int, model_name: str = "the model") -> int:  # noqa: ANN001
    """A vocabulary id from an id, a vocabulary entry, or a text that is exactly one token.

    A text without a leading space is tried as a vocabulary entry, then with a leading space (the form a
    word takes after another word in byte-level and SentencePiece vocabularies), then as written.

    Raises:
        ValueError: an id out of range, or a text that is not one token.
    """
    size = len(tokenizer)
    if isinstance(target, int) or (isinstance(target, str) and target.strip().isdigit() and target.strip() not in tokenizer.get_vocab()):
        index = int(target)
        if not 0 <= index < size:
            raise ValueError(f"Token id {index} is out of range: {model_name}'s vocabulary has ids 0 to {size - 1}.")
        return index
    if not target:
        raise ValueError("The target token is empty: give a token of the vocabulary or its id.")
    vocabulary = tokenizer.get_vocab()
    if target in vocabulary:
        return int(vocabulary[target])
    candidates = [" " + target, target] if not target.startswith(" ") else [target]
    pieces: list[int] = []
    for candidate in candidates:
        pieces = tokenizer(candidate, add_special_tokens=False)["input_ids"]
        if len(pieces) == 1 and pieces[0] != getattr(tokenizer, "unk_token_id", None):
            return int(pieces[0])
    shown = ", ".join(repr(p) for p in tokenizer.convert_ids_to_tokens(pieces)) or "nothing"
    raise ValueError(
        f"'{target}' is not one token of {model_name}'s vocabulary (it becomes {shown}): "
        "give a single token or a vocabulary id."
    )


@torch.no_grad()
def greedy_continuation(loaded: LoadedModel, input_ids: list[int], count: int) -> list[int]:
    """Up to `count` greedy next tokens after `input_ids` (fewer when the model writes its end token)."""
    if count <= 0:
        return []
    tokenizer, model = loaded.tokenizer, loaded.model
    ids = torch.tensor([input_ids], device=loaded.device)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    output = model.generate(
        ids, attention_mask=torch.ones_like(ids), max_new_tokens=count, do_sample=False, num_beams=1,
        pad_token_id=pad, top_p=None, top_k=None, temperature=None,
    )
    return output[0, len(input_ids):].tolist()


def _word_ids(tokens: list[str], prompt_word_ids: list[int | None], special: list[bool]) -> list[int | None]:
    """Word index per token: the tokenizer's for the prompt; for generated tokens a new word starts at a
    space marker (byte-level BPE, SentencePiece) or at every token when the vocabulary has no markers."""
    words = list(prompt_word_ids)
    markers = any(t.startswith(_SPACE_MARKERS) for t in tokens)
    last = max((w for w in words if w is not None), default=-1)
    for index in range(len(words), len(tokens)):
        if special[index]:
            words.append(None)
            continue
        starts_word = not markers or tokens[index].startswith(_SPACE_MARKERS) or not words or words[-1] is None
        last += 1 if starts_word else 0
        words.append(max(last, 0))
    return words


def capture_decoder(
    loaded: LoadedModel,
    prompt: str | Sequence[int],
    *,
    generate: int = 0,
    target: str | int | None = None,
    position: int | None = None,
    with_gradients: bool = False,
    display: bool = False,
) -> Capture:
    """Prompt, then `generate` greedy tokens; one forward over all of it; optionally one backward.

    Args:
        loaded: a decoder from `models.load`.
        prompt: the text the model continues, or its token ids (used as they are, nothing added).
        generate: number of greedy tokens appended first (0 to MAX_GENERATE; generation stops early at
            the model's end token).
        target: the explained token: a vocabulary entry, a one-token text or an id. None: the token that
            follows `position` in the sequence, or the model's top prediction after the last position.
        position: the query position whose next-token logit is explained (default T - 1, the end).
        with_gradients: run the backward pass (always done when `target` is given).
        display: keep only what views need (float16 attentions, no raw gradients).

    Returns:
        A Capture of kind "decoder": attentions (L, H, T, T) (upper triangles are exactly 0), tokens,
        token_ids, prompt_length, target_position, pooling_weights one-hot at it; scores and score_labels
        are the top next-token probabilities at that position (the target always among them).

    Raises:
        ValueError: empty prompt, `generate` out of range, a position outside the sequence, or a target
            that is not one token.
    """
    spec, tokenizer = loaded.spec, loaded.tokenizer
    if spec.kind != "decoder":
        raise ValueError(f"'{spec.name}' is not a decoder (causal language model): pick one for this view.")
    if not isinstance(prompt, str):
        prompt = [int(i) for i in prompt]
        encoding = None
    if not prompt or (isinstance(prompt, str) and not prompt.strip()):
        raise ValueError("The prompt is empty: type a text for the model to continue.")
    if not 0 <= generate <= MAX_GENERATE:
        raise ValueError(f"The number of generated tokens must be 0 to {MAX_GENERATE}, not {generate}.")
    if isinstance(prompt, str):
        encoding = tokenizer(prompt, add_special_tokens=True, return_tensors="pt")
        prompt_ids = encoding["input_ids"][0].tolist()
    else:
        prompt_ids = list(prompt)
    room = spec.max_length - generate
    if room < 2:
        raise ValueError(f"{spec.name} takes at most {spec.max_length} tokens: generate fewer than {spec.max_length - 1}.")
    special_ids = set(tokenizer.all_special_ids)
    keep_first = prompt_ids[0] in special_ids  # a begin-of-sequence token stays at the start
    dropped = max(0, len(prompt_ids) - room)
    kept = list(range(len(prompt_ids)))
    if dropped:
        kept = kept[:1] + kept[1 + dropped:] if keep_first else kept[dropped:]
        prompt_ids = [prompt_ids[i] for i in kept]
    generated = greedy_continuation(loaded, prompt_ids, generate)
    ids = prompt_ids + generated
    length = len(ids)
    position = length - 1 if position is None else int(position)
    if not 0 <= position < length:
        raise ValueError(f"Position {position} is outside the sequence: choose 0 to {length - 1}.")
    target_id = None if target is None else resolve_token(tokenizer, target, spec.name)
    need_grad = with_gradients or target is not None

    input_ids = torch.tensor([ids], device=loaded.device)
    with torch.set_grad_enabled(need_grad):
        outputs = loaded.model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), output_attentions=True)
        logits = outputs.logits[0, position].float()  # (V,)
        if target_id is None:
            target_id = ids[position + 1] if position + 1 < length else int(logits.argmax())
        stacked = _stack_attentions(outputs.attentions, torch.float16 if display else torch.float32)
        gradients = weighted = None
        if need_grad:
            gradients, weighted = _gradient_outputs(logits[target_id], outputs.attentions, keep=not display)
    probabilities = torch.softmax(logits.detach(), dim=-1).cpu()
    top = probabilities.topk(min(TOP_K, probabilities.numel())).indices.tolist()
    if target_id not in top:
        top.append(target_id)
    tokens = tokenizer.convert_ids_to_tokens(ids)
    special = [i in special_ids for i in ids]
    prompt_words = [encoding.word_ids(0)[i] for i in kept] if encoding is not None else []
    word_ids = _word_ids(tokens, prompt_words, special)
    pooling = torch.zeros(length)
    pooling[position] = 1.0
    return Capture(
        attentions=stacked, gradients=gradients, weighted=weighted, tokens=tokens,
        special=torch.tensor(special), pooling_weights=pooling, word_ids=word_ids,
        sequence_ids=[None if s else 0 for s in special], scores=probabilities[top],
        score_labels=tuple(tokenizer.decode([i]) for i in top), target_index=top.index(target_id),
        target_label=tokenizer.decode([target_id]), target_value=float(logits[target_id].detach()),
        dropped_tokens=dropped, kind="decoder", token_ids=ids, prompt_length=len(prompt_ids),
        target_position=position, target_token_id=int(target_id),
        unknown_words=unknown_words(tokenizer, encoding, prompt) if encoding is not None else [],
    )


def generated_relevance(loaded: LoadedModel, capture: Capture, method: str = "gradient-rollout", **options) -> torch.Tensor:
    """Relevance of every earlier token for each generated token, one row per generated token.

    Row n explains token `prompt_length + n` (the logit of that token at query `prompt_length + n - 1`).
    Attention and attention rollout read the capture's maps; gradient rollout runs one forward and one
    backward per generated token (the graph is kept between them).

    Returns:
        (N, T) float32; row n is zero from column `prompt_length + n` on.
    """
    start, length = capture.prompt_length, len(capture.token_ids)
    positions = list(range(start - 1, length - 1))
    if not positions:
        return torch.zeros(0, length)
    if method != "gradient-rollout":
        matrix = explain_capture(capture, method, **options).matrix
        return matrix[positions].float()
    from explain.rollout import weighted_rollout

    start_layer = options.get("start_layer", 0)
    ids = torch.tensor([capture.token_ids], device=loaded.device)
    rows = []
    with torch.enable_grad():
        outputs = loaded.model(input_ids=ids, attention_mask=torch.ones_like(ids), output_attentions=True)
        for number, position in enumerate(positions):
            scalar = outputs.logits[0, position, capture.token_ids[position + 1]].float()
            grads = layer_gradients(scalar, outputs.attentions, retain_graph=number < len(positions) - 1)
            relevance = weighted_rollout(gradient_weighted(outputs.attentions, grads), start_layer)
            rows.append((relevance[position] - torch.eye(length, device=relevance.device)[position]).cpu())
    return torch.stack(rows)
