"""Home: what the app shows, how to read it, the bundled models."""

import streamlit as st

from ui.pages import pages_in
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

for group, heading in (("Explore", "Pages"), ("Learn", "Learn, step by step")):
    st.subheader(heading)
    for page in pages_in(group):
        if page.url_path:  # not Home itself
            st.page_link(page.path, label=f"{page.title}: {page.summary}", icon=page.icon)

st.subheader("Bundled models (offline)")
st.table(bundled_model_rows(), border="horizontal", hide_index=True)  # a static table wraps long descriptions
st.caption("Choose any other checkpoint in the sidebar: a local directory or a Hugging Face hub id (BERT, DistilBERT, "
           "RoBERTa, ELECTRA; ViT, DeiT, BEiT; GPT-2, Llama, Qwen2, Mistral, Phi, OPT, GPT-NeoX; BART, T5, Marian, mBART).")
