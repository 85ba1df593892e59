"""Model kinds, defined once: what a kind reads, how its attention is masked, which model stands for it by
default, how it is named to people and on the command line. Code asks a kind object (`kind.causal`,
`kind.reads_images`, `kind.label`); it never compares kind names as strings.

A kind's `name` ("text", "image", "decoder", "seq2seq", "recurrent") is what URLs, JSON and session keys hold; look a kind
up by it with `kind_named`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, eq=False)
class ModelKind:
    """One kind of model the tool explains.

    Attributes:
        name: the kind's key in URLs, JSON (`python -m explain models`) and session state.
        label: a short name for people ("Text encoder").
        article: the name with its article, for sentences ("a text encoder").
        default_model: the registry name of the bundled model of this kind.
        command: the `python -m explain` subcommand that explains it.
        input_label: what its input is called on a page ("Sentence", "Prompt", "Source", "Image").
        shared_input: the URL name of that input, shared by every page that shows one.
        reads_images: the input is an image (else text).
        causal: self-attention is masked so that position t sees only positions <= t.
        generates: the model writes an output (greedy continuation or a rewritten text).
        cross_attention: a decoder attends to an encoder's states (encoder-decoders).
        transformer: attention layers the views and methods read (False for the recurrent teaching models).
    """

    name: str
    label: str
    article: str
    default_model: str
    command: str
    input_label: str
    shared_input: str
    reads_images: bool = False
    causal: bool = False
    generates: bool = False
    cross_attention: bool = False
    transformer: bool = True

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            raise TypeError(f"Compare model kinds as objects, not with the string {other!r}: ask the kind "
                            "(kind.causal, kind.reads_images, ...) or use models.kinds.kind_named.")
        return self is other

    def __hash__(self) -> int:
        return hash(self.name)

    def __str__(self) -> str:
        return self.name


TEXT = ModelKind("text", "Text encoder", "a text encoder", "minilm", "text", "Sentence", "text")
IMAGE = ModelKind("image", "Image model", "an image model", "shapes-vit", "image", "Image", "image", reads_images=True)
DECODER = ModelKind("decoder", "Decoder", "a decoder (causal LM)", "induction-lm", "text", "Prompt",
                    "prompt", causal=True, generates=True)
SEQ2SEQ = ModelKind("seq2seq", "Encoder-decoder", "an encoder-decoder", "iso-dates", "seq2seq", "Source", "source",
                    generates=True, cross_attention=True)
RECURRENT = ModelKind("recurrent", "Recurrent encoder-decoder", "a recurrent (GRU) encoder-decoder", "reverse-gru-attn",
                      "rnn", "Letters", "letters", generates=True, transformer=False)
KINDS: tuple[ModelKind, ...] = (TEXT, IMAGE, DECODER, SEQ2SEQ, RECURRENT)
# The kinds with attention layers the Explore pages, the methods and the sidebar's model pickers read.
TRANSFORMER_KINDS: tuple[ModelKind, ...] = tuple(kind for kind in KINDS if kind.transformer)


def kind_named(name: str) -> ModelKind:
    """The kind whose `name` is `name`.

    Raises:
        ValueError: no kind has that name.
    """
    for kind in KINDS:
        if kind.name == name:
            return kind
    raise ValueError(f"Unknown model kind '{name}': choose one of {', '.join(k.name for k in KINDS)}.")
