"""From one-hot vectors to attention, after Brandon Rohrer's "Transformers from scratch" (quoted in the lecture
notes): one-hot vectors pick a row of a matrix, first- and second-order sequence models as transition tables
counted from a corpus, and the "second-order model with skips": every earlier word votes for the next word with
its own row, and weights on the votes (a mask, or attention) choose which votes count.

Sentences are lower-cased words (punctuation dropped), as in the notes' tables. A corpus line may start with a
count ("4 x check whether the battery ran down please") that weights it, which is how the notes' proportions
(.2/.3/.5, 40/60) arise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from models import LoadedModel

WORD = re.compile(r"[a-z0-9']+")
COUNT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*[x×*]\s+(.*)$", re.IGNORECASE)

# The notes' own examples, each with the counts that give the notes' proportions.
LECTURE_CORPORA = {
    "Show me my ... please (first order)": "2 x Show me my directories please\n3 x Show me my files please\n"
                                           "5 x Show me my photos please",
    "The battery ran down (second order)": "4 x Check whether the battery ran down please.\n"
                                           "6 x Check whether the program ran please.",
    "Check the program log (skips)": "Check the program log and find out whether it ran please.\n"
                                     "Check the battery log and find out whether it ran down please.",
}


def words_of(sentence: str) -> tuple[str, ...]:
    """The lower-cased words of a sentence, punctuation dropped: "Ran down, please." -> ("ran", "down", "please")."""
    return tuple(WORD.findall(sentence.lower()))


@dataclass(frozen=True)
class Corpus:
    """Sentences as words, each with a weight (how often it occurs).

    Attributes:
        sentences: N tuples of words; weights: N positive counts.
    """

    sentences: tuple[tuple[str, ...], ...]
    weights: tuple[float, ...]

    @property
    def vocabulary(self) -> list[str]:
        """Every word of the corpus, sorted (the notes' row and column order)."""
        return sorted({word for sentence in self.sentences for word in sentence})


def parse_corpus(text: str) -> Corpus:
    """One sentence per line, optionally preceded by a count ("3 x show me my files please"); blank lines skipped.

    Raises:
        ValueError: no line has two or more words, or a count is not positive.
    """
    sentences, weights = [], []
    for line in text.splitlines():
        counted = COUNT.match(line)
        weight, sentence = (float(counted.group(1)), counted.group(2)) if counted else (1.0, line)
        words = words_of(sentence)
        if not words:
            continue
        if weight <= 0:
            raise ValueError(f"The count of '{sentence.strip()}' is {weight:g}: give a positive count or none.")
        sentences.append(words)
        weights.append(weight)
    if not any(len(words) > 1 for words in sentences):
        raise ValueError("The corpus has no sentence of two or more words: type at least one, one per line.")
    return Corpus(tuple(sentences), tuple(weights))


def one_hot(indices: list[int] | torch.Tensor, size: int) -> torch.Tensor:
    """(N,) indices -> (N, size) float rows with a single 1 at each index."""
    indices = torch.as_tensor(indices, dtype=torch.long)
    if indices.numel() and (indices.min() < 0 or indices.max() >= size):
        raise ValueError(f"An index is outside the vocabulary of {size} entries.")
    return torch.nn.functional.one_hot(indices, size).double()


def select_rows(indices: list[int] | torch.Tensor, matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The product one_hot(indices) @ matrix, which is the rows `indices` of `matrix`.

    Args:
        indices: N row numbers; matrix: (V, D).

    Returns:
        (the one-hot matrix (N, V), the product (N, D)).
    """
    rows = one_hot(indices, matrix.shape[0]).to(matrix.dtype)
    return rows, rows @ matrix


@dataclass
class TransitionTable:
    """A sequence model as a table: one row per context (the last `order` words), one column per next word.

    Attributes:
        contexts: R row labels, each a tuple of `order` words.
        vocabulary: V column labels.
        counts: (R, V) float64 weighted counts of "context followed by word".
    """

    contexts: list[tuple[str, ...]]
    vocabulary: list[str]
    counts: torch.Tensor

    @property
    def probabilities(self) -> torch.Tensor:
        """(R, V) each row divided by its total; a context never followed by a word keeps a row of zeros."""
        totals = self.counts.sum(-1, keepdim=True)
        return torch.where(totals > 0, self.counts / totals.clamp(min=1e-300), torch.zeros_like(self.counts))

    def row(self, context: tuple[str, ...]) -> torch.Tensor:
        """(V,) the next-word probabilities after `context`; zeros for a context the corpus never shows."""
        if context in self.contexts:
            return self.probabilities[self.contexts.index(context)]
        return torch.zeros(len(self.vocabulary), dtype=torch.float64)


def transition_table(corpus: Corpus, order: int = 1, every_context: bool | None = None) -> TransitionTable:
    """The order-`order` Markov model of a corpus, counted: rows are contexts, columns next words.

    Args:
        order: how many words of context (1: first order, 2: second order).
        every_context: list every word as a context even when nothing follows it (the notes' first-order
            table; default for order 1); otherwise (default from order 2) only the contexts the corpus shows,
            in sorted order (the V^order possible rows are mostly empty).
    """
    if order < 1:
        raise ValueError(f"The order is {order}: a sequence model looks at one or more previous words.")
    vocabulary = corpus.vocabulary
    column = {word: index for index, word in enumerate(vocabulary)}
    seen: dict[tuple[str, ...], torch.Tensor] = {}
    if every_context if every_context is not None else order == 1:
        if order != 1:
            raise ValueError("Listing every context is only offered for the first order (V rows).")
        seen = {(word,): torch.zeros(len(vocabulary), dtype=torch.float64) for word in vocabulary}
    for sentence, weight in zip(corpus.sentences, corpus.weights):
        for position in range(order, len(sentence)):
            context = sentence[position - order:position]
            counts = seen.setdefault(context, torch.zeros(len(vocabulary), dtype=torch.float64))
            counts[column[sentence[position]]] += weight
    contexts = sorted(seen)
    counts = torch.stack([seen[c] for c in contexts]) if contexts else torch.zeros(0, len(vocabulary), dtype=torch.float64)
    return TransitionTable(contexts, vocabulary, counts)


def table_growth(corpus: Corpus, orders: int = 5) -> tuple[list[int], list[int]]:
    """How the table grows with the order: for orders 1..`orders`, (rows possible = V^order, rows the corpus
    shows = distinct contexts followed by a word)."""
    size = len(corpus.vocabulary)
    possible = [size ** order for order in range(1, orders + 1)]
    observed = [len(transition_table(corpus, order, every_context=False).contexts) for order in range(1, orders + 1)]
    return possible, observed


def skip_table(corpus: Corpus) -> TransitionTable:
    """The second-order model with skips: one row per pair (earlier word, last word), counting the word that
    follows the last word whenever the earlier word occurred anywhere before it in the sentence.

    Each distinct earlier word counts once per position (a word seen twice before "ran" votes once). Row
    ("battery", "ran") of the notes' corpus is then "down" with probability 1, ("and", "ran") half "down" and
    half "please".
    """
    vocabulary = corpus.vocabulary
    column = {word: index for index, word in enumerate(vocabulary)}
    seen: dict[tuple[str, ...], torch.Tensor] = {}
    for sentence, weight in zip(corpus.sentences, corpus.weights):
        for position in range(1, len(sentence) - 1):
            last, following = sentence[position], sentence[position + 1]
            for earlier in dict.fromkeys(sentence[:position]):
                counts = seen.setdefault((earlier, last), torch.zeros(len(vocabulary), dtype=torch.float64))
                counts[column[following]] += weight
    contexts = sorted(seen)
    counts = torch.stack([seen[c] for c in contexts]) if contexts else torch.zeros(0, len(vocabulary), dtype=torch.float64)
    return TransitionTable(contexts, vocabulary, counts)


@dataclass
class SkipVote:
    """The second-order-with-skips prediction for one context, each earlier word's vote weighted.

    Attributes:
        earlier: E distinct earlier words (in order of first appearance); last: the most recent word.
        rows: (E, V) each feature (earlier, last)'s next-word probabilities (zeros if never seen).
        activity: (E,) 1 where the feature was seen in the corpus, else 0 (the notes' "feature activities").
        weights: (E,) the weight of each vote (1 = counted, 0 = masked).
        vote: (V,) sum of weights * activity * rows; prediction: vote / its sum (zeros when nothing votes).
        decisive: (E,) the notes' mask: 1 where the feature's row puts all its weight on one word.
        vocabulary: V words.
    """

    earlier: list[str]
    last: str
    rows: torch.Tensor
    activity: torch.Tensor
    weights: torch.Tensor
    vote: torch.Tensor
    prediction: torch.Tensor
    decisive: torch.Tensor
    vocabulary: list[str]


def skip_vote(table: TransitionTable, context: tuple[str, ...], weights: list[float] | torch.Tensor | None = None) -> SkipVote:
    """Every earlier word of `context` votes for the word after its last word; `weights` scale the votes.

    Args:
        table: the corpus's `skip_table`.
        context: the words so far (two or more); the last is the word whose successor is predicted.
        weights: one weight per distinct earlier word (order of first appearance); default 1 each.

    Raises:
        ValueError: a context shorter than two words, or the wrong number of weights.
    """
    if len(context) < 2:
        raise ValueError("Give at least two words: the earlier words vote for what follows the last one.")
    earlier, last = list(dict.fromkeys(context[:-1])), context[-1]
    rows = torch.stack([table.row((word, last)) for word in earlier])  # (E, V)
    activity = (rows.sum(-1) > 0).double()
    weights = torch.ones(len(earlier), dtype=torch.float64) if weights is None else torch.as_tensor(weights, dtype=torch.float64)
    if weights.shape != (len(earlier),):
        raise ValueError(f"Give one weight per earlier word ({len(earlier)}), not {weights.numel()}.")
    vote = (weights * activity) @ rows  # (V,)
    total = vote.sum()
    prediction = vote / total if total > 0 else torch.zeros_like(vote)
    decisive = ((rows.max(-1).values > 1 - 1e-12) & (activity > 0)).double()
    return SkipVote(earlier, last, rows, activity, weights, vote, prediction, decisive, list(table.vocabulary))


@torch.no_grad()
def embedding_as_one_hot(loaded: LoadedModel, text: str) -> tuple[list[str], torch.Tensor, torch.Tensor]:
    """A model's embedding layer is a one-hot product: one_hot(ids) @ E, E its own embedding matrix.

    Returns:
        (tokens, one_hot(ids) @ E (T, D), the embedding module's own output for the ids (T, D)).
    """
    if loaded.spec.kind.reads_images:
        raise ValueError(f"'{loaded.spec.name}' reads images, not words: pick a text model.")
    ids = loaded.tokenizer(text, return_tensors="pt", truncation=True, max_length=loaded.spec.max_length)["input_ids"][0]
    embedding = loaded.model.get_input_embeddings()
    matrix = embedding.weight.detach().float().cpu()  # (V, D)
    _, product = select_rows(ids, matrix)
    own = embedding(ids[None].to(loaded.device))[0].float().cpu()
    return loaded.tokenizer.convert_ids_to_tokens(ids.tolist()), product, own
