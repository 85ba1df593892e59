"""The fast character-level tokenizer of the bundled character models (iso-dates, the recurrent reversal models).

One token per character, lower-cased (NFKC first), offsets into the original text; </s> ends every sequence;
`decode` joins characters without spaces. Saved with `save_pretrained`, it loads with `AutoTokenizer` alone.
"""

from __future__ import annotations

from typing import Iterable

SPECIALS = ("<pad>", "<s>", "</s>", "<unk>")


def character_tokenizer(characters: Iterable[str], model_max_length: int):  # noqa: ANN201 - PreTrainedTokenizerFast
    """A tokenizer whose vocabulary is SPECIALS followed by `characters`, in that order (ids 0, 1, 2, ...)."""
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    vocabulary = {token: index for index, token in enumerate(SPECIALS + tuple(characters))}
    tokenizer = Tokenizer(WordLevel(vocabulary, unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tokenizer.decoder = decoders.Fuse()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", vocabulary["</s>"])])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   pad_token="<pad>", model_max_length=model_max_length)
