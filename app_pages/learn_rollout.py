"""Learn: attention rollout and gradient rollout, one layer at a time."""

import streamlit as st

import explain
from models import IMAGE, TEXT
from ui import url, views, widgets
from ui.learn import model_and_input
from ui.notices import capture_or_message
from ui.services import image_capture, text_capture
from viz.heatmaps import layer_row
from viz.image_figures import image_overlay_figure
from viz.plotting import PLOTLY_CONFIG
from viz.tokens import tokens_html

st.title("Rollout step by step")
st.caption("Attention in one layer mixes tokens; the residual path keeps each token too. Rollout follows both "
           "through every layer by multiplying the layers' matrices.")

chosen = model_and_input("lr", kinds=(TEXT, IMAGE))
if chosen is None:
    st.stop()
spec = chosen.loaded.spec
if chosen.kind.reads_images:
    classes = ["predicted class"] + list(spec.labels)
    target = url.selectbox("Class for gradient rollout (one map per class)", classes, "lr_class", classes[0])
    capture = capture_or_message(image_capture, chosen.name, chosen.digest, chosen.image,
                                 None if target == classes[0] else target)
else:
    probe = url.text_input("Gradient target: similarity to this sentence (or a class for classifiers)", "lr_probe",
                           "A dog lay on the rug.")
    capture = capture_or_message(text_capture, chosen.name, chosen.text, None, None if spec.classifier else probe or None,
                                 (), True)
if capture is None:
    st.stop()
fusion, discard, start = widgets.rollout_options("lr", capture.layers)
layers = list(range(start, capture.layers))


def stages(steps, rows: tuple[tuple[str, str, bool], ...], key: str) -> None:  # noqa: ANN001
    """One figure per stage (fused, augmented, running), each on its own colour scale: (title, colour bar, skip
    the diagonal?) per stage."""
    for (title, value_label, skip_diagonal), maps in zip(rows, (steps.fused, steps.augmented, steps.running)):
        st.plotly_chart(layer_row(maps.float().numpy(), layers, title, value_label, skip_diagonal=skip_diagonal),
                        config=PLOTLY_CONFIG, key=f"{key}_{value_label}")


st.subheader("Attention rollout (Abnar and Zuidema, 2020)")
st.latex(r"\tilde A_l = \mathrm{norm}\big(\mathrm{fuse}_h(A_l) + I\big),\qquad J = \tilde A_L \cdots \tilde A_1")
steps = explain.explain_capture(capture, "rollout", head_fusion=fusion, discard_ratio=discard, start_layer=start,
                                steps=True).steps
stages(steps, ((f"Each layer's attention, {fusion} of heads", "attention", False),
               ("With the residual: + I, rows renormalised", "attention + I", False),
               ("The product so far, J", "rollout J", False)), "lr_attention")

st.subheader("Gradient rollout (Chefer, Gur and Wolf, 2021)")
st.latex(r"\bar A_l = \mathbb{E}_h\big[(\nabla A_l \odot A_l)^+\big],\qquad R \leftarrow R + \bar A_l R")
st.markdown(f"Explains **{capture.target_label}**: the gradient keeps only what raised it.")
gradient = explain.explain_capture(capture, "gradient-rollout", start_layer=start, steps=True).steps
stages(gradient, (("Each layer's (∇A ⊙ A)⁺, heads averaged", "relevance weight", False),
                  ("With the identity: I + (∇A ⊙ A)⁺", "I + weight", True),
                  ("The relevance so far, R", "relevance R", True)), "lr_gradient")
st.caption("The gradient-weighted maps are small (their scale is in each title): the identity's ones on the diagonal "
           "would swamp them, so the last two rows fit their colours to the entries off the diagonal, and the "
           "diagonal (at least 1: each token's own residual path) is drawn saturated.")

st.subheader("Where the rows end: relevance over the input")
final = {"attention rollout": explain.explain_capture(capture, "rollout", head_fusion=fusion, discard_ratio=discard,
                                                      start_layer=start),
         "gradient rollout": explain.explain_capture(capture, "gradient-rollout", start_layer=start)}
for (title, result), column in zip(final.items(), st.columns(2)):
    with column:
        if result.grid is not None:
            st.plotly_chart(image_overlay_figure(capture.image, result.grid.numpy(), title=title), config=PLOTLY_CONFIG,
                            key=f"lr_final_{title}")
        else:
            st.markdown(f"**{title}**")
            words = views.shown_tokens(capture)
            st.html(tokens_html(words["texts"], result.relevance.float().numpy(), spaces=words["spaces"],
                                special=words["special"]))
st.caption("The last panel of each row is the final matrix; its [CLS] row (or, for mean-pooled models, the mean of "
           "the token rows) is the relevance drawn here, exactly as the Text rollout and Image pages compute it.")
