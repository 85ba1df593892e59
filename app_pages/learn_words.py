"""Learn: word pulling, each word's hidden state through the layers."""

import pandas as pd
import streamlit as st

from explain.learn import probe_similarity, word_trajectories
from models import TEXT
from ui import url, widgets
from ui.notices import capture_or_message
from ui.services import cached, load_model
from viz.learn import trajectories_figure
from viz.plotting import PLOTLY_CONFIG

st.title("Word pulling")
st.caption("Through attention, a word's meaning is pulled toward its context: the same word starts from the same "
           "embedding and ends somewhere else in each sentence.")

name = widgets.chosen_model(TEXT)
loaded = load_model(name)
if loaded is None:
    st.stop()
left, right = st.columns(2)
first = url.text_input("First sentence", "lw_first", "please buy an apple and an orange", on=left)
second = url.text_input("Second sentence", "lw_second", "apple released a new phone", on=right)
left, right = st.columns(2)
word = url.text_input("Word to follow (in both sentences)", "lw_word", "apple", on=left).strip()
probes = list(widgets.parse_labels(url.text_input("Probe words", "lw_probes", "fruit, company, phone, food, technology",
                                                  on=right)))
if not probes:
    st.warning("Type at least one probe word to compare with.")
    st.stop()

for sentence, column in zip((first, second), st.columns(2)):
    with column:
        paths = capture_or_message(lambda s=sentence: cached(("trajectories", name, s), lambda: word_trajectories(loaded, s)))
        if paths is None:
            continue
        st.plotly_chart(trajectories_figure(paths.points, paths.words, highlight=word,
                                            title=f"“{sentence}” ({paths.explained:.0%} of the variance in 2-D)"),
                        config=PLOTLY_CONFIG, key=f"lw_paths_{sentence}")
        table = capture_or_message(lambda s=sentence: cached(("probes", name, s, word, tuple(probes)),
                                                             lambda: probe_similarity(loaded, s, word, probes)))
        if table is not None:
            layers, values = table
            st.markdown(f"Cosine similarity of **{word}** here to each probe word, layer by layer:")
            st.dataframe(pd.DataFrame(values, index=layers, columns=probes).round(3), width="stretch")
st.caption("Each path runs from a word's embedding (circle) through every layer to the last (diamond); PCA is fitted "
           "on all of one sentence's states, so distances within a plot are comparable. The table reads the word's "
           "state at each layer against the probe word read on its own at the same layer.")
