"""AttnLRP (Achtibat et al., ICML 2024): layer-wise relevance propagation through a transformer, computed
as input x gradient through modified backward passes (the "efficient" formulation of lxt,
rachtibat/LRP-eXplains-Transformers, lxt/efficient).

Relevance starts at the target scalar (a logit) and flows back to the input embeddings. In the
gradient x input form, relevance at any tensor t is `t * dTarget~/dt`, where d~ is the gradient with
the backward passes of a few operations changed so that each operation passes relevance by its LRP rule:

    operation                              rule                  how (backward of the operation)
    linear layers, residual additions,     epsilon (eps -> 0)    the plain gradient: x * W^T (R / z) is
    mean-centring, RoPE, 1/sqrt(d) scale                         x * gradient when R = z * gradient
    element-wise activations               identity              gradient * f(x) / x
    (GELU, SiLU, tanh, ReLU)
    LayerNorm / RMSNorm                    scale held constant   gradient of (x - mean) * w / sigma (or
                                                                 x * w / rms) with sigma (rms) a constant
    q k^T and A v in attention             uniform (halves)      gradient into q and k divided by 4
                                                                 (q k^T halves, A v halves again), into
                                                                 v by 2
    softmax                                Taylor at x, with     the plain gradient: x * (R - s sum R)
                                           its bias (paper Prop. 3.1)
    act(gate) * up of gated MLPs           uniform (halves)      gradient into the product divided by 2

The modified backward passes are forward hooks on the model's own modules (`attnlrp_rules`): each
returns the module's own output through an autograd Function whose forward is the identity and whose
backward applies the rule, so every forward value (and the target) is bit-for-bit the model's own. The
hooks act only in the thread that installed them and are always removed on exit, even on error.

Conservation: every operation but the softmax passes on the relevance it receives, less what a bias keeps
(b * gradient at the layer's output), so

    target = inputs + position embeddings + biases + softmax,

where the softmax's term is what reaches the attention weights less what leaves them into q and k
(sum_i x_i (R_i - s_i sum_j R_j) is not sum_i R_i). That term is not small: on the bundled models the
inputs and position embeddings carry 45% of induction-lm's next-token logit, 51% of MiniLM's probe cosine
and 68% of shapes-vit's class logit, the softmax most of the rest (tests/test_attnlrp.py prints the whole
account). `attention_rule="cp-lrp"` holds the attention weights constant instead (CP-LRP, Ali et al. 2022):
exactly conservative up to biases, but blind to what q and k contribute.

Families: Llama-style decoders (Llama, Qwen2, Mistral), BERT-style encoders (BERT, RoBERTa, ELECTRA,
DistilBERT) and ViTs (ViT, DeiT). Other families raise ValueError (see `UNSUPPORTED`): GPT-2, Phi, OPT,
GPT-NeoX, BART, T5... compute attention or activations in ways these hooks do not reach (fused q/k/v
convolutions, partial rotary, functional activations, cross-attention) and would need their own rules.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Iterator

import torch
from torch import nn

from explain.capture import Capture
from explain.encoder import TextCapture
from explain.internals import recorded_modules
from explain.methods import Explanation, model_inputs, over_tokens, register, target_score
from explain.targets import EmbeddingSimilarity, pool_hidden
from explain.vision import ImageCapture
from models import LoadedModel

# Denominator of the identity rule's f(x) / x: pushed away from 0 by this much, keeping its sign (lxt: 1e-10).
IDENTITY_EPSILON = 1e-10
# Uniform rule in attention: the gradient into q and k passes two bilinear products (q k^T, then A v)
# and is halved at each; the gradient into v passes one (A v).
QUERY_KEY_FACTOR = 4.0
VALUE_FACTOR = 2.0
GATE_FACTOR = 2.0
ATTENTION_RULES = ("attnlrp", "cp-lrp")

DECODER_TYPES = ("llama", "qwen2", "mistral")
ENCODER_TYPES = ("bert", "roberta", "electra", "distilbert")
VISION_TYPES = ("vit", "deit")
UNSUPPORTED = (
    "AttnLRP supports Llama-style decoders (Llama, Qwen2, Mistral), BERT-style encoders (BERT, RoBERTa, "
    "ELECTRA, DistilBERT) and ViTs (ViT, DeiT): pick one of those models."
)
# The model classes (in transformers' namespace) whose heads the rules cover: a head with a functional
# activation the hooks cannot see needs its own rule, as RoBERTa's classification head has below.
SUPPORTED_CLASSES = (
    "LlamaModel", "LlamaForCausalLM", "Qwen2Model", "Qwen2ForCausalLM", "MistralModel", "MistralForCausalLM",
    "BertModel", "BertForSequenceClassification", "RobertaModel", "RobertaForSequenceClassification",
    "ElectraModel", "ElectraForSequenceClassification", "DistilBertModel", "DistilBertForSequenceClassification",
    "ViTModel", "ViTForImageClassification", "DeiTModel", "DeiTForImageClassification",
    "DeiTForImageClassificationWithTeacher",
)
PROJECTION_NAMES = (("q_proj", "k_proj", "v_proj"), ("query", "key", "value"), ("q_lin", "k_lin", "v_lin"))


# ---------------------------------------------------------------------------------------------------------
# The rules: autograd Functions whose forward passes a value through and whose backward applies the rule.
# ---------------------------------------------------------------------------------------------------------


def stabilize(x: torch.Tensor, epsilon: float = IDENTITY_EPSILON) -> torch.Tensor:
    """x pushed away from zero by `epsilon`, keeping its sign (+0 counts as positive)."""
    # copysign, not torch.where(x >= 0, eps, -eps): a twentieth of the time on MiniLM's (128, 1536) activations
    return x + torch.copysign(x.new_tensor(epsilon), x)


class _IdentityRule(torch.autograd.Function):
    """y = f(x) element-wise; backward: dy * f(x) / x, so x * grad_x = y * grad_y (relevance passes unchanged)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(y / stabilize(x))
        return y

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (ratio,) = ctx.saved_tensors
        return grad * ratio, None


class _UniformRule(torch.autograd.Function):
    """Identity forward; backward: the gradient divided by `factor` (relevance split evenly over factors)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, factor: float) -> torch.Tensor:
        ctx.factor = factor
        return x

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad / ctx.factor, None


class _ConstantScaleNorm(torch.autograd.Function):
    """y = norm(x); backward of the norm with its scale (1 / sigma or 1 / rms) held constant.

    LayerNorm: y = (x - mean(x)) * w / sigma + b  ->  grad_x = (g w - mean(g w)) / sigma.
    RMSNorm:   y = x * w / rms                   ->  grad_x = g w / rms.
    """

    @staticmethod
    def forward(
        ctx: Any, x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None, eps: float, centred: bool
    ) -> torch.Tensor:
        wide = x.to(torch.promote_types(x.dtype, torch.float32))  # as the norms compute: at least float32
        if centred:
            scale = torch.rsqrt(wide.var(-1, unbiased=False, keepdim=True) + eps)  # (..., 1) 1 / sigma
        else:
            scale = torch.rsqrt(wide.pow(2).mean(-1, keepdim=True) + eps)  # (..., 1) 1 / rms
        ctx.save_for_backward(scale, weight)
        ctx.centred = centred
        ctx.input_dtype = x.dtype
        return y

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None, None, None]:
        scale, weight = ctx.saved_tensors
        weighted = grad.to(scale.dtype) if weight is None else grad.to(scale.dtype) * weight.to(scale.dtype)
        if ctx.centred:
            weighted = weighted - weighted.mean(-1, keepdim=True)
        return (weighted * scale).to(ctx.input_dtype), None, None, None, None


def identity_rule(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """y (= f(x), element-wise) with the identity rule's backward: dTarget/dx = dTarget/dy * y / x."""
    return _IdentityRule.apply(x, y)


def uniform_rule(x: torch.Tensor, factor: float) -> torch.Tensor:
    """x with its gradient divided by `factor`: the uniform rule on a product of `factor` inputs."""
    return _UniformRule.apply(x, factor)


def constant_scale_norm(
    x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None, eps: float, centred: bool
) -> torch.Tensor:
    """y = LayerNorm(x) (centred=True) or RMSNorm(x) with the backward of the norm whose scale is a constant.

    Args:
        x: (..., D) the norm's input.
        y: (..., D) the norm's output, passed through unchanged.
        weight: (D,) the norm's scale parameter w, or None.
        eps: the norm's epsilon.
        centred: LayerNorm (subtracts the mean) rather than RMSNorm.
    """
    return _ConstantScaleNorm.apply(x, y, weight, eps, centred)


# ---------------------------------------------------------------------------------------------------------
# Where the rules go in each family.
# ---------------------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _identity_rule_activations() -> tuple[type, ...]:
    """Element-wise activation module classes with f(0) = 0 (the identity rule needs f(x) / x finite)."""
    from transformers.activations import ACT2FN

    names = ("gelu", "gelu_new", "gelu_fast", "gelu_pytorch_tanh", "gelu_python", "gelu_accurate", "gelu_10",
             "quick_gelu", "silu", "swish", "relu", "relu2", "relu6", "leaky_relu", "tanh", "mish")
    classes = {type(ACT2FN[name]) for name in names}
    return tuple(classes | {nn.GELU, nn.SiLU, nn.ReLU, nn.Tanh})


@lru_cache(maxsize=1)
def _rms_norms() -> tuple[type, ...]:
    from transformers.models.llama.modeling_llama import LlamaRMSNorm
    from transformers.models.mistral.modeling_mistral import MistralRMSNorm
    from transformers.models.qwen2.modeling_qwen2 import Qwen2RMSNorm

    return (LlamaRMSNorm, Qwen2RMSNorm, MistralRMSNorm)


@lru_cache(maxsize=1)
def _supported_classes() -> tuple[type, ...]:
    import transformers

    return tuple(getattr(transformers, name) for name in SUPPORTED_CLASSES)


@lru_cache(maxsize=1)
def _roberta_classification_head() -> type:
    from transformers.models.roberta.modeling_roberta import RobertaClassificationHead

    return RobertaClassificationHead


@lru_cache(maxsize=1)
def _gated_mlps() -> tuple[type, ...]:
    from transformers.models.llama.modeling_llama import LlamaMLP
    from transformers.models.mistral.modeling_mistral import MistralMLP
    from transformers.models.qwen2.modeling_qwen2 import Qwen2MLP

    return (LlamaMLP, Qwen2MLP, MistralMLP)


def model_family(model: nn.Module) -> str:
    """"decoder", "encoder" or "vision": the AttnLRP family of a model.

    Raises:
        ValueError: a family (or a head) the rules here do not cover.
    """
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type in DECODER_TYPES:
        family = "decoder"
    elif model_type in ENCODER_TYPES:
        family = "encoder"
    elif model_type in VISION_TYPES:
        family = "vision"
    else:
        raise ValueError(UNSUPPORTED)
    if type(model) not in _supported_classes():  # exactly these: a subclass may compute its head otherwise
        raise ValueError(
            f"AttnLRP covers the base model and the sequence classification, causal LM and image classification "
            f"heads, not {type(model).__name__}: load the model with one of those heads."
        )
    return family


def attention_projections(module: nn.Module) -> tuple[nn.Module, nn.Module, nn.Module]:
    """The (query, key, value) projection layers of an attention module of a supported family."""
    for names in PROJECTION_NAMES:
        layers = [getattr(module, name, None) for name in names]
        if all(isinstance(layer, nn.Linear) for layer in layers):
            return layers[0], layers[1], layers[2]
    raise ValueError(f"{type(module).__name__} computes q, k and v in a way AttnLRP here does not know: {UNSUPPORTED}")


_ACTIVE: set[tuple[int, int]] = set()  # (id(model), thread id) of every model under attnlrp_rules now


@contextmanager
def attnlrp_rules(model: nn.Module, attention_rule: str = "attnlrp") -> Iterator[None]:
    """Within the block, backward passes of `model` in this thread follow the AttnLRP rules.

    Forward values are unchanged; other threads using the same model see its ordinary gradients. Every
    hook is removed on exit, also when the block raises.

    Args:
        model: a model of a supported family.
        attention_rule: "attnlrp" (uniform rule on q k^T and A v, the softmax's Taylor rule), or "cp-lrp"
            (Ali et al., ICML 2022: the attention weights held constant, all relevance through v; exactly
            conservative, but blind to what q and k contribute).

    Raises:
        ValueError: an unsupported family or attention rule, or the rules already active for this model
            in this thread.
    """
    model_family(model)  # raises for a family the rules do not cover
    if attention_rule not in ATTENTION_RULES:
        raise ValueError(f"Unknown attention rule '{attention_rule}': choose one of {', '.join(ATTENTION_RULES)}.")
    owner = threading.get_ident()
    active = (id(model), owner)
    if active in _ACTIVE:
        raise ValueError("AttnLRP rules are already active for this model: do not nest attnlrp calls.")
    handles: list[torch.utils.hooks.RemovableHandle] = []

    def here() -> bool:
        return threading.get_ident() == owner

    def activation_hook(module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor | None:
        return identity_rule(args[0], output) if here() else None

    def norm_hook(module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor | None:
        if not here():
            return None
        if isinstance(module, nn.LayerNorm):
            return constant_scale_norm(args[0], output, module.weight, module.eps, centred=True)
        return constant_scale_norm(args[0], output, module.weight, module.variance_epsilon, centred=False)

    def divide_output(factor: float) -> Callable:
        def hook(module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor | None:
            return uniform_rule(output, factor) if here() else None

        return hook

    def constant_output(module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor | None:
        return output.detach() if here() else None

    def divide_input(module: nn.Module, args: tuple) -> tuple | None:
        return (uniform_rule(args[0], GATE_FACTOR), *args[1:]) if here() else None

    def roberta_head_hook(module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor | None:
        # RobertaClassificationHead calls torch.tanh, which no hook sees: the head again with the rule
        # (dropout is the identity in eval mode), the same operations so the same values.
        if not here():
            return None
        pooled = module.dense(args[0][:, 0, :])  # (B, D) the <s> token
        return module.out_proj(identity_rule(pooled, torch.tanh(pooled)))

    _ACTIVE.add(active)
    try:
        activations, norms = _identity_rule_activations(), (nn.LayerNorm, *_rms_norms())
        for module in model.modules():  # each module once, also when shared
            if isinstance(module, activations):
                handles.append(module.register_forward_hook(activation_hook))
            elif isinstance(module, norms):
                handles.append(module.register_forward_hook(norm_hook))
            elif isinstance(module, _gated_mlps()):
                handles.append(module.down_proj.register_forward_pre_hook(divide_input))
            elif type(module) is _roberta_classification_head():
                handles.append(module.register_forward_hook(roberta_head_hook))
        attentions = recorded_modules(model, "attentions")
        layers = getattr(model.config, "num_hidden_layers", None) or getattr(model.config, "n_layers", None)
        if len(attentions) != layers:
            raise ValueError(f"Found {len(attentions)} attention modules for {layers} layers: {UNSUPPORTED}")
        for attention in attentions:
            query, key, value = attention_projections(attention)
            if attention_rule == "cp-lrp":  # softmax(q k^T) a constant: A v is linear in v
                handles += [query.register_forward_hook(constant_output), key.register_forward_hook(constant_output)]
                continue
            handles.append(query.register_forward_hook(divide_output(QUERY_KEY_FACTOR)))
            handles.append(key.register_forward_hook(divide_output(QUERY_KEY_FACTOR)))
            handles.append(value.register_forward_hook(divide_output(VALUE_FACTOR)))
        yield
    finally:
        for handle in handles:
            handle.remove()
        _ACTIVE.discard(active)


# ---------------------------------------------------------------------------------------------------------
# The method.
# ---------------------------------------------------------------------------------------------------------


@dataclass
class AttnLRPResult:
    """AttnLRP relevances of one input.

    Attributes:
        relevance: (T,) per input position, sum over the hidden dimension of the position's own input vector
            x modified gradient: the token embedding (text); for a ViT the prefix tokens' learned vectors
            ([CLS], DeiT's distillation token) then the patch projections, T = prefix + patches.
        target: the target scalar score(outputs).
        position_relevance: (T,) the relevance of what the embeddings add at each position on top of that
            vector: position and token-type embeddings (BERT-style), position embeddings (ViT); zeros for
            rotary decoders.
    """

    relevance: torch.Tensor
    target: float
    position_relevance: torch.Tensor

    @property
    def total(self) -> float:
        """Relevance of everything that enters the first layer: relevance.sum() + position_relevance.sum()."""
        return float(self.relevance.sum() + self.position_relevance.sum())


def _embedding_sum_module(model: nn.Module, family: str) -> tuple[nn.Module, bool] | None:
    """(module, read its input?) where the sum of token, position and token-type embeddings can be read.

    BERT-style: the input of the embeddings' LayerNorm; ViT: the output of the embeddings module; rotary
    decoders add nothing to the token embeddings (None).
    """
    if family == "decoder":
        return None
    base = getattr(model, model.base_model_prefix, model)
    if family == "encoder":
        return base.embeddings.LayerNorm, True
    return base.embeddings, False


def attnlrp_relevance(
    loaded: LoadedModel,
    inputs: dict[str, torch.Tensor],
    score: Callable[[Any], torch.Tensor],
    *,
    attention_rule: str = "attnlrp",
) -> AttnLRPResult:
    """AttnLRP relevance of each input position for the scalar `score(model(**inputs))`.

    Args:
        loaded: a model from `models.load` (eval mode, eager attention).
        inputs: the model call's keyword arguments for one example (batch 1): input_ids and attention_mask
            (text), pixel_values (ViT).
        score: maps the model's output to the target scalar, e.g. `lambda out: out.logits[0, -1, token]`.
            The relevances sum to it only if it is linear in the model's output (a logit, a difference of
            logits); for a cosine similarity hold the norm constant (`held_norm_cosine`).
        attention_rule: "attnlrp" (the paper's rules) or "cp-lrp" (attention weights held constant); see
            `attnlrp_rules`.

    Returns:
        AttnLRPResult with relevance (T,), the target value and the position-embedding share (T,).

    Raises:
        ValueError: an unsupported family, a batch of more than one, or a score that is not a scalar of the graph.
    """
    model = loaded.model
    family = model_family(model)
    first = next(iter(inputs.values()))
    if first.shape[0] != 1:
        raise ValueError(f"AttnLRP explains one example at a time: got a batch of {first.shape[0]}.")
    seen: dict[str, torch.Tensor] = {}

    def keep_input_embeddings(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        if not output.requires_grad:  # prepare_for_explanation's hook normally did this already
            output.requires_grad_()
        seen["input"] = output

    def keep_sum(module: nn.Module, args: tuple, output: torch.Tensor | None = None) -> None:
        seen["sum"] = args[0] if output is None else output

    handles = [model.get_input_embeddings().register_forward_hook(keep_input_embeddings)]
    summed = _embedding_sum_module(model, family)
    if summed is not None:
        module, read_input = summed
        register = module.register_forward_pre_hook if read_input else module.register_forward_hook
        handles.append(register(keep_sum))
    extra = {"use_cache": False} if family == "decoder" else {}
    try:
        with torch.enable_grad(), attnlrp_rules(model, attention_rule):
            outputs = model(**inputs, **extra)
            if "input" not in seen:
                raise ValueError(
                    "AttnLRP starts at the input embeddings: pass input_ids or pixel_values, not inputs_embeds.")
            target = score(outputs)
            if not isinstance(target, torch.Tensor) or target.numel() != 1 or not target.requires_grad:
                raise ValueError("The score must map the model's output to one scalar of its graph (e.g. a logit).")
            wanted = [seen["input"]] + ([seen["sum"]] if "sum" in seen else [])
            gradients = torch.autograd.grad(target.reshape(()), wanted)
    finally:
        for handle in handles:
            handle.remove()
    precision = torch.promote_types(seen["input"].dtype, torch.float32)  # half precision sums in float32

    def summed_over_hidden(vectors: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
        return (vectors.detach().to(precision) * gradient.to(precision)).sum(-1)[0]  # (1, T, D) -> (T,)

    embeddings = seen["input"].detach()  # (1, T, D); ViT: (1, N, D) the patches
    relevance = summed_over_hidden(embeddings, gradients[0])  # (T,)
    position = torch.zeros_like(relevance)
    if family == "encoder":
        summed_embeddings = seen["sum"].detach()  # (1, T, D) token + position + token type
        position = summed_over_hidden(summed_embeddings - embeddings, gradients[1])
    elif family == "vision":
        summed_embeddings, summed_gradient = seen["sum"].detach(), gradients[1]  # (1, P + N, D)
        prefix = summed_embeddings.shape[1] - embeddings.shape[1]
        positions = getattr(model, model.base_model_prefix).embeddings.position_embeddings.detach()  # (1, P + N, D)
        if positions.shape[1] != summed_embeddings.shape[1]:
            raise ValueError("AttnLRP needs the image at the model's own size: resize it with the model's processor.")
        prefix_relevance = summed_over_hidden((summed_embeddings - positions)[:, :prefix], summed_gradient[:, :prefix])
        relevance = torch.cat([prefix_relevance, relevance])  # (P + N,) [CLS] (and distillation) then patches
        position = summed_over_hidden(positions, summed_gradient)  # (P + N,)
    return AttnLRPResult(relevance=relevance.cpu(), target=float(target.detach()), position_relevance=position.cpu())


def attnlrp(
    loaded: LoadedModel, inputs: dict[str, torch.Tensor], score: Callable[[Any], torch.Tensor]
) -> tuple[torch.Tensor, float]:
    """AttnLRP: (relevance (T,) per input position, target value). See `attnlrp_relevance`."""
    result = attnlrp_relevance(loaded, inputs, score)
    return result.relevance, result.target


def held_norm_cosine(embedding: torch.Tensor, probe: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of `embedding` with a fixed `probe`, the embedding's norm held constant.

    The value is the cosine; its gradient is that of the linear map e -> e . probe / (|e| |probe|) with |e|
    a constant, so relevance starts as the cosine. F.cosine_similarity is scale-invariant in e: the relevance
    reaching e would sum to zero (e . d cos / de = 0) and the input relevances would not decompose the cosine
    (MiniLM, "The cat sat on the mat." against "A dog lay on the rug.": -0.02 for a cosine of 0.48).

    Args:
        embedding: (D,) or (1, D), e.g. the mean-pooled last hidden state.
        probe: (D,) or (1, D), no gradient.
    """
    embedding, probe = embedding.reshape(-1), probe.reshape(-1).detach()
    return (embedding @ probe) / (embedding.detach().norm() * probe.norm())


def _supported(loaded: LoadedModel) -> bool:
    try:
        model_family(loaded.model)
    except ValueError:
        return False
    return True


def _lrp_score(capture: Capture) -> Callable[[Any], torch.Tensor]:
    """The capture's target as one scalar of the graph: a logit as it is; a cosine similarity with its norm held
    constant (`held_norm_cosine`), so that relevance starts as the cosine."""
    target = capture.target
    if isinstance(target, EmbeddingSimilarity):
        mask = capture.inputs.get("attention_mask")

        def cosine(outputs: Any) -> torch.Tensor:
            hidden = outputs.last_hidden_state
            pooled = pool_hidden(hidden, None if mask is None else mask.to(hidden.device), target.pooling)
            return held_norm_cosine(pooled, target.references[target.index].to(hidden.device, hidden.dtype))

        return cosine
    score = target_score(capture)
    return lambda outputs: score(outputs)[0]


def _lrp(capture: Capture, loaded: LoadedModel) -> Explanation:
    result = attnlrp_relevance(loaded, model_inputs(capture, loaded), _lrp_score(capture))
    return Explanation("attn-lrp", over_tokens(capture, result.relevance),
                       measures={"relevance_sum": float(result.relevance.sum()), "target_value": result.target,
                                 "position_relevance": float(result.position_relevance.sum())})


@register("attn-lrp", "AttnLRP", "AttnLRP (Achtibat et al., 2024): layer-wise relevance propagation as input x gradient "
          "through modified backward passes: epsilon rule on linear layers, identity rule on element-wise "
          "non-linearities, the uniform rule on attention's two products and on gated MLPs, each normalisation's scale "
          "held constant. The relevance sum is shown beside the map: the softmax rule does not pass on all it receives, "
          "so the sum is a share of the target (about half on the bundled models).",
          needs_model=True, needs_target=True, signed=True, capture=TextCapture, supports=_supported,
          prefer="Signed, target-specific and attention-aware in one backward pass; Llama-, BERT- and ViT-style models.")
def attnlrp_method(capture: TextCapture, loaded: LoadedModel) -> Explanation:
    return _lrp(capture, loaded)


@register("attn-lrp", "AttnLRP", "", needs_model=True, needs_target=True, signed=True, capture=ImageCapture,
          supports=_supported)
def attnlrp_image_method(capture: ImageCapture, loaded: LoadedModel) -> Explanation:
    return _lrp(capture, loaded)
