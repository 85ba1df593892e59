"""Learn: how a Vision Transformer reads an image: patches, the class token, position embeddings."""

import numpy as np
import streamlit as st

from explain.learn import patch_sequence
from explain.vision import patch_tokens
from models import IMAGE
from ui import widgets
from ui.notices import capture_or_message
from ui.services import cached
from viz.image_figures import image_overlay_figure, patch_tiles
from viz.learn import vectors_heatmap
from viz.plotting import PLOTLY_CONFIG

st.title("Patches and the class token")
st.caption("A ViT cuts the picture into square patches, flattens and projects each one to a vector, puts a learned "
           "[CLS] vector in front and adds a position embedding to every one: that sequence is what the encoder reads.")

name, loaded = widgets.page_model(IMAGE)
choice = widgets.image_input("lpa")
if loaded is None or choice is None:
    st.stop()
result = capture_or_message(lambda: cached(("patches", name, choice.digest), lambda: patch_sequence(loaded, choice.image)))
if result is None:
    st.stop()
rows, cols = result.grid
height, width = result.patch

st.subheader(f"1. The picture, cut into {rows} x {cols} patches of {height} x {width} pixels")
left, right = st.columns([2, 3])
left.plotly_chart(image_overlay_figure(result.picture, np.zeros((rows, cols)), title="The model's input and its patch grid",
                                       opacity=0.0, show_scale=False), config=PLOTLY_CONFIG, key="lpa_grid")
right.plotly_chart(patch_tiles(result.picture, result.grid, title=f"The {rows * cols} patches, row by row"),
                   config=PLOTLY_CONFIG, key="lpa_tiles")
right.caption("Each patch becomes one token, in reading order: row 0 left to right, then row 1, ... (rows down the "
              "side, columns along the top).")

labels = patch_tokens(len(result.prefix), result.grid)
st.subheader(f"2. Each patch flattened ({height * width * 3} numbers) and projected to {result.projections.shape[1]}")
st.plotly_chart(vectors_heatmap(np.concatenate([result.prefix.numpy(), result.projections.numpy()]), labels,
                                "[CLS] (learned, the same for every image) and the patch projections"),
                config=PLOTLY_CONFIG, key="lpa_projections")
st.subheader("3. Position embeddings, one per slot")
st.plotly_chart(vectors_heatmap(result.positions.numpy(), labels, "Learned position embeddings"),
                config=PLOTLY_CONFIG, key="lpa_positions")
st.subheader("4. Their sum: the sequence the first layer reads")
st.latex(r"z_0 = [\,x_{\mathrm{class}};\ E x_p^1;\ \dots;\ E x_p^N\,] + E_{pos}")
st.plotly_chart(vectors_heatmap(result.sequence.numpy(), labels, f"{len(labels)} tokens x {result.sequence.shape[1]}"),
                config=PLOTLY_CONFIG, key="lpa_sequence")
st.caption("After the last layer only the [CLS] row feeds the classifier: attention is how it gathers the patches. "
           "The Positional encoding page shows how alike the patch positions' embeddings are.")
