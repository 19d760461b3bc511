"""Word-for-word translation, first with a Python dict, then with one-hot vectors and matrices.

Notebook 01 builds `tokenize`, `literal_translate` and the fallbacks for missing tokens; notebook 02
builds `Vocabulary`, `one_hot`, `dictionary_matrices` and `cosine_decode`, the matrix form of the
same lookup that notebook 03 softens into attention. The data loaders and scores (`exact_match`,
`word_error_rate`, `score`, `score_by_tag`) are reused by notebook 07 to compare a trained
translator with this word-for-word baseline on the held-out split.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence

import torch
from torch import Tensor

from course_lib.validation import check_text, check_type

UNK = "<unk>"
GLOSSARY_FILE = "fr_en_glossary.tsv"
SENTENCES_FILE = "fr_en_sentences.tsv"
SPLITS = ("train", "test")
# Tags of data/fr_en_sentences.tsv. All but "elision" mark sentences that word-for-word gets wrong;
# "elision" marks sentences that only work once the tokenizer splits "l'oiseau" into "l'" + "oiseau".
TAGS = {
    "elision": "an elided word (l', j', n', c', qu') that a plain split on spaces glues to the next word",
    "adjective_order": "the adjective follows the noun in French and precedes it in English",
    "negation": "ne ... pas wraps the verb; English says 'does not' before it",
    "idiom": "a fixed phrase whose words do not add up: il fait froid = it is cold",
    "agreement": "one French form, several English ones: je mange / il mange, sa = his or her",
    "article": "French keeps an article where English drops or changes it: j'aime le café = I like coffee",
    "word_order": "object pronouns go before the verb in French: je le vois = I see him",
    "sense": "one French word with several meanings: la porte (door) / il porte (carries)",
}
FAILING_TAGS = tuple(tag for tag in TAGS if tag != "elision")

# ---------------------------------------------------------------------------------------------
# Notebook 01: tokens and the dict translator
# ---------------------------------------------------------------------------------------------

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})
_ELIDED = r"(?:jusqu|lorsqu|puisqu|qu|[cdjlmnst])'"
_TOKEN = re.compile(
    rf"aujourd'hui|\b{_ELIDED}|[^\W\d_]+(?:-[^\W\d_]+)*|\d+(?:[.,]\d+)?|[^\w\s]",
    re.IGNORECASE,
)


def _check_text(value, name: str) -> str:  # kept by this name: notebook 01 shows normalize's source
    return check_text(name, value)


def normalize(text: str) -> str:
    """Unicode NFC, typographic apostrophes to ', lower case, single spaces (notebook 01)."""
    text = unicodedata.normalize("NFC", _check_text(text, "text")).translate(_APOSTROPHES)
    return " ".join(text.lower().split())


def strip_accents(word: str) -> str:
    """'tâble' -> 'table', 'œuf' stays: drop combining accents so 'etre' can find 'être' (notebook 01)."""
    decomposed = unicodedata.normalize("NFD", check_text("word", word))
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if not unicodedata.combining(c)))


def tokenize(sentence: str, keep_punctuation: bool = False) -> list[str]:
    """Split a (French) sentence into words: lower-cased, "l'oiseau" -> ["l'", "oiseau"] (notebook 01).

    Punctuation is dropped unless `keep_punctuation`; hyphenated words and "aujourd'hui" stay whole.
    """
    tokens = _TOKEN.findall(normalize(sentence))
    if keep_punctuation:
        return tokens
    return [t for t in tokens if t[0].isalnum()]


@dataclass(frozen=True)
class Lookup:
    """One token's trip through the dictionary: `how` is 'found', 'normalized', 'nearest' or 'unknown'."""

    source: str
    target: str | None
    how: str


def nearest_spelling(word: str, candidates: Iterable[str], cutoff: float = 0.75) -> str | None:
    """The candidate spelled most like `word` (difflib's ratio >= cutoff), or None (notebook 01)."""
    check_text("word", word)
    if not 0.0 <= cutoff <= 1.0:
        raise ValueError(f"cutoff: expected a similarity ratio in [0, 1], got {cutoff}")
    found = difflib.get_close_matches(word, list(candidates), n=1, cutoff=cutoff)
    return found[0] if found else None


def lookup(tokens: Sequence[str], dictionary: Mapping[str, str], normalize_accents: bool = False,
           nearest: bool = False, cutoff: float = 0.75) -> list[Lookup]:
    """Look each token up: exactly, then (optionally) without accents, then by nearest spelling.

    Tokens that none of these find come back with `target=None`, `how='unknown'` (notebook 01).
    """
    check_type("dictionary", dictionary, Mapping, "a mapping from French words to English")
    if isinstance(tokens, str) or not all(isinstance(t, str) for t in tokens):
        raise TypeError(f"tokens: expected a list of str (use tokenize(sentence)), got {tokens!r:.60}")
    plain = {}
    if normalize_accents:
        for key in dictionary:
            plain.setdefault(strip_accents(key), key)
    found = []
    for token in tokens:
        if token in dictionary:
            found.append(Lookup(token, dictionary[token], "found"))
        elif normalize_accents and strip_accents(token) in plain:
            found.append(Lookup(token, dictionary[plain[strip_accents(token)]], "normalized"))
        elif nearest and (close := nearest_spelling(token, dictionary, cutoff)) is not None:
            found.append(Lookup(token, dictionary[close], "nearest"))
        else:
            found.append(Lookup(token, None, "unknown"))
    return found


def literal_translate(sentence: str, dictionary: Mapping[str, str], unknown: str | None = UNK,
                      normalize_accents: bool = False, nearest: bool = False) -> str:
    """Translate word for word with a dict: each token replaced by its entry (notebook 01).

    A token missing from `dictionary` becomes `unknown` ("<unk>"), or stays as it is when
    `unknown=None`; `normalize_accents` and `nearest` try the fallbacks of `lookup` first.
    """
    check_text("sentence", sentence)
    if unknown is not None:
        check_type("unknown", unknown, str, "a str or None (keep the word)")
    words = []
    for item in lookup(tokenize(sentence), dictionary, normalize_accents, nearest):
        target = item.target if item.target is not None else (item.source if unknown is None else unknown)
        if target:
            words.append(target)
    return " ".join(words)


# ---------------------------------------------------------------------------------------------
# Data: the glossary and the sentence pairs in data/
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SentencePair:
    """A French sentence, its English reference, the tags of TAGS it carries, and its split."""

    fr: str
    en: str
    tags: tuple[str, ...]
    split: str

    @property
    def literal_ok(self) -> bool:
        """True when no tag says word-for-word fails on this pair."""
        return not any(tag in FAILING_TAGS for tag in self.tags)


def load_glossary() -> dict[str, str]:
    """data/fr_en_glossary.tsv as a dict French word -> English word(s) (notebooks 01, 02)."""
    from course_lib.data import read_tsv

    return {row["fr"]: row["en"] for row in read_tsv(GLOSSARY_FILE)}


def load_glossary_kinds() -> dict[str, str]:
    """The `kind` column of the glossary: French word -> 'noun', 'verb', 'adjective', 'function' or 'name'."""
    from course_lib.data import read_tsv

    return {row["fr"]: row["kind"] for row in read_tsv(GLOSSARY_FILE)}


def load_sentence_pairs(split: str | None = None, tags: Iterable[str] | None = None) -> list[SentencePair]:
    """data/fr_en_sentences.tsv as SentencePairs; `split` 'train' or 'test' (None: all);
    `tags` keeps pairs carrying any of them (notebooks 01 and 07)."""
    from course_lib.data import read_tsv

    if split is not None and split not in SPLITS:
        raise ValueError(f"split: expected one of {SPLITS} or None, got {split!r}")
    wanted = None if tags is None else ({tags} if isinstance(tags, str) else set(tags))
    if wanted is not None and wanted - set(TAGS):
        raise ValueError(f"tags: expected some of {sorted(TAGS)}, got unknown {sorted(wanted - set(TAGS))}")
    pairs = []
    for row in read_tsv(SENTENCES_FILE):
        pair = SentencePair(row["fr"], row["en"], tuple(t for t in row["tags"].split(",") if t), row["split"])
        if (split is None or pair.split == split) and (wanted is None or wanted & set(pair.tags)):
            pairs.append(pair)
    return pairs


# ---------------------------------------------------------------------------------------------
# Scores: exact match and a word-level score (notebooks 01 and 07)
# ---------------------------------------------------------------------------------------------

_WORD = re.compile(r"[^\W_]+(?:['-][^\W_]+)*|<unk>")


def words(text: str) -> list[str]:
    """The words a score compares: normalized, punctuation dropped ("I am." -> ['i', 'am'])."""
    return _WORD.findall(normalize(text))


def exact_match(hypothesis: str, reference: str) -> bool:
    """True when the two sentences have the same words (case, spacing and punctuation ignored)."""
    return words(check_text("hypothesis", hypothesis)) == words(check_text("reference", reference))


def edit_distance(a: Sequence[str], b: Sequence[str]) -> int:
    """Fewest word insertions, deletions and substitutions that turn `a` into `b` (Levenshtein)."""
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        current = [i]
        for j, y in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def word_error_rate(hypothesis: str, reference: str) -> float:
    """Word edits needed to reach the reference, divided by its length (0 is perfect; can exceed 1)."""
    ref = words(check_text("reference", reference))
    hyp = words(check_text("hypothesis", hypothesis))
    if not ref:
        return 0.0 if not hyp else float(len(hyp))
    return edit_distance(hyp, ref) / len(ref)


@dataclass(frozen=True)
class Scores:
    """How a translator did on `n` sentences: the share translated exactly, and the word accuracy,
    1 - (word edits over the whole set / reference words), i.e. one minus the corpus word error rate."""

    n: int
    exact_match: float
    word_accuracy: float

    def __str__(self) -> str:
        return f"n={self.n:4d}  exact match {self.exact_match:6.1%}  word accuracy {self.word_accuracy:6.1%}"


def score(hypotheses: Sequence[str], references: Sequence[str]) -> Scores:
    """Exact-match rate and word accuracy of translations against their references."""
    if isinstance(hypotheses, str) or isinstance(references, str):
        raise TypeError("hypotheses, references: expected sequences of sentences, got a single str")
    if len(hypotheses) != len(references):
        raise ValueError(f"hypotheses, references: expected the same length, got {len(hypotheses)} and {len(references)}")
    if not references:
        return Scores(0, 0.0, 0.0)
    exact = sum(exact_match(h, r) for h, r in zip(hypotheses, references))
    edits = sum(edit_distance(words(h), words(r)) for h, r in zip(hypotheses, references))
    total = sum(len(words(r)) for r in references)
    return Scores(len(references), exact / len(references), 1.0 - edits / max(total, 1))


def score_by_tag(hypotheses: Sequence[str], pairs: Sequence[SentencePair]) -> dict[str, Scores]:
    """`score` over all pairs, over the untagged ('plain') ones, and over each tag present."""
    if len(hypotheses) != len(pairs):
        raise ValueError(f"hypotheses, pairs: expected the same length, got {len(hypotheses)} and {len(pairs)}")
    groups: dict[str, list[int]] = {"all": list(range(len(pairs))), "plain": []}
    for i, pair in enumerate(pairs):
        for tag in pair.tags or ("plain",):
            groups.setdefault(tag, []).append(i)
    order = ["all", "plain", *[t for t in TAGS if t in groups]]
    return {name: score([hypotheses[i] for i in groups[name]], [pairs[i].en for i in groups[name]])
            for name in order if groups[name]}


# ---------------------------------------------------------------------------------------------
# Notebook 02: one-hot vectors and the dictionary as matrices
# ---------------------------------------------------------------------------------------------


class Vocabulary:
    """Token <-> index, with `<unk>` at index 0 for every token it has not seen (notebook 02)."""

    def __init__(self, tokens: Iterable[str] = (), unk: str = UNK):
        check_text("unk", unk)
        self.unk = unk
        self._tokens: list[str] = [unk]
        self._index: dict[str, int] = {unk: 0}
        for token in tokens:
            self.add(token)

    def add(self, token: str) -> int:
        """The index of `token`, adding it at the end if new."""
        check_text("token", token)
        if token not in self._index:
            self._index[token] = len(self._tokens)
            self._tokens.append(token)
        return self._index[token]

    @property
    def tokens(self) -> list[str]:
        return list(self._tokens)

    def __len__(self) -> int:
        return len(self._tokens)

    def __contains__(self, token: object) -> bool:
        return token in self._index

    def __iter__(self):
        return iter(self._tokens)

    def __repr__(self) -> str:
        shown = ", ".join(self._tokens[:6]) + (", ..." if len(self) > 6 else "")
        return f"Vocabulary({len(self)} tokens: {shown})"

    def index(self, token: str) -> int:
        """The index of `token`, or 0 (`<unk>`) if it is not in the vocabulary."""
        return self._index.get(check_text("token", token), 0)

    def token(self, index: int) -> str:
        if not isinstance(index, int) or not 0 <= index < len(self):
            raise ValueError(f"index: expected an int in [0, {len(self)}), got {index!r}")
        return self._tokens[index]

    def encode(self, tokens: Sequence[str]) -> list[int]:
        if isinstance(tokens, str):
            raise TypeError(f"tokens: expected a list of str (use tokenize(sentence)), got the str {tokens!r:.60}")
        return [self.index(t) for t in tokens]

    def decode(self, indices: Iterable[int]) -> list[str]:
        return [self.token(int(i)) for i in indices]


def one_hot(tokens: Sequence[str], vocab: Vocabulary) -> Tensor:
    """A (len(tokens), len(vocab)) float tensor, one row per token with a single 1 at its index."""
    check_type("vocab", vocab, Vocabulary)
    indices = torch.tensor(vocab.encode(tokens), dtype=torch.long)
    matrix = torch.zeros(len(indices), len(vocab))
    matrix[torch.arange(len(indices)), indices] = 1.0
    return matrix


def dictionary_matrices(dictionary: Mapping[str, str], include_unk: bool = True
                        ) -> tuple[Tensor, Tensor, Vocabulary, Vocabulary]:
    """The dict as two matrices: row i of K is the one-hot of French key i, row i of V the one-hot
    of its English value, so `one_hot(q) @ K.T @ V` looks a word up (notebook 02).

    With `include_unk` the first entry is `<unk>` -> `<unk>`, so unknown words come out as `<unk>`.
    Returns `(K, V, src_vocab, tgt_vocab)`.
    """
    check_type("dictionary", dictionary, Mapping, "a mapping from French words to English")
    if not dictionary:
        raise ValueError("dictionary: expected at least one entry, got an empty mapping")
    for key, value in dictionary.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(f"dictionary: expected str keys and values, got {key!r} -> {value!r}")
    src_vocab, tgt_vocab = Vocabulary(dictionary.keys()), Vocabulary(dictionary.values())
    keys, values = list(dictionary.keys()), list(dictionary.values())
    if include_unk and UNK not in dictionary:
        keys, values = [UNK, *keys], [UNK, *values]
    return one_hot(keys, src_vocab), one_hot(values, tgt_vocab), src_vocab, tgt_vocab


def cosine_similarity(a: Tensor, b: Tensor, eps: float = 1e-8) -> Tensor:
    """The (n, m) matrix of cosines between the rows of a (n, d) and of b (m, d) (notebook 02)."""
    for name, t in (("a", a), ("b", b)):
        check_type(name, t, Tensor, "a torch.Tensor")
        if t.dim() != 2:
            raise ValueError(f"{name}: expected 2 dimensions (rows, features), got shape {tuple(t.shape)}")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a, b: expected the same number of features, got shapes {tuple(a.shape)} and {tuple(b.shape)}")
    a_unit = a / a.norm(dim=1, keepdim=True).clamp_min(eps)
    b_unit = b / b.norm(dim=1, keepdim=True).clamp_min(eps)
    return a_unit @ b_unit.T


def cosine_decode(vectors: Tensor, table: Tensor, vocab: Vocabulary) -> list[str]:
    """For each row of `vectors`, the token of `vocab` whose row of `table` has the highest cosine
    similarity; an all-zero row (nothing matched) decodes to `<unk>` (notebook 02).

    vectors: (n, d) or (d,); table: (len(vocab), d), row i the code of vocab token i.
    """
    check_type("vocab", vocab, Vocabulary)
    if not isinstance(vectors, Tensor) or not isinstance(table, Tensor):
        raise TypeError(f"vectors, table: expected torch.Tensors, got {type(vectors).__name__} and {type(table).__name__}")
    if vectors.dim() == 1:
        vectors = vectors.unsqueeze(0)
    if table.dim() != 2 or table.shape[0] != len(vocab):
        raise ValueError(f"table: expected shape ({len(vocab)}, d), one row per vocabulary token, got {tuple(table.shape)}")
    if vectors.dim() != 2 or vectors.shape[1] != table.shape[1]:
        raise ValueError(f"vectors: expected shape (n, {table.shape[1]}) to match table {tuple(table.shape)}, "
                         f"got {tuple(vectors.shape)}")
    similarity = cosine_similarity(vectors.float(), table.float())
    best = similarity.argmax(dim=1)
    empty = vectors.abs().sum(dim=1) == 0
    return [vocab.unk if e else vocab.token(int(i)) for i, e in zip(best, empty)]


def matrix_translate(sentence: str, K: Tensor, V: Tensor, src_vocab: Vocabulary, tgt_vocab: Vocabulary) -> str:
    """Word-for-word translation with matrices: Q = one_hot(tokens), (Q @ K.T) @ V, cosine-decoded."""
    check_text("sentence", sentence)
    tokens = tokenize(sentence)
    if not tokens:
        return ""
    Q = one_hot(tokens, src_vocab)
    if Q.shape[1] != K.shape[1] or K.shape[0] != V.shape[0] or V.shape[1] != len(tgt_vocab):
        raise ValueError(f"K, V: expected K ({K.shape[0]}, {len(src_vocab)}) and V ({K.shape[0]}, {len(tgt_vocab)}), "
                         f"got K {tuple(K.shape)} and V {tuple(V.shape)}")
    out = (Q @ K.T) @ V
    return " ".join(cosine_decode(out, torch.eye(len(tgt_vocab)), tgt_vocab))


__all__ = ["UNK", "TAGS", "FAILING_TAGS", "SPLITS", "normalize", "strip_accents", "tokenize", "Lookup",
           "nearest_spelling", "lookup", "literal_translate", "SentencePair", "load_glossary", "load_glossary_kinds",
           "load_sentence_pairs", "words", "exact_match", "edit_distance", "word_error_rate", "Scores",
           "score", "score_by_tag", "Vocabulary", "one_hot", "dictionary_matrices", "cosine_similarity",
           "cosine_decode", "matrix_translate"]
