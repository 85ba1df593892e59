"""Text rollout: the sentence coloured by raw attention, attention rollout and gradient rollout."""

import streamlit as st

from ui import url, views, widgets
from ui.examples import LABEL_EXAMPLES, PROBE_EXAMPLES
from ui.notices import capture_or_message, input_notices
from ui.panels import methods as methods_panel
from ui.panels.faithfulness import text_panel
from ui.services import text_capture
from viz.bars import scores_bar
from viz.plotting import PLOTLY_CONFIG

st.title("Text rollout")
st.caption("Which input tokens the model's output draws on: one layer's raw attention, attention rollout through all layers, and gradient rollout for a chosen target.")

model_name, loaded, text, pair = widgets.text_page_input("tr")

# The gradient target: a class for classifiers; a probe sentence or zero-shot labels for embedding models.
target, labels = None, ()
if loaded.spec.classifier:
    classes = ["predicted class"] + list(loaded.spec.labels)
    chosen = url.selectbox("Target class", classes, "tr_class", classes[0])
    target = None if chosen == classes[0] else chosen
else:
    mode = url.radio("Target", ("labels", "probe"), "tr_mode", "labels", horizontal=True,
                     format_func={"labels": "Zero-shot labels", "probe": "Probe sentence (similarity)"}.get)
    if mode == "probe":
        target = url.text_input("Probe sentence", "tr_probe", PROBE_EXAMPLES.get(text, "A dog lay on the rug.")).strip() or None
        if target is None:
            st.warning("The probe sentence is empty: type one to compare the input with.")
    else:
        labels = widgets.parse_labels(url.text_input("Labels (comma-separated)", "tr_labels", LABEL_EXAMPLES))
        if not labels:
            st.warning("Type at least one label, for example: animals, food, language.")

with st.sidebar:
    st.markdown("### Rollout options")
    fusion, discard, start = widgets.rollout_options("tr", loaded.spec.layers)
    raw_layer = url.selectbox("Raw attention layer (heads averaged)", list(range(loaded.spec.layers)), "tr_raw_layer",
                              loaded.spec.layers - 1)
    hide = url.toggle("Hide [CLS]/[SEP]", "tr_hide", True)
    merge = url.toggle("Merge word pieces into words", "tr_merge")
    cmap = widgets.colormap("tr", "reds")
    absolute = methods_panel.absolute_toggle("tr")

has_target = loaded.spec.classifier or target is not None or bool(labels)
capture = capture_or_message(text_capture, model_name, text, pair, target, labels, has_target)
if capture is None:
    st.stop()
input_notices(capture, loaded)
chosen = methods_panel.choose("tr", capture, loaded)

if capture.scores is not None and len(capture.score_labels) > 1:
    similarity = not loaded.spec.classifier  # zero-shot scores are cosine similarities in [-1, 1]
    st.plotly_chart(scores_bar(list(capture.score_labels), capture.scores.numpy(), top_k=10,
                               title="Label scores (cosine similarity)" if similarity else "Class probabilities",
                               value_label="cosine similarity" if similarity else "probability",
                               zmin=-1.0 if similarity else 0.0, fit_axis=similarity),
                    config=PLOTLY_CONFIG, key="tr_scores")
if capture.target_label is not None:
    st.markdown(f"Gradient target: **{capture.target_label}** (value {capture.target_value:.3f}).")

options = {"attention": dict(layer=raw_layer),
           "rollout": dict(head_fusion=fusion, discard_ratio=discard, start_layer=start),
           "gradient-rollout": dict(start_layer=start)}
runnable = [m for m in chosen if not m.needs_target or capture.target is not None]
if len(runnable) < len(chosen):
    st.info("Gradient rollout, the gradient methods, occlusion and AttnLRP explain a target: give a probe sentence or "
            "zero-shot labels.")
results = methods_panel.explanations((model_name, text, pair, target, labels), capture, loaded, runnable, options)
words = views.shown_tokens(capture, merge, hide)
table = {}
shown = [m for m in runnable if m.name in results]
for row in range(0, len(shown), 3):
    for method, column in zip(shown[row:row + 3], st.columns(3)):
        with column:
            values, tokens = views.text_relevance(capture, results[method.name].relevance, merge, hide)
            table[method.label] = values
            methods_panel.text_view(method, results[method.name], values, words, tokens, f"tr_bar_{method.name}", cmap,
                                    absolute)

if capture.target_label is not None and shown:
    st.subheader("Is this faithful?")
    text_panel((model_name, text, pair, target, labels, fusion, discard, start, raw_layer, tuple(results)), loaded,
               capture, {m.label.lower(): results[m.name].relevance.float().numpy() for m in shown},
               {m.label.lower(): results[m.name].seconds for m in shown})

if table:
    import pandas as pd

    frame = pd.DataFrame(table, index=tokens)
    st.download_button("Relevance per token (CSV)", frame.to_csv().encode(), file_name="relevance.csv", mime="text/csv")
st.caption("Unsigned methods are coloured from their lowest to their highest value; signed ones (input x gradient, "
           "integrated gradients, occlusion, AttnLRP) blue below zero and red above on a scale symmetric about zero. "
           "Exact values are in each token's tooltip and in the CSV. Gradient rollout shows the rows of R - I: what "
           "attention carried beyond each token's own residual path.")
