"""Decoder: a prompt, its greedy continuation, masked self-attention and what each generated token drew on."""

import streamlit as st

import explain
from ui import params, views, widgets
from explain.faithfulness import decoder_probability
from ui.faithfulness import text_panel
from ui.heads import decoder_heads
from ui.state import DECODER_EXAMPLES, capture_or_message, decoder_capture, generation_table, load_model, truncation_notice
from viz.bars import relevance_bar, scores_bar
from viz.heatmaps import attention_heatmap
from viz.plotting import PLOTLY_CONFIG
from viz.tokens import tokens_html

METHODS = {"attention": "Raw attention (one layer, heads averaged)", "rollout": "Attention rollout",
           "gradient-rollout": "Gradient rollout"}

st.title("Decoder")
st.caption("Masked self-attention: position *t* sees only positions up to *t* (the future is set to −∞ before "
           "the softmax), so the model can be trained to predict every next token at once without cheating.")

model_name = st.session_state.get("decoder_model", "induction-lm")
loaded = load_model(model_name)
prompt, _ = widgets.text_input("dec", with_pair=False, examples=DECODER_EXAMPLES, shared="prompt", label="Prompt")
params.restore("dec_generate", 8, int)
if not 0 <= st.session_state["dec_generate"] <= 64:
    st.session_state["dec_generate"] = 8
generate = st.number_input("Tokens to generate (greedy)", 0, 64, key="dec_generate")
params.publish("dec_generate")
if loaded is None or not prompt.strip():
    st.stop()
if widgets.wrong_kind(loaded, model_name, "decoder"):
    st.stop()
capture = capture_or_message(decoder_capture, model_name, prompt, int(generate), with_gradients=False)
if capture is None:
    st.stop()
truncation_notice(capture, loaded)
widgets.unknown_notice(capture)

tokens = views.readable(capture.tokens)
continuation = loaded.tokenizer.decode(capture.token_ids[capture.prompt_length:])
st.markdown(f"**Continuation** ({len(tokens) - capture.prompt_length} tokens): `{continuation.strip() or '(none)'}`")

with st.sidebar:
    st.markdown("### View")
    layer, head = widgets.layer_head("dec", capture.layers, capture.heads)
    cmap = widgets.colormap("dec")
    st.markdown("### Rollout options")
    fusion, discard, start = widgets.rollout_options("dec", capture.layers)

tab_map, tab_one, tab_all, tab_heads = st.tabs(
    ["Masked attention", "Relevance of one token", "Every generated token", "Heads"])

with tab_map:
    matrix = explain.layer_attention(capture.attentions.float(), layer, head).numpy()
    st.plotly_chart(attention_heatmap(
        matrix, tokens, tokens, colormap=cmap, zmin=0.0, masked=views.causal_mask(len(tokens)),
        title=f"{model_name} · layer {layer} · {'mean of heads' if head is None else f'head {head}'}",
    ), config=PLOTLY_CONFIG, key="dec_heatmap")
    st.caption("Grey hatched cells are masked future positions: not zero attention, but keys the query could not see. "
               f"The first {capture.prompt_length} tokens are the prompt.")

with tab_one:
    choices = views.output_choices(capture)
    params.restore("dec_position", min(choices), int, allowed=list(choices))
    position = st.selectbox("Explain", list(choices), key="dec_position", format_func=choices.get,
                            help="The logit of this token where the model predicted it (its previous position).")
    params.publish("dec_position")
    target = decoder_capture(model_name, prompt, int(generate), position=position, with_gradients=True)
    st.plotly_chart(scores_bar(list(target.score_labels), target.scores.numpy(), top_k=10,
                               title=f"Next-token probabilities after position {position} ({tokens[position]!r})"),
                    config=PLOTLY_CONFIG, key="dec_scores")
    options = {"attention": dict(layer=layer), "rollout": dict(head_fusion=fusion, discard_ratio=discard, start_layer=start),
               "gradient-rollout": dict(start_layer=start)}
    for method, column in zip(METHODS, st.columns(3)):
        with column:
            st.markdown(f"**{METHODS[method]}**")
            relevance = explain.explain_capture(target, method, **options[method]).relevance[: position + 1].numpy()
            st.html(tokens_html(target.tokens[: position + 1], relevance, colormap="reds", selected=position))
            st.plotly_chart(relevance_bar(tokens[: position + 1], relevance, title=METHODS[method]),
                            config=PLOTLY_CONFIG, key=f"dec_bar_{method}")
    st.caption(f"Target: **{target.target_label!r}**, logit {target.target_value:.3f}. Only positions up to "
               f"{position} can matter: later ones did not exist when it was predicted.")
    context = target.token_ids[: position + 1]
    text_panel((model_name, prompt, int(generate), position, fusion, discard, start, layer),
               lambda: decoder_probability(loaded, context, target.target_token_id),
               {METHODS[m].split(" (")[0].lower(): explain.explain_capture(target, m, **options[m]).relevance[: position + 1].numpy()
                for m in METHODS}, [not s for s in target.special.tolist()[: position + 1]], target.target_label.strip())

with tab_all:
    if len(tokens) == capture.prompt_length:
        st.info("Generate at least one token to see what each generated token drew on.")
    else:
        params.restore("dec_table_method", "gradient-rollout", allowed=list(METHODS))
        method = st.radio("Method", list(METHODS), key="dec_table_method", format_func=METHODS.get, horizontal=True)
        params.publish("dec_table_method")
        table = generation_table(model_name, prompt, int(generate), method, start).numpy()
        generated = tokens[capture.prompt_length:]
        st.plotly_chart(attention_heatmap(
            table, tokens, generated, colormap="reds", zmin=0.0, value_label="relevance",
            masked=views.causal_mask(len(generated), len(tokens), offset=capture.prompt_length - 1),
            title=f"{METHODS[method]}: row n explains generated token n", x_title="input token",
            y_title="generated token"), config=PLOTLY_CONFIG, key="dec_table")
        st.download_button("This table (CSV)", widgets.csv_bytes(table, generated, tokens),
                           file_name="generated_relevance.csv", mime="text/csv")

with tab_heads:
    decoder_heads(capture, loaded, cmap)
