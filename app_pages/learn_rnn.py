"""Learn: where attention came from. Two recurrent encoder-decoders reverse letter strings, one through the final
encoder state only, one with Bahdanau's attention: the bottleneck, the alignment and the vanishing gradient,
measured on the user's own string and on held-out strings."""

import random
from pathlib import Path

import numpy as np
import streamlit as st

from explain import LettersError, check_letters
from explain.recurrent import TRAINED_LENGTHS, encoder_distances
from models.cards import first_drop, smoothed
from models.recurrent import read_measurements
from models.registry import TRAIN_COMMANDS
from ui import url
from ui.services import load_model, recurrent_run
from viz.heatmaps import attention_heatmap
from viz.plotting import PLOTLY_CONFIG
from viz.recurrent import accuracy_figure, gradient_figure

PLAIN, ATTENTION = "reverse-gru", "reverse-gru-attn"
NAMES = {PLAIN: "reverse-gru (final state only)", ATTENTION: "reverse-gru-attn (with attention)"}

st.title("Where attention came from")
st.caption("Before transformers, an encoder-decoder was two recurrent networks: one reads the input a step at a "
           "time into a state vector, the other writes the output from it. The notes list three limits: the "
           "**bottleneck** (the encoder state must store the entire input), **forgetting the past**, and the "
           "**vanishing gradient**. Attention gave the decoder \"a direct connection with each timestamp\". Here two "
           "models trained by this project show each of these on the task of reversing a string of letters.")

st.markdown(
    "Both models read letters with the same GRU encoder (states $h_1 \\dots h_S$, reading right to left) and write "
    "with the same GRU decoder (state $s_t$). They differ only in the context $c_t$ the decoder gets at each step:")
left, right = st.columns(2)
left.markdown("**reverse-gru**: the final encoder state, the same at every step")
left.latex(r"c_t = h_{\mathrm{final}}")
right.markdown("**reverse-gru-attn**: Bahdanau's additive attention over every encoder state")
right.latex(r"\begin{aligned} e_{tj} &= v^\top \tanh(W_s s_{t-1} + W_h h_j) \\ a_{tj} &= \mathrm{softmax}_j(e_{tj}) "
            r"\\ c_t &= \textstyle\sum_j a_{tj} h_j \end{aligned}")


def _random_string() -> None:
    length = int(st.session_state["rn_length"])
    st.session_state["rn_text"] = "".join(random.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(length))


left, right = st.columns([3, 1])
text = url.text_input("Letters to reverse (a-z)", "rn_text", "attentionisallyouneed", on=left,
                      help="Lower-case letters; the models were trained on strings of 5 to 80 letters.")
url.slider("Random string length", 5, 80, "rn_length", 60, on=right)
right.button("Random string", on_click=_random_string, help="Replace the text with random letters of this length.")
try:
    letters = check_letters(text)
except LettersError as error:
    st.error(str(error))
    st.stop()
if not TRAINED_LENGTHS[0] <= len(letters) <= TRAINED_LENGTHS[1]:
    st.info(f"The models were trained on {TRAINED_LENGTHS[0]} to {TRAINED_LENGTHS[1]} letters; this string has "
            f"{len(letters)}, so both are outside what they learnt.")

loaded = {name: load_model(name) for name in (PLAIN, ATTENTION)}
if any(model is None for model in loaded.values()):
    st.stop()
runs = {name: recurrent_run(name, letters) for name in (PLAIN, ATTENTION)}
measured = {name: read_measurements(Path(model.spec.source)) for name, model in loaded.items()}

st.header("1. The bottleneck")
st.table([{"model": NAMES[name], "output": run.output_text or "(nothing)",
           "exact": "yes" if run.correct else "no",
           "letters right": f"{int(run.letter_matches.sum())} of {len(letters)}"} for name, run in runs.items()],
         hide_index=True, border="horizontal")
st.caption(f"The reversal of {len(letters)} letters is `{letters[::-1]}`. A letter counts as right when the output "
           "has the right letter at its place; a missing letter is wrong.")

if all(measured.values()):
    by_length = {NAMES[name]: {int(k): float(v) for k, v in measured[name]["by_length"].items()} for name in runs}
    st.plotly_chart(accuracy_figure(by_length, {name: smoothed(curve) for name, curve in by_length.items()},
                                    "Exact match against input length, on held-out strings", mark=len(letters)),
                    config=PLOTLY_CONFIG, key="rn_accuracy")
    plain, attention = by_length[NAMES[PLAIN]], by_length[NAMES[ATTENTION]]
    drops = [first_drop(plain, threshold) for threshold in (0.9, 0.5)]
    long = [v for k, v in attention.items() if 60 <= k <= 80]
    held = measured[PLAIN]
    st.markdown(
        f"On {held['n']:,} held-out strings (evaluation seed {held['seed']}, every length from "
        f"{min(plain)} to {max(plain)} equally often; the lines average five neighbouring lengths): "
        f"**reverse-gru** falls below 0.9 exact match at length **{drops[0]}** and below 0.5 at **{drops[1]}**; "
        "past that its 128 numbers of state cannot hold the string, so it writes a plausible start and loses the "
        f"rest. **reverse-gru-attn** still reverses **{np.mean(long):.2f}** of strings of 60 to 80 letters: its "
        "decoder reads each letter where it sits instead of from one summary vector.")
else:
    commands = " and ".join(f"`{TRAIN_COMMANDS[name]}`" for name in (PLAIN, ATTENTION) if not measured[name])
    st.info(f"The held-out figures (reversal.json) are missing beside the bundled models: run {commands} to "
            "measure them again.")

st.header("2. Attention as a direct connection: the alignment")
run = runs[ATTENTION]
st.plotly_chart(attention_heatmap(run.alignment, run.input_tokens, run.output_tokens,
                                  title="reverse-gru-attn: attention of each output step over the source letters",
                                  x_title="source letter (encoder state h_j)", y_title="output step (letter written)",
                                  value_label="weight a_tj"), config=PLOTLY_CONFIG, key="rn_alignment")
rate = run.anti_diagonal
held_rate = measured[ATTENTION].get("anti_diagonal") if measured[ATTENTION] else None
st.markdown(
    "To write the reversal, output step $t$ needs source letter $S-1-t$: the weights should lie on the "
    f"**anti-diagonal**. Here the largest weight of an output letter lands on it for **{rate:.0%}** of the "
    f"{min(len(letters), run.alignment.shape[0])} letters written"
    + (f"; on the held-out strings, for **{held_rate:.1%}** of all output letters." if held_rate is not None else ".")
    + " The last row is the end-of-string token `</s>`, which has no source letter to copy.")

st.header("3. The vanishing gradient")
st.markdown(
    "How strongly can the loss at one output step reach back to each source letter? The length of the gradient of "
    "that loss with respect to the letter's embedding, plotted against the number of recurrent steps between "
    "reading the letter and the encoder's final state. Through a recurrent state the gradient is multiplied by one "
    "Jacobian per step, and shrinks when they are small; attention adds a path of one step to every letter.")
left, right = st.columns(2)
weights = url.radio("Weights", ["trained", "as initialised"], "rn_weights", "as initialised", on=left,
                    horizontal=True, help="A freshly initialised model of the same shape (seed 0) shows the effect "
                                          "before training changes the gates.")
step = url.radio("Loss at the output step that writes", ["the first letter (last step)", "the last letter (first step)"],
                 "rn_step", "the first letter (last step)", on=right, horizontal=True)
initialised = weights == "as initialised"
last_step = step.startswith("the first letter")
series, needed = {}, {}
for name in (PLAIN, ATTENTION):
    measured_run = recurrent_run(name, letters, initialised) if initialised else runs[name]
    norms = measured_run.gradient_norms if last_step else measured_run.gradient_norms_first
    distances = encoder_distances(loaded[name].model.config.encoder_direction, len(measured_run.input_tokens))
    series[NAMES[name]] = (distances[:-1], norms[:-1])  # the letters (the closing </s> is not one)
    needed[NAMES[name]] = distances[0 if last_step else len(letters) - 1]
st.plotly_chart(gradient_figure(series, f"Gradient norm of the loss writing {'the first' if last_step else 'the last'} "
                                        f"letter, {weights} weights", needed=needed),
                config=PLOTLY_CONFIG, key="rn_gradient")
plain_norms = series[NAMES[PLAIN]][1]
attention_norms = series[NAMES[ATTENTION]][1]
spread = lambda norms: float(norms.max() / max(norms.min(), 1e-30))  # noqa: E731
st.markdown(
    f"On this string the plain model's gradient spans **{spread(plain_norms):.1e}** from its largest to its smallest "
    f"letter; the attention model's **{spread(attention_norms):.1e}**. The ring marks the letter this step must write.")
if measured[PLAIN] and "gradient_norms_at_init" in measured[PLAIN]:
    profile = measured[PLAIN]["gradient_norms_at_init"].get("80", {}).get("first_output")
    trained = measured[PLAIN]["gradient_norms"].get("80", {}).get("first_output")
    if profile and trained:
        st.markdown(
            f"Measured on held-out strings of 80 letters (mean of {measured[PLAIN]['gradient_norms']['80'].get('strings', 50)}): "
            f"as initialised, the plain model's gradient at the letter its first output step needs (79 steps away) is "
            f"**{profile[-1]:.1e}**, against {profile[0]:.1e} at the nearest letter: it vanishes. After training it is "
            f"**{trained[-1]:.2f}**: the GRU's gates learnt to keep a path open to the letters it stores, so what "
            "stops the plain model on long strings is the bottleneck, the capacity of one state, not the gradient. "
            "The attention model never depended on that path.")
