"""Text rollout: the sentence coloured by raw attention, attention rollout and gradient rollout."""

import streamlit as st

import explain
from explain.faithfulness import encoder_probability
from ui import params, views, widgets
from ui.faithfulness import text_panel
from ui.state import (
    LABEL_EXAMPLES, PROBE_EXAMPLES, capture_or_message, get_model, parse_labels, text_capture, truncation_notice,
)
from viz.bars import relevance_bar, scores_bar
from viz.plotting import PLOTLY_CONFIG
from viz.tokens import tokens_html

st.title("Text rollout")
st.caption("Which input tokens the model's output draws on: one layer's raw attention, attention rollout through all layers, and gradient rollout for a chosen target.")

model_name, loaded, text, pair = widgets.text_page_input("tr")

# The gradient target: a class for classifiers; a probe sentence or zero-shot labels for embedding models.
target, labels = None, ()
if loaded.spec.classifier:
    classes = ["predicted class"] + list(loaded.spec.labels)
    params.restore("tr_class", classes[0], allowed=classes)
    chosen = st.selectbox("Target class", classes, key="tr_class")
    params.publish("tr_class")
    target = None if chosen == classes[0] else chosen
else:
    params.restore("tr_mode", "labels", allowed=("labels", "probe"))
    mode = st.radio("Target", ("labels", "probe"), key="tr_mode", horizontal=True,
                    format_func={"labels": "Zero-shot labels", "probe": "Probe sentence (similarity)"}.get)
    if mode == "probe":
        params.restore("tr_probe", PROBE_EXAMPLES.get(text, "A dog lay on the rug."))
        target = st.text_input("Probe sentence", key="tr_probe").strip() or None
        if target is None:
            st.warning("The probe sentence is empty: type one to compare the input with.")
    else:
        params.restore("tr_labels", LABEL_EXAMPLES)
        labels = parse_labels(st.text_input("Labels (comma-separated)", key="tr_labels"))
        if not labels:
            st.warning("Type at least one label, for example: animals, food, language.")
    params.publish("tr_mode", "tr_probe", "tr_labels")

with st.sidebar:
    st.markdown("### Rollout options")
    fusion, discard, start = widgets.rollout_options("tr", loaded.spec.layers)
    params.restore("tr_raw_layer", loaded.spec.layers - 1, int)
    params.keep_valid("tr_raw_layer", list(range(loaded.spec.layers)), loaded.spec.layers - 1)
    raw_layer = st.selectbox("Raw attention layer (heads averaged)", list(range(loaded.spec.layers)), key="tr_raw_layer")
    params.restore("tr_hide", True, params.parse_bool)
    hide = st.toggle("Hide [CLS]/[SEP]", key="tr_hide")
    params.restore("tr_merge", False, params.parse_bool)
    merge = st.toggle("Merge word pieces into words", key="tr_merge")
    cmap = widgets.colormap("tr", "reds")
    params.publish("tr_raw_layer", "tr_hide", "tr_merge")

has_target = loaded.spec.classifier or target is not None or bool(labels)
capture = capture_or_message(text_capture, model_name, text, pair, target, labels, has_target)
if capture is None:
    st.stop()
truncation_notice(capture, loaded)
widgets.unknown_notice(capture)

if capture.scores is not None and len(capture.score_labels) > 1:
    similarity = not loaded.spec.classifier  # zero-shot scores are cosine similarities in [-1, 1]
    st.plotly_chart(scores_bar(list(capture.score_labels), capture.scores.numpy(), top_k=10,
                               title="Label scores (cosine similarity)" if similarity else "Class probabilities",
                               value_label="cosine similarity" if similarity else "probability",
                               zmin=-1.0 if similarity else 0.0, fit_axis=similarity),
                    config=PLOTLY_CONFIG, key="tr_scores")
if capture.target_label is not None:
    st.markdown(f"Gradient target: **{capture.target_label}** (value {capture.target_value:.3f}).")

methods = {
    "attention": ("Raw attention", dict(layer=raw_layer)),
    "rollout": ("Attention rollout", dict(head_fusion=fusion, discard_ratio=discard, start_layer=start)),
    "gradient-rollout": ("Gradient rollout", dict(start_layer=start)),
}
columns = st.columns(3)
table = {}
for (method, (title, options)), column in zip(methods.items(), columns):
    with column:
        st.markdown(f"**{title}**")
        if method == "gradient-rollout" and capture.weighted is None:
            st.info("Needs a target: a probe sentence or zero-shot labels.")
            continue
        explanation = explain.explain_capture(capture, method, **options)
        values, tokens = views.text_relevance(capture, explanation.relevance, merge, hide)
        table[title] = values
        st.html(tokens_html(tokens, values, colormap=cmap))
        st.plotly_chart(relevance_bar(tokens, values, title=title, colormap=cmap), config=PLOTLY_CONFIG, key=f"tr_bar_{method}")

if capture.target_label is not None:
    st.subheader("Is this faithful?")
    relevances = {title.lower(): explain.explain_capture(capture, method, **options).relevance.float().numpy()
                  for method, (title, options) in methods.items() if method != "gradient-rollout" or capture.weighted is not None}
    text_panel((model_name, text, pair, target, labels, fusion, discard, start, raw_layer),
               lambda: encoder_probability(get_model(model_name), capture.token_ids, target=capture.target_label if
                                           loaded.spec.classifier or labels else target, labels=labels),
               relevances, [not s for s in capture.special.tolist()], capture.target_label)

if table:
    import pandas as pd

    frame = pd.DataFrame(table, index=tokens)
    st.download_button("Relevance per token (CSV)", frame.to_csv().encode(), file_name="relevance.csv", mime="text/csv")
st.caption("Colours are scaled per method (min to max); exact values are in each token's tooltip and in the CSV. "
           "Gradient rollout shows the rows of R - I: what attention carried beyond each token's own residual path.")
