"""What the pages say instead of failing: bad input and unloadable models as one sentence, truncation, words the
tokenizer could not read, a model of the wrong kind."""

from __future__ import annotations

from typing import Any, Callable

import streamlit as st

from explain import Capture
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


def truncation_notice(capture: Capture, loaded: LoadedModel) -> None:
    """Say how many tokens were dropped to fit the model's maximum length (a decoder drops the earliest)."""
    if not capture.dropped_tokens:
        return
    if capture.kind.causal:
        st.info(f"The prompt and its continuation exceed {loaded.spec.name}'s maximum of {loaded.spec.max_length} "
                f"tokens: the first {capture.dropped_tokens} prompt tokens were dropped.")
    else:
        st.info(f"The text is longer than {loaded.spec.name}'s maximum of {loaded.spec.max_length} tokens: "
                f"the last {capture.dropped_tokens} tokens were dropped.")


def unknown_notice(capture: Capture) -> None:
    """Say which words of the input the tokenizer could only map to its unknown token (emoji, rare scripts)."""
    words = capture.unknown_words
    if words:
        shown = ", ".join(f"“{word}”" for word in words[:12]) + (" …" if len(words) > 12 else "")
        st.info(f"Not in the model's vocabulary, so read as one unknown token each: {shown}. "
                "The model sees nothing of what these were.")


def input_notices(capture: Capture, loaded: LoadedModel) -> None:
    """Every notice about how the input was read: truncation and unknown words."""
    truncation_notice(capture, loaded)
    unknown_notice(capture)


def wrong_kind(loaded: LoadedModel, name: str, kind: ModelKind) -> bool:
    """True, after saying so on the page, when the loaded model `name` is not of the `kind` a page needs."""
    if loaded.spec.kind is kind:
        return False
    st.error(f"'{name}' is {loaded.spec.kind.article}, not {kind.article}: pick one in the sidebar.")
    return True
