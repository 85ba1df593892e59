"""What the pages say instead of failing: bad input and unloadable models as one sentence, truncation, words the
tokenizer could not read, a model of the wrong kind."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import streamlit as st

from explain import Capture, ImageCapture
from explain.metrics.classification import max_logit
from models import LoadedModel, ModelKind, ModelLoadError


def capture_or_message(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a (cached) computation; on bad input show the sentence and return None instead of a traceback."""
    try:
        return function(*args, **kwargs)
    except ModelLoadError as error:
        st.error(f"{error} Pick another model in the sidebar.")
    except ValueError as error:
        st.warning(str(error))
    return None


def truncation_notice(dropped: int, loaded: LoadedModel, continuation: bool = False) -> None:
    """Say how many tokens were dropped to fit the model's maximum length (a decoder drops the earliest);
    `continuation`: the decoder's prompt was cut to leave room for the tokens it generates."""
    if not dropped:
        return
    spec = loaded.spec
    if spec.kind.causal:
        what = "The prompt and its continuation exceed" if continuation else "The prompt is longer than"
        st.info(f"{what} {spec.name}'s maximum of {spec.max_length} tokens: the first {dropped} prompt tokens were "
                "dropped.")
    else:
        st.info(f"The text is longer than {spec.name}'s maximum of {spec.max_length} tokens: the last {dropped} "
                "tokens were dropped.")


def unknown_notice(capture: Capture) -> None:
    """Say which words of the input the tokenizer could only map to its unknown token (emoji, rare scripts)."""
    words = capture.unknown_words
    if words:
        shown = ", ".join(f"“{word}”" for word in words[:12]) + (" …" if len(words) > 12 else "")
        st.info(f"Not in the model's vocabulary, so read as one unknown token each: {shown}. "
                "The model sees nothing of what these were.")


def input_notices(capture: Capture, loaded: LoadedModel) -> None:
    """Every notice about how the input was read: truncation and unknown words."""
    truncation_notice(capture.dropped_tokens, loaded, continuation=True)
    unknown_notice(capture)


def wrong_kind(loaded: LoadedModel, name: str, kind: ModelKind) -> bool:
    """True, after saying so on the page, when the loaded model `name` is not of the `kind` a page needs."""
    if loaded.spec.kind is kind:
        return False
    st.error(f"'{name}' is {loaded.spec.kind.article}, not {kind.article}: pick one in the sidebar.")
    return True


def ood_notice(loaded: LoadedModel, capture: ImageCapture) -> None:
    """Say when the image looks unlike what the model was trained on, by the model's own signal: its largest logit
    below the threshold calibrated on held-out data (ood.json beside a bundled model: the 1st percentile there)."""
    calibration = ood_calibration(loaded.spec.source) if loaded.spec.bundled else None
    if calibration is None or capture.logits is None:
        return
    score = float(max_logit(capture.logits))
    if score < calibration["threshold"]:
        st.warning(f"{loaded.spec.name} finds none of its classes here with its usual confidence: its largest logit is "
                   f"{score:.2f}, below {calibration['threshold']:.2f}, which 99% of {calibration['scenes']:,} held-out "
                   "scenes exceed. This image is unlike what it was trained on: read its predictions and maps with that "
                   "in mind.")


@st.cache_data(show_spinner=False)
def ood_calibration(source: str) -> dict | None:
    """The bundled model's out-of-distribution threshold (ood.json, `python -m explain evaluate --ood`), or None."""
    path = Path(source) / "ood.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError:
        return None
