"""Learn: inside one attention head, step by step, with the model's own numbers."""

import numpy as np
import pandas as pd
import streamlit as st

from ui import url, widgets
from ui.learn import head_step_input
from viz.learn import key_bars, vectors_heatmap
from viz.plotting import PLOTLY_CONFIG

st.title("Inside one head")
st.caption("One query token, one head, one layer: where its attention weights come from. Every number is the "
           "loaded model's own (the last column equals what the model returns).")

step = head_step_input("lh")
if step is None:
    st.stop()
result, loaded = step.result, step.loaded
tokens, keys, token = result.tokens, result.key_tokens, result.token
d = result.q.shape[-1]

st.subheader("1. The token's hidden state goes in")
norm = ("the residual stream after the block's pre-attention layer norm" if loaded.spec.kind.causal or
        loaded.spec.kind.reads_images else
        "the previous layer's output (BERT normalises after each block, so nothing more happens here)")
st.markdown(f"The head reads **{norm}**: one row per token, {result.hidden.shape[1]} numbers each.")
st.plotly_chart(vectors_heatmap(result.hidden.numpy(), tokens, "Hidden states x (the row of the query outlined)",
                                highlight=token), config=PLOTLY_CONFIG, key="lh_hidden")

st.subheader("2. Query, keys and values")
st.latex(r"q = W_q x + b_q,\quad k_j = W_k x_j + b_k,\quad v_j = W_v x_j + b_v")
if result.rotary:
    st.info("This model uses rotary position embeddings: q and k below are shown **after** their rotation by each "
            "token's position, which is what the dot product sees.")
left, right = st.columns(2)
left.plotly_chart(vectors_heatmap(result.q.numpy(), tokens, f"q (head {result.head}, {d} numbers per token)",
                                  highlight=token), config=PLOTLY_CONFIG, key="lh_q")
right.plotly_chart(vectors_heatmap(result.k.numpy(), keys, "k (one per key token)"), config=PLOTLY_CONFIG, key="lh_k")
if result.kv_heads < result.heads:
    st.caption(f"Grouped-query attention: {result.heads} query heads share {result.kv_heads} key/value heads.")

st.subheader("3. Scaled dot products, the mask, the softmax")
st.latex(r"s_j = \frac{q \cdot k_j}{\sqrt{d}},\qquad a_j = \frac{e^{s_j}}{\sum_i e^{s_i}}\quad(s_j = -\infty \text{ where masked})")
dots = (result.q[token] @ result.k.T).numpy()
table = pd.DataFrame({
    "key": keys, "q·k": dots, "× scale": result.scores.numpy(), "masked": result.mask.numpy(),
    "softmax": result.weights.numpy(), "model's weight": result.model_weights.numpy(),
})
if url.toggle("Show the dot products as bars", "lh_bars"):
    st.plotly_chart(key_bars(dots, keys, result.mask.numpy(), f"q·k for query {token} ({tokens[token]})", "q·k"),
                    config=PLOTLY_CONFIG, key="lh_dots")
st.dataframe(table.style.format({"q·k": "{:.4f}", "× scale": "{:.4f}", "softmax": "{:.4f}", "model's weight": "{:.4f}"}),
             hide_index=True, width="stretch")
st.caption(f"Scale = {result.scaling:.5f} (1/√{d} = {d ** -0.5:.5f}). "
           + ("Masked keys are future positions: −∞ before the softmax gives them weight exactly 0. "
              if result.mask.any() else "Nothing is masked here. ")
           + f"Largest difference from the model's own weights: {float((result.weights - result.model_weights).abs().max()):.1e}.")

st.subheader("4. The weighted sum of values")
st.latex(r"\text{head output} = \sum_j a_j\, v_j")
weighted = result.weights.numpy()[:, None] * result.v.numpy()
left, right = st.columns(2)
left.plotly_chart(vectors_heatmap(weighted, keys, "a_j · v_j (each value times its weight)"), config=PLOTLY_CONFIG,
                  key="lh_weighted")
right.plotly_chart(vectors_heatmap(result.context.numpy()[None], [tokens[token]], "Their sum: this head's output",
                                   height=220), config=PLOTLY_CONFIG, key="lh_context")

st.subheader("5. Heads side by side, then W_o")
st.latex(r"\text{attention}(x) = W_o\,[\,\text{head}_1; \dots; \text{head}_H\,] + b_o")
heads = result.concatenated.numpy().reshape(result.heads, -1)
st.plotly_chart(vectors_heatmap(heads, [f"head {h}" for h in range(result.heads)],
                                "Every head's output for this token (concatenated: the input of W_o)", highlight=result.head),
                config=PLOTLY_CONFIG, key="lh_heads")
st.plotly_chart(vectors_heatmap(result.projected.numpy()[None], [tokens[token]],
                                f"W_o applied: the attention output ({result.projected.shape[0]} numbers), added to the "
                                "residual stream", height=220), config=PLOTLY_CONFIG, key="lh_projected")
st.download_button("These numbers (NPZ)", widgets.npz_bytes(
    hidden=result.hidden.numpy(), q=result.q.numpy(), k=result.k.numpy(), v=result.v.numpy(), scores=result.scores.numpy(),
    mask=result.mask.numpy(), weights=result.weights.numpy(), context=result.context.numpy(), tokens=np.array(tokens)),
    file_name="head.npz", mime="application/octet-stream")
