"""The decoder page's "Heads" tab: previous-token and induction scores of every head, on the user's input
and as measured on held-out data for the bundled model (its heads.json)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import streamlit as st

from explain import DecoderCapture
from explain.head_stats import previous_token_scores, repeated_token_induction
from models import LoadedModel
from viz.heatmaps import stat_heatmap
from viz.plotting import PLOTLY_CONFIG

STRONG = 0.5  # a head scoring above this on the input is named in the text


def measured_heads(loaded: LoadedModel) -> dict | None:
    """The heads a bundled model's training measured (heads.json beside its weights), or None."""
    path = Path(loaded.spec.source) / "heads.json"
    if not loaded.spec.bundled or not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError:
        return None


def _best(scores: np.ndarray) -> tuple[int, int, float]:
    layer, head = np.unravel_index(np.nanargmax(scores), scores.shape)
    return int(layer), int(head), float(scores[layer, head])


def decoder_heads(capture: DecoderCapture, loaded: LoadedModel, colormap: str) -> None:
    """Previous-token and induction scores per layer and head for this input, and the bundled model's."""
    previous = previous_token_scores(capture.attentions).numpy()
    induction = repeated_token_induction(capture.attentions, capture.token_ids).numpy()
    left, right = st.columns(2)
    with left:
        st.plotly_chart(stat_heatmap(previous, title="Previous-token score", colormap=colormap,
                                     value_label="previous", zmin=0.0, zmax=1.0), config=PLOTLY_CONFIG, key="heads_previous")
        layer, head, score = _best(previous)
        st.caption(f"Attention from each token to the one before it. Strongest previous-token head on this input: "
                   f"**layer {layer}, head {head}** ({score:.2f}).")
    with right:
        if np.isnan(induction).all():
            st.info("Nothing repeats in this input, so induction cannot show: try the repeated-sequence example.")
        else:
            st.plotly_chart(stat_heatmap(np.nan_to_num(induction), title="Induction score", colormap=colormap,
                                         value_label="induction",
                                         zmin=0.0, zmax=1.0), config=PLOTLY_CONFIG, key="heads_induction")
            layer, head, score = _best(induction)
            st.caption(f"Attention to the token that followed the earlier occurrence of the current one. Strongest "
                       f"induction head on this input: **layer {layer}, head {head}** ({score:.2f}).")
    measured = measured_heads(loaded)
    if measured and {"induction_head", "previous_token_head"} <= set(measured):
        induction, previous = measured["induction_head"], measured["previous_token_head"]
        st.success(f"Measured on {measured['evaluation']['sequences']:,} held-out repeated sequences (model card): "
                   f"**induction head: layer {induction['layer']}, head {induction['head']}** (score "
                   f"{induction['score']:.2f}); **previous-token head: layer {previous['layer']}, head "
                   f"{previous['head']}** ({previous['score']:.2f}); the second copy is predicted with accuracy "
                   f"{measured['repeat_accuracy']:.2f}.")
    st.caption("A previous-token head copies the token before each position into it; an induction head then finds "
               "the earlier occurrence of the current token and attends to the token that followed it ([A][B] … [A] "
               "→ [B]). Together they complete repeated sequences.")
