"""Every page of the app, once: its file, title, icon, URL path, navigation group and one line on what it shows.

app.py builds the navigation from this table and Home lists it, so a page added here appears in both.
"""

from __future__ import annotations

from typing import NamedTuple


class PageInfo(NamedTuple):
    path: str  # the page's file, relative to app.py
    title: str
    icon: str  # a Material Symbols name (Streamlit serves the font itself)
    url_path: str  # "" for the default page, served at "/"
    group: str  # "Explore" or "Learn"
    summary: str  # what Home says of it after its title


PAGES = (
    PageInfo("app_pages/home.py", "Home", ":material/home:", "", "Explore", "what the app shows, the bundled models"),
    PageInfo("app_pages/text_attention.py", "Text attention", ":material/text_fields:", "text-attention", "Explore",
             "one layer and head as a token-by-token map"),
    PageInfo("app_pages/head_comparison.py", "Head comparison", ":material/grid_view:", "heads", "Explore",
             "every layer and head at once, with statistics"),
    PageInfo("app_pages/text_rollout.py", "Text rollout", ":material/waves:", "text-rollout", "Explore",
             "raw attention, rollout and gradient rollout over a sentence"),
    PageInfo("app_pages/image.py", "Image", ":material/image:", "image", "Explore",
             "where a Vision Transformer looks, patch by patch"),
    PageInfo("app_pages/decoder.py", "Decoder", ":material/arrow_forward:", "decoder", "Explore",
             "masked self-attention, and what each generated token drew on"),
    PageInfo("app_pages/seq2seq.py", "Encoder-decoder", ":material/swap_horiz:", "encoder-decoder", "Explore",
             "cross-attention from each output token back to the source"),
    PageInfo("app_pages/learn_rnn.py", "Where attention came from", ":material/history:", "learn-rnn", "Learn",
             "recurrent encoder-decoders with and without attention"),
    PageInfo("app_pages/learn_sequences.py", "From one-hot vectors to attention", ":material/linear_scale:",
             "learn-sequences", "Learn", "transition tables, skips, a real head"),
    PageInfo("app_pages/learn_variants.py", "Attention variants", ":material/tune:", "learn-variants", "Learn",
             "additive, general, dot-product, scaled, and why scale"),
    PageInfo("app_pages/learn_head.py", "Inside one head", ":material/functions:", "learn-head", "Learn",
             "q, k, v, scores, mask, softmax, output"),
    PageInfo("app_pages/learn_positions.py", "Positional encoding", ":material/timeline:", "learn-positions", "Learn",
             "the original sinusoids and the models' learned position tables"),
    PageInfo("app_pages/learn_words.py", "Word pulling", ":material/scatter_plot:", "learn-words", "Learn",
             "the same word pulled toward its context, layer by layer"),
    PageInfo("app_pages/learn_patches.py", "Patches and the class token", ":material/grid_on:", "learn-patches",
             "Learn", "how a ViT reads an image"),
    PageInfo("app_pages/learn_block.py", "Inside the block", ":material/layers:", "learn-block", "Learn",
             "residual stream, layer norm, feed-forward, logit lens"),
    PageInfo("app_pages/learn_rollout.py", "Rollout step by step", ":material/stacked_line_chart:", "learn-rollout",
             "Learn", "attention rollout and gradient rollout, one layer at a time"),
)


def pages_in(group: str) -> list[PageInfo]:
    """The pages of one navigation group, in navigation order."""
    return [page for page in PAGES if page.group == group]
