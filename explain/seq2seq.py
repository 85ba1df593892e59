"""Encoder-decoders: source -> greedy output (or an output the user gives, teacher-forced); one forward
captures the three attention stacks; one backward per output token gives Chefer et al.'s relevance.

Decoder positions: position n reads the decoder start token (n = 0) or output token n - 1, and predicts
output token n. So T = N: the decoder inputs are [start] + outputs[:-1], and row n of every decoder-side
matrix explains output token n.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Sequence

import torch

from explain.capture import _stack_attentions, gradient_weighted, layer_gradients, unknown_words
from explain.encoder_decoder import encoder_decoder_relevance, encoder_decoder_rollout
from explain.methods import layer_attention
from models import LoadedModel

MAX_OUTPUT_TOKENS = 256
STACKS = ("encoder", "decoder", "cross")


@dataclass
class Seq2SeqCapture:
    """One source, its output and everything the views and the command line need.

    Attributes:
        source_tokens: S source tokens (special tokens included); source_ids their ids.
        output_tokens: N output tokens, without the decoder start token; output_ids their ids.
        decoder_tokens: N decoder inputs: the start token, then output_tokens[:-1].
        encoder_attentions: (L_enc, H, S, S) encoder self-attention.
        decoder_attentions: (L_dec, H, N, N) masked decoder self-attention.
        cross_attentions: (L_dec, H, N, S) cross-attention: queries from the decoder, keys from the encoder.
        relevance_source: (N, S) row n = row n of R_ts for the target "logit of output token n", or None
            when gradients were not asked for.
        relevance_output: (N, N) row n = row n of R_tt for the same target (columns: decoder inputs).
        output_probabilities: (N,) probability of each output token where the decoder predicted it.
        output_text: the output decoded without special tokens.
        teacher_forced: True when the output was given, False when generated greedily.
        source_special, output_special: (S,) and (N,) bool, special tokens.
        dropped_tokens: source tokens cut off at the model's maximum length.
        unknown_words: source words the tokenizer could only map to its unknown token.
    """

    source_tokens: list[str]
    source_ids: list[int]
    output_tokens: list[str]
    output_ids: list[int]
    decoder_tokens: list[str]
    encoder_attentions: torch.Tensor
    decoder_attentions: torch.Tensor
    cross_attentions: torch.Tensor
    output_probabilities: torch.Tensor
    output_text: str
    teacher_forced: bool
    source_special: torch.Tensor
    output_special: torch.Tensor
    relevance_source: torch.Tensor | None = None
    relevance_output: torch.Tensor | None = None
    dropped_tokens: int = 0
    unknown_words: list[str] = field(default_factory=list)
    kind: str = "seq2seq"

    def stack(self, name: str) -> torch.Tensor:
        """One attention stack by name: "encoder", "decoder" or "cross"."""
        stacks = {"encoder": self.encoder_attentions, "decoder": self.decoder_attentions, "cross": self.cross_attentions}
        if name not in stacks:
            raise ValueError(f"Unknown attention stack '{name}': choose one of {', '.join(STACKS)}.")
        return stacks[name]

    @property
    def nbytes(self) -> int:
        tensors = (self.encoder_attentions, self.decoder_attentions, self.cross_attentions, self.relevance_source,
                   self.relevance_output, self.output_probabilities)
        return sum(t.numel() * t.element_size() for t in tensors if t is not None) + 64 * (
            len(self.source_tokens) + 2 * len(self.output_tokens))

    def for_display(self) -> "Seq2SeqCapture":
        """A lighter copy for view caches: the three attention stacks in float16 (see Capture.for_display)."""
        return replace(self, encoder_attentions=self.encoder_attentions.half(),
                       decoder_attentions=self.decoder_attentions.half(), cross_attentions=self.cross_attentions.half())


def seq2seq_relevance(capture: Seq2SeqCapture, method: str = "gradient-rollout", *, layer: int | None = None,
                      head: int | None = None, head_fusion: str = "mean", discard_ratio: float = 0.0) -> torch.Tensor:
    """Relevance of each source token for each output token, (N, S), by one method.

    "attention": one decoder layer's cross-attention (default the last layer, mean of heads);
    "rollout": the paper's rollout baseline (`encoder_decoder_rollout`, causal);
    "gradient-rollout": Chefer et al.'s rules (computed at capture time: `relevance_source`).
    """
    if method == "attention":
        return layer_attention(capture.cross_attentions.float(), layer, head)
    if method == "rollout":
        return encoder_decoder_rollout(capture.encoder_attentions.float(), capture.decoder_attentions.float(),
                                       capture.cross_attentions.float(), head_fusion, discard_ratio)
    if method == "gradient-rollout":
        if capture.relevance_source is None:
            raise ValueError("Gradient rollout needs the backward passes: capture with gradients.")
        return capture.relevance_source
    raise ValueError(f"Unknown method '{method}': choose one of attention, rollout, gradient-rollout.")


def seq2seq_output_relevance(capture: Seq2SeqCapture, method: str = "gradient-rollout", *, layer: int | None = None,
                             head: int | None = None, head_fusion: str = "mean", discard_ratio: float = 0.0) -> torch.Tensor:
    """Relevance of the decoder's own inputs (start token, earlier outputs) for each output token, (N, N).

    "attention": one layer's masked decoder self-attention; "rollout": the attention rollout J_tt of the
    decoder self-attention; "gradient-rollout": rows of Chefer et al.'s R_tt (`relevance_output`).
    Column j is decoder input j (`decoder_tokens[j]`); row n is zero after column n.
    """
    from explain.rollout import attention_rollout

    if method == "attention":
        return layer_attention(capture.decoder_attentions.float(), layer, head)
    if method == "rollout":
        return attention_rollout(capture.decoder_attentions.float(), head_fusion, discard_ratio)
    if method == "gradient-rollout":
        if capture.relevance_output is None:
            raise ValueError("Gradient rollout needs the backward passes: capture with gradients.")
        return capture.relevance_output
    raise ValueError(f"Unknown method '{method}': choose one of attention, rollout, gradient-rollout.")


def _greedy(loaded: LoadedModel, source: torch.Tensor, max_new_tokens: int) -> list[int]:
    """Greedy output ids after the decoder start token (ending with the end token when written)."""
    tokenizer = loaded.tokenizer
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    with torch.no_grad():
        generated = loaded.model.generate(
            source, attention_mask=torch.ones_like(source), max_new_tokens=max_new_tokens, do_sample=False,
            num_beams=1, pad_token_id=pad, top_p=None, top_k=None, temperature=None,
        )
    return generated[0, 1:].tolist()


def capture_seq2seq(
    loaded: LoadedModel,
    source: str,
    *,
    output: str | Sequence[int] | None = None,
    max_new_tokens: int = 64,
    with_gradients: bool = True,
) -> Seq2SeqCapture:
    """Source in, output out (greedy, or `output` teacher-forced), three attention stacks, relevance.

    Args:
        loaded: an encoder-decoder from `models.load`.
        source: the input text.
        output: an output to explain instead of the model's own (teacher forcing), as text or token ids
            (without the decoder start token); None generates.
        max_new_tokens: most output tokens generated (1 to MAX_OUTPUT_TOKENS).
        with_gradients: one backward pass per output token for Chefer et al.'s relevance.

    Raises:
        ValueError: empty source or output, or max_new_tokens out of range.
    """
    spec, tokenizer, model = loaded.spec, loaded.tokenizer, loaded.model
    if spec.kind != "seq2seq":
        raise ValueError(f"'{spec.name}' is not an encoder-decoder: pick one for this view.")
    if not source or not source.strip():
        raise ValueError("The source text is empty: type a text for the model to rewrite.")
    if not 1 <= max_new_tokens <= MAX_OUTPUT_TOKENS:
        raise ValueError(f"The output length must be 1 to {MAX_OUTPUT_TOKENS} tokens, not {max_new_tokens}.")
    full = tokenizer(source, add_special_tokens=True)["input_ids"]
    encoding = tokenizer(source, add_special_tokens=True, truncation=True, max_length=spec.max_length, return_tensors="pt")
    source_ids = encoding["input_ids"][0].tolist()
    source_tensor = encoding["input_ids"].to(loaded.device)
    if output is None:
        output_ids = _greedy(loaded, source_tensor, max_new_tokens)
    elif isinstance(output, str):
        if not output.strip():
            raise ValueError("The given output is empty: type the output to explain, or let the model generate one.")
        output_ids = tokenizer(text_target=output, add_special_tokens=True, truncation=True,
                               max_length=spec.max_length)["input_ids"]
    else:
        output_ids = [int(i) for i in output]
    if not output_ids:
        raise ValueError(f"{spec.name} wrote nothing for this source: try another text.")
    start = model.config.decoder_start_token_id
    decoder_ids = [start] + output_ids[:-1]
    decoder_tensor = torch.tensor([decoder_ids], device=loaded.device)
    count = len(output_ids)

    with torch.set_grad_enabled(with_gradients):
        outputs = model(input_ids=source_tensor, attention_mask=torch.ones_like(source_tensor),
                        decoder_input_ids=decoder_tensor, output_attentions=True)
        logits = outputs.logits[0].float()  # (N, V)
        targets = torch.tensor(output_ids, device=logits.device)
        chosen = logits.gather(-1, targets[:, None])[:, 0]  # (N,)
        probabilities = torch.softmax(logits.detach(), dim=-1).gather(-1, targets[:, None])[:, 0].cpu()
        stacks = [outputs.encoder_attentions, outputs.decoder_attentions, outputs.cross_attentions]
        encoder, decoder, cross = (_stack_attentions(s) for s in stacks)
        relevance_source = relevance_output = None
        if with_gradients:
            flat = [a for s in stacks for a in s]
            sizes = [len(s) for s in stacks]
            rows_source, rows_output = [], []
            for n in range(count):
                grads = layer_gradients(chosen[n], flat, retain_graph=n < count - 1)
                parts, offset = [], 0
                for size in sizes:
                    parts.append(gradient_weighted(flat[offset:offset + size], grads[offset:offset + size]))
                    offset += size
                _, r_tt, r_ts = encoder_decoder_relevance(*parts)
                rows_source.append(r_ts[n].cpu())
                rows_output.append(r_tt[n].cpu())
            relevance_source, relevance_output = torch.stack(rows_source), torch.stack(rows_output)

    special_ids = set(tokenizer.all_special_ids)
    return Seq2SeqCapture(
        source_tokens=tokenizer.convert_ids_to_tokens(source_ids), source_ids=source_ids,
        output_tokens=tokenizer.convert_ids_to_tokens(output_ids), output_ids=output_ids,
        decoder_tokens=tokenizer.convert_ids_to_tokens(decoder_ids),
        encoder_attentions=encoder, decoder_attentions=decoder, cross_attentions=cross,
        output_probabilities=probabilities, output_text=tokenizer.decode(output_ids, skip_special_tokens=True),
        teacher_forced=output is not None,
        source_special=torch.tensor([i in special_ids for i in source_ids]),
        output_special=torch.tensor([i in special_ids for i in output_ids]),
        relevance_source=relevance_source, relevance_output=relevance_output,
        dropped_tokens=len(full) - len(source_ids), unknown_words=unknown_words(tokenizer, encoding, source),
    )
