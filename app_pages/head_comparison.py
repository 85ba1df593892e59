"""Head comparison: every layer x head map for one input, head statistics, two heads side by side."""

import pandas as pd
import streamlit as st

import explain
from ui import params, views, widgets
from ui.state import capture_or_message, image_capture, load_model, text_capture, truncation_notice
from viz.heatmaps import attention_heatmap, head_grid, stat_heatmap
from viz.image_figures import image_overlay_figure
from viz.plotting import PLOTLY_CONFIG

st.title("Head comparison")
st.caption("All heads of all layers for one input: small multiples on one colour scale, and statistics that tell heads apart.")

params.restore("hc_kind", "text", allowed=("text", "image"))
kind = st.radio("Input", ("text", "image"), key="hc_kind", horizontal=True, format_func=str.capitalize)
params.publish("hc_kind")

model_name = st.session_state.get(f"{kind}_model", "minilm" if kind == "text" else "shapes-vit")
loaded = load_model(model_name)
if kind == "text":
    text, pair = widgets.text_input("hc")
    if loaded is None or not text.strip():
        st.stop()
    capture = capture_or_message(text_capture, model_name, text, pair)
else:
    choice = widgets.image_input("hc")
    if loaded is None or choice is None:
        st.stop()
    capture = capture_or_message(image_capture, model_name, choice.digest, choice.image)
if capture is None:
    st.stop()
if kind == "text":
    truncation_notice(capture, loaded)
cmap = widgets.colormap("hc")

st.subheader(f"Every layer and head ({capture.layers} x {capture.heads})")
params.restore("hc_grid", False, params.parse_bool)
if st.toggle("Draw the layer x head grid", key="hc_grid", help="Off by default: long inputs make many large maps."):
    if kind == "text":
        maps = capture.attentions.numpy()  # head_grid block-averages large maps itself
        figure = head_grid(maps, title=f"{model_name}: attention maps per layer and head", colormap=cmap, zmin=0.0)
    else:
        maps = views.head_maps_image(capture)
        figure = head_grid(maps, title=f"{model_name}: [CLS] attention over patches per layer and head",
                           colormap=cmap, zmin=0.0, kind="image")
    st.plotly_chart(figure, config=PLOTLY_CONFIG, key="hc_grid_chart")
params.publish("hc_grid")

st.subheader("Head statistics")
stats, rows = views.statistics_table(capture)
names = list(explain.STATISTICS)
params.restore("hc_stat", "entropy", allowed=names)
stat = st.selectbox("Statistic", names, key="hc_stat", format_func=lambda n: explain.STATISTICS[n])
params.publish("hc_stat")
distance_unit = "tokens" if kind == "text" else "patches"
st.plotly_chart(stat_heatmap(stats[stat], title=explain.STATISTICS[stat], colormap=cmap,
                             value_label=distance_unit if stat == "distance" else stat),
                config=PLOTLY_CONFIG, key="hc_stat_chart")
table = pd.DataFrame(rows).round(4)
st.dataframe(table, hide_index=True, width="stretch", height=280)
st.download_button("Statistics (CSV)", table.to_csv(index=False).encode(), file_name="head_statistics.csv", mime="text/csv")
st.caption(
    f"Entropy in nats (uniform over T tokens is log T); distance in {distance_unit}; "
    "the other columns are shares of attention, averaged over query tokens."
)

st.subheader("Two heads side by side")
columns = st.columns(2)
for side, column in zip(("a", "b"), columns):
    with column:
        layer, head = widgets.layer_head(f"hc_{side}", capture.layers, capture.heads)
        label = f"layer {layer} · {'mean of heads' if head is None else f'head {head}'}"
        if kind == "text":
            shown, labels = views.text_matrix(capture, explain.layer_attention(capture.attentions, layer, head), False, False)
            figure = attention_heatmap(shown, labels, labels, title=label, colormap=cmap, zmin=0.0)
        else:
            grid = views.head_maps_image(capture)[layer].mean(0) if head is None else views.head_maps_image(capture)[layer, head]
            figure = image_overlay_figure(capture.image, grid, title=f"[CLS] attention, {label}", colormap=cmap, opacity=0.6)
        st.plotly_chart(figure, config=PLOTLY_CONFIG, key=f"hc_{side}_chart")
