"""Text rollout: the sentence coloured by raw attention, attention rollout and gradient rollout."""

import streamlit as st

import explain
from ui import url, views, widgets
from ui.examples import LABEL_EXAMPLES, PROBE_EXAMPLES
from ui.notices import capture_or_message, input_notices
from ui.panels.faithfulness import text_panel
from ui.services import text_capture
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

has_target = loaded.spec.classifier or target is not None or bool(labels)
capture = capture_or_message(text_capture, model_name, text, pair, target, labels, has_target)
if capture is None:
    st.stop()
input_notices(capture, loaded)

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
words = views.shown_tokens(capture, merge, hide)
for (method, (title, options)), column in zip(methods.items(), columns):
    with column:
        st.markdown(f"**{title}**")
        if method == "gradient-rollout" and capture.weighted is None:
            st.info("Needs a target: a probe sentence or zero-shot labels.")
            continue
        explanation = explain.explain_capture(capture, method, **options)
        values, tokens = views.text_relevance(capture, explanation.relevance, merge, hide)
        table[title] = values
        st.html(tokens_html(words["texts"], values, colormap=cmap, spaces=words["spaces"], special=words["special"]))
        st.plotly_chart(relevance_bar(tokens, values, title=title, colormap=cmap), config=PLOTLY_CONFIG, key=f"tr_bar_{method}")

if capture.target_label is not None:
    st.subheader("Is this faithful?")
    relevances = {title.lower(): explain.explain_capture(capture, method, **options).relevance.float().numpy()
                  for method, (title, options) in methods.items() if method != "gradient-rollout" or capture.weighted is not None}
    text_panel((model_name, text, pair, target, labels, fusion, discard, start, raw_layer), loaded, capture, relevances)

if table:
    import pandas as pd

    frame = pd.DataFrame(table, index=tokens)
    st.download_button("Relevance per token (CSV)", frame.to_csv().encode(), file_name="relevance.csv", mime="text/csv")
st.caption("Colours are scaled per method (min to max); exact values are in each token's tooltip and in the CSV. "
           "Gradient rollout shows the rows of R - I: what attention carried beyond each token's own residual path.")
