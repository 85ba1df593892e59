"""The method registry: every explanation method is one registered function with one call shape,

    method(capture, loaded, **options) -> Explanation

registered under one name (the spelling the command line, JSON keys, URLs and pages all use). Pages, the command
line, the faithfulness scores, `evaluate` and the benchmark enumerate `METHODS`; adding a method is one file in
this package (imported at the bottom) plus its test.

A method may have several bodies for different capture classes where the algorithm itself differs (Chefer et
al.'s rules for encoder-decoders are not the self-attention rule): `register` is applied once per capture class,
and `explain_capture` picks the body of the capture's class (or its nearest base).
"""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from explain.capture import Capture
from explain.rollout import RolloutSteps


@dataclass
class Explanation:
    """A method's result for one input and target.

    Attributes:
        method: the method's registered name.
        relevance: (T,) relevance over the input tokens (an encoder-decoder's: over its source), raw.
        matrix: the method's token x token matrix where it has one: one layer's attention, J (rollout), R
            (gradient rollout), the combined layer contributions (ALTI, value zeroing); (N, S) for encoder-decoders.
        grid: (rows, cols) relevance over image patches (prefix tokens removed); None for text.
        decoder_relevance: encoder-decoders: (N,) relevance over the decoder's own inputs (start token, earlier
            outputs); None otherwise.
        steps: the per-layer matrices of a rollout, when asked for.
        signed: relevance may be negative (draw it on a diverging scale centred at zero).
        measures: numbers to show beside the map (e.g. IG's completeness gap, AttnLRP's relevance sum).
        seconds: the time the method took.
    """

    method: str
    relevance: torch.Tensor
    matrix: torch.Tensor | None = None
    grid: torch.Tensor | None = None
    decoder_relevance: torch.Tensor | None = None
    steps: RolloutSteps | None = None
    signed: bool = False
    measures: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


MethodBody = Callable[..., Explanation]


@dataclass
class Method:
    """A registered explanation method.

    Attributes:
        name: its one spelling ("gradient-rollout").
        label: its name for people ("Gradient rollout").
        summary: one line: what it computes, for the target scalar the capture explains.
        needs_gradients: the capture must hold the target's gradients (capture with a target / with_gradients).
        needs_model: it runs the model again: `explain_capture` needs the loaded model.
        needs_target: it explains the capture's target scalar (an embedding model needs a probe or labels).
        signed: its relevance may be negative.
        slow: it runs the model many times (the app runs it on request).
        prefer: when to prefer it, in one line (help text and the README).
        supports: (loaded model) -> whether it covers this model's family (None: every family).
        bodies: capture class -> the function computing it.
        options: capture class -> the keyword options that body takes, with their defaults (read from its
            signature).
    """

    name: str
    label: str
    summary: str
    needs_gradients: bool = False
    needs_model: bool = False
    needs_target: bool = False
    signed: bool = False
    slow: bool = False
    prefer: str = ""
    supports: Callable[[Any], bool] | None = None
    bodies: dict[type, MethodBody] = field(default_factory=dict)
    options: dict[type, dict[str, Any]] = field(default_factory=dict)

    def _class_for(self, capture: Capture) -> type | None:
        return next((cls for cls in type(capture).__mro__ if cls in self.bodies), None)

    def body_for(self, capture: Capture) -> MethodBody | None:
        cls = self._class_for(capture)
        return None if cls is None else self.bodies[cls]

    def applies_to(self, capture: Capture, loaded: Any = None) -> bool:
        """Whether it has a body for this capture's class (and, given the model, covers its family)."""
        if self._class_for(capture) is None:
            return False
        return loaded is None or self.supports is None or self.supports(loaded)

    def options_for(self, capture: Capture) -> dict[str, Any]:
        """The options this method takes for this capture, with their defaults."""
        cls = self._class_for(capture)
        return {} if cls is None else dict(self.options[cls])

    def accepted(self, capture: Capture, options: dict[str, Any]) -> dict[str, Any]:
        """The subset of `options` this method takes for this capture (for callers that hold every option of a
        page or a command line)."""
        taken = self.options_for(capture)
        return {name: value for name, value in options.items() if name in taken}


METHODS: dict[str, Method] = {}


def register(name: str, label: str, summary: str, *, capture: type = Capture, needs_gradients: bool = False,
             needs_model: bool = False, needs_target: bool = False, signed: bool = False, slow: bool = False,
             prefer: str = "", supports: Callable[[Any], bool] | None = None) -> Callable[[MethodBody], MethodBody]:
    """Register `function(capture, loaded, **options) -> Explanation` as method `name` for captures of class
    `capture` (and its subclasses). A second registration of the same name adds a body for another class (its
    description arguments are then ignored)."""

    def decorate(function: MethodBody) -> MethodBody:
        method = METHODS.setdefault(name, Method(name, label, summary, needs_gradients, needs_model,
                                                 needs_target or needs_gradients, signed, slow, prefer, supports))
        method.bodies[capture] = function
        parameters = list(inspect.signature(function).parameters.values())[2:]
        method.options[capture] = {p.name: p.default for p in parameters if p.kind is p.KEYWORD_ONLY}
        return function

    return decorate


def get_method(name: str) -> Method:
    """The registered method `name`, or a ValueError naming the choices."""
    if name not in METHODS:
        raise ValueError(f"Unknown method '{name}': choose one of {', '.join(METHODS)}.")
    return METHODS[name]


def methods_for(capture: Capture, loaded: Any = None) -> list[Method]:
    """The registered methods that apply to this capture (and, given the model, cover its family), in
    registration order."""
    return [method for method in METHODS.values() if method.applies_to(capture, loaded)]


def model_inputs(capture: Capture, loaded: Any) -> dict[str, torch.Tensor]:
    """The capture's model inputs on the model's device, for methods that run the model again."""
    return {name: value.to(loaded.device) for name, value in capture.inputs.items()}


def target_score(capture: Capture) -> Callable[[Any], torch.Tensor]:
    """outputs of a batch of B copies of the capture's input (their embeddings perturbed) -> (B,) the target scalar.

    Raises:
        ValueError: the capture has no target (an embedding model explained without a probe or labels).
    """
    target = capture.target
    if target is None:
        raise ValueError("This method explains a target: give a class, a probe sentence, zero-shot labels or a token.")
    mask = capture.inputs.get("attention_mask")

    def score(outputs: Any) -> torch.Tensor:
        first = outputs.logits if getattr(outputs, "logits", None) is not None else outputs.last_hidden_state
        inputs = {} if mask is None else {"attention_mask": mask.to(first.device).expand(first.shape[0], -1)}
        return target.score(outputs, inputs)

    return score


def over_tokens(capture: Capture, relevance: torch.Tensor) -> torch.Tensor:
    """Relevance over the capture's tokens: an image's per-patch relevance gets zeros for its prefix tokens
    ([CLS], [DIST]), which are not inputs; a text's is already per token. (N,) or (T,) -> (T,)."""
    missing = len(capture.tokens) - relevance.shape[-1]
    if missing < 0:
        raise ValueError(f"{relevance.shape[-1]} relevances for {len(capture.tokens)} tokens.")
    return torch.cat([torch.zeros(missing, dtype=relevance.dtype), relevance.detach().cpu()])


def explain_capture(capture: Capture, method: str = "rollout", loaded: Any = None, **options: Any) -> Explanation:
    """Apply one registered method to a capture.

    Args:
        capture: from any kind's capture function (`explain.capture_text`, `capture_image`, ...).
        method: a registered name (see METHODS).
        loaded: the model the capture came from; needed by the methods that run it again.
        options: the method's options (see `METHODS[name].options`).

    Raises:
        ValueError: an unknown method, an option it does not take or out of range, a method that does not apply
            to this kind of model, or one that needs gradients or the model when they are missing.
    """
    chosen = get_method(method)
    body = chosen.body_for(capture)
    if body is None:
        raise ValueError(f"{chosen.label} does not apply to {capture.kind.article}: choose one of "
                         f"{', '.join(m.name for m in methods_for(capture))}.")
    taken = chosen.options_for(capture)
    unknown = sorted(set(options) - set(taken))
    if unknown:
        raise ValueError(f"{chosen.label} takes no option {', '.join(unknown)} here: its options are "
                         f"{', '.join(taken) or 'none'}.")
    if chosen.needs_model and loaded is None:
        raise ValueError(f"{chosen.label} runs the model again: pass the loaded model (loaded=...).")
    start = time.perf_counter()
    explanation = body(capture, loaded, **options)
    explanation.seconds = time.perf_counter() - start
    explanation.signed = chosen.signed
    if explanation.grid is None:
        explanation.grid = capture.grid_of(explanation.relevance)
    return explanation


# Every method module registers itself on import: the order here is the order pages and tables list them.
from explain.methods import (  # noqa: E402,F401,I001 (in the order methods are listed)
    attention,
    gradient_rollout,
    gradients,
    occlusion,
    alti,
    value_zeroing,
    attnlrp,
)
