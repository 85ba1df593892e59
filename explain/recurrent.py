"""What the recurrent teaching models (models/recurrent.py) show about where attention came from, on one string:
the greedy output, the attention model's alignment (output letter x source letter), and the vanishing gradient
(how strongly one output step's loss reaches back to each source letter, against the number of recurrent steps
in between).

The bundled models reverse strings of lower-case letters (`reverse-gru`, the decoder sees only the final encoder
state; `reverse-gru-attn`, Bahdanau's additive attention over every encoder state).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from models import LoadedModel, ModelKind
from models.recurrent import LETTERS, build_recurrent

MAX_LETTERS = 99  # the models write at most 100 tokens (max_target_length): the letters and </s>
TRAINED_LENGTHS = (5, 80)
INIT_SEED = 0


def letters_right(output: str, letters: str) -> np.ndarray:
    """(len(letters),) whether the output has the reversal's letter at each place (a missing letter is wrong)."""
    target = letters[::-1]
    return np.array([i < len(output) and output[i] == c for i, c in enumerate(target)], dtype=bool)


def anti_diagonal_share(alignment: np.ndarray, length: int) -> float | None:
    """Share of the output steps t < `length` of an (output steps, source) alignment whose largest weight lies on
    the source letter the reversal needs there (position length - 1 - t); None when there is no such step."""
    steps = min(length, alignment.shape[0])
    if steps == 0:
        return None
    argmax = np.asarray(alignment[:steps]).argmax(-1)
    return float(np.mean(argmax == length - 1 - np.arange(steps)))


class LettersError(ValueError):
    """The string is not something the reversal models read; the message says what to type."""


def check_letters(text: str, kind: ModelKind | None = None) -> str:
    """The string as the models read it (lower-cased, surrounding spaces dropped), or LettersError saying what to type.

    Raises:
        LettersError: empty, longer than MAX_LETTERS, or with characters other than the letters a-z.
    """
    letters = text.strip().lower()
    if not letters:
        raise LettersError("The string is empty: type some lower-case letters, for example 'attention'.")
    others = sorted({c for c in letters if c not in LETTERS})
    if others:
        shown = " ".join(repr(c) for c in others[:8])
        raise LettersError(f"The reversal models read only the letters a-z; remove {shown} and type letters only.")
    if len(letters) > MAX_LETTERS:
        raise LettersError(f"The string has {len(letters)} letters; the models write at most {MAX_LETTERS}: "
                           "shorten it (they were trained on 5 to 80).")
    return letters


@dataclass(frozen=True)
class RecurrentRun:
    """One string through one recurrent encoder-decoder.

    Attributes:
        model: the model's name.
        letters: the source string (S - 1 letters).
        output_text: the greedy output (</s> dropped).
        input_tokens: the S source tokens (the letters and </s>).
        output_tokens: the N output tokens (</s> included when the model wrote it).
        alignment: (N, S) the attention weights of each output step over the source (attention model), else None.
        gradient_norms: (S,) L2 norm of the gradient of the loss at the last letter's output step (teacher-forced on
            the reversed string; that step must write the first letter) with respect to each source embedding.
        gradient_norms_first: (S,) the same for the first output step (which must write the last letter).
        distances: (S,) recurrent encoder steps between reading each source position and the encoder's final state
            (the plain model's only route to the decoder); the decoder adds its own steps after that.
        initialised: the weights are a fresh initialisation (seed INIT_SEED), not the trained ones.
    """

    model: str
    letters: str
    output_text: str
    input_tokens: list[str]
    output_tokens: list[str]
    alignment: np.ndarray | None
    gradient_norms: np.ndarray
    gradient_norms_first: np.ndarray
    distances: np.ndarray
    initialised: bool = False

    @property
    def correct(self) -> bool:
        """The output is the source reversed."""
        return self.output_text == self.letters[::-1]

    @property
    def letter_matches(self) -> np.ndarray:
        """(len(letters),) whether each target letter was written right (a missing letter is wrong)."""
        return letters_right(self.output_text, self.letters)

    @property
    def anti_diagonal(self) -> float | None:
        """Share of output steps whose largest attention weight lies where the reversal reads (anti_diagonal_share);
        None without attention."""
        return None if self.alignment is None else anti_diagonal_share(self.alignment, len(self.letters))

    @property
    def nbytes(self) -> int:
        arrays = (self.alignment, self.gradient_norms, self.gradient_norms_first, self.distances)
        return sum(a.nbytes for a in arrays if a is not None) + 64 * (len(self.input_tokens) + len(self.output_tokens))


def encoder_distances(direction: str, length: int) -> np.ndarray:
    """(length,) the encoder steps between reading position j and the end of encoding: j when reading right to
    left (position 0 is read last), length - 1 - j left to right, the smaller of the two when bidirectional."""
    j = np.arange(length)
    backward, forward = j, length - 1 - j
    return {"backward": backward, "forward": forward, "bidirectional": np.minimum(backward, forward)}[direction]


def run_recurrent(loaded: LoadedModel, text: str, initialised: bool = False) -> RecurrentRun:
    """The greedy output, alignment and gradient profiles of one string.

    Args:
        loaded: a model of kind RECURRENT (`models.load("reverse-gru-attn")`).
        text: lower-case letters (checked by `check_letters`).
        initialised: measure a freshly initialised model of the same config (seed INIT_SEED) instead of the
            trained weights: the vanishing gradient is plainest before training.

    Raises:
        LettersError: the text is not letters the models read.
        ValueError: the model is not a recurrent one.
    """
    if loaded.spec.kind.transformer:
        raise ValueError(f"'{loaded.spec.name}' is {loaded.spec.kind.article}, not a recurrent encoder-decoder: "
                         "use reverse-gru or reverse-gru-attn.")
    letters = check_letters(text)
    model, tokenizer = loaded.model, loaded.tokenizer
    if initialised:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(INIT_SEED)
            model = build_recurrent(model.config).eval().requires_grad_(False)
    decoding = model.decode(tokenizer, letters, max_new_tokens=len(letters) + 6)  # as evaluate_reversal: S + 5
    input_ids = torch.tensor(tokenizer(letters)["input_ids"])  # (S,) the letters and </s>
    labels = torch.tensor(tokenizer(letters[::-1], add_special_tokens=False)["input_ids"])  # (S - 1,)
    last = model.gradient_norms(input_ids, labels).numpy()
    first = model.gradient_norms(input_ids, labels[:1]).numpy()
    return RecurrentRun(
        model=loaded.spec.name, letters=letters, output_text=decoding.output_text,
        input_tokens=list(decoding.input_tokens), output_tokens=list(decoding.output_tokens),
        alignment=None if decoding.alignment is None else decoding.alignment.numpy().astype(np.float32),
        gradient_norms=last.astype(np.float32), gradient_norms_first=first.astype(np.float32),
        distances=encoder_distances(model.config.encoder_direction, len(input_ids)),
        initialised=initialised,
    )
