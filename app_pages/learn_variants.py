"""Learn: attention variants (Bahdanau, Luong, Vaswani) on one head's own vectors, and why the scaling by 1/sqrt(d)."""

import numpy as np
import pandas as pd
import streamlit as st

from explain.qkv import head_internals
from explain.variants import attention_variants, head_scaling, scaling_experiment
from ui import url, widgets
from ui.learn import agreement, model_and_input
from ui.notices import capture_or_message, truncation_notice
from ui.services import cached
from viz.plotting import PLOTLY_CONFIG, unique_labels
from viz.tables import labelled_heatmap
from viz.variants import heads_entropy_figure, scaling_figure

st.title("Attention variants")
st.caption("Before transformers, attention came in several forms: additive (Bahdanau 2015), location-based, general "
           "and dot-product (Luong 2015), then scaled dot-product (Vaswani 2017). Here they all score the same query "
           "against the same keys: the states one head of the loaded model reads.")

chosen = model_and_input("lv")
if chosen is None:
    st.stop()
spec = chosen.loaded.spec
layer, head = widgets.layer_head("lv", spec.layers, spec.heads, allow_mean=False)
probe = capture_or_message(lambda: cached(("qkv", chosen.name, chosen.digest, layer, head, 0), lambda: head_internals(
    chosen.loaded, text=chosen.text, image=chosen.image, layer=layer, head=head, token=0)))
if probe is None:
    st.stop()
truncation_notice(probe.dropped_tokens, chosen.loaded)
labels = unique_labels(probe.tokens)
left, right = st.columns([1, 2])
token = url.selectbox("Query token", list(range(len(labels))), "lv_token", min(3, len(labels) - 1), on=left,
                      format_func=lambda i: labels[i])
keys = url.multiselect("Keys (empty: every key)", labels, "lv_keys", (), on=right)
picked = [labels.index(k) for k in keys] or None
result = capture_or_message(lambda: cached(
    ("variants", chosen.name, chosen.digest, layer, head, token, tuple(picked or ())),
    lambda: attention_variants(chosen.loaded, text=chosen.text, image=chosen.image, layer=layer, head=head,
                               token=token, keys=picked)))
if result is None:
    st.stop()

st.subheader(f"1. Six scores for query {labels[token]}")
st.markdown(f"$s_t$ is the query's hidden state and $h_i$ each key's ({result.state_dim} numbers, the input of layer "
            f"{layer}'s attention); $W_q$, $W_k$ are head {head}'s projections to d = {result.head_dim}.")
for v in result.variants:
    st.markdown(f"- **{v.label}**: ${v.formula}$. {v.parameters}" + (f" Fit R² = {v.fit:.3f}." if v.fit is not None else ""))
key_labels = [unique_labels(probe.key_tokens)[k] for k in result.keys]
weights = np.stack([v.weights.numpy() for v in result.variants] + [result.model_weights.numpy()])
rows = [v.label for v in result.variants] + ["the model's own attention"]
st.plotly_chart(labelled_heatmap(weights, rows, key_labels, f"Softmax weights over the keys (query {labels[token]})",
                                 "softmax weight", colormap="viridis", zmin=0, zmax=1, x_title="key"),
                config=PLOTLY_CONFIG, key="lv_weights")
scores = pd.DataFrame({v.label: v.scores.numpy() for v in result.variants}, index=key_labels).T
st.dataframe(scores.style.format("{:.3g}"), width="stretch")
st.caption("Scores differ in scale from variant to variant (only their differences within a row matter to the "
           "softmax), so they are listed, not coloured. "
           + ("Masked keys (the query's future) get weight 0 in every variant. " if result.mask.any() else "")
           + "Scaled dot-product is the model's own computation; general without the 1/√d is the same q·k, "
           "sharper." + (" This model rotates q and k by position (RoPE), which W_a does not." if result.rotary else ""))

st.subheader("2. Why divide by √d")
st.markdown("With independent entries of variance 1, $q\\cdot k = \\sum_{i=1}^d q_i k_i$ is a sum of d terms of "
            "variance 1: its variance is d and its spread √d. Unscaled, the softmax of such scores puts almost all "
            "its weight on one key as d grows, and its gradient vanishes; dividing by √d keeps the spread at 1.")
count = url.slider("Keys per softmax", 4, 64, "lv_keys_count", 16, step=4)
curve = cached(("scaling", count), lambda: scaling_experiment(keys=count))
heads = capture_or_message(lambda: cached(("head-scaling", chosen.name, chosen.digest), lambda: head_scaling(
    chosen.loaded, text=chosen.text, image=chosen.image)))
st.plotly_chart(scaling_figure(
    curve.dims.numpy(), curve.spread.numpy(), curve.entropy.numpy(), curve.entropy_scaled.numpy(),
    curve.top_weight.numpy(), curve.top_weight_scaled.numpy(), count,
    None if heads is None else heads.prefix_dims.numpy(),
    None if heads is None else heads.prefix_spread.reshape(-1, len(heads.prefix_dims)).numpy(), chosen.name),
    config=PLOTLY_CONFIG, key="lv_scaling")
st.dataframe(pd.DataFrame({"d": curve.dims.numpy(), "spread of q·k": curve.spread.numpy(),
                           "spread / √d": (curve.spread / curve.dims.float().sqrt()).numpy(),
                           "entropy unscaled": curve.entropy.numpy(), "entropy scaled": curve.entropy_scaled.numpy(),
                           "largest weight unscaled": curve.top_weight.numpy(),
                           "largest weight scaled": curve.top_weight_scaled.numpy()}).style.format(precision=3),
             hide_index=True, width="stretch")
st.caption(f"{curve.trials} random queries against {count} random keys per d (seed 0). The purple lines are "
           f"{chosen.name}'s own heads: the dot product over the first c of their d = "
           f"{heads.head_dim if heads else '?'} coordinates, divided by the spread of q's and k's entries, so that "
           "independent entries would give √c"
           + ("" if heads is None else f"; they reach {float(heads.unit_spread.mean()):.2f} on average at c = d, against "
              f"√d = {heads.head_dim ** 0.5:.2f}: a head's coordinates are not independent, so 1/√d keeps the scores "
              "in range without making their spread exactly 1") + ".")
if heads is not None:
    st.plotly_chart(heads_entropy_figure(heads.entropy.numpy(), heads.entropy_scaled.numpy(),
                                         float(np.log(max(heads.visible_keys, 1.0)))),
                    config=PLOTLY_CONFIG, key="lv_heads")
    st.markdown(
        f"On this input, {chosen.name}'s heads have q·k spreads of {heads.spread.min():.2f} to {heads.spread.max():.2f}"
        f" (√d = {heads.head_dim ** 0.5:.2f}). Without the scale their mean entropy would be "
        f"{heads.entropy.mean():.2f} nats and their largest weight {heads.top_weight.mean():.2f} on average; with "
        f"it, as the model runs, {heads.entropy_scaled.mean():.2f} nats and {heads.top_weight_scaled.mean():.2f} "
        f"(recomputed weights equal the model's {agreement(heads.max_difference)}).")
