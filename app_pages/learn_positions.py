"""Learn: positional encoding, from the original transformer's sinusoids to the models' learned tables."""

import numpy as np
import streamlit as st
import torch

from explain.learn import position_table, similarity, sinusoidal_encoding
from models import DECODER, IMAGE, TEXT
from ui import url, widgets
from ui.services import load_model
from viz.heatmaps import head_grid, table_heatmap
from viz.plotting import PLOTLY_CONFIG

st.title("Positional encoding")
st.caption("Attention by itself ignores order: shuffle the tokens and each one gets the same weights. A position "
           "code puts order back in.")


def code_and_similarity(table: np.ndarray, title: str, key: str, robust: float | None = None) -> None:
    """The position x dimension code and the cosine similarity between every two positions."""
    left, right = st.columns(2)
    left.plotly_chart(table_heatmap(table, f"{title}: code", "dimension", "position", "value", colormap="rdbu",
                                    robust=robust, symmetric=True), config=PLOTLY_CONFIG, key=f"{key}_code")
    right.plotly_chart(table_heatmap(similarity(torch.as_tensor(table), cosine=True).numpy(),
                                     f"{title}: cosine similarity between positions", "position", "position",
                                     "cosine"), config=PLOTLY_CONFIG, key=f"{key}_similarity")


st.header("Sinusoids (the original transformer's position code)")
st.latex(r"PE_{p,\,2i} = \sin\!\left(\frac{p}{10000^{2i/d}}\right),\qquad PE_{p,\,2i+1} = \cos\!\left(\frac{p}{10000^{2i/d}}\right)")
left, right = st.columns(2)
positions = url.slider("Positions", 8, 256, "lp_positions", 64, on=left, step=8)
dim = url.slider("Dimensions", 16, 512, "lp_dim", 128, on=right, step=16)
code_and_similarity(sinusoidal_encoding(positions, dim).numpy(), "Sinusoids", "lp_sin")
st.markdown("Each position gets a vector of sines and cosines of falling frequencies, **added** to its token "
            "embedding. The similarity of two positions depends only on how far apart they are, so nearby "
            "positions look alike. (Cosine similarity: the dot product of the two vectors scaled to length 1, which "
            "for sinusoids, whose vectors all have the same length, is the dot product up to a constant.)")

for kind in (TEXT, DECODER):
    name = widgets.chosen_model(kind)
    st.header(f"{kind.label}: {name}")
    loaded = load_model(name)
    if loaded is None:
        continue
    table = position_table(loaded)
    st.markdown(table.how)
    if table.table is not None:
        shown = min(positions, table.table.shape[0])
        code_and_similarity(table.table[:shown].numpy(), f"{name}, first {shown} positions", f"lp_{kind.name}",
                            robust=0.01)
        st.caption("A learned table's first positions carry much larger values than the rest: the colours are "
                   "clipped to the 1st-99th percentiles so that the other rows show their pattern.")

name = widgets.chosen_model(IMAGE)
st.header(f"Vision Transformer: {name}")
loaded = load_model(name)
if loaded is not None and loaded.spec.kind.reads_images:
    table = position_table(loaded)
    st.markdown(table.how)
    rows, cols = loaded.spec.patch_grid
    patches = table.table[table.prefix:]
    cosine = similarity(patches, cosine=True).numpy().reshape(rows, cols, rows, cols)
    st.plotly_chart(head_grid(cosine, title="Cosine similarity of each patch's position embedding to every patch's: "
                              "one small map per patch, at its place in the grid",
                              colormap="viridis", cells="image", value_label="cosine",
                              titles=[f"{r},{c}" for r in range(rows) for c in range(cols)]),
                    config=PLOTLY_CONFIG, key="lp_patches")
