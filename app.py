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
from ui.pages import PageInfo, pages_in
from ui.services import warm_up
from ui.widgets import model_picker

tune_allocator()  # captures reuse freed memory instead of faulting it in again (models/runtime.py)
apply_thread_policy()  # one torch thread per model run: no oversubscribed cores under load (models/runtime.py)

# A local icon: ":material/..." page icons are fetched from a font CDN, which fails (and logs errors) offline.
ICON = Path(__file__).resolve().parent / "ui" / "icon.png"
st.set_page_config(page_title="Transformer attention explorer", page_icon=str(ICON), layout="wide")


def _page(page: PageInfo) -> st.Page:
    if not page.url_path:  # the default page, served at "/"
        return st.Page(page.path, title=page.title, icon=page.icon, default=True)
    return st.Page(page.path, title=page.title, icon=page.icon, url_path=page.url_path)


navigation = st.navigation({group: [_page(page) for page in pages_in(group)] for group in ("Explore", "Learn")},
                           expanded=True)  # every Learn page in sight
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
