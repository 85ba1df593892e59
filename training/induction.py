"""The bundled decoder's world: a vocabulary of readable English words, a word-level fast tokenizer, and
sequences of random words in which a segment appears twice, so that copying it needs an induction head.

A sequence is <bos> w_1 ... w_L (L in 20..60 random words); a segment of 4..12 words at a random position
appears a second time later, at a random distance. Only the second copy (after its first word) can be
predicted, and only by finding the first copy: a previous-token head writes "the word before me" into
each position, and an induction head at the second copy's word [A] attends to the word that followed [A]
the first time ([A][B] ... [A] -> [B]).

Seeds: training < 10**6, evaluation >= 10**6 (training.seeds.check_seed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from explain.head_stats import induction_scores, previous_token_scores
from training.seeds import check_seed

EVAL_SEED = 20261124
SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")
PUNCTUATION = (".", ",", "!", "?", "'")
# Every word of the lecture notes' example sentences, then common readable words.
LECTURE_WORDS = (
    "the cat sat on mat i grew up in france so speak fluent french please buy an apple and orange "
    "red pizza tasted good love transformers animal didn t cross street because it was too tired "
    "dog lay rug let s go check program log find out whether ran battery released a new phone"
).split()
COMMON_WORDS = (
    "about above across after again against air all almost alone along also always am among any are "
    "around ask at away baby back bad ball bank be bear beautiful bed been before began begin behind "
    "being below best better between big bird black blue boat body book both box boy bread bright bring "
    "brother brown build busy but by call came can car card care carry case catch chair change child "
    "city class clean clear close cloud coat cold color come cook cool corn could country cow cry cup "
    "cut dark day deep did do does done door down draw dream dress drink drive dry each ear early earth "
    "east easy eat egg end enough even evening ever every eye face fall family far farm fast father "
    "feel feet few field fill fire first fish five floor flower fly follow food foot for forest four "
    "free friend from front fruit full game garden gave get girl give glass gold gone green ground group "
    "grow had hair half hand happy hard has hat have he head hear heart heavy help her here high hill "
    "him his hold home horse hot house how hundred ice idea if into island just keep kind king know lake "
    "land large last late laugh learn leave left leg light like line lion list little live long look "
    "lost low made make man many map may me mean meet milk mind moon more morning most mother mountain "
    "move much music must my name near need never next night nine no north not now number ocean of off "
    "old once one only open or other our over page paper park part pass people pick picture place plan "
    "plant play point pool poor pull push put queen question quick quiet rain read ready real right "
    "river road rock room round run sand say school sea second see seed seven shape sheep ship shoe shop "
    "short show side sign silver simple sing sister sit six sky sleep slow small smile snow some song "
    "soon sound south space stand star start stay step stone stop story sun sure swim table take talk "
    "tall tea teach tell ten than that their them then there these they thing think this three through "
    "time to today together told top town tree true try turn two under until us use very voice wait walk "
    "wall want warm wash watch water way we week well went were west what wheel when where which while "
    "white who why wide wild will wind window winter with without woman wood word work world write year "
    "yellow yes yesterday you young your"
).split()
WORDS: tuple[str, ...] = tuple(dict.fromkeys(LECTURE_WORDS + COMMON_WORDS))
LENGTHS = (20, 60)          # words per sequence, inclusive
SEGMENT_LENGTHS = (4, 12)   # words in the repeated segment, inclusive


def build_tokenizer():  # noqa: ANN201 - transformers.PreTrainedTokenizerFast
    """A fast word-level tokenizer: lower-cased words and punctuation marks, <bos> added at the start.

    Unknown words become <unk>. `decode` joins words with spaces.
    """
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    vocabulary = {token: index for index, token in enumerate(SPECIALS + PUNCTUATION + WORDS)}
    tokenizer = Tokenizer(WordLevel(vocabulary, unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()  # words, and runs of punctuation apart
    bos = vocabulary["<bos>"]
    tokenizer.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", bos)])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<bos>", eos_token="<eos>",
                                   unk_token="<unk>", pad_token="<pad>", model_max_length=128)


@dataclass(frozen=True)
class Batch:
    """Token ids (B, T) with <bos> first, padded with <pad> after each sequence's end, and where the segment is.

    Attributes:
        ids: (B, T) int64.
        lengths: (B,) tokens of each sequence, <bos> included.
        first, second: (B,) positions (in ids) where the segment's two copies start.
        segment: (B,) words in the segment.
    """

    ids: torch.Tensor
    lengths: torch.Tensor
    first: torch.Tensor
    second: torch.Tensor
    segment: torch.Tensor


def make_batch(rng: np.random.Generator, size: int, word_ids: np.ndarray, pad_id: int, bos_id: int) -> Batch:
    """`size` sequences of random words with a repeated segment (see the module docstring)."""
    rows, lengths, firsts, seconds, segments = [], [], [], [], []
    for _ in range(size):
        length = int(rng.integers(LENGTHS[0], LENGTHS[1] + 1))
        segment = int(rng.integers(SEGMENT_LENGTHS[0], min(SEGMENT_LENGTHS[1], length // 2) + 1))
        # first copy at p, second at q >= p + segment (no overlap), both inside the sequence
        p = int(rng.integers(0, length - 2 * segment + 1))
        q = int(rng.integers(p + segment, length - segment + 1))
        words = rng.choice(word_ids, size=length)
        words[q:q + segment] = words[p:p + segment]
        rows.append(np.concatenate([[bos_id], words]))
        lengths.append(length + 1)
        firsts.append(p + 1)
        seconds.append(q + 1)
        segments.append(segment)
    ids = np.full((size, max(lengths)), pad_id, dtype=np.int64)
    for row, tokens in enumerate(rows):
        ids[row, :len(tokens)] = tokens
    as_tensor = lambda values: torch.tensor(values, dtype=torch.int64)  # noqa: E731
    return Batch(torch.from_numpy(ids), as_tensor(lengths), as_tensor(firsts), as_tensor(seconds), as_tensor(segments))


def content_ids(tokenizer) -> np.ndarray:  # noqa: ANN001
    """Ids of the words sequences are drawn from (no specials, no punctuation)."""
    vocabulary = tokenizer.get_vocab()
    return np.array([vocabulary[w] for w in WORDS], dtype=np.int64)


def segment_scores(attentions: torch.Tensor, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Induction and previous-token scores of every head over a batch: ((L, H), (L, H)).

    Induction: mean attention from each token of the second copy to the token that followed its first
    occurrence (second + i -> first + i + 1, i = 0 .. segment - 1). Previous token: mean attention from
    each position t >= 1 to t - 1, over each sequence's real tokens.

    Args:
        attentions: (B, L, H, T, T).
    """
    induction, previous = [], []
    for row in range(attentions.shape[0]):
        length = int(batch.lengths[row])
        maps = attentions[row, :, :, :length, :length]
        induction.append(induction_scores(maps, int(batch.first[row]), int(batch.second[row]), int(batch.segment[row])))
        previous.append(previous_token_scores(maps))
    return torch.stack(induction).mean(0), torch.stack(previous).mean(0)


@torch.no_grad()
def evaluate_induction(model, tokenizer, n_sequences: int = 500, seed: int = EVAL_SEED, batch_size: int = 100) -> dict:  # noqa: ANN001
    """Head scores and repeat accuracy on held-out sequences (seed >= 10**6).

    Repeat accuracy: greedy next-token accuracy on the second copy after its first word (the model's
    argmax at second + i predicting the word at second + i + 1, i = 0 .. segment - 2).

    Returns:
        {"seed", "sequences", "induction": (L, H) list, "previous_token": (L, H) list,
         "best_induction": {"layer", "head", "score"}, "best_previous_token": {...}, "repeat_accuracy"}.
    """
    check_seed(seed, "eval")
    model.eval()
    rng = np.random.default_rng(seed)
    words = content_ids(tokenizer)
    induction_sum = previous_sum = None
    correct = total = 0
    done = 0
    while done < n_sequences:
        size = min(batch_size, n_sequences - done)
        batch = make_batch(rng, size, words, tokenizer.pad_token_id, tokenizer.bos_token_id)
        mask = (torch.arange(batch.ids.shape[1])[None, :] < batch.lengths[:, None]).long()
        out = model(input_ids=batch.ids, attention_mask=mask, output_attentions=True)
        attentions = torch.stack(out.attentions, dim=1).float()  # (B, L, H, T, T)
        induction, previous = segment_scores(attentions, batch)
        induction_sum = induction * size if induction_sum is None else induction_sum + induction * size
        previous_sum = previous * size if previous_sum is None else previous_sum + previous * size
        predictions = out.logits.argmax(-1)
        for row in range(size):
            second, segment = int(batch.second[row]), int(batch.segment[row])
            positions = torch.arange(second, second + segment - 1)
            correct += int((predictions[row, positions] == batch.ids[row, positions + 1]).sum())
            total += len(positions)
        done += size
    induction, previous = induction_sum / n_sequences, previous_sum / n_sequences

    def best(scores: torch.Tensor) -> dict:
        layer, head = divmod(int(scores.argmax()), scores.shape[1])
        return {"layer": layer, "head": head, "score": round(float(scores[layer, head]), 4)}

    return {
        "seed": seed, "sequences": n_sequences,
        "induction": [[round(float(v), 4) for v in row] for row in induction],
        "previous_token": [[round(float(v), 4) for v in row] for row in previous],
        "best_induction": best(induction), "best_previous_token": best(previous),
        "repeat_accuracy": round(correct / total, 4),
    }
