"""Decoder: a prompt, its greedy continuation, masked self-attention and what each generated token drew on."""

import streamlit as st

import explain
from models import DECODER
from ui import url, views, widgets
from ui.notices import capture_or_message, input_notices
from ui.panels import methods as methods_panel
from ui.panels.faithfulness import text_panel
from ui.panels.heads import decoder_heads
from ui.services import decoder_capture, generation_table
from viz.bars import scores_bar
from viz.colormaps import DIVERGING, symmetric_range
from viz.heatmaps import attention_heatmap
from viz.plotting import PLOTLY_CONFIG


st.title("Decoder")
st.caption("Masked self-attention: position *t* sees only positions up to *t* (the future is set to −∞ before "
           "the softmax), so the model can be trained to predict every next token at once without cheating.")

model_name, loaded = widgets.page_model(DECODER)
prompt, _ = widgets.kind_input("dec", DECODER)
generate = url.number_input("Tokens to generate (greedy)", 0, 64, "dec_generate", 8)
if loaded is None:
    st.stop()
if not prompt.strip():
    st.warning("The prompt is empty: type a text for the model to continue, or pick an example.")
    st.stop()
capture = capture_or_message(decoder_capture, model_name, prompt, int(generate), with_gradients=False)
if capture is None:
    st.stop()
input_notices(capture, loaded)

tokens = explain.readable(capture.tokens)
continuation = loaded.tokenizer.decode(capture.token_ids[capture.prompt_length:])
st.markdown(f"**Continuation** ({len(tokens) - capture.prompt_length} tokens): `{continuation.strip() or '(none)'}`")

with st.sidebar:
    st.markdown("### View")
    layer, head = widgets.layer_head("dec", capture.layers, capture.heads)
    cmap = widgets.colormap("dec")
    st.markdown("### Rollout options")
    fusion, discard, start = widgets.rollout_options("dec", capture.layers)

    st.markdown("### Methods")
    chosen = methods_panel.choose("dec", capture, loaded)
    absolute = methods_panel.absolute_toggle("dec")

(tab_map, tab_one, tab_all, tab_heads), view = url.tabs(
    ["Masked attention", "Relevance of one token", "Every generated token", "Heads"], "dec_tab")

with tab_map:
    if view == "Masked attention":
        matrix = explain.layer_attention(capture.attentions.float(), layer, head).numpy()
        st.plotly_chart(attention_heatmap(
            matrix, tokens, tokens, colormap=cmap, zmin=0.0, masked=views.causal_mask(len(tokens)),
            title=f"{model_name} · layer {layer} · {'mean of heads' if head is None else f'head {head}'}",
            divider=capture.prompt_length if capture.prompt_length < len(tokens) else None,
        ), config=PLOTLY_CONFIG, key="dec_heatmap")
        st.caption("Grey hatched cells are masked future positions: not zero attention, but keys the query could not see. "
                   f"The first {capture.prompt_length} tokens are the prompt; the dashed lines mark where the generated "
                   "tokens begin.")

options = {"attention": dict(layer=layer), "rollout": dict(head_fusion=fusion, discard_ratio=discard, start_layer=start),
           "gradient-rollout": dict(start_layer=start)}
with tab_one:
    if view == "Relevance of one token":
        choices = views.output_choices(capture)
        position = url.selectbox("Explain", list(choices), "dec_position", min(choices), format_func=choices.get,
                                 help="The logit of this token where the model predicted it (its previous position).")
        target = decoder_capture(model_name, prompt, int(generate), position=position, with_gradients=True)
        st.plotly_chart(scores_bar(list(target.score_labels), target.scores.numpy(), top_k=10,
                                   title=f"Next-token probabilities after position {position} ({tokens[position]!r})"),
                        config=PLOTLY_CONFIG, key="dec_scores")
        results = methods_panel.explanations((model_name, prompt, int(generate), position), target, loaded, chosen, options)
        words = views.shown_tokens(target, upto=position + 1)
        shown = [m for m in chosen if m.name in results]
        for row in range(0, len(shown), 3):
            for method, column in zip(shown[row:row + 3], st.columns(3)):
                with column:
                    values = results[method.name].relevance[: position + 1].float().numpy()
                    methods_panel.text_view(method, results[method.name], values, words, tokens[: position + 1],
                                            f"dec_bar_{method.name}", absolute=absolute, selected=position)
        st.caption(f"Target: **{target.target_label!r}**, logit {target.target_value:.3f}. Only positions up to "
                   f"{position} can matter: later ones did not exist when it was predicted.")
        if shown:
            text_panel((model_name, prompt, int(generate), position, fusion, discard, start, layer, tuple(results)), loaded,
                       target, {m.label.lower(): results[m.name].relevance[: position + 1].float().numpy() for m in shown},
                       {m.label.lower(): results[m.name].seconds for m in shown})

with tab_all:
    if view == "Every generated token":
        if len(tokens) == capture.prompt_length:
            st.info("Generate at least one token to see what each generated token drew on.")
        else:
            fast = {m.name: m.label for m in explain.methods_for(capture, loaded) if not m.slow}
            method = url.radio("Method", list(fast), "dec_table_method", "gradient-rollout", format_func=fast.get,
                               horizontal=True, help="One explanation per generated token: the methods that run the model "
                                                     "many times are left out here.")
            chosen_method = explain.get_method(method)
            table = generation_table(model_name, prompt, int(generate), method,
                                     **chosen_method.accepted(capture, options.get(method, {}))).numpy()
            generated = tokens[capture.prompt_length:]
            low, high = symmetric_range(table) if chosen_method.signed else (0.0, None)
            st.plotly_chart(attention_heatmap(
                table, tokens, generated, colormap=DIVERGING if chosen_method.signed else "reds", zmin=low, zmax=high,
                value_label="relevance",
                masked=views.causal_mask(len(generated), len(tokens), offset=capture.prompt_length - 1),
                title=f"{chosen_method.label}: each generated token's row, over the tokens before it",
                x_title="input token", y_title="generated token", y_start=capture.prompt_length,
                divider=capture.prompt_length), config=PLOTLY_CONFIG, key="dec_table")
            st.download_button("This table (CSV)", widgets.csv_bytes(table, generated, tokens),
                               file_name="generated_relevance.csv", mime="text/csv")

with tab_heads:
    if view == "Heads":
        decoder_heads(capture, loaded, cmap)
