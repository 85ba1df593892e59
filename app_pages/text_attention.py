"""Text attention (head view): one layer and head as a token-by-token map, and a token view."""

import streamlit as st

import explain
from ui import url, views, widgets
from ui.notices import capture_or_message, input_notices
from ui.services import text_capture
from viz.heatmaps import attention_heatmap
from viz.plotting import PLOTLY_CONFIG
from viz.tokens import legend_html, token_weight_range, tokens_html

st.title("Text attention")
st.caption("Row *i* of a map is how much token *i* (the query) takes from every token (the keys) in one layer and head. Rows sum to 1.")

model_name, loaded, text, pair = widgets.text_page_input("ta")

capture = capture_or_message(text_capture, model_name, text, pair)
if capture is None:
    st.stop()
input_notices(capture, loaded)

with st.sidebar:
    st.markdown("### View")
    layer, head = widgets.layer_head("ta", capture.layers, capture.heads)
    hide = url.toggle("Hide [CLS]/[SEP] (rows renormalised)", "ta_hide")
    merge = url.toggle("Merge word pieces into words", "ta_merge")
    cmap = widgets.colormap("ta")

matrix = explain.layer_attention(capture.attentions, layer, head)
shown, labels = views.text_matrix(capture, matrix, merge, hide)
head_name = "mean of heads" if head is None else f"head {head}"
title = f"{model_name} · layer {layer} · {head_name}"

st.plotly_chart(
    attention_heatmap(shown, labels, labels, title=title, colormap=cmap, zmin=0.0),
    config=PLOTLY_CONFIG, key="ta_heatmap",
)

st.subheader("Token view")
st.caption("Choose a token: the sentence is coloured by how much that token attends to each token.")
words = views.shown_tokens(capture, merge, hide)
token = url.bound(st.select_slider, "Query token", "ta_token", 0, options=list(range(len(labels))),
                  format_func=lambda i: f"{i}: {labels[i]}")
row = shown[token]
scaled = url.toggle("Scale colours to this row", "ta_scale",
                    help="Off: 0 to 1, comparable across tokens and layers. On: this row's own range, to see small differences.")
st.html(tokens_html(words["texts"], row, colormap="reds", selected=token, normalize=scaled, spaces=words["spaces"],
                    special=words["special"]))
st.html(legend_html("reds", *(token_weight_range(row, words["special"]) if scaled else (0.0, 1.0))))

st.subheader("Download")
left, right = st.columns(2)
left.download_button("This map (CSV)", widgets.csv_bytes(shown, labels, labels), file_name="attention.csv", mime="text/csv")
right.download_button(
    "All layers and heads (NPZ)",
    widgets.npz_bytes(attentions=capture.attentions.numpy(), tokens=capture.tokens),
    file_name="attentions.npz", mime="application/octet-stream",
)
st.caption("Each figure downloads as PNG from the camera icon in its toolbar.")
