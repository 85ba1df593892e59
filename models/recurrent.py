"""Two small recurrent encoder-decoders (plain PyTorch), to show what attention was invented for.

Both read characters with the same GRU encoder and write with the same GRU decoder; they differ only in the
context vector c_t the decoder receives at each output step t:

- ``ReverseGRU`` (Cho et al., 2014, "RNN Encoder-Decoder"): c_t = c, the encoder's final state, the same at
  every step; the decoder's first state is computed from it too. Everything the decoder knows about the
  source passes through this one vector: the bottleneck.
- ``ReverseGRUAttention`` (Bahdanau et al., 2015, "RNNsearch"): c_t = sum_j a_tj h_j, with additive
  attention weights a_t = softmax_j(v^T tanh(W_s s_{t-1} + W_h h_j)) over the encoder states h_j of
  the source positions (padding masked out).

One decoder step (both models)::

    c_t = context(s_{t-1}, H)                     # fixed c, or attention over H
    s_t = GRU([embed(y_{t-1}); c_t], s_{t-1})     # the context is concatenated to the decoder input
    logits_t = W_o [s_t; c_t; embed(y_{t-1})]

The encoder reads right to left by default (``encoder_direction="backward"``; "forward" and Bahdanau's
"bidirectional" are there too). Then h_j holds x_j and, fading, the letters after it, never the letters
before it, and the decoder's attention lands on the letter it writes: with a forward or bidirectional
encoder, h_{j+1} also holds x_j, and a reversal model trained here learnt to attend one position to the
right of the letter it wrote, or to spread its weight over both.

A directory holds config.json (``RecurrentConfig``, with our own "model_type"), model.safetensors and a
fast character-level tokenizer (``build_tokenizer``, saved with ``save_pretrained``):
``save_recurrent`` / ``load_recurrent``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from models.characters import SPECIALS, character_tokenizer

MODEL_TYPES = ("reverse-gru", "reverse-gru-attn")
DIRECTIONS = ("backward", "forward", "bidirectional")
LETTERS = tuple("abcdefghijklmnopqrstuvwxyz")


@dataclass
class RecurrentConfig:
    """Sizes and special token ids of a recurrent encoder-decoder, saved as config.json.

    Attributes:
        model_type: "reverse-gru" (final encoder state only) or "reverse-gru-attn" (additive attention).
        vocab_size: V, the tokenizer's vocabulary size.
        embedding_size: E, shared by source and target embeddings (one table).
        hidden_size: H, the encoder GRU's state size per direction (encoder states are 2H when bidirectional).
        encoder_direction: "backward" (right to left: h_j summarises x_j and the letters after it),
            "forward" (left to right) or "bidirectional" (both, concatenated, as Bahdanau et al.).
        decoder_size: D, the decoder GRU's state size.
        attention_size: A, the additive attention's hidden size (attention model only).
        max_target_length: the longest output greedy decoding writes by default (</s> included).
        pad_token_id, bos_token_id, eos_token_id: special tokens (<s> starts the decoder).
    """

    model_type: str = "reverse-gru-attn"
    vocab_size: int = len(SPECIALS) + len(LETTERS)
    embedding_size: int = 64
    hidden_size: int = 128
    decoder_size: int = 256
    attention_size: int = 128
    encoder_direction: str = "backward"
    max_target_length: int = 100
    pad_token_id: int = 0
    bos_token_id: int = 1
    eos_token_id: int = 2

    def __post_init__(self) -> None:
        if self.model_type not in MODEL_TYPES:
            raise ValueError(f"Unknown recurrent model_type '{self.model_type}': choose one of {', '.join(MODEL_TYPES)}.")
        if self.encoder_direction not in DIRECTIONS:
            raise ValueError(f"Unknown encoder_direction '{self.encoder_direction}': choose one of {', '.join(DIRECTIONS)}.")

    @property
    def attention(self) -> bool:
        """Whether the decoder attends over the encoder states."""
        return self.model_type == "reverse-gru-attn"

    @property
    def state_size(self) -> int:
        """C, the size of one encoder state h_j (and of the context vector)."""
        return self.hidden_size * (2 if self.encoder_direction == "bidirectional" else 1)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> RecurrentConfig:
        """The config from config.json's dictionary; unknown keys are an error (a file of another model)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"config.json has keys a RecurrentConfig does not know ({', '.join(unknown)}): "
                             "is this directory a recurrent model saved by save_recurrent?")
        return cls(**values)


class RecurrentOutput(NamedTuple):
    """What a teacher-forced forward returns.

    Attributes:
        logits: (B, N, V) next-token logits at each output step.
        attentions: (B, N, S) attention weights of the attention model (rows sum to 1 over the real
            source positions), None for the plain model.
    """

    logits: torch.Tensor
    attentions: torch.Tensor | None


class Decoding(NamedTuple):
    """One string decoded greedily.

    Attributes:
        output_text: the output characters (</s> dropped).
        input_tokens: the S source tokens (characters and the closing </s>).
        output_tokens: the N output tokens (characters, then </s> when the model wrote it).
        alignment: (N, S) attention weights of the attention model, None for the plain model.
    """

    output_text: str
    input_tokens: list[str]
    output_tokens: list[str]
    alignment: torch.Tensor | None


def reverse_padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence of a right-padded batch within its own length (padding stays on the right).

    Args:
        x: (B, S, ...) the batch.
        lengths: (B,) real lengths.

    Returns:
        (B, S, ...) with x[b, :lengths[b]] reversed; applying it twice gives `x` back.
    """
    positions = torch.arange(x.shape[1], device=x.device)[None, :]  # (1, S)
    index = torch.where(positions < lengths[:, None], lengths[:, None] - 1 - positions, positions)  # (B, S)
    return x.gather(1, index.view(*index.shape, *([1] * (x.dim() - 2))).expand_as(x))


class GRUEncoder(nn.Module):
    """A GRU over embedded tokens, reading backward (right to left), forward, or both ways; padding is
    skipped with packed sequences, so a backward pass starts at each sequence's own last token."""

    def __init__(self, config: RecurrentConfig) -> None:
        super().__init__()
        self.direction = config.encoder_direction
        self.gru = nn.GRU(config.embedding_size, config.hidden_size, batch_first=True,
                          bidirectional=self.direction == "bidirectional")

    def forward(self, embeddings: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode a padded batch.

        Args:
            embeddings: (B, S, E) source embeddings.
            attention_mask: (B, S), 1 on real tokens, 0 on padding (padding on the right).

        Returns:
            states: (B, S, C) encoder state h_j of every position (zeros on padding).
            final: (B, C) the state after the encoder's last step: after the last token (forward), after the
                first token (backward), or both concatenated (bidirectional).
        """
        lengths = attention_mask.sum(1)
        if self.direction == "backward":
            embeddings = reverse_padded(embeddings, lengths)  # read right to left
        packed = nn.utils.rnn.pack_padded_sequence(embeddings, lengths.cpu(), batch_first=True, enforce_sorted=False)
        packed_states, last = self.gru(packed)  # last: (directions, B, H)
        states, _ = nn.utils.rnn.pad_packed_sequence(packed_states, batch_first=True,
                                                     total_length=embeddings.shape[1])  # (B, S, C)
        if self.direction == "backward":
            states = reverse_padded(states, lengths)  # h_j back at position j
        final = torch.cat(list(last), dim=-1)  # (B, C)
        return states, final


class AdditiveAttention(nn.Module):
    """Bahdanau's additive attention: score_tj = v^T tanh(W_s s_{t-1} + W_h h_j), softmax over j."""

    def __init__(self, config: RecurrentConfig) -> None:
        super().__init__()
        self.query = nn.Linear(config.decoder_size, config.attention_size, bias=False)  # W_s
        self.key = nn.Linear(config.state_size, config.attention_size, bias=True)  # W_h (and a bias)
        self.score = nn.Linear(config.attention_size, 1, bias=False)  # v

    def forward(self, decoder_state: torch.Tensor, keys: torch.Tensor, states: torch.Tensor,
                attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Attend from the previous decoder state over the source positions.

        Args:
            decoder_state: (B, D) s_{t-1}.
            keys: (B, S, A) W_h h_j + b, computed once per source (``self.key(states)``).
            states: (B, S, C) encoder states h_j.
            attention_mask: (B, S), 0 on padding.

        Returns:
            context: (B, C) sum_j a_tj h_j.
            weights: (B, S) a_t, the softmax over real source positions (0 on padding).
        """
        scores = self.score(torch.tanh(self.query(decoder_state)[:, None, :] + keys)).squeeze(-1)  # (B, S)
        scores = scores.masked_fill(attention_mask == 0, float("-inf"))
        weights = scores.softmax(dim=-1)  # (B, S)
        context = torch.bmm(weights[:, None, :], states).squeeze(1)  # (B, C)
        return context, weights


class GRUDecoder(nn.Module):
    """The decoder GRU and its readout; the context c_t is concatenated to the embedded previous token."""

    def __init__(self, config: RecurrentConfig) -> None:
        super().__init__()
        self.init_state = nn.Linear(config.state_size, config.decoder_size)  # s_0 = tanh(W_init c)
        self.gru = nn.GRU(config.embedding_size + config.state_size, config.decoder_size, batch_first=True)
        self.readout = nn.Linear(config.decoder_size + config.state_size + config.embedding_size, config.vocab_size)

    def first_state(self, final: torch.Tensor) -> torch.Tensor:
        """s_0 (B, D) from the final encoder state (B, C)."""
        return torch.tanh(self.init_state(final))

    def step(self, embedded: torch.Tensor, context: torch.Tensor,
             state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One output step: (B, E) previous token, (B, C) context, (B, D) s_{t-1} -> (B, V) logits, (B, D) s_t."""
        _, new_state = self.gru(torch.cat([embedded, context], -1)[:, None, :], state[None])  # (1, B, D)
        new_state = new_state[0]
        return self.readout(torch.cat([new_state, context, embedded], -1)), new_state

    def run_fixed_context(self, embedded: torch.Tensor, context: torch.Tensor,
                          state: torch.Tensor) -> torch.Tensor:
        """All N teacher-forced steps at once when the context is the same at every step (the plain model):
        the same computation as N calls of ``step``, in one call of the GRU.

        Args:
            embedded: (B, N, E) the decoder inputs (<s> and the target shifted right).
            context: (B, C) the fixed context.
            state: (B, D) s_0.

        Returns:
            (B, N, V) logits.
        """
        repeated = context[:, None, :].expand(-1, embedded.shape[1], -1)  # (B, N, C)
        states, _ = self.gru(torch.cat([embedded, repeated], -1), state[None])  # (B, N, D)
        return self.readout(torch.cat([states, repeated, embedded], -1))


class RecurrentEncoderDecoder(nn.Module):
    """Embedding, GRU encoder and GRU decoder; subclasses say where the decoder's context comes from."""

    def __init__(self, config: RecurrentConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.embedding_size, padding_idx=config.pad_token_id)
        self.encoder = GRUEncoder(config)
        self.decoder = GRUDecoder(config)
        self.attention = AdditiveAttention(config) if config.attention else None

    def encode(self, source_embeddings: torch.Tensor,
               attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Encoder states (B, S, C), the final encoder state (B, C) and the attention keys W_h h_j + b (B, S, A),
        None for the plain model."""
        states, final = self.encoder(source_embeddings, attention_mask)
        keys = self.attention.key(states) if self.attention is not None else None
        return states, final, keys

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, decoder_input_ids: torch.Tensor,
                source_embeddings: torch.Tensor | None = None) -> RecurrentOutput:
        """Teacher-forced forward.

        Args:
            input_ids: (B, S) source ids (characters then </s>, right-padded).
            attention_mask: (B, S), 0 on padding.
            decoder_input_ids: (B, N) <s> then the target shifted right.
            source_embeddings: (B, S, E) used instead of embedding `input_ids` (gradients w.r.t. them).

        Returns:
            ``RecurrentOutput``: logits (B, N, V) and, for the attention model, attentions (B, N, S).
        """
        if source_embeddings is None:
            source_embeddings = self.embedding(input_ids)  # (B, S, E)
        states, final, keys = self.encode(source_embeddings, attention_mask)
        state = self.decoder.first_state(final)  # (B, D)
        embedded = self.embedding(decoder_input_ids)  # (B, N, E)
        if self.attention is None:
            return RecurrentOutput(self.decoder.run_fixed_context(embedded, final, state), None)
        logits, weights = [], []
        for t in range(embedded.shape[1]):
            context, step_weights = self.attention(state, keys, states, attention_mask)  # (B, C), (B, S)
            step_logits, state = self.decoder.step(embedded[:, t], context, state)
            logits.append(step_logits)
            weights.append(step_weights)
        return RecurrentOutput(torch.stack(logits, 1), torch.stack(weights, 1))  # (B, N, V), (B, N, S)

    def loss(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of teacher-forced decoding over the real target tokens.

        Args:
            input_ids, attention_mask: (B, S) the source.
            labels: (B, N) target ids ending in </s>, -100 on padding.
        """
        logits = self(input_ids, attention_mask, self.shift_right(labels)).logits
        return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)

    def shift_right(self, labels: torch.Tensor) -> torch.Tensor:
        """Decoder inputs (B, N): <s> followed by `labels` (B, N) without its last column (-100 -> <pad>)."""
        labels = labels.masked_fill(labels == -100, self.config.pad_token_id)
        start = torch.full_like(labels[:, :1], self.config.bos_token_id)
        return torch.cat([start, labels[:, :-1]], 1)

    @torch.no_grad()
    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                 max_new_tokens: int | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Greedy decoding of a batch (each sequence stops at its </s>; later positions are <pad>).

        Args:
            input_ids, attention_mask: (B, S) the source.
            max_new_tokens: the longest output (default: ``config.max_target_length``).

        Returns:
            ids: (B, N) the output tokens, </s> included, N the longest output of the batch.
            attentions: (B, N, S) the attention weights of each step (attention model), else None.
        """
        config = self.config
        max_new_tokens = config.max_target_length if max_new_tokens is None else max_new_tokens
        states, final, keys = self.encode(self.embedding(input_ids), attention_mask)
        state = self.decoder.first_state(final)
        previous = torch.full_like(input_ids[:, 0], config.bos_token_id)  # (B,)
        finished = torch.zeros_like(previous, dtype=torch.bool)
        ids, weights = [], []
        for _ in range(max_new_tokens):
            if self.attention is None:
                context = final
            else:
                context, step_weights = self.attention(state, keys, states, attention_mask)
                weights.append(step_weights)
            logits, state = self.decoder.step(self.embedding(previous), context, state)
            previous = logits.argmax(-1).masked_fill(finished, config.pad_token_id)  # (B,)
            ids.append(previous)
            finished |= previous == config.eos_token_id
            if bool(finished.all()):
                break
        return torch.stack(ids, 1), (torch.stack(weights, 1) if weights else None)

    def decode(self, tokenizer, text: str, max_new_tokens: int | None = None) -> Decoding:  # noqa: ANN001
        """Greedy output of one string, its tokens and (attention model) the (N, S) alignment."""
        source = tokenizer(text, return_tensors="pt")
        self.eval()
        ids, attentions = self.generate(source["input_ids"], source["attention_mask"], max_new_tokens)
        output_ids = ids[0].tolist()
        if self.config.eos_token_id in output_ids:
            output_ids = output_ids[:output_ids.index(self.config.eos_token_id) + 1]
        alignment = None if attentions is None else attentions[0, :len(output_ids)]  # (N, S)
        return Decoding(
            output_text=tokenizer.decode(output_ids, skip_special_tokens=True),
            input_tokens=tokenizer.convert_ids_to_tokens(source["input_ids"][0].tolist()),
            output_tokens=tokenizer.convert_ids_to_tokens(output_ids),
            alignment=alignment,
        )

    def gradient_norms(self, input_ids: torch.Tensor, labels: torch.Tensor, step: int = -1) -> torch.Tensor:
        """How strongly one output step's loss reaches back to each source position.

        The L2 norm, over the embedding dimension, of the gradient of the cross-entropy loss at output
        step `step` (teacher-forced on `labels`) with respect to the embedding of each source token.

        Args:
            input_ids: (S,) one source (characters and </s>).
            labels: (N,) the target tokens; the decoder reads <s> and labels[:step].
            step: the output step whose loss is differentiated (default: the last of `labels`).

        Returns:
            (S,) gradient norms.
        """
        was_training = self.training
        self.eval()
        source_embeddings = self.embedding(input_ids[None]).detach().requires_grad_(True)  # (1, S, E)
        mask = torch.ones_like(input_ids[None])
        with torch.enable_grad():
            logits = self(input_ids[None], mask, self.shift_right(labels[None]), source_embeddings).logits  # (1, N, V)
            loss = F.cross_entropy(logits[0, step], labels[step])
            (gradient,) = torch.autograd.grad(loss, source_embeddings)
        self.train(was_training)
        return gradient[0].norm(dim=-1)  # (S,)


class ReverseGRU(RecurrentEncoderDecoder):
    """The plain encoder-decoder: the decoder sees only the final encoder state."""


class ReverseGRUAttention(RecurrentEncoderDecoder):
    """The same encoder-decoder with Bahdanau's additive attention over the encoder states."""


def build_recurrent(config: RecurrentConfig) -> RecurrentEncoderDecoder:
    """A freshly initialised model of the config's model_type."""
    return ReverseGRUAttention(config) if config.attention else ReverseGRU(config)


def build_tokenizer():  # noqa: ANN201 - transformers.PreTrainedTokenizerFast
    """A fast character-level tokenizer over a-z (lower-cased); </s> ends every source; `decode` joins
    characters without spaces."""
    return character_tokenizer(LETTERS, model_max_length=128)


def config_for(model_type: str, tokenizer, **sizes: int) -> RecurrentConfig:  # noqa: ANN001
    """A config of `model_type` whose vocabulary and special ids are the tokenizer's."""
    return RecurrentConfig(model_type=model_type, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                           bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, **sizes)


def save_recurrent(model: RecurrentEncoderDecoder, tokenizer, directory: Path) -> None:  # noqa: ANN001
    """Write config.json, model.safetensors and the tokenizer files into `directory`."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(model.config.to_dict(), indent=2) + "\n")
    save_file({name: tensor.detach().contiguous() for name, tensor in model.state_dict().items()},
              str(directory / "model.safetensors"))
    tokenizer.save_pretrained(directory)


def load_recurrent(directory: Path) -> tuple[RecurrentEncoderDecoder, object, RecurrentConfig]:
    """The model (eval mode), its tokenizer and config from a directory written by ``save_recurrent``.

    Raises:
        ValueError: the directory does not hold a recurrent model.
    """
    from safetensors.torch import load_file
    from transformers import PreTrainedTokenizerFast

    directory = Path(directory)
    if not (directory / "config.json").is_file() or not (directory / "model.safetensors").is_file():
        raise ValueError(f"{directory} has no config.json and model.safetensors: give a directory written by "
                         "save_recurrent (python -m training.train_reverse).")
    config = RecurrentConfig.from_dict(json.loads((directory / "config.json").read_text()))
    model = build_recurrent(config)
    model.load_state_dict(load_file(str(directory / "model.safetensors")))
    model.eval()
    tokenizer = PreTrainedTokenizerFast.from_pretrained(str(directory))
    return model, tokenizer, config


def read_measurements(directory: Path) -> dict | None:
    """The figures measured on held-out strings when the model was trained (reversal.json beside its weights:
    exact match per length, anti-diagonal rate, gradient profiles), or None when the directory has none."""
    path = Path(directory) / "reversal.json"
    if not path.is_file():
        return None
    try:
        measured = json.loads(path.read_text())
    except ValueError:
        return None
    return measured if isinstance(measured, dict) else None
