"""Learn: inside the block: the residual stream, layer normalisation, the feed-forward and (decoders) the logit lens."""

import numpy as np
import pandas as pd
import streamlit as st
import torch

from explain.block import (
    activation_of,
    inside_block,
    logit_lens,
    norm_step,
    top_neurons,
)
from ui import url
from ui.learn import agreement, model_and_input
from ui.notices import capture_or_message, truncation_notice
from ui.services import cached
from viz.block import activation_figure, norm_step_figure, norms_figure
from viz.plotting import PLOTLY_CONFIG, unique_labels
from viz.tables import bars, labelled_heatmap

st.title("Inside the block")
st.caption("Around attention, each layer keeps a residual stream that attention and the feed-forward add to, and "
           "normalises what they read. Every number here is read from the loaded model's own modules.")

chosen = model_and_input("lb")
if chosen is None:
    st.stop()
loaded = chosen.loaded
trace = capture_or_message(lambda: cached(("block", chosen.name, chosen.digest), lambda: inside_block(
    loaded, text=chosen.text, image=chosen.image)))
if trace is None:
    st.stop()
truncation_notice(trace.dropped_tokens, loaded)
tokens, layers = trace.tokens, trace.layers
labels = unique_labels(tokens)
token = url.selectbox("Token", list(range(len(tokens))), "lb_token", min(1, len(tokens) - 1),
                      format_func=lambda i: labels[i])

st.subheader("1. The residual stream and what each layer adds")
if trace.pre_norm:
    st.latex(r"x_{\text{mid}} = x + \text{attention}(\text{norm}_1(x)),\qquad "
             r"x_{\text{out}} = x_{\text{mid}} + \text{FFN}(\text{norm}_2(x_{\text{mid}}))")
    gap = float((trace.inputs + trace.attention + trace.mlp - trace.outputs).abs().max())
    st.markdown(f"**Pre-norm**: the layers normalise what they read, never the stream, so the stream only grows by "
                f"additions. Input + attention's addition + the feed-forward's addition = output, here {agreement(gap)}.")
else:
    st.latex(r"x_{\text{mid}} = \mathrm{LN}(x + \text{attention}(x)),\qquad "
             r"x_{\text{out}} = \mathrm{LN}(x_{\text{mid}} + \text{FFN}(x_{\text{mid}}))")
    st.markdown("**Post-norm** (the original transformer, BERT): each addition is followed by a layer norm, so the "
                "stream is rescaled twice per layer and its norm stays near the norms' gains.")
st.plotly_chart(norms_figure(trace.residual_norms[:, token].numpy(), trace.attention_norms[:, token].numpy(),
                             trace.mlp_norms[:, token].numpy(), trace.output_norms[:, token].numpy(),
                             f"Norms for token {labels[token]}"), config=PLOTLY_CONFIG, key="lb_norms")
which = url.radio("Every token", ("residual stream entering", "attention adds", "feed-forward adds"), "lb_which",
                  horizontal=True)
values = {"residual stream entering": trace.residual_norms, "attention adds": trace.attention_norms,
          "feed-forward adds": trace.mlp_norms}[which].numpy()
st.plotly_chart(labelled_heatmap(values, [f"layer {i}" for i in range(layers)], labels, f"L2 norm: {which}",
                                 f"norm ({which})", colormap="viridis", digits=1, x_title="token",
                                 text=None if values.size <= 300 else np.full(values.shape, "")),
                config=PLOTLY_CONFIG, key="lb_norm_map")

st.subheader("2. Layer normalisation of one token")
left, right = st.columns(2)
layer = url.selectbox("Layer", list(range(layers)), "lb_layer", 0, on=left)
norm_name = url.selectbox("Normalisation", trace.norm_names, "lb_norm", trace.norm_names[0], on=right)
step = capture_or_message(norm_step, loaded, trace, layer, norm_name, token)
if step is not None:
    if step.kind == "RMSNorm":
        st.latex(r"\mathrm{RMSNorm}(x) = \gamma \odot \frac{x}{\sqrt{\tfrac1D\sum_i x_i^2 + \epsilon}}")
    else:
        st.latex(r"\mathrm{LN}(x) = \gamma \odot \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta,\qquad "
                 r"\mu = \tfrac1D \textstyle\sum_i x_i,\ \sigma^2 = \tfrac1D \sum_i (x_i - \mu)^2")
    st.plotly_chart(norm_step_figure(step.input.numpy(), step.mean, step.spread, step.normalised.numpy(),
                                     step.gain.numpy(), step.bias.numpy(), step.output.numpy(),
                                     step.batch_output.numpy(), step.kind), config=PLOTLY_CONFIG, key="lb_norm_step")
    st.dataframe(pd.DataFrame({
        "": ["mean over features", "spread over features", "gain γ (mean, spread)", "bias β (mean, spread)"],
        "value": [f"{step.mean:.4g}", f"{step.spread:.4g}", f"{step.gain.mean():.3g}, {step.gain.std():.3g}",
                  f"{step.bias.mean():.3g}, {step.bias.std():.3g}"],
    }), hide_index=True)
    gap = float((step.output - step.model_output).abs().max())
    st.markdown(
        f"**{step.kind}** (ε = {step.eps:g}) normalises **each token on its own**, over its {len(step.input)} "
        f"features: its output for {labels[token]} would be the same in any sentence with the same vector. "
        f"Recomputed here, it equals the module's own output {agreement(gap)}. **Batch normalisation** would instead "
        f"normalise each feature over a batch (panel 4 uses this input's {len(tokens)} tokens as the batch): the "
        "token's result then depends on the other tokens, on the batch size and on padding, which is why "
        "transformers normalise each sequence's tokens independently.")

st.subheader("3. The feed-forward: which units fire for this token")
st.latex(r"\text{FFN}(x) = W_2\, f(W_1 x + b_1) + b_2")
indices, top_values = top_neurons(trace, layer, token, 12)
left, right = st.columns(2)
left.plotly_chart(bars(top_values.numpy(), [f"#{i}" for i in indices.tolist()],
                       f"Layer {layer}: the 12 largest of {trace.neurons.shape[-1]} units for {labels[token]}",
                       "unit's value (what W₂ reads)"), config=PLOTLY_CONFIG, key="lb_top_units")
if trace.activation_in is not None:
    units_in, units_out = trace.activation_in[layer, token], trace.activation_out[layer, token]
    low, high = float(units_in.min()), float(units_in.max())
    grid = torch.linspace(min(low, -3.0), max(high, 3.0), 241)
    curve = capture_or_message(activation_of, loaded, layer, grid)
    if curve is not None:
        right.plotly_chart(activation_figure(grid.numpy(), curve.numpy(), units_in.numpy(), units_out.numpy(),
                                             trace.activation,
                                             None if trace.gated else indices.numpy()), config=PLOTLY_CONFIG,
                           key="lb_activation")
share = float((trace.neurons[layer, token] > 0).float().mean())
st.caption(f"{share:.0%} of this token's units are positive in layer {layer}. The activation is the one non-linear "
           "step of the layer (ReLU in the original transformer, GELU in BERT, GPT-2 and ViT, SiLU in Llama)."
           + (" This feed-forward is gated (SwiGLU): a unit is activation(gate) × up, so the curve shows the gate's "
              "activation and the bars the units W₂ reads." if trace.gated else ""))

st.subheader("4. The logit lens (decoders)")
if not loaded.spec.kind.causal:
    st.info("The logit lens reads the residual stream through a decoder's final normalisation and unembedding: "
            "choose **Decoder** above to see it.")
    st.stop()
lens = capture_or_message(lambda: cached(("lens", chosen.name, chosen.digest), lambda: logit_lens(loaded, trace, top=5)))
if lens is None:
    st.stop()
st.latex(r"\text{lens}_l(t) = \mathrm{softmax}\big(W_U\, \mathrm{norm}_{\text{final}}(x_l(t))\big)")
st.markdown(f"The model's own final norm and unembedding applied to the stream after the embeddings and after each "
            f"layer. The last row is the model's own prediction (equal {agreement(lens.max_difference)}).")
rows = ["embeddings"] + [f"after layer {i}" for i in range(layers)]
top_words = np.array([[layer_tokens[0] for layer_tokens in row] for row in lens.top_tokens])
st.plotly_chart(labelled_heatmap(lens.top_probs[..., 0].numpy(), rows, labels, "Top next token per layer and position",
                                 "top token's probability", colormap="viridis", text=top_words, x_title="position"),
                config=PLOTLY_CONFIG, key="lb_lens")
ranks = lens.ranks.numpy()
st.plotly_chart(labelled_heatmap(np.log10(ranks + 1), rows, labels,
                                 "Rank of the model's final prediction in each layer's lens (0 = top)",
                                 "log₁₀(rank + 1)", colormap="magma", text=ranks.astype(str), x_title="position",
                                 hover_label="log₁₀(rank + 1)"), config=PLOTLY_CONFIG, key="lb_ranks")
position = url.selectbox("Position", list(range(len(tokens))), "lb_position", len(tokens) - 1,
                         format_func=lambda i: labels[i])
st.dataframe(pd.DataFrame([[f"{word} ({p:.2f})" for word, p in zip(lens.top_tokens[row][position],
                                                                 lens.top_probs[row, position].tolist())]
                           for row in range(layers + 1)], index=rows, columns=[f"#{i + 1}" for i in range(5)]),
             width="stretch")
