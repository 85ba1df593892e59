"""Image: upload a picture or pick a sample scene; see where the Vision Transformer looks."""

import streamlit as st

import explain
from models import IMAGE
from ui import url, views, widgets
from ui.notices import capture_or_message
from ui.panels.faithfulness import image_panel
from ui.services import image_capture
from viz.bars import scores_bar
from viz.image_figures import image_overlay_figure
from viz.plotting import PLOTLY_CONFIG
from viz.overlay import overlay, to_png_bytes

st.title("Image")
st.caption("The picture is cut into patches; a [CLS] token gathers them through attention. See which patches each layer, head and method points at.")

model_name, loaded = widgets.page_model(IMAGE)
choice = widgets.image_input("im")
if loaded is None or choice is None:
    st.stop()
if loaded.spec.name == "shapes-vit" and not choice.sample and choice.image.size != loaded.spec.image_size[::-1]:
    st.warning("The bundled shapes-vit knows only synthetic 64x64 scenes of eight shapes and digits, so its "
               "predictions for a photo or a screenshot mean little. For photos pick an ImageNet model in the "
               "sidebar (vit-base, deit-tiny, ...) or any Hugging Face image classifier under 'other'.")

classes = ["predicted class"] + list(loaded.spec.labels)
chosen = url.selectbox("Class explained by gradient rollout", classes, "im_class", classes[0])
capture = capture_or_message(image_capture, model_name, choice.digest, choice.image,
                             None if chosen == classes[0] else chosen)
if capture is None:
    st.stop()

with st.sidebar:
    st.markdown("### Overlay")
    cmap = widgets.colormap("im", "inferno")
    opacity = url.slider("Opacity", 0.0, 1.0, "im_opacity", 0.55, step=0.05)
    smooth = url.toggle("Smooth upsampling", "im_smooth", True)
    st.markdown("### Rollout options")
    fusion, discard, start = widgets.rollout_options("im", capture.layers)

left, right = st.columns([2, 3])
with left:
    st.image(capture.image, caption=f"{choice.name}, as the model sees it ({capture.image.shape[1]}x{capture.image.shape[0]})", width="stretch")
    truth = widgets.sample_labels().get(choice.name) if choice.sample else None
    if truth:
        st.caption("Ground truth: " + ", ".join(truth))
threshold = 0.5 if loaded.spec.multi_label else None
with right:
    st.plotly_chart(scores_bar(list(capture.score_labels), capture.scores.numpy(), top_k=5, threshold=threshold,
                               title="Top predictions" + (" (independent sigmoid scores)" if loaded.spec.multi_label else "")),
                    config=PLOTLY_CONFIG, key="im_scores")
    if threshold is not None:
        verdict = views.prediction_verdict(list(capture.score_labels), capture.scores.numpy(), truth, threshold)
        named = lambda pairs: ", ".join(f"{label} ({score:.2f})" for label, score in pairs) or "none"  # noqa: E731
        lines = [f"Decision threshold **{threshold}** (one sigmoid per class). Predicted: {named(verdict['predicted'])}."]
        if truth is not None:
            if verdict["false_alarms"]:
                lines.append(f":orange[**Predicted but not in the scene:** {named(verdict['false_alarms'])}]")
            if verdict["missed"]:
                lines.append(f":red[**Missed:** {named(verdict['missed'])}]")
            if not verdict["false_alarms"] and not verdict["missed"]:
                lines.append(":green[Every class is right.]")
        st.markdown("  \n".join(lines))
st.markdown(f"Gradient rollout explains **{capture.target_label}**.")

rows, cols = capture.grid
patches = [f"{r},{c}" for r in range(rows) for c in range(cols)]
options = dict(head_fusion=fusion, discard_ratio=discard, start_layer=start)
tab_attention, tab_rollout, tab_gradient, tab_all, tab_faithful = st.tabs(
    ["Attention", "Rollout", "Gradient rollout", "All methods", "Is this faithful?"])


def show(grid, title: str, key: str, highlight=None, value_label: str = "relevance") -> None:  # noqa: ANN001
    st.plotly_chart(image_overlay_figure(capture.image, grid, title=title, colormap=cmap, opacity=opacity,
                                         smooth=smooth, highlight_patch=highlight, value_label=value_label),
                    config=PLOTLY_CONFIG, key=key)
    st.download_button("Overlay (PNG)", to_png_bytes(overlay(capture.image, grid, cmap, opacity, smooth)),
                       file_name=f"{key}.png", mime="image/png", key=f"{key}_png")
    st.download_button("Relevance grid (NPZ)", widgets.npz_bytes(relevance=grid, image=capture.image),
                       file_name=f"{key}.npz", mime="application/octet-stream", key=f"{key}_npz")


with tab_attention:
    layer, head = widgets.layer_head("im", capture.layers, capture.heads)
    query = url.selectbox("Attention from", ["[CLS]"] + patches, "im_query", "[CLS]",
                          help="[CLS], or any patch (row,col): whose attention to draw.")
    query_index = 0 if query == "[CLS]" else capture.prefix_tokens + patches.index(query)
    matrix = explain.layer_attention(capture.attentions, layer, head)
    grid = capture.grid_of(matrix[query_index]).numpy()
    highlight = None if query == "[CLS]" else tuple(int(v) for v in query.split(","))
    show(grid, f"Layer {layer}, {'mean of heads' if head is None else f'head {head}'}, from {query}", "attention",
         highlight, value_label="attention")

with tab_rollout:
    show(explain.explain_capture(capture, "rollout", **options).grid.numpy(), "Attention rollout", "rollout")

with tab_gradient:
    show(explain.explain_capture(capture, "gradient-rollout", start_layer=start).grid.numpy(),
         f"Gradient rollout for {capture.target_label}", "gradient_rollout")

with tab_all:
    columns = st.columns(3)
    grids = {
        "Raw attention (last layer, [CLS])": explain.explain_capture(capture, "attention").grid.numpy(),
        "Attention rollout": explain.explain_capture(capture, "rollout", **options).grid.numpy(),
        f"Gradient rollout: {capture.target_label}": explain.explain_capture(capture, "gradient-rollout", start_layer=start).grid.numpy(),
    }
    for (title, grid), column in zip(grids.items(), columns):
        with column:
            st.plotly_chart(image_overlay_figure(capture.image, grid, title=title, colormap=cmap, opacity=opacity, smooth=smooth,
                                                 value_label="attention" if title.startswith("Raw") else "relevance"),
                            config=PLOTLY_CONFIG, key=f"all_{title}")

with tab_faithful:
    maps = {"raw attention": explain.explain_capture(capture, "attention").grid.numpy(),
            "attention rollout": explain.explain_capture(capture, "rollout", **options).grid.numpy(),
            "gradient rollout": explain.explain_capture(capture, "gradient-rollout", start_layer=start).grid.numpy()}
    image_panel((model_name, choice.digest, capture.target_index, fusion, discard, start), loaded, capture, maps)
