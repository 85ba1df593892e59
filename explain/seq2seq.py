"""Encoder-decoders: source -> greedy output (or an output the user gives, teacher-forced); one forward pass
captures the three attention stacks; one backward pass explains one output token (the target).

Decoder positions: position n reads the decoder start token (n = 0) or output token n - 1, and predicts output
token n. So the decoder inputs are [start] + outputs[:-1], and row n of every decoder-side matrix explains
output token n.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

from explain.capture import Capture, cpu_inputs, layer_gradients, stack_attentions
from explain.generation import greedy
from explain.rollout import gradient_weighted
from explain.targets import TokenLogit
from explain.tokens import unknown_words
from models import LoadedModel

MAX_OUTPUT_TOKENS = 256
STACKS = ("encoder", "decoder", "cross")


@dataclass
class Seq2SeqCapture(Capture):
    """A source, its output and the three attention stacks (see Capture: `tokens`, `attentions`, `special` and
    `weighted` are the source's and the encoder self-attention's). The target is a TokenLogit: output token
    `target.position`, the logit read where the decoder predicted it.

    Attributes:
        source_ids: S source ids.
        output_tokens, output_ids: N output tokens, without the decoder start token.
        decoder_tokens: N decoder inputs: the start token, then output_tokens[:-1].
        decoder_attentions: (L_dec, H, N, N) masked decoder self-attention.
        cross_attentions: (L_dec, H, N, S) cross-attention: queries from the decoder, keys from the encoder.
        output_probabilities: (N,) probability of each output token where the decoder predicted it.
        output_text: the output decoded without special tokens.
        teacher_forced: True when the output was given, False when generated greedily.
        output_special: (N,) bool, special output tokens.
        decoder_weighted, cross_weighted: (L_dec, N, N) and (L_dec, N, S) gradient-weighted attention for the
            target, or None.
    """

    source_ids: list[int] = field(default_factory=list)
    output_tokens: list[str] = field(default_factory=list)
    output_ids: list[int] = field(default_factory=list)
    decoder_tokens: list[str] = field(default_factory=list)
    decoder_attentions: torch.Tensor | None = None
    cross_attentions: torch.Tensor | None = None
    output_probabilities: torch.Tensor | None = None
    output_text: str = ""
    teacher_forced: bool = False
    output_special: torch.Tensor | None = None
    decoder_weighted: torch.Tensor | None = None
    cross_weighted: torch.Tensor | None = None

    @property
    def source_tokens(self) -> list[str]:
        return self.tokens

    @property
    def source_special(self) -> torch.Tensor:
        return self.special

    @property
    def encoder_attentions(self) -> torch.Tensor:
        return self.attentions

    @property
    def decoder_special(self) -> torch.Tensor:
        """(N,) bool, special decoder inputs: the start token, and every output but the last that is special."""
        special = self.output_special.roll(1).clone()
        special[0] = True
        return special

    def stack(self, name: str) -> torch.Tensor:
        """One attention stack by name: "encoder", "decoder" or "cross"."""
        stacks = {"encoder": self.attentions, "decoder": self.decoder_attentions, "cross": self.cross_attentions}
        if name not in stacks:
            raise ValueError(f"Unknown attention stack '{name}': choose one of {', '.join(STACKS)}.")
        return stacks[name]

    def stack_view(self, name: str) -> tuple[Capture, torch.Tensor | None]:
        """One attention stack as a plain Capture for the generic views (head grids, statistics) and, for the
        cross stack, the special flags of its keys (the source; its maps are outputs x sources)."""
        attentions = self.stack(name)
        if name == "decoder":
            tokens, special = self.decoder_tokens, self.decoder_special
        else:
            tokens, special = self.tokens, self.special
        view = Capture(kind=self.kind, tokens=list(tokens), attentions=attentions, special=special,
                       pooling_weights=torch.zeros(attentions.shape[-1]))
        return view, (self.special if name == "cross" else None)


def output_ids_for(loaded: LoadedModel, source_ids: list[int], output: str | list[int] | None,
                   max_new_tokens: int) -> list[int]:
    """The output to explain: the model's greedy output (None), a text teacher-forced, or given ids."""
    if output is None:
        ids = greedy(loaded, source_ids, max_new_tokens)
    elif isinstance(output, str):
        if not output.strip():
            raise ValueError("The given output is empty: type the output to explain, or let the model generate one.")
        ids = loaded.tokenizer(text_target=output, add_special_tokens=True, truncation=True,
                               max_length=loaded.spec.max_length)["input_ids"]
    else:
        ids = [int(i) for i in output]
    if not ids:
        raise ValueError(f"{loaded.spec.name} wrote nothing for this source: try another text.")
    return ids


def capture_seq2seq(
    loaded: LoadedModel,
    source: str | Sequence[int],
    *,
    output: str | list[int] | None = None,
    max_new_tokens: int = 64,
    target: int | None = None,
    with_gradients: bool = False,
    display: bool = False,
) -> Seq2SeqCapture:
    """Source in, output out (greedy, or `output` teacher-forced), three attention stacks; with gradients, one
    backward pass for the target output token.

    Args:
        loaded: an encoder-decoder from `models.load`.
        source: the input text, or its token ids (used as they are).
        output: an output to explain instead of the model's own (teacher forcing), as text or token ids (without
            the decoder start token); None generates.
        max_new_tokens: most output tokens generated (1 to MAX_OUTPUT_TOKENS).
        target: the output position n whose token is explained (default 0, the first); giving it runs the
            backward pass.
        with_gradients: run the backward pass for the target.
        display: keep only what views need (float16 attentions, no raw gradients).

    Raises:
        ValueError: empty source or output, max_new_tokens or the target position out of range.
    """
    spec, tokenizer, model = loaded.spec, loaded.tokenizer, loaded.model
    if not spec.kind.cross_attention:
        raise ValueError(f"'{spec.name}' is {spec.kind.article}, not an encoder-decoder: pick one for this view.")
    if not source or (isinstance(source, str) and not source.strip()):
        raise ValueError("The source text is empty: type a text for the model to rewrite.")
    if not 1 <= max_new_tokens <= MAX_OUTPUT_TOKENS:
        raise ValueError(f"The output length must be 1 to {MAX_OUTPUT_TOKENS} tokens, not {max_new_tokens}.")
    if isinstance(source, str):
        full = tokenizer(source, add_special_tokens=True)["input_ids"]
        encoding = tokenizer(source, add_special_tokens=True, truncation=True, max_length=spec.max_length,
                             return_tensors="pt")
        source_ids = encoding["input_ids"][0].tolist()
    else:
        encoding, source_ids = None, [int(i) for i in source]
        full = source_ids
    output_ids = output_ids_for(loaded, source_ids, output, max_new_tokens)
    count = len(output_ids)
    position = 0 if target is None else int(target)
    if not 0 <= position < count:
        raise ValueError(f"Output token {position} does not exist: choose 0 to {count - 1}.")
    need_grad = with_gradients or target is not None
    decoder_ids = [model.config.decoder_start_token_id] + output_ids[:-1]
    source_tensor = torch.tensor([source_ids], device=loaded.device)
    inputs = {"input_ids": source_tensor, "attention_mask": torch.ones_like(source_tensor),
              "decoder_input_ids": torch.tensor([decoder_ids], device=loaded.device)}
    resolved = TokenLogit(position, output_ids[position], tokenizer.decode([output_ids[position]]))
    dtype = torch.float16 if display else torch.float32
    with torch.set_grad_enabled(need_grad):
        outputs = model(**inputs, output_attentions=True)
        logits = outputs.logits[0].float()  # (N, V)
        targets = torch.tensor(output_ids, device=logits.device)
        probabilities = torch.softmax(logits.detach(), dim=-1).gather(-1, targets[:, None])[:, 0].cpu()
        stacks = (outputs.encoder_attentions, outputs.decoder_attentions, outputs.cross_attentions)
        encoder, decoder, cross = (stack_attentions(s, dtype) for s in stacks)
        weighted: list[torch.Tensor | None] = [None, None, None]
        if need_grad:
            flat = [a for s in stacks for a in s]
            grads = layer_gradients(resolved.score(outputs, inputs)[0], flat)
            offset = 0
            for number, stack in enumerate(stacks):  # the stacks differ in shape: weighted one by one
                layers = slice(offset, offset + len(stack))
                weighted[number] = gradient_weighted(flat[layers], grads[layers], in_place=True).cpu()
                offset += len(stack)
    special_ids = set(tokenizer.all_special_ids)
    return Seq2SeqCapture(
        kind=spec.kind, tokens=tokenizer.convert_ids_to_tokens(source_ids), attentions=encoder,
        special=torch.tensor([i in special_ids for i in source_ids]), pooling_weights=torch.zeros(len(source_ids)),
        inputs=cpu_inputs(inputs), target=resolved, target_value=float(logits[position, output_ids[position]].detach()),
        weighted=weighted[0], dropped_tokens=len(full) - len(source_ids),
        unknown_words=[] if encoding is None else unknown_words(tokenizer, encoding, source), source_ids=source_ids,
        output_tokens=tokenizer.convert_ids_to_tokens(output_ids), output_ids=output_ids,
        decoder_tokens=tokenizer.convert_ids_to_tokens(decoder_ids), decoder_attentions=decoder,
        cross_attentions=cross, output_probabilities=probabilities,
        output_text=tokenizer.decode(output_ids, skip_special_tokens=True), teacher_forced=output is not None,
        output_special=torch.tensor([i in special_ids for i in output_ids]), decoder_weighted=weighted[1],
        cross_weighted=weighted[2],
    )


def output_relevance(loaded: LoadedModel, capture: Seq2SeqCapture, method: str = "gradient-rollout",
                     capture_at: Callable[[int, bool], Seq2SeqCapture] | None = None,
                     **options: object) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Every output token's relevance: ((N, S) over the source, (N, N) over the decoder's inputs, or None for the
    methods that attribute the source only); row n is the method applied to the capture whose target is output
    token n (the output kept as it is, teacher-forced).

    Args:
        capture_at: (output position, with_gradients) -> the capture of the same source and output explained at
            that position (default: a new capture from the ids; the app passes its cached captures).
        options: the method's options.
    """
    from explain.methods import explain_capture, get_method

    needs_gradients = get_method(method).needs_gradients
    if capture_at is None:
        capture_at = lambda n, gradients: capture_seq2seq(  # noqa: E731
            loaded, capture.source_ids, output=capture.output_ids, target=n, with_gradients=gradients)
    rows = [explain_capture(capture_at(n, needs_gradients), method, loaded, **options)
            for n in range(len(capture.output_ids))]
    decoder_rows = None if rows[0].decoder_relevance is None else torch.stack([r.decoder_relevance.float() for r in rows])
    return torch.stack([row.relevance.float() for row in rows]), decoder_rows
