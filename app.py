"""Entry point: `streamlit run app.py`. Builds the navigation and the sidebar every page shares."""

from __future__ import annotations

from pathlib import Path

# pandas is imported in full here, before any page draws and before the warm-up thread starts: plotly takes
# pandas from sys.modules without the import lock, and a page drawing while another thread was still
# importing pandas failed with "partially initialized module 'pandas' has no attribute 'Series'".
import pandas  # noqa: F401
import streamlit as st
import torch

import models
from models.runtime import apply_thread_policy, tune_allocator
from models.settings import read_settings
from ui import url
from ui.services import warm_up
from ui.widgets import model_picker

tune_allocator()  # captures reuse freed memory instead of faulting it in again (models/runtime.py)
apply_thread_policy()  # one torch thread per model run: no oversubscribed cores under load (models/runtime.py)

# A local icon: ":material/..." page icons are fetched from a font CDN, which fails (and logs errors) offline.
ICON = Path(__file__).resolve().parent / "ui" / "icon.png"
st.set_page_config(page_title="Transformer attention explorer", page_icon=str(ICON), layout="wide")

explore = [
    st.Page("app_pages/home.py", title="Home", icon=":material/home:", default=True),  # served at "/"
    st.Page("app_pages/text_attention.py", title="Text attention", icon=":material/text_fields:", url_path="text-attention"),
    st.Page("app_pages/head_comparison.py", title="Head comparison", icon=":material/grid_view:", url_path="heads"),
    st.Page("app_pages/text_rollout.py", title="Text rollout", icon=":material/waves:", url_path="text-rollout"),
    st.Page("app_pages/image.py", title="Image", icon=":material/image:", url_path="image"),
    st.Page("app_pages/decoder.py", title="Decoder", icon=":material/arrow_forward:", url_path="decoder"),
    st.Page("app_pages/seq2seq.py", title="Encoder-decoder", icon=":material/swap_horiz:", url_path="encoder-decoder"),
]
learn = [
    st.Page("app_pages/learn_rnn.py", title="Where attention came from", icon=":material/history:", url_path="learn-rnn"),
    st.Page("app_pages/learn_sequences.py", title="From one-hot vectors to attention", icon=":material/linear_scale:",
            url_path="learn-sequences"),
    st.Page("app_pages/learn_variants.py", title="Attention variants", icon=":material/tune:", url_path="learn-variants"),
    st.Page("app_pages/learn_head.py", title="Inside one head", icon=":material/functions:", url_path="learn-head"),
    st.Page("app_pages/learn_positions.py", title="Positional encoding", icon=":material/timeline:", url_path="learn-positions"),
    st.Page("app_pages/learn_words.py", title="Word pulling", icon=":material/scatter_plot:", url_path="learn-words"),
    st.Page("app_pages/learn_patches.py", title="Patches and the class token", icon=":material/grid_on:", url_path="learn-patches"),
    st.Page("app_pages/learn_block.py", title="Inside the block", icon=":material/layers:", url_path="learn-block"),
    st.Page("app_pages/learn_rollout.py", title="Rollout step by step", icon=":material/stacked_line_chart:", url_path="learn-rollout"),
]
navigation = st.navigation({"Explore": explore, "Learn": learn}, expanded=True)  # every Learn page in sight
try:
    read_settings()  # the operator's settings (models/settings.py): a value that cannot be read stops every page
except ValueError as error:
    st.error(str(error))
    st.stop()
warm_up(models.TEXT.default_model)  # the first page most visitors open needs it: load it while the page draws

st.sidebar.markdown("### Models")
for kind in models.TRANSFORMER_KINDS:
    model_picker(kind)
if torch.cuda.is_available():  # half precision is a GPU option; the CPU keeps float32
    url.selectbox("Precision (GPU)", ("float32", "float16", "bfloat16"), "precision", "float32", on=st.sidebar,
                  help="Half precision halves the memory of weights and attention maps; float32 is exact.")
st.sidebar.caption(
    "Attention maps, attention rollout and gradient rollout for text encoders, Vision Transformers, decoders "
    "and encoder-decoders. Bundled models run offline; others download on first use where a network exists."
)
navigation.run()
