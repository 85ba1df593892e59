"""Learn: word pulling, each word's hidden state through the layers (figure 12)."""

import pandas as pd
import streamlit as st

from explain.learn import probe_similarity, word_trajectories
from ui import params
from ui.state import cached, capture_or_message, load_model
from viz.learn import trajectories_figure
from viz.plotting import PLOTLY_CONFIG

st.title("Word pulling")
st.caption("Through attention, a word's meaning is pulled toward its context: the same word starts from the same "
           "embedding and ends somewhere else in each sentence.")

name = st.session_state.get("text_model", "minilm")
loaded = load_model(name)
if loaded is None:
    st.stop()
params.restore("lw_first", "please buy an apple and an orange")
params.restore("lw_second", "apple released a new phone")
params.restore("lw_word", "apple")
params.restore("lw_probes", "fruit, company, phone, food, technology")
left, right = st.columns(2)
first = left.text_input("First sentence", key="lw_first")
second = right.text_input("Second sentence", key="lw_second")
left, right = st.columns(2)
word = left.text_input("Word to follow (in both sentences)", key="lw_word").strip()
probes = [p.strip() for p in right.text_input("Probe words", key="lw_probes").split(",") if p.strip()]
params.publish("lw_first", "lw_second", "lw_word", "lw_probes")
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
