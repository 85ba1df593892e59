"""Image: upload a picture or pick a sample scene; see where the Vision Transformer looks."""

import streamlit as st

import explain
from models import IMAGE
from ui import url, views, widgets
from ui.notices import capture_or_message, ood_notice
from ui.panels import methods as methods_panel
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
explained = url.selectbox("Class explained (gradient rollout, the gradient methods, occlusion, AttnLRP)", classes,
                          "im_class", classes[0])
capture = capture_or_message(image_capture, model_name, choice.digest, choice.image,
                             None if explained == classes[0] else explained)
if capture is None:
    st.stop()
ood_notice(loaded, capture)

with st.sidebar:
    st.markdown("### Overlay")
    cmap = widgets.colormap("im", "inferno")
    opacity = url.slider("Opacity", 0.0, 1.0, "im_opacity", 0.55, step=0.05)
    smooth = url.toggle("Smooth upsampling", "im_smooth", True)
    st.markdown("### Methods")
    chosen = methods_panel.choose("im", capture, loaded, on=st.sidebar)
    absolute = methods_panel.absolute_toggle("im")
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
st.markdown(f"The methods that explain a class explain **{capture.target_label}**.")

rows, cols = capture.grid
patches = [f"{r},{c}" for r in range(rows) for c in range(cols)]
options = {"rollout": dict(head_fusion=fusion, discard_ratio=discard, start_layer=start),
           "gradient-rollout": dict(start_layer=start)}
tab_attention, tab_methods, tab_faithful = url.tabs(["Attention", "Methods", "Is this faithful?"], "im_tab")[0]
chosen_tab = st.session_state["im_tab"]


def downloads(grid, key: str, colormap: str) -> None:  # noqa: ANN001
    left, right = st.columns(2)
    left.download_button("Overlay (PNG)", to_png_bytes(overlay(capture.image, grid, colormap, opacity, smooth)),
                         file_name=f"{key}.png", mime="image/png", key=f"{key}_png")
    right.download_button("Relevance grid (NPZ)", widgets.npz_bytes(relevance=grid, image=capture.image),
                          file_name=f"{key}.npz", mime="application/octet-stream", key=f"{key}_npz")


with tab_attention:
    if chosen_tab == "Attention":
        layer, head = widgets.layer_head("im", capture.layers, capture.heads)
        query = url.selectbox("Attention from", ["[CLS]"] + patches, "im_query", "[CLS]",
                              help="[CLS], or any patch (row,col): whose attention to draw.")
        query_index = 0 if query == "[CLS]" else capture.prefix_tokens + patches.index(query)
        matrix = explain.layer_attention(capture.attentions, layer, head)
        grid = capture.grid_of(matrix[query_index]).numpy()
        highlight = None if query == "[CLS]" else tuple(int(v) for v in query.split(","))
        st.plotly_chart(image_overlay_figure(capture.image, grid, colormap=cmap, opacity=opacity, smooth=smooth,
                                             highlight_patch=highlight, value_label="attention",
                                             title=f"Layer {layer}, {'mean of heads' if head is None else f'head {head}'}, "
                                                   f"from {query}"), config=PLOTLY_CONFIG, key="attention")
        downloads(grid, "attention", cmap)

results = {}
if chosen_tab != "Attention":
    results = methods_panel.explanations((model_name, choice.digest, capture.target_index), capture, loaded, chosen,
                                         options)
shown = [m for m in chosen if m.name in results]

with tab_methods:
    if chosen_tab == "Methods":
        if not chosen:
            st.info("Choose methods in the sidebar.")
        for row in range(0, len(shown), 3):
            for method, column in zip(shown[row:row + 3], st.columns(3)):
                with column:
                    title = f"{method.label}: {capture.target_label}" if method.needs_target else method.label
                    methods_panel.image_view(method, results[method.name], capture.image, f"all_{method.name}", cmap,
                                             opacity, smooth, absolute, title)
                    downloads(results[method.name].grid.float().numpy(), method.name, cmap)

with tab_faithful:
    if chosen_tab == "Is this faithful?" and shown:
        image_panel((model_name, choice.digest, capture.target_index, fusion, discard, start, tuple(results)), loaded,
                    capture, {m.label.lower(): results[m.name].grid.float().numpy() for m in shown},
                    {m.label.lower(): results[m.name].seconds for m in shown})
