"""Inside the block: the residual stream and what attention and the feed-forward add to it, layer normalisation of
one token, the feed-forward's neurons, and the logit lens of a decoder. Everything is read with hooks on the
model's own modules during one forward pass (text encoders, ViTs and decoder-only language models).

A transformer layer keeps a residual stream x and adds to it. Pre-norm layers (GPT-2, Llama, ViT, OPT) compute

    x_mid = x + attention(norm_1(x)),     x_out = x_mid + ffn(norm_2(x_mid))

(GPT-NeoX and Phi add both to x in parallel), so x + attention's addition + the FFN's addition = x_out (tested).
Post-norm layers (BERT, MiniLM, DistilBERT) normalise after each addition, x_mid = LN(x + attention(x)) and
x_out = LN(x_mid + ffn(x_mid)), so the stream is rescaled twice per layer. What attention adds is its output
projection W_o's output; what the FFN adds is its down projection's output (times BEiT's layer scale).

The logit lens (nostalgebraist, 2020) reads the residual stream after every layer through the model's own final
normalisation and unembedding: what the model would predict if it stopped there. After the last layer it is the
model's own logits (tested).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import torch

from explain.internals import output_projection, recording_calls, self_attention_layers
from explain.qkv import model_inputs
from models import LoadedModel

# The feed-forward's down projection and its activation, by name inside a layer, per family:
# Llama/Qwen2/Mistral, GPT-2, ViT/DeiT/BEiT/Phi, GPT-NeoX, OPT, BERT/RoBERTa/Electra, DistilBERT.
FFN_OUT = ("mlp.down_proj", "mlp.c_proj", "mlp.fc2", "mlp.dense_4h_to_h", "fc2", "output.dense", "ffn.lin2")
ACTIVATIONS = ("mlp.act_fn", "mlp.act", "mlp.activation_fn", "activation_fn", "intermediate.intermediate_act_fn",
               "ffn.activation")
FINAL_NORMS = ("norm", "ln_f", "final_layer_norm", "final_layernorm")


@dataclass
class BlockParts:
    """The modules of one transformer layer that this view reads.

    Attributes:
        layer: the layer; attention: its attention module; attention_out: W_o; ffn_out: the FFN's down projection.
        activation: the FFN's activation module (None when the family calls a plain function).
        norms: the layer's normalisation modules by name inside the layer, in definition order.
        attention_scale, ffn_scale: BEiT's layer scale (lambda_1, lambda_2), else None.
    """

    layer: torch.nn.Module
    attention: torch.nn.Module
    attention_out: torch.nn.Module
    ffn_out: torch.nn.Module
    activation: torch.nn.Module | None
    norms: dict[str, torch.nn.Module]
    attention_scale: torch.Tensor | None = None
    ffn_scale: torch.Tensor | None = None


def is_norm(module: torch.nn.Module) -> bool:
    """LayerNorm or RMSNorm (torch's or a family's own class, e.g. LlamaRMSNorm)."""
    return isinstance(module, (torch.nn.LayerNorm, torch.nn.RMSNorm)) or type(module).__name__.endswith(
        ("LayerNorm", "RMSNorm"))


def block_parts(loaded: LoadedModel) -> list[BlockParts]:
    """The parts of every layer of a text encoder, ViT or decoder-only language model.

    Raises:
        ValueError: an encoder-decoder, or a family whose feed-forward this view does not know.
    """
    parts = []
    for attention, layer in self_attention_layers(loaded, "Inside the block"):
        named = dict(layer.named_modules())
        ffn_out = next((named[name] for name in FFN_OUT if name in named), None)
        if ffn_out is None:
            raise ValueError(f"Cannot find the feed-forward of {type(layer).__name__}: this view supports BERT-, GPT-2-, "
                             "Llama-, OPT-, GPT-NeoX-, Phi- and ViT-style layers.")
        activation = next((named[name] for name in ACTIVATIONS if name in named), None)
        norms = {name: module for name, module in named.items() if name and is_norm(module)}
        scales = [getattr(layer, name, None) for name in ("lambda_1", "lambda_2")]
        scales = [scale if isinstance(scale, torch.Tensor) else None for scale in scales]
        parts.append(BlockParts(layer, attention, output_projection(loaded.model, attention), ffn_out, activation, norms,
                                *scales))
    return parts


@dataclass
class BlockTrace:
    """Every layer's residual stream and additions for one input.

    Attributes:
        tokens: T tokens (patch names for a ViT).
        pre_norm: the layer's first normalisation reads the stream itself (pre-norm), not stream + attention.
        inputs: (L, T, D) the residual stream entering each layer; outputs: (L, T, D) leaving it.
        attention: (L, T, D) what attention adds (W_o's output); mlp: (L, T, D) what the feed-forward adds.
        neurons: (L, T, N) the feed-forward's hidden units (its down projection's input).
        activation_in, activation_out: (L, T, N) the activation function's input and output, or None;
            activation: its class name. gated: the units are activation(gate) x up (SwiGLU: Llama, Qwen2,
            Mistral), so they differ from the activation's output.
        norm_names: the normalisation modules of a layer; norm_inputs / norm_outputs: per layer, name -> (T, D).
        logits: (T, V) the model's own output logits (decoders), else None.
        dropped_tokens: tokens dropped to fit the model's maximum length (a decoder's earliest, others' last).
    """

    tokens: list[str]
    pre_norm: bool
    inputs: torch.Tensor
    outputs: torch.Tensor
    attention: torch.Tensor
    mlp: torch.Tensor
    neurons: torch.Tensor
    activation_in: torch.Tensor | None
    activation_out: torch.Tensor | None
    activation: str
    gated: bool
    norm_names: list[str]
    norm_inputs: list[dict[str, torch.Tensor]]
    norm_outputs: list[dict[str, torch.Tensor]]
    logits: torch.Tensor | None
    dropped_tokens: int = 0

    @property
    def layers(self) -> int:
        return self.inputs.shape[0]

    @property
    def residual_norms(self) -> torch.Tensor:
        """(L, T) the L2 norm of the stream entering each layer."""
        return self.inputs.norm(dim=-1)

    @property
    def output_norms(self) -> torch.Tensor:
        """(L, T) the L2 norm of the stream leaving each layer."""
        return self.outputs.norm(dim=-1)

    @property
    def attention_norms(self) -> torch.Tensor:
        """(L, T) the L2 norm of what attention adds in each layer."""
        return self.attention.norm(dim=-1)

    @property
    def mlp_norms(self) -> torch.Tensor:
        """(L, T) the L2 norm of what the feed-forward adds in each layer."""
        return self.mlp.norm(dim=-1)

    @property
    def streams(self) -> torch.Tensor:
        """(L + 1, T, D) the stream before the first layer, then after each layer."""
        return torch.cat([self.inputs[:1], self.outputs])

    @property
    def nbytes(self) -> int:
        """Bytes held, each tensor counted once (activation_out is `neurons` itself when not gated)."""
        seen: dict[int, int] = {}
        for field in fields(self):
            value = getattr(self, field.name)
            values = value if isinstance(value, list) else [value]
            for item in values:
                for tensor in (item.values() if isinstance(item, dict) else [item]):
                    if isinstance(tensor, torch.Tensor):
                        seen[id(tensor)] = tensor.numel() * tensor.element_size()
        return sum(seen.values())


def first(output: Any) -> torch.Tensor:
    """A module's main output: the tensor itself, or the first element of a tuple."""
    return output[0] if isinstance(output, (tuple, list)) else output


@torch.no_grad()
def inside_block(loaded: LoadedModel, *, text: str | None = None, image: Any = None) -> BlockTrace:
    """One forward pass of a text encoder, ViT or decoder with hooks on every layer's parts.

    Raises:
        ValueError: an encoder-decoder, an unknown family, or an empty input.
    """
    parts = block_parts(loaded)
    inputs, tokens, _, dropped = model_inputs(loaded, text, image, None)
    watched: dict[tuple, torch.nn.Module] = {}
    for index, part in enumerate(parts):
        watched[(index, "layer")] = part.layer
        watched[(index, "attention_out")] = part.attention_out
        watched[(index, "ffn_out")] = part.ffn_out
        if part.activation is not None:
            watched[(index, "activation")] = part.activation
        for name, norm in part.norms.items():
            watched[(index, "norm", name)] = norm
    with recording_calls(watched) as calls:
        outputs = loaded.model(**inputs)

    def tensor(value: torch.Tensor) -> torch.Tensor:
        # (1, T, F) -> (T, F); OPT's feed-forward runs on the flattened (T, F) stream
        return value.detach().reshape(-1, value.shape[-1]).float().cpu()

    rows: dict[str, list[torch.Tensor]] = {name: [] for name in ("in", "out", "attention", "mlp", "neurons", "act",
                                                                  "act_out")}
    norm_inputs, norm_outputs, first_norm_reads_stream = [], [], []
    for index, part in enumerate(parts):
        layer_call = calls[(index, "layer")]
        stream_in = tensor(layer_call.hidden_states)
        rows["in"].append(stream_in)
        rows["out"].append(tensor(first(layer_call.output)))
        attention_add = tensor(calls[(index, "attention_out")].output)
        ffn_add = tensor(calls[(index, "ffn_out")].output)
        if part.attention_scale is not None:
            attention_add = attention_add * part.attention_scale.detach().float().cpu()
        if part.ffn_scale is not None:
            ffn_add = ffn_add * part.ffn_scale.detach().float().cpu()
        rows["attention"].append(attention_add)
        rows["mlp"].append(ffn_add)
        rows["neurons"].append(tensor(calls[(index, "ffn_out")].hidden_states))
        if (index, "activation") in calls:
            rows["act"].append(tensor(calls[(index, "activation")].hidden_states))
            rows["act_out"].append(tensor(first(calls[(index, "activation")].output)))
        called = [key[2] for key in calls if key[0] == index and key[1] == "norm"]  # in the order they ran
        norm_inputs.append({name: tensor(calls[(index, "norm", name)].hidden_states) for name in called})
        norm_outputs.append({name: tensor(first(calls[(index, "norm", name)].output)) for name in called})
        if called:
            first_norm_reads_stream.append(torch.allclose(norm_inputs[-1][called[0]], stream_in, atol=1e-6))
    stack = {name: torch.stack(values) for name, values in rows.items() if values and len(values) == len(parts)}
    gated = "act_out" in stack and (stack["act_out"].shape != stack["neurons"].shape
                                    or not torch.equal(stack["act_out"], stack["neurons"]))
    if "act_out" in stack and not gated:
        stack["act_out"] = stack["neurons"]  # the same numbers: keep one copy
    logits = getattr(outputs, "logits", None)
    return BlockTrace(
        tokens=list(tokens), pre_norm=bool(first_norm_reads_stream) and all(first_norm_reads_stream),
        inputs=stack["in"], outputs=stack["out"], attention=stack["attention"], mlp=stack["mlp"],
        neurons=stack["neurons"], activation_in=stack.get("act"), activation_out=stack.get("act_out"),
        activation=type(parts[0].activation).__name__ if parts[0].activation is not None else "",
        gated=gated,
        norm_names=list(norm_inputs[0]), norm_inputs=norm_inputs, norm_outputs=norm_outputs,
        logits=None if logits is None or not loaded.spec.kind.causal else tensor(logits), dropped_tokens=dropped,
    )


@dataclass
class NormStep:
    """One token through one normalisation module, step by step, and what batch normalisation would do instead.

    Attributes:
        name: the module's name in the layer; kind: "LayerNorm" (subtracts the mean) or "RMSNorm" (does not).
        eps: the epsilon under the square root.
        input: (D,) the token's vector going in; mean: its mean over the D features (0 for RMSNorm, which does not
            subtract it); spread: its standard deviation (RMSNorm: root mean square).
        normalised: (D,) (input - mean) / sqrt(spread^2 + eps); gain: (D,) the learned gamma; bias: (D,) the
            learned beta (zeros when the module has none).
        output: (D,) gain * normalised + bias; model_output: (D,) the module's own output for the token.
        batch_mean, batch_spread: (D,) each feature's mean and standard deviation over the T tokens of this input
            (a batch norm's statistics, here over one sequence's tokens); batch_output: (D,) the token normalised
            with them (same gain and bias), which would change whenever the other tokens do.
    """

    name: str
    kind: str
    eps: float
    input: torch.Tensor
    mean: float
    spread: float
    normalised: torch.Tensor
    gain: torch.Tensor
    bias: torch.Tensor
    output: torch.Tensor
    model_output: torch.Tensor
    batch_mean: torch.Tensor
    batch_spread: torch.Tensor
    batch_output: torch.Tensor


def norm_step(loaded: LoadedModel, trace: BlockTrace, layer: int, name: str, token: int) -> NormStep:
    """Normalisation module `name` of layer `layer` applied to token `token`, recomputed from its parameters.

    Raises:
        ValueError: a layer, module or token out of range.
    """
    if not 0 <= layer < trace.layers:
        raise ValueError(f"Layer {layer} is out of range: choose 0 to {trace.layers - 1}.")
    if name not in trace.norm_inputs[layer]:
        raise ValueError(f"Layer {layer} has no normalisation '{name}': choose one of {', '.join(trace.norm_names)}.")
    if not 0 <= token < len(trace.tokens):
        raise ValueError(f"Token {token} is out of range: choose 0 to {len(trace.tokens) - 1}.")
    module = block_parts(loaded)[layer].norms[name]
    states = trace.norm_inputs[layer][name].double()  # (T, D)
    vector = states[token]
    rms = not isinstance(module, torch.nn.LayerNorm) and "RMS" in type(module).__name__
    eps = float(getattr(module, "eps", None) or getattr(module, "variance_epsilon", 1e-5))
    weight = getattr(module, "weight", None)
    bias = getattr(module, "bias", None)
    gain = weight.detach().double().cpu() if isinstance(weight, torch.Tensor) else torch.ones_like(vector)
    shift = bias.detach().double().cpu() if isinstance(bias, torch.Tensor) else torch.zeros_like(vector)
    mean = 0.0 if rms else float(vector.mean())
    spread = float(vector.pow(2).mean().sqrt()) if rms else float(vector.var(unbiased=False).sqrt())
    normalised = (vector - mean) / (spread ** 2 + eps) ** 0.5
    batch_mean = states.mean(0)
    batch_spread = states.var(0, unbiased=False).sqrt()
    batch = (vector - batch_mean) / (batch_spread ** 2 + eps).sqrt()
    return NormStep(
        name=name, kind="RMSNorm" if rms else "LayerNorm", eps=eps, input=vector.float(), mean=mean, spread=spread,
        normalised=normalised.float(), gain=gain.float(), bias=shift.float(), output=(gain * normalised + shift).float(),
        model_output=trace.norm_outputs[layer][name][token], batch_mean=batch_mean.float(),
        batch_spread=batch_spread.float(), batch_output=(gain * batch + shift).float(),
    )


def top_neurons(trace: BlockTrace, layer: int, token: int, count: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """The feed-forward units that fire most for one token: (indices (count,), values (count,)), largest first."""
    if not 0 <= layer < trace.layers or not 0 <= token < len(trace.tokens):
        raise ValueError(f"Choose a layer 0 to {trace.layers - 1} and a token 0 to {len(trace.tokens) - 1}.")
    values, indices = trace.neurons[layer, token].topk(min(count, trace.neurons.shape[-1]))
    return indices, values


@torch.no_grad()
def activation_of(loaded: LoadedModel, layer: int, values: torch.Tensor) -> torch.Tensor:
    """The feed-forward's own activation module of `layer` applied to `values` (e.g. a range, to draw it).

    Raises:
        ValueError: the family calls a plain function, not a module.
    """
    parts = block_parts(loaded)
    if not 0 <= layer < len(parts):
        raise ValueError(f"Layer {layer} is out of range: choose 0 to {len(parts) - 1}.")
    if parts[layer].activation is None:
        raise ValueError(f"The feed-forward of '{loaded.spec.name}' calls its activation as a plain function: this "
                         "view cannot draw it.")
    parameter = next(loaded.model.parameters())
    return parts[layer].activation(values.to(device=parameter.device, dtype=parameter.dtype)).float().cpu()


def unembedding(loaded: LoadedModel) -> Callable[[torch.Tensor], torch.Tensor]:
    """The decoder's own path from the residual stream to logits: its final normalisation, OPT's project_out when
    present, then the output embedding (lm_head).

    Raises:
        ValueError: not a decoder, or no final normalisation found.
    """
    if not loaded.spec.kind.causal:
        raise ValueError(f"'{loaded.spec.name}' is {loaded.spec.kind.article}: the logit lens needs a decoder's "
                         "unembedding, so pick a decoder.")
    model = loaded.model
    base = model.base_model
    owners = [base] + ([base.decoder] if isinstance(getattr(base, "decoder", None), torch.nn.Module) else [])
    norm = next((getattr(owner, name) for owner in owners for name in FINAL_NORMS
                 if isinstance(getattr(owner, name, None), torch.nn.Module)), None)
    if norm is None:
        raise ValueError(f"Cannot find the final normalisation of {type(model).__name__}: the logit lens supports "
                         "GPT-2-, Llama-, OPT-, GPT-NeoX- and Phi-style decoders.")
    project_out = next((owner.project_out for owner in owners
                        if isinstance(getattr(owner, "project_out", None), torch.nn.Module)), None)
    head = model.get_output_embeddings()

    def apply(stream: torch.Tensor) -> torch.Tensor:
        parameter = next(head.parameters())
        hidden = norm(stream.to(device=parameter.device, dtype=parameter.dtype))
        if project_out is not None:
            hidden = project_out(hidden)
        return head(hidden).float().cpu()

    return apply


@dataclass
class LogitLens:
    """What a decoder would predict after each layer.

    Attributes:
        tokens: T prompt tokens; position t predicts the token after t.
        top_ids, top_probs: (L + 1, T, k) the k most likely next tokens and their probabilities after the
            embeddings (row 0) and after each layer; top_tokens: the same as text.
        predicted: (T,) the model's own prediction (the last row's top token); predicted_tokens: as text.
        ranks: (L + 1, T) the rank of `predicted` in each row (0 = top).
        layer_logits: (L + 1, T, V) every row's logits when kept, else None.
        max_difference: largest difference between the last row's logits and the model's own.
    """

    tokens: list[str]
    top_ids: torch.Tensor
    top_probs: torch.Tensor
    top_tokens: list[list[list[str]]]
    predicted: torch.Tensor
    predicted_tokens: list[str]
    ranks: torch.Tensor
    layer_logits: torch.Tensor | None
    max_difference: float

    @property
    def nbytes(self) -> int:
        tensors = (self.top_ids, self.top_probs, self.predicted, self.ranks, self.layer_logits)
        return sum(t.numel() * t.element_size() for t in tensors if t is not None) + 64 * self.top_ids.numel()


@torch.no_grad()
def logit_lens(loaded: LoadedModel, trace: BlockTrace, top: int = 10, keep_logits: bool = False) -> LogitLens:
    """The model's final normalisation and unembedding applied to the stream after the embeddings and after every
    layer of `trace` (from `inside_block` on the same decoder).

    Raises:
        ValueError: not a decoder.
    """
    apply = unembedding(loaded)
    streams = trace.streams  # (L + 1, T, D)
    rows = [apply(stream[None])[0] for stream in streams]  # each (T, V)
    final = rows[-1]
    predicted = final.argmax(-1)  # (T,)
    k = min(top, final.shape[-1])
    top_probs, top_ids, ranks = [], [], []
    for logits in rows:
        probabilities = torch.softmax(logits, dim=-1)
        values, indices = probabilities.topk(k, dim=-1)
        top_probs.append(values)
        top_ids.append(indices)
        chosen = logits.gather(-1, predicted[:, None])  # (T, 1)
        ranks.append((logits > chosen).sum(-1))
    top_ids = torch.stack(top_ids)
    convert = loaded.tokenizer.convert_ids_to_tokens
    return LogitLens(
        tokens=trace.tokens, top_ids=top_ids, top_probs=torch.stack(top_probs),
        top_tokens=[[convert(position.tolist()) for position in layer] for layer in top_ids],
        predicted=predicted, predicted_tokens=convert(predicted.tolist()), ranks=torch.stack(ranks),
        layer_logits=torch.stack(rows) if keep_logits else None,
        max_difference=float((final - trace.logits).abs().max()) if trace.logits is not None else float("nan"),
    )
