"""Occlusion on the input embeddings: how much the explained scalar drops when one token's embedding is zeroed.

relevance_j = S(E) - S(E with row j set to 0), for every input token j (every patch for ViTs). The
position is kept (the model still adds token j's position embedding), only what the token says is
removed. Forward passes only, the T occluded copies batched.
"""

from __future__ import annotations

from typing import Any

import torch

from explain.capture import Capture
from explain.methods import Explanation, model_inputs, over_tokens, register, target_score
from explain.embeddings import forward_from_embeddings, input_embeddings
from explain.methods.gradients import Score, scores_of
from models import LoadedModel

DEFAULT_BATCH_SIZE = 32


def occlusion(
    loaded: LoadedModel, inputs: dict[str, Any], score: Score, batch_size: int = DEFAULT_BATCH_SIZE
) -> torch.Tensor:
    """S(E) - S(E with token j's embedding zeroed) for every j: (T,) float32, signed.

    Args:
        loaded: a model from `models.load`.
        inputs: one example's model inputs (see `explain.embeddings.input_embeddings`).
        score: the explained scalar per example, `score(outputs) -> (B,)`.
        batch_size: examples per forward pass (the unoccluded input rides in the first batch).

    Raises:
        ValueError: batch_size below 1, or a score that is not one value per example.
    """
    if batch_size < 1:
        raise ValueError(f"The batch size must be at least 1, not {batch_size}.")
    embeddings = input_embeddings(loaded, inputs)  # (1, T, D)
    tokens = embeddings.shape[1]
    # Row 0 is the input itself; row j + 1 has token j zeroed.
    occluded = [None] + list(range(tokens))
    values = []
    with torch.no_grad():
        for start in range(0, len(occluded), batch_size):
            chunk = occluded[start:start + batch_size]
            batch = embeddings.expand(len(chunk), -1, -1).clone()  # (B, T, D)
            rows = [row for row, position in enumerate(chunk) if position is not None]
            batch[rows, [chunk[row] for row in rows]] = 0.0
            values.append(scores_of(score, forward_from_embeddings(loaded, inputs, batch), len(chunk)))
    values = torch.cat(values)  # (T + 1,)
    return (values[0] - values[1:]).cpu()


@register("occlusion", "Occlusion", "f(x) minus f(x with input j's embedding set to zero), for each input j, positions "
          "kept (a ViT's patches one by one), all occluded inputs batched.", needs_model=True, needs_target=True,
          signed=True, slow=True,
          prefer="What the model loses without each input, measured rather than estimated; one forward pass per input, "
                 "and blind to inputs that only matter together.")
def occlusion_method(capture: Capture, loaded: LoadedModel) -> Explanation:
    relevance = occlusion(loaded, model_inputs(capture, loaded), target_score(capture))
    return Explanation("occlusion", over_tokens(capture, relevance))
