"""Causal language models: a prompt and its greedy continuation in one captured forward pass, and a target that
is the logit of one token at one position.

Masked self-attention means position t sees only positions <= t, so every attention map is lower triangular and
the explanation of the token written at position p + 1 (the logit read at query p) depends only on positions
<= p: gradients of that logit are zero on every later row, and the rolled-out matrices are lower triangular. The
same numbers come out whether the forward pass saw the whole sequence or only its prefix up to p (tested).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from explain.capture import attention_gradients, cpu_inputs, one_hot, stack_attentions
from explain.encoder import TextCapture
from explain.generation import greedy
from explain.targets import TokenLogit
from explain.tokens import continue_word_ids, unknown_words
from models import LoadedModel

MAX_GENERATE = 256
TOP_K = 10


@dataclass
class DecoderCapture(TextCapture):
    """A prompt and its continuation (see TextCapture). The target is a TokenLogit: the next token after query
    position `target.position`, whose row of a rolled-out matrix is the relevance over inputs.

    Attributes:
        prompt_length: the number of prompt tokens; generated tokens follow them.
    """

    prompt_length: int = 0

    @property
    def target_position(self) -> int:
        return self.target.position

    @property
    def target_token_id(self) -> int:
        return self.target.token_id


def resolve_token(tokenizer, target: str | int, model_name: str = "the model") -> int:  # noqa: ANN001
    """A vocabulary id from an id, a vocabulary entry, or a text that is exactly one token.

    A text without a leading space is tried as a vocabulary entry, then with a leading space (the form a word
    takes after another word in byte-level and SentencePiece vocabularies), then as written.

    Raises:
        ValueError: an id out of range, or a text that is not one token.
    """
    size = len(tokenizer)
    if isinstance(target, int) or (isinstance(target, str) and target.strip().isdigit()
                                   and target.strip() not in tokenizer.get_vocab()):
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


def prompt_ids(loaded: LoadedModel, prompt: str | Sequence[int], generate: int) -> tuple[list[int], list[int | None], int, object]:
    """The prompt's ids as the capture uses them: (ids, word ids, dropped tokens, encoding or None).

    A text prompt is tokenised (special tokens added); ids are used as they are. When the prompt and `generate`
    new tokens exceed the model's maximum, the earliest prompt tokens are dropped (a begin-of-sequence token
    stays first).
    """
    spec, tokenizer = loaded.spec, loaded.tokenizer
    encoding = None
    if isinstance(prompt, str):
        if not prompt.strip():
            raise ValueError("The prompt is empty: type a text for the model to continue.")
        encoding = tokenizer(prompt, add_special_tokens=True, return_tensors="pt")
        ids = encoding["input_ids"][0].tolist()
    else:
        ids = [int(i) for i in prompt]
        if not ids:
            raise ValueError("The prompt is empty: type a text for the model to continue.")
    room = spec.max_length - generate
    if room < 2:
        raise ValueError(f"{spec.name} takes at most {spec.max_length} tokens: generate fewer than {spec.max_length - 1}.")
    keep_first = ids[0] in set(tokenizer.all_special_ids)  # a begin-of-sequence token stays at the start
    dropped = max(0, len(ids) - room)
    kept = list(range(len(ids)))
    if dropped:
        kept = kept[:1] + kept[1 + dropped:] if keep_first else kept[dropped:]
    words = [encoding.word_ids(0)[i] for i in kept] if encoding is not None else []
    return [ids[i] for i in kept], words, dropped, encoding


def capture_decoder(
    loaded: LoadedModel,
    prompt: str | Sequence[int],
    *,
    generate: int = 0,
    target: str | int | None = None,
    position: int | None = None,
    with_gradients: bool = False,
    display: bool = False,
) -> DecoderCapture:
    """Prompt, then `generate` greedy tokens; one forward over all of it; optionally one backward.

    Args:
        loaded: a decoder from `models.load`.
        prompt: the text the model continues, or its token ids (used as they are, nothing added).
        generate: number of greedy tokens appended first (0 to MAX_GENERATE; generation stops early at the
            model's end token).
        target: the explained token: a vocabulary entry, a one-token text or an id. None: the token that follows
            `position` in the sequence, or the model's top prediction after the last position.
        position: the query position whose next-token logit is explained (default T - 1, the end).
        with_gradients: run the backward pass (always done when `target` is given).
        display: keep only what views need (float16 attentions, no raw gradients).

    Returns:
        A DecoderCapture: attentions (L, H, T, T) (upper triangles are exactly 0), pooling weights one-hot at the
        target position; scores and score_labels are the top next-token probabilities there (the target always
        among them).

    Raises:
        ValueError: empty prompt, `generate` out of range, a position outside the sequence, or a target that is
            not one token.
    """
    spec, tokenizer = loaded.spec, loaded.tokenizer
    if not spec.kind.causal:
        raise ValueError(f"'{spec.name}' is {spec.kind.article}, not a decoder (causal language model): pick one for this view.")
    if not 0 <= generate <= MAX_GENERATE:
        raise ValueError(f"The number of generated tokens must be 0 to {MAX_GENERATE}, not {generate}.")
    ids, prompt_words, dropped, encoding = prompt_ids(loaded, prompt, generate)
    prompt_length = len(ids)
    ids = ids + greedy(loaded, ids, generate)
    length = len(ids)
    position = length - 1 if position is None else int(position)
    if not 0 <= position < length:
        raise ValueError(f"Position {position} is outside the sequence: choose 0 to {length - 1}.")
    target_id = None if target is None else resolve_token(tokenizer, target, spec.name)
    need_grad = with_gradients or target is not None

    input_ids = torch.tensor([ids], device=loaded.device)
    inputs = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}
    with torch.set_grad_enabled(need_grad):
        outputs = loaded.model(**inputs, output_attentions=True)
        logits = outputs.logits[0, position].float()  # (V,)
        if target_id is None:
            target_id = ids[position + 1] if position + 1 < length else int(logits.argmax())
        probabilities = torch.softmax(logits.detach(), dim=-1).cpu()
        top = probabilities.topk(min(TOP_K, probabilities.numel())).indices.tolist()
        if target_id not in top:
            top.append(target_id)
        resolved = TokenLogit(position, int(target_id), tokenizer.decode([target_id]), index=top.index(target_id))
        stacked = stack_attentions(outputs.attentions, torch.float16 if display else torch.float32)
        gradients = weighted = None
        if need_grad:
            gradients, weighted = attention_gradients(resolved.score(outputs, inputs)[0], outputs.attentions,
                                                      keep=not display)
    tokens = tokenizer.convert_ids_to_tokens(ids)
    special_ids = set(tokenizer.all_special_ids)
    special = [i in special_ids for i in ids]
    return DecoderCapture(
        kind=spec.kind, tokens=tokens, attentions=stacked, special=torch.tensor(special),
        pooling_weights=one_hot(length, position), inputs=cpu_inputs(inputs), target=resolved,
        target_value=float(logits[target_id].detach()), scores=probabilities[top],
        score_labels=tuple(tokenizer.decode([i]) for i in top), weighted=weighted, gradients=gradients,
        dropped_tokens=dropped, unknown_words=unknown_words(tokenizer, encoding, prompt) if encoding is not None else [],
        token_ids=ids, word_ids=continue_word_ids(tokens, prompt_words, special),
        sequence_ids=[None if s else 0 for s in special], prompt_length=prompt_length,
    )


def generated_positions(capture: DecoderCapture) -> list[int]:
    """The query positions where each generated token was predicted: prompt_length - 1 ... T - 2."""
    return list(range(capture.prompt_length - 1, len(capture.token_ids) - 1))


def generated_relevance(loaded: LoadedModel, capture: DecoderCapture, method: str = "gradient-rollout",
                        capture_at: Callable[[int, bool], DecoderCapture] | None = None, **options: object) -> torch.Tensor:
    """Each generated token's relevance over the sequence, one row per generated token: (N, T).

    Row n explains token `prompt_length + n`: the method applied to the capture whose target is that token, read
    where it was predicted (query `prompt_length + n - 1`); row n is zero from column `prompt_length + n` on.

    Args:
        capture_at: (position, with_gradients) -> the capture of the same sequence explained at that position
            (default: a new capture of `capture.token_ids`; the app passes its cached captures).
        options: the method's options.
    """
    from explain.methods import explain_capture, get_method

    needs_gradients = get_method(method).needs_gradients
    if capture_at is None:
        capture_at = lambda position, gradients: capture_decoder(  # noqa: E731
            loaded, capture.token_ids, position=position, with_gradients=gradients)
    rows = [explain_capture(capture_at(position, needs_gradients), method, loaded, **options).relevance.float()
            for position in generated_positions(capture)]
    return torch.stack(rows) if rows else torch.zeros(0, len(capture.token_ids))
