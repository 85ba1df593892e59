"""Learn: positional encoding, from the original transformer's sinusoids to the models' learned tables."""

import numpy as np
import streamlit as st

from explain.learn import position_table, similarity, sinusoidal_encoding
from models import DECODER, IMAGE, TEXT
from ui import url, widgets
from ui.services import load_model
from viz.heatmaps import attention_heatmap, head_grid
from viz.plotting import PLOTLY_CONFIG

st.title("Positional encoding")
st.caption("Attention by itself ignores order: shuffle the tokens and each one gets the same weights. A position "
           "code puts order back in.")


def code_and_similarity(table: np.ndarray, title: str, key: str) -> None:
    """The position x dimension code and the dot product between every two positions (figures 26-27)."""
    positions = [str(p) for p in range(table.shape[0])]
    left, right = st.columns(2)
    left.plotly_chart(attention_heatmap(table, [str(d) for d in range(table.shape[1])], positions, title=f"{title}: code",
                                        colormap="viridis", x_title="dimension", y_title="position", value_label="value"),
                      config=PLOTLY_CONFIG, key=f"{key}_code")
    right.plotly_chart(attention_heatmap(similarity(torch_of(table)).numpy(), positions, positions,
                                         title=f"{title}: dot product between positions", colormap="viridis",
                                         x_title="position", y_title="position", value_label="dot product"),
                       config=PLOTLY_CONFIG, key=f"{key}_similarity")


def torch_of(array: np.ndarray):  # noqa: ANN201
    import torch

    return torch.as_tensor(array)


st.header("Sinusoids (the original transformer, and GPT's figure)")
st.latex(r"PE_{p,\,2i} = \sin\!\left(\frac{p}{10000^{2i/d}}\right),\qquad PE_{p,\,2i+1} = \cos\!\left(\frac{p}{10000^{2i/d}}\right)")
left, right = st.columns(2)
positions = url.slider("Positions", 8, 256, "lp_positions", 64, on=left, step=8)
dim = url.slider("Dimensions", 16, 512, "lp_dim", 128, on=right, step=16)
code_and_similarity(sinusoidal_encoding(positions, dim).numpy(), "Sinusoids", "lp_sin")
st.markdown("Each position gets a vector of sines and cosines of falling frequencies, **added** to its token "
            "embedding. The dot product between two positions depends only on how far apart they are, so nearby "
            "positions look alike.")

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
        code_and_similarity(table.table[:shown].numpy(), f"{name}, first {shown} positions", f"lp_{kind.name}")

name = widgets.chosen_model(IMAGE)
st.header(f"Vision Transformer: {name}")
loaded = load_model(name)
if loaded is not None and loaded.spec.kind.reads_images:
    table = position_table(loaded)
    st.markdown(table.how)
    rows, cols = loaded.spec.patch_grid
    patches = table.table[table.prefix:]
    cosine = similarity(patches, cosine=True).numpy().reshape(rows, cols, rows, cols)
    st.plotly_chart(head_grid(cosine, title="Cosine similarity of each patch's position embedding to every patch's "
                              "(figure 28): one small map per patch, at its place in the grid",
                              colormap="viridis", cells="image", value_label="cosine",
                              titles=[f"{r},{c}" for r in range(rows) for c in range(cols)]),
                    config=PLOTLY_CONFIG, key="lp_patches")
