"""Greedy decoding for decoders and encoder-decoders, and the one rule for the padding id."""

from __future__ import annotations

import torch

from models import LoadedModel


def pad_id(tokenizer) -> int:  # noqa: ANN001
    """The id to pad batches with: the tokenizer's padding token, else its end token (GPT-2 and Llama define no
    padding token), else 0. Padded positions are masked out, so any id the model knows would do."""
    for candidate in (getattr(tokenizer, "pad_token_id", None), getattr(tokenizer, "eos_token_id", None)):
        if candidate is not None:
            return int(candidate)
    return 0


@torch.no_grad()
def greedy(loaded: LoadedModel, input_ids: list[int], count: int) -> list[int]:
    """Up to `count` greedy tokens the model writes for `input_ids` (fewer when it writes its end token).

    A decoder continues the ids (the new tokens after them are returned); an encoder-decoder reads them as its
    source and the output after the decoder's start token is returned.
    """
    if count <= 0:
        return []
    ids = torch.tensor([input_ids], device=loaded.device)
    output = loaded.model.generate(
        ids, attention_mask=torch.ones_like(ids), max_new_tokens=count, do_sample=False, num_beams=1,
        pad_token_id=pad_id(loaded.tokenizer), top_p=None, top_k=None, temperature=None,
    )
    first = 1 if loaded.spec.kind.cross_attention else len(input_ids)  # after the decoder start token / the prompt
    return output[0, first:].tolist()
