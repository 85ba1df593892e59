"""Head comparison: every layer x head map for one input, head statistics, two heads side by side."""

import pandas as pd
import streamlit as st

import explain
from models import TRANSFORMER_KINDS, kind_named
from ui import url, views, widgets
from ui.notices import capture_or_message, input_notices
from ui.services import decoder_capture, image_capture, seq2seq_capture, text_capture
from viz.heatmaps import attention_heatmap, head_grid, stat_heatmap
from viz.image_figures import image_overlay_figure
from viz.plotting import PLOTLY_CONFIG

STACKS = {"encoder": "encoder self-attention", "decoder": "decoder self-attention", "cross": "cross-attention"}

st.title("Head comparison")
st.caption("All heads of all layers for one input: small multiples on one colour scale, and statistics that tell heads apart.")

kind = kind_named(url.radio("Model", [k.name for k in TRANSFORMER_KINDS], "hc_kind", "text", horizontal=True,
                            format_func=lambda n: kind_named(n).label))
model_name, loaded = widgets.page_model(kind)
cross_keys, queries, stack = None, None, None
if kind.reads_images:
    choice = widgets.image_input("hc")
    if loaded is None or choice is None:
        st.stop()
    capture = capture_or_message(image_capture, model_name, choice.digest, choice.image)
else:
    text, pair = widgets.kind_input(f"hc_{kind.name}", kind, with_pair=not kind.generates)
    if loaded is None:
        st.stop()
    if not text.strip():
        st.warning(f"The {kind.input_label.lower()} is empty: type one or pick an example.")
        st.stop()
    if kind.cross_attention:
        full = capture_or_message(seq2seq_capture, model_name, text)
        if full is None:
            st.stop()
        stack = url.radio("Attention stack", tuple(STACKS), "hc_stack", "cross", horizontal=True, format_func=STACKS.get)
        capture, cross_keys = full.stack_view(stack)
        if cross_keys is not None:
            queries = explain.readable(full.output_tokens)
    elif kind.causal:
        capture = capture_or_message(decoder_capture, model_name, text, 0, with_gradients=False)
    else:
        capture = capture_or_message(text_capture, model_name, text, pair)
if capture is None:
    st.stop()
input_notices(capture, loaded)
cmap = widgets.colormap("hc")
keys = explain.readable(capture.tokens)
queries = keys if queries is None else queries
masked = views.causal_mask(len(keys)) if kind.causal or stack == "decoder" else None

st.subheader(f"Every layer and head ({capture.layers} x {capture.heads})")
if url.toggle("Draw the layer x head grid", "hc_grid", help="Off by default: long inputs make many large maps."):
    if kind.reads_images:
        figure = head_grid(views.head_maps_image(capture), title=f"{model_name}: [CLS] attention over patches per layer and head",
                           colormap=cmap, zmin=0.0, cells="image")
    else:  # head_grid block-averages large maps itself
        figure = head_grid(capture.attentions.float().numpy(), title=f"{model_name}: attention maps per layer and head",
                           colormap=cmap, zmin=0.0)
    st.plotly_chart(figure, config=PLOTLY_CONFIG, key="hc_grid_chart")

st.subheader("Head statistics")
stats, rows = views.statistics_table(capture, cross_keys)
described = {**explain.STATISTICS, **explain.DECODER_STATISTICS}
stat = url.selectbox("Statistic", list(stats), "hc_stat", "entropy", format_func=lambda n: described[n])
distance_unit = "patches" if kind.reads_images else "tokens"
st.plotly_chart(stat_heatmap(stats[stat], title=described[stat], colormap=cmap,
                             value_label=distance_unit if stat == "distance" else stat),
                config=PLOTLY_CONFIG, key="hc_stat_chart")
table = pd.DataFrame(rows).round(4)
st.dataframe(table, hide_index=True, width="stretch", height=min(36 * (len(table) + 1) + 3, 460))
st.download_button("Statistics (CSV)", table.to_csv(index=False).encode(), file_name="head_statistics.csv", mime="text/csv")
st.caption(f"Entropy in nats (uniform over T tokens is log T); distance in {distance_unit}; the other columns are "
           "shares or scores of attention, averaged over query tokens; the previous-token score is the mean attention "
           "from each token to the one before it (queries t ≥ 1)."
           + (" Induction is the attention to what followed an earlier occurrence of the token: NaN when nothing "
              "repeats." if kind.causal else ""))

st.subheader("Two heads side by side")
# two different heads to begin with: the last layer's first and second (or its mean and first, with one head)
defaults = {"a": 0, "b": 1 if capture.heads > 1 else "mean"}
for side, column in zip(("a", "b"), st.columns(2)):
    with column:
        layer, head = widgets.layer_head(f"hc_{side}", capture.layers, capture.heads, default_head=defaults[side])
        label = f"layer {layer} · {'mean of heads' if head is None else f'head {head}'}"
        if kind.reads_images:
            maps = views.head_maps_image(capture)
            grid = maps[layer].mean(0) if head is None else maps[layer, head]
            figure = image_overlay_figure(capture.image, grid, title=f"[CLS] attention, {label}", colormap=cmap,
                                          opacity=0.6, value_label="attention")
        else:
            matrix = explain.layer_attention(capture.attentions.float(), layer, head).numpy()
            figure = attention_heatmap(matrix, keys, queries, title=label, colormap=cmap, zmin=0.0, masked=masked)
        st.plotly_chart(figure, config=PLOTLY_CONFIG, key=f"hc_{side}_chart")
