"""Encoder-decoder: source in, output out; cross-attention, and what each output token drew on."""

import json
from pathlib import Path

import streamlit as st

import explain
from models import SEQ2SEQ
from ui import url, views, widgets
from ui.notices import capture_or_message, input_notices
from ui.panels import methods as methods_panel
from ui.panels.faithfulness import text_panel
from ui.services import seq2seq_capture
from viz.bars import relevance_bar
from viz.heatmaps import attention_heatmap
from viz.plotting import PLOTLY_CONFIG


st.title("Encoder-decoder")
st.caption("The encoder reads the whole source; the decoder writes the output one token at a time with masked "
           "self-attention, and its **cross-attention** takes queries from the decoder and keys and values from "
           "the encoder: each output token looks back at the source.")

model_name, loaded = widgets.page_model(SEQ2SEQ)
source, _ = widgets.kind_input("s2s", SEQ2SEQ)
given = url.text_input("Output to explain (optional; empty: the model's own greedy output)", "s2s_output").strip()
if loaded is None:
    st.stop()
if not source.strip():
    st.warning("The source is empty: type a text for the model to rewrite (a date, for the bundled model), or pick "
               "an example.")
    st.stop()
capture = capture_or_message(seq2seq_capture, model_name, source, given or None)
if capture is None:
    st.stop()
input_notices(capture, loaded)

sources, outputs = explain.readable(capture.source_tokens), explain.readable(capture.output_tokens)
decoder_inputs = explain.readable(capture.decoder_tokens)
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
    st.markdown("### Methods")
    chosen = methods_panel.choose("s2s", capture, loaded)
    absolute = methods_panel.absolute_toggle("s2s")

(tab_cross, tab_one, tab_encoder, tab_decoder), view = url.tabs(
    ["Cross-attention", "Relevance of one output token", "Encoder self-attention", "Decoder self-attention"], "s2s_tab")

with tab_cross:
    if view == "Cross-attention":
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
    if view == "Relevance of one output token":
        n = url.selectbox("Output token", list(range(len(outputs))), "s2s_token", 0,
                          format_func=lambda i: f"{i}: {outputs[i]!r} (p={float(capture.output_probabilities[i]):.2f})")
        target = seq2seq_capture(model_name, source, given or None, target=n)
        options = {"rollout": dict(head_fusion=fusion, discard_ratio=discard)}
        results = methods_panel.explanations((model_name, source, given, n), target, loaded, chosen, options)
        words = views.shown_tokens(target)
        shown = [m for m in chosen if m.name in results]
        for row in range(0, len(shown), 3):
            for method, column in zip(shown[row:row + 3], st.columns(3)):
                with column:
                    explanation = results[method.name]
                    methods_panel.text_view(method, explanation, explanation.relevance.float().numpy(), words, sources,
                                            f"s2s_src_{method.name}", absolute=absolute)
                    if explanation.decoder_relevance is not None:
                        earlier = explanation.decoder_relevance[: n + 1].float().numpy()
                        st.plotly_chart(relevance_bar(decoder_inputs[: n + 1], earlier, title="over the decoder's inputs so far"),
                                        config=PLOTLY_CONFIG, key=f"s2s_out_{method.name}")
        if shown:
            text_panel((model_name, source, given, n, fusion, discard, tuple(results)), loaded, target,
                       {m.label.lower(): results[m.name].relevance.float().numpy() for m in shown},
                       {m.label.lower(): results[m.name].seconds for m in shown})
        st.caption("Over the source: each method's relevance for this output token (its logit where the decoder predicted "
                   "it). Gradient rollout propagates through encoder, decoder and cross-attention with Chefer, Gur and "
                   "Wolf's rules (ICCV 2021); attention is the last decoder layer's cross-attention. Over the decoder's "
                   "inputs (the start token and the outputs before this one; attention-based methods only), the last of "
                   "them always carries its own residual path (the 1 on R_tt's diagonal).")

with tab_encoder:
    if view == "Encoder self-attention":
        layer, head = widgets.layer_head("s2s_enc", loaded.spec.layers, loaded.spec.heads)
        st.plotly_chart(attention_heatmap(
            explain.layer_attention(capture.encoder_attentions.float(), layer, head).numpy(), sources, sources,
            colormap=cmap, zmin=0.0, title=f"Encoder layer {layer} · {'mean of heads' if head is None else f'head {head}'}",
        ), config=PLOTLY_CONFIG, key="s2s_enc_map")

with tab_decoder:
    if view == "Decoder self-attention":
        layer, head = widgets.layer_head("s2s_dec", loaded.spec.decoder_layers, loaded.spec.decoder_heads)
        st.plotly_chart(attention_heatmap(
            explain.layer_attention(capture.decoder_attentions.float(), layer, head).numpy(), decoder_inputs,
            decoder_inputs, colormap=cmap, zmin=0.0, masked=views.causal_mask(len(decoder_inputs)),
            title=f"Decoder self-attention · layer {layer} · {'mean of heads' if head is None else f'head {head}'}",
        ), config=PLOTLY_CONFIG, key="s2s_dec_map")
