"""Learn: from one-hot vectors to attention, Brandon Rohrer's walk as the lecture notes tell it."""

import numpy as np
import pandas as pd
import streamlit as st
import torch

from explain.sequences import (
    LECTURE_CORPORA,
    embedding_as_one_hot,
    one_hot,
    parse_corpus,
    select_rows,
    skip_table,
    skip_vote,
    table_growth,
    transition_table,
)
from models import DECODER
from ui import url, widgets
from ui.learn import agreement
from ui.notices import capture_or_message
from ui.services import decoder_capture
from viz.plotting import PLOTLY_CONFIG, unique_labels
from viz.sequences import growth_figure
from viz.tables import bars, labelled_heatmap

OWN = "my own sentences"

st.title("From one-hot vectors to attention")
st.caption("Brandon Rohrer's “Transformers from scratch”, as the lecture notes tell it: a word as a one-hot vector, "
           "sequence models as tables of what follows what, and attention as a selective second-order model with "
           "skips, on a small corpus of the notes' own sentences.")

names = list(LECTURE_CORPORA) + [OWN]
choice = url.selectbox("Corpus", names, "lsq_corpus", names[2])
text = LECTURE_CORPORA.get(choice, "")
if choice == OWN:
    text = url.text_area("Sentences, one per line (“3 x …” in front counts a sentence three times)", "lsq_text",
                         LECTURE_CORPORA[names[2]], height=110)
corpus = capture_or_message(parse_corpus, text)
if corpus is None:
    st.stop()
vocabulary = corpus.vocabulary
sentences = [" ".join(words) for words in corpus.sentences]
st.markdown(f"**{len(vocabulary)} words**: {', '.join(vocabulary)}. " + "; ".join(
    f"“{s}” × {w:g}" for s, w in zip(sentences, corpus.weights)) + ".")
sentence = url.selectbox("Sentence", list(range(len(sentences))), "lsq_sentence", 0, format_func=lambda i: sentences[i])
words = corpus.sentences[sentence]
labels = unique_labels(words)
indices = [vocabulary.index(word) for word in words]

st.subheader("1. One-hot vectors pick out a row")
notes_rows, notes_product = select_rows([0, 3, 2], torch.tensor([[.2, .9], [.7, 0], [.8, .3], [.1, .4]]))


def latex_matrix(matrix: torch.Tensor) -> str:
    return r"\begin{bmatrix}" + r"\\".join(" & ".join(f"{v:g}" for v in row.tolist()) for row in matrix) + r"\end{bmatrix}"


st.latex(latex_matrix(notes_rows) + latex_matrix(torch.tensor([[.2, .9], [.7, 0], [.8, .3], [.1, .4]]))
         + " = " + latex_matrix(notes_product))
st.markdown("A word is a row of zeros with a single 1 at its place in the vocabulary. Multiplied with a matrix, it "
            "pulls out that matrix's row: the notes' example above picks rows 1, 4 and 3. The sentence, one row per word:")
hot = one_hot(indices, len(vocabulary)).numpy()
st.plotly_chart(labelled_heatmap(hot, labels, vocabulary, f"One-hot rows of “{sentences[sentence]}”", "1 = this word",
                                 digits=0, x_title="vocabulary"), config=PLOTLY_CONFIG, key="lsq_one_hot")

st.subheader("2. First order: what follows each word")
first = transition_table(corpus, 1)
st.plotly_chart(labelled_heatmap(first.probabilities.numpy(), [c[0] for c in first.contexts], vocabulary,
                                 "Transition table: P(next word | this word), counted in the corpus", "probability",
                                 x_title="next word", y_title="this word"), config=PLOTLY_CONFIG, key="lsq_first")
st.plotly_chart(labelled_heatmap(hot @ first.probabilities.numpy(), labels, vocabulary,
                                 "one-hot(sentence) × table: each word's row is its prediction", "probability",
                                 x_title="next word"), config=PLOTLY_CONFIG, key="lsq_first_product")
st.caption("A first-order (Markov) model looks at the last word only; where a word is followed by several, it can "
           "only give their proportions.")

st.subheader("3. Second order: the last two words")
second = transition_table(corpus, 2)
st.plotly_chart(labelled_heatmap(second.probabilities.numpy(), [" ".join(c) for c in second.contexts], vocabulary,
                                 "P(next word | last two words): the pairs the corpus shows", "probability",
                                 x_title="next word", y_title="last two words"), config=PLOTLY_CONFIG, key="lsq_second")
possible, observed = table_growth(corpus, 5)
st.plotly_chart(growth_figure(possible, observed, len(vocabulary)), config=PLOTLY_CONFIG, key="lsq_growth")
st.caption(f"With {len(vocabulary)} words a second-order table has {possible[1]:,} possible rows and an order-n table "
           f"{len(vocabulary)}ⁿ; reaching back nine words would take {len(vocabulary) ** 9:,} rows.")

st.subheader("4. Second order with skips: every earlier word votes")
last_positions = list(range(1, len(words) - 1)) or [len(words) - 1]
default = words.index("ran") if "ran" in words[1:-1] else last_positions[-1]
position = url.selectbox("Predict what follows", last_positions, "lsq_position", default,
                         format_func=lambda i: "… " + " ".join(words[max(0, i - 3):i + 1]))
context = words[:position + 1]
skips = skip_table(corpus)
vote = capture_or_message(skip_vote, skips, context)
if vote is None:
    st.stop()
mode = url.radio("Weights of the votes", ("every earlier word: 1", "the notes' mask: decisive votes only", "my own"),
                 "lsq_mode", horizontal=True)
weights = {"every earlier word: 1": np.ones(len(vote.earlier)),
           "the notes' mask: decisive votes only": vote.decisive.numpy()}.get(mode)
if weights is None:
    columns = st.columns(min(len(vote.earlier), 6))
    weights = np.array([url.slider(word, 0.0, 1.0, f"lsq_w_{word}", 1.0, step=0.1, on=columns[i % len(columns)])
                        for i, word in enumerate(vote.earlier)])
vote = skip_vote(skips, context, weights.tolist())
st.latex(r"P(\text{next}) \propto \sum_{w \text{ earlier}} \text{weight}_w \cdot \text{row}(w, \text{"
         + vote.last + r"})")
st.plotly_chart(labelled_heatmap(vote.rows.numpy(), [f"{w}, {vote.last}" for w in vote.earlier], vocabulary,
                                 f"Each earlier word's vote for what follows “{vote.last}”", "probability",
                                 x_title="next word", y_title="feature (earlier word, last word)"),
                config=PLOTLY_CONFIG, key="lsq_skips")
left, right = st.columns(2)
left.plotly_chart(bars(vote.weights.numpy() * vote.activity.numpy(), vote.earlier, "Weight of each vote",
                       "weight × seen in the corpus"), config=PLOTLY_CONFIG, key="lsq_weights")
best = int(vote.prediction.argmax()) if vote.prediction.sum() > 0 else None
right.plotly_chart(bars(vote.prediction.numpy(), vocabulary, f"The weighted vote: what follows “{vote.last}”",
                        "share of the vote", highlight=best), config=PLOTLY_CONFIG, key="lsq_vote")
st.markdown("Counting every vote, the uninformative features drown the one that knows; masking all but the decisive "
            "ones (the notes' mask) makes the prediction certain. Choosing which earlier words count, word by word "
            "and from the words themselves, is what attention learns.")

st.subheader("5. The same words through a real attention head")
name, loaded = widgets.page_model(DECODER)
if loaded is None:
    st.stop()
prompt = " ".join(context)
capture = capture_or_message(decoder_capture, name, prompt, with_gradients=False)
if capture is None:
    st.stop()
layer, head = widgets.layer_head("lsq", capture.layers, capture.heads)
attention = capture.attentions.float()[:, :, -1]  # (L, H, T): every head's weights from the last token
row = (attention[layer].mean(0) if head is None else attention[layer, head]).numpy()
tokens = unique_labels(capture.tokens)
left, right = st.columns(2)
share = vote.weights.numpy() * vote.activity.numpy()
left.plotly_chart(bars(share / share.sum() if share.sum() else share, vote.earlier,
                       "Your weights, as shares of the vote", "share"), config=PLOTLY_CONFIG, key="lsq_share")
right.plotly_chart(bars(row, tokens, f"{name}, layer {layer}, {'mean of heads' if head is None else f'head {head}'}: "
                        f"attention from “{capture.tokens[-1]}”", "attention weight"), config=PLOTLY_CONFIG,
                   key="lsq_head_row")
st.plotly_chart(labelled_heatmap(attention.reshape(-1, attention.shape[-1]).numpy(),
                                 [f"layer {l}, head {h}" for l in range(capture.layers) for h in range(capture.heads)],
                                 tokens, f"Every head's weights from the last token “{capture.tokens[-1]}”",
                                 "attention weight", colormap="viridis", x_title="earlier token"),
                config=PLOTLY_CONFIG, key="lsq_heads")
shown = min(5, len(vocabulary), len(capture.score_labels))
predictions = pd.DataFrame({"the vote's next word": [f"{vocabulary[i]} ({vote.prediction[i]:.2f})" for i in
                                                     vote.prediction.argsort(descending=True)[:shown].tolist()],
                            f"{name}'s next token": [f"{label} ({p:.3g})" for label, p in
                                                     zip(capture.score_labels[:shown], capture.scores[:shown].tolist())]})
st.dataframe(predictions, hide_index=True)
size = len(loaded.tokenizer)
st.caption(f"{name}'s most likely next token has probability {float(capture.scores[0]):.3g}; a uniform guess over its "
           f"{size} tokens would be {1 / size:.3g}. Its weights show what each head reads, not what the vote knows.")
embedded = capture_or_message(embedding_as_one_hot, loaded, prompt)
if embedded is not None:
    gap = float((embedded[1] - embedded[2]).abs().max())
    st.caption(f"The head computes its weights from the words themselves (q·k), where the vote used weights you set. "
               f"Its first step is section 1's product: one_hot(ids) × {name}'s embedding matrix equals its "
               f"embedding layer's output {agreement(gap)}.")
