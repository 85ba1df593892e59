"""Home: what the app shows, how to read it, the bundled models."""

import streamlit as st

from ui.services import bundled_model_rows

st.title("Transformer attention explorer")
st.markdown(
    "See where a transformer looks. Type a sentence or upload an image, then read each layer's and head's "
    "attention, follow attention through the whole network with **rollout**, and ask which inputs mattered "
    "for one answer with **gradient rollout**."
)

left, middle, right = st.columns(3)
with left:
    st.subheader("Attention")
    st.markdown(
        "Each head compares a query with every key and turns the scores into weights that sum to 1:"
    )
    st.latex(r"A = \mathrm{softmax}\!\left(\frac{QK^\top}{\sqrt{d_k}}\right)")
    st.markdown("Row *i* says how much token *i* takes from every token in one layer and one head.")
with middle:
    st.subheader("Attention rollout")
    st.markdown("Residual connections carry each token forward, so add the identity, renormalise, and multiply the layers:")
    st.latex(r"J = \prod_{l} \mathrm{norm}\!\left(\bar A_l + I\right)")
    st.markdown("Row *i* of *J* estimates how much of token *i*'s final state comes from each input (Abnar & Zuidema, 2020).")
with right:
    st.subheader("Gradient rollout")
    st.markdown("Weight each head's attention by the gradient of the chosen output, keep the positive part, and roll out:")
    st.latex(r"R \leftarrow R + \mathbb{E}_h\!\left[(\nabla A_l \odot A_l)^+\right] R")
    st.markdown("It is class-specific: it shows what supported *this* answer (Chefer, Gur & Wolf, 2021).")

st.subheader("Pages")
st.page_link("app_pages/text_attention.py", label="Text attention: one layer and head as a token-by-token map", icon=":material/text_fields:")
st.page_link("app_pages/head_comparison.py", label="Head comparison: every layer and head at once, with statistics", icon=":material/grid_view:")
st.page_link("app_pages/text_rollout.py", label="Text rollout: raw attention, rollout and gradient rollout over a sentence", icon=":material/waves:")
st.page_link("app_pages/image.py", label="Image: where a Vision Transformer looks, patch by patch", icon=":material/image:")
st.page_link("app_pages/decoder.py", label="Decoder: masked self-attention, and what each generated token drew on", icon=":material/arrow_forward:")
st.page_link("app_pages/seq2seq.py", label="Encoder-decoder: cross-attention from each output token back to the source", icon=":material/swap_horiz:")

st.subheader("Learn, step by step")
st.page_link("app_pages/learn_rnn.py", label="Where attention came from: recurrent encoder-decoders with and without attention", icon=":material/history:")
st.page_link("app_pages/learn_sequences.py", label="From one-hot vectors to attention: transition tables, skips, a real head", icon=":material/linear_scale:")
st.page_link("app_pages/learn_variants.py", label="Attention variants: additive, general, dot-product, scaled, and why scale", icon=":material/tune:")
st.page_link("app_pages/learn_head.py", label="Inside one head: q, k, v, scores, mask, softmax, output", icon=":material/functions:")
st.page_link("app_pages/learn_positions.py", label="Positional encoding: the original sinusoids and the models' learned position tables", icon=":material/timeline:")
st.page_link("app_pages/learn_words.py", label="Word pulling: the same word pulled toward its context, layer by layer", icon=":material/scatter_plot:")
st.page_link("app_pages/learn_patches.py", label="Patches and the class token: how a ViT reads an image", icon=":material/grid_on:")
st.page_link("app_pages/learn_block.py", label="Inside the block: residual stream, layer norm, feed-forward, logit lens", icon=":material/layers:")
st.page_link("app_pages/learn_rollout.py", label="Rollout step by step: attention rollout and gradient rollout, one layer at a time", icon=":material/stacked_line_chart:")

st.subheader("Bundled models (offline)")
st.table(bundled_model_rows(), border="horizontal", hide_index=True)  # a static table wraps long descriptions
st.caption("Choose any other checkpoint in the sidebar: a local directory or a Hugging Face hub id (BERT, DistilBERT, "
           "RoBERTa, ELECTRA; ViT, DeiT, BEiT; GPT-2, Llama, Qwen2, Mistral, Phi, OPT, GPT-NeoX; BART, T5, Marian, mBART).")
