"""Text attention (head view): one layer and head as a token-by-token map, and a token view."""

import streamlit as st

import explain
from ui import params, views, widgets
from ui.state import capture_or_message, text_capture, truncation_notice
from viz.heatmaps import attention_heatmap
from viz.plotting import PLOTLY_CONFIG
from viz.tokens import legend_html, token_weight_range, tokens_html

st.title("Text attention")
st.caption("Row *i* of a map is how much token *i* (the query) takes from every token (the keys) in one layer and head. Rows sum to 1.")

model_name, loaded, text, pair = widgets.text_page_input("ta")

capture = capture_or_message(text_capture, model_name, text, pair)
if capture is None:
    st.stop()
truncation_notice(capture, loaded)
widgets.unknown_notice(capture)

with st.sidebar:
    st.markdown("### View")
    layer, head = widgets.layer_head("ta", capture.layers, capture.heads)
    params.restore("ta_hide", False, params.parse_bool)
    params.restore("ta_merge", False, params.parse_bool)
    hide = st.toggle("Hide [CLS]/[SEP] (rows renormalised)", key="ta_hide")
    merge = st.toggle("Merge word pieces into words", key="ta_merge")
    cmap = widgets.colormap("ta")
    params.publish("ta_hide", "ta_merge")

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
indices = list(range(len(labels)))
params.restore("ta_token", 0, int)
params.keep_valid("ta_token", indices)
token = st.select_slider("Query token", indices, key="ta_token", format_func=lambda i: f"{i}: {labels[i]}")
params.publish("ta_token")
row = shown[token]
params.restore("ta_scale", False, params.parse_bool)
scaled = st.toggle("Scale colours to this row", key="ta_scale",
                   help="Off: 0 to 1, comparable across tokens and layers. On: this row's own range, to see small differences.")
params.publish("ta_scale")
st.html(tokens_html(labels, row, colormap="reds", selected=token, normalize=scaled))
st.html(legend_html("reds", *(token_weight_range(labels, row) if scaled else (0.0, 1.0))))

st.subheader("Download")
left, right = st.columns(2)
left.download_button("This map (CSV)", widgets.csv_bytes(shown, labels, labels), file_name="attention.csv", mime="text/csv")
right.download_button(
    "All layers and heads (NPZ)",
    widgets.npz_bytes(attentions=capture.attentions.numpy(), tokens=capture.tokens),
    file_name="attentions.npz", mime="application/octet-stream",
)
st.caption("Each figure downloads as PNG from the camera icon in its toolbar.")
