"""Head comparison: every layer x head map for one input, head statistics, two heads side by side."""

import pandas as pd
import streamlit as st

import explain
from ui import params, views, widgets
from ui.state import (
    DECODER_EXAMPLES, SEQ2SEQ_EXAMPLES, capture_or_message, decoder_capture, image_capture, load_model,
    seq2seq_capture, text_capture, truncation_notice,
)
from viz.heatmaps import attention_heatmap, head_grid, stat_heatmap
from viz.image_figures import image_overlay_figure
from viz.plotting import PLOTLY_CONFIG

KINDS = {"text": "Text encoder", "image": "Image", "decoder": "Decoder", "seq2seq": "Encoder-decoder"}
DEFAULTS = {"text": "minilm", "image": "shapes-vit", "decoder": "induction-lm", "seq2seq": "iso-dates"}
STACKS = {"encoder": "encoder self-attention", "decoder": "decoder self-attention", "cross": "cross-attention"}

st.title("Head comparison")
st.caption("All heads of all layers for one input: small multiples on one colour scale, and statistics that tell heads apart.")

params.restore("hc_kind", "text", allowed=tuple(KINDS))
kind = st.radio("Model", tuple(KINDS), key="hc_kind", horizontal=True, format_func=KINDS.get)
params.publish("hc_kind")

model_name = st.session_state.get(f"{kind}_model", DEFAULTS[kind])
loaded = load_model(model_name)
cross = None
if kind == "image":
    choice = widgets.image_input("hc")
    if loaded is None or choice is None:
        st.stop()
    capture = capture_or_message(image_capture, model_name, choice.digest, choice.image)
else:
    examples = {"decoder": DECODER_EXAMPLES, "seq2seq": SEQ2SEQ_EXAMPLES}.get(kind)
    shared = {"decoder": "prompt", "seq2seq": "source"}.get(kind, "text")
    text, pair = widgets.text_input(f"hc_{kind}", with_pair=kind == "text", shared=shared, **({"examples": examples} if examples else {}))
    if loaded is None or not text.strip():
        st.stop()
    if widgets.wrong_kind(loaded, model_name, kind):
        st.stop()
    if kind == "text":
        capture = capture_or_message(text_capture, model_name, text, pair)
    elif kind == "decoder":
        capture = capture_or_message(decoder_capture, model_name, text, 0, with_gradients=False)
    else:
        full = capture_or_message(seq2seq_capture, model_name, text)
        if full is None:
            st.stop()
        params.restore("hc_stack", "cross", allowed=tuple(STACKS))
        stack = st.radio("Attention stack", tuple(STACKS), key="hc_stack", horizontal=True, format_func=STACKS.get)
        params.publish("hc_stack")
        capture, cross = views.stack_capture(full, stack)
if capture is None:
    st.stop()
if kind in ("text", "decoder"):
    truncation_notice(capture, loaded)
    widgets.unknown_notice(capture)
cmap = widgets.colormap("hc")
keys = views.readable(capture.tokens)
queries = views.readable(full.output_tokens) if cross is not None else keys
masked = views.causal_mask(len(keys)) if kind == "decoder" or (kind == "seq2seq" and stack == "decoder") else None

st.subheader(f"Every layer and head ({capture.layers} x {capture.heads})")
params.restore("hc_grid", False, params.parse_bool)
if st.toggle("Draw the layer x head grid", key="hc_grid", help="Off by default: long inputs make many large maps."):
    if kind == "image":
        figure = head_grid(views.head_maps_image(capture), title=f"{model_name}: [CLS] attention over patches per layer and head",
                           colormap=cmap, zmin=0.0, kind="image")
    else:  # head_grid block-averages large maps itself
        figure = head_grid(capture.attentions.float().numpy(), title=f"{model_name}: attention maps per layer and head",
                           colormap=cmap, zmin=0.0)
    st.plotly_chart(figure, config=PLOTLY_CONFIG, key="hc_grid_chart")
params.publish("hc_grid")

st.subheader("Head statistics")
stats, rows = views.statistics_table(capture, cross)
described = {**explain.STATISTICS, **explain.DECODER_STATISTICS}
names = list(stats)
params.restore("hc_stat", "entropy", allowed=names)
stat = st.selectbox("Statistic", names, key="hc_stat", format_func=lambda n: described[n])
params.publish("hc_stat")
distance_unit = "patches" if kind == "image" else "tokens"
st.plotly_chart(stat_heatmap(stats[stat], title=described[stat], colormap=cmap,
                             value_label=distance_unit if stat == "distance" else stat),
                config=PLOTLY_CONFIG, key="hc_stat_chart")
table = pd.DataFrame(rows).round(4)
st.dataframe(table, hide_index=True, width="stretch", height=min(36 * (len(table) + 1) + 3, 460))
st.download_button("Statistics (CSV)", table.to_csv(index=False).encode(), file_name="head_statistics.csv", mime="text/csv")
st.caption(f"Entropy in nats (uniform over T tokens is log T); distance in {distance_unit}; the other columns are "
           "shares or scores of attention, averaged over query tokens. Induction is NaN when nothing repeats.")

st.subheader("Two heads side by side")
for side, column in zip(("a", "b"), st.columns(2)):
    with column:
        layer, head = widgets.layer_head(f"hc_{side}", capture.layers, capture.heads)
        label = f"layer {layer} · {'mean of heads' if head is None else f'head {head}'}"
        if kind == "image":
            grid = views.head_maps_image(capture)[layer].mean(0) if head is None else views.head_maps_image(capture)[layer, head]
            figure = image_overlay_figure(capture.image, grid, title=f"[CLS] attention, {label}", colormap=cmap,
                                          opacity=0.6, value_label="attention")
        else:
            matrix = explain.layer_attention(capture.attentions.float(), layer, head).numpy()
            figure = attention_heatmap(matrix, keys, queries, title=label, colormap=cmap, zmin=0.0, masked=masked)
        st.plotly_chart(figure, config=PLOTLY_CONFIG, key=f"hc_{side}_chart")
