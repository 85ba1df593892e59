"""Example inputs offered on the pages, from the lecture notes, per kind of model (keyed by the kind's name)."""

from __future__ import annotations

TEXT_EXAMPLES = (
    "The cat sat on the mat.",
    "Check the program log and find out whether it ran please.",
    "I grew up in France, so I speak fluent French.",
    "The red pizza tasted good!",
    "I love Transformers!",
    "The animal didn't cross the street because it was too tired.",
)
PROBE_EXAMPLES = {
    "The cat sat on the mat.": "A dog lay on the rug.",
    "I grew up in France, so I speak fluent French.": "She speaks French.",
}
LABEL_EXAMPLES = "animals, food, language, computers, travel"
# Decoder prompts: a repeated sequence (an induction head completes the second copy), then the lecture notes'.
DECODER_EXAMPLES = (
    "please buy an apple and i love red pizza . please buy an apple and i love",
    "I grew up in France, so I speak fluent",
    "The cat sat on the",
    "The animal didn't cross the street because it was too",
    "Please buy an apple and an",
)
SEQ2SEQ_EXAMPLES = (
    "Tuesday, the 24th of November 2026",
    "24 November 2026",
    "Nov 24, 2026",
    "11/24/2026",
    "24.11.2026",
)
EXAMPLES = {"text": TEXT_EXAMPLES, "decoder": DECODER_EXAMPLES, "seq2seq": SEQ2SEQ_EXAMPLES}
