"""Encoder-decoder: source in, output out; cross-attention, and what each output token drew on."""

import json
from pathlib import Path

import streamlit as st

import explain
from explain.faithfulness import seq2seq_probability
from ui import params, views, widgets
from ui.faithfulness import text_panel
from ui.state import SEQ2SEQ_EXAMPLES, capture_or_message, load_model, seq2seq_capture, truncation_notice
from viz.bars import relevance_bar
from viz.heatmaps import attention_heatmap
from viz.plotting import PLOTLY_CONFIG
from viz.tokens import tokens_html

METHODS = {"attention": "Cross-attention (one layer)", "rollout": "Attention rollout",
           "gradient-rollout": "Gradient rollout (Chefer et al.)"}

st.title("Encoder-decoder")
st.caption("The encoder reads the whole source; the decoder writes the output one token at a time with masked "
           "self-attention, and its **cross-attention** takes queries from the decoder and keys and values from "
           "the encoder: each output token looks back at the source.")

model_name = st.session_state.get("seq2seq_model", "iso-dates")
loaded = load_model(model_name)
source, _ = widgets.text_input("s2s", with_pair=False, examples=SEQ2SEQ_EXAMPLES, shared="source", label="Source")
params.restore("s2s_output", "")
given = st.text_input("Output to explain (optional; empty: the model's own greedy output)", key="s2s_output").strip()
params.publish("s2s_output")
if loaded is None or not source.strip():
    st.stop()
if widgets.wrong_kind(loaded, model_name, "seq2seq"):
    st.stop()
capture = capture_or_message(seq2seq_capture, model_name, source, given or None)
if capture is None:
    st.stop()
truncation_notice(capture, loaded)
widgets.unknown_notice(capture)

sources, outputs = views.readable(capture.source_tokens), views.readable(capture.output_tokens)
decoder_inputs = views.readable(capture.decoder_tokens)
st.markdown(f"**Output** ({'given, teacher-forced' if capture.teacher_forced else 'greedy'}): `{capture.output_text}`")
alignment = Path(loaded.spec.source) / "alignment.json"
if loaded.spec.bundled and alignment.is_file():
    with st.expander("Which cross-attention heads align output with source (measured on held-out dates)"):
        st.json(json.loads(alignment.read_text()))

with st.sidebar:
    st.markdown("### View")
    cmap = widgets.colormap("s2s")
    st.markdown("### Rollout options")
    fusion, discard, _ = widgets.rollout_options("s2s", loaded.spec.decoder_layers, with_start=False)

tab_cross, tab_one, tab_encoder, tab_decoder = st.tabs(
    ["Cross-attention", "Relevance of one output token", "Encoder self-attention", "Decoder self-attention"])

with tab_cross:
    layer, head = widgets.layer_head("s2s_cross", loaded.spec.decoder_layers, loaded.spec.decoder_heads)
    matrix = explain.layer_attention(capture.cross_attentions.float(), layer, head).numpy()
    st.plotly_chart(attention_heatmap(
        matrix, sources, outputs, colormap=cmap, zmin=0.0, x_title="source token (keys and values, from the encoder)",
        y_title="output token (queries, from the decoder)",
        title=f"Cross-attention · decoder layer {layer} · {'mean of heads' if head is None else f'head {head}'}",
    ), config=PLOTLY_CONFIG, key="s2s_cross_map")
    st.caption("Row n is the decoder step that writes output token n: it reads the start token and the outputs "
               "before n, and attends over every source token (nothing is masked on the source side).")

with tab_one:
    params.restore("s2s_token", 0, int)
    params.keep_valid("s2s_token", list(range(len(outputs))))
    n = st.selectbox("Output token", list(range(len(outputs))), key="s2s_token",
                     format_func=lambda i: f"{i}: {outputs[i]!r} (p={float(capture.output_probabilities[i]):.2f})")
    params.publish("s2s_token")
    options = dict(head_fusion=fusion, discard_ratio=discard)
    for method, column in zip(METHODS, st.columns(3)):
        with column:
            st.markdown(f"**{METHODS[method]}**")
            row = explain.seq2seq_relevance(capture, method, **options)[n].float().numpy()
            st.html(tokens_html(capture.source_tokens, row, colormap="reds"))
            st.plotly_chart(relevance_bar(sources, row, title="over the source"), config=PLOTLY_CONFIG, key=f"s2s_src_{method}")
            earlier = explain.seq2seq_output_relevance(capture, method, **options)[n, : n + 1].float().numpy()
            st.plotly_chart(relevance_bar(decoder_inputs[: n + 1], earlier, title="over the decoder's inputs so far"),
                            config=PLOTLY_CONFIG, key=f"s2s_out_{method}")
    text_panel((model_name, source, given, n, fusion, discard),
               lambda: seq2seq_probability(loaded, capture.source_ids, capture.output_ids, n),
               {METHODS[m].split(" (")[0].lower(): explain.seq2seq_relevance(capture, m, **options)[n].float().numpy()
                for m in METHODS}, [not s for s in capture.source_special.tolist()], outputs[n])
    st.caption("Gradient rollout weights every attention map by the gradient of this token's logit and propagates "
               "through encoder, decoder and cross-attention with Chefer, Gur and Wolf's rules (ICCV 2021). The "
               "decoder's inputs are its start token and the outputs before this one; the last of them always "
               "carries its own residual path (the 1 on R_tt's diagonal).")

with tab_encoder:
    layer, head = widgets.layer_head("s2s_enc", loaded.spec.layers, loaded.spec.heads)
    st.plotly_chart(attention_heatmap(
        explain.layer_attention(capture.encoder_attentions.float(), layer, head).numpy(), sources, sources,
        colormap=cmap, zmin=0.0, title=f"Encoder layer {layer} · {'mean of heads' if head is None else f'head {head}'}",
    ), config=PLOTLY_CONFIG, key="s2s_enc_map")

with tab_decoder:
    layer, head = widgets.layer_head("s2s_dec", loaded.spec.decoder_layers, loaded.spec.decoder_heads)
    st.plotly_chart(attention_heatmap(
        explain.layer_attention(capture.decoder_attentions.float(), layer, head).numpy(), decoder_inputs,
        decoder_inputs, colormap=cmap, zmin=0.0, masked=views.causal_mask(len(decoder_inputs)),
        title=f"Decoder self-attention · layer {layer} · {'mean of heads' if head is None else f'head {head}'}",
    ), config=PLOTLY_CONFIG, key="s2s_dec_map")
