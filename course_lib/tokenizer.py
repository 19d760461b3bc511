"""Byte-level byte-pair encoding (BPE), GPT-2 style, from scratch.

Notebook 05 builds it: text is cut into chunks by the GPT-2 regex, each chunk becomes its UTF-8
bytes (256 base tokens, so every string can be encoded), and training repeatedly merges the most
frequent adjacent pair into a new token. `train_merges_plain` is the readable trainer that
recounts every pair after each merge; `train_merges` gives the same merges by updating only the
counts a merge changes. `BPETokenizer.from_pretrained_vocab` loads a real vocabulary (SmolLM2's)
and encodes to the very ids Hugging Face `tokenizers` gives. Notebook 07 trains a tiny GPT with it.
"""

from __future__ import annotations

import heapq
import json
import operator
import os
from collections import Counter, defaultdict
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import regex

from course_lib.validation import check_file, check_int, check_non_negative_int, check_text, check_type

# GPT-2's pre-tokenizer: English contractions, letters with an optional leading space, numbers,
# punctuation runs, and whitespace (a run of spaces gives its last space to the next word).
# Python's `re` has no \p{L} (any letter) or \p{N} (any digit), hence the `regex` package.
GPT2_SPLIT_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
ENDOFTEXT = "<|endoftext|>"
FORMAT = "course_lib.BPETokenizer/1"
Pair = tuple[int, int]


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's table byte -> printable character, used to write byte tokens as JSON strings ('Ġ' is a space)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    table, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            table[byte] = chr(byte)
        else:
            table[byte] = chr(256 + extra)
            extra += 1
    return table


def word_counts(text: str, pattern: str = GPT2_SPLIT_PATTERN) -> Counter:
    """How often each pre-tokenized chunk occurs: BPE never merges across chunks, so it trains on these."""
    return Counter(regex.findall(pattern, check_text("text", text)))


def merge_pair(ids: Sequence[int], pair: Pair, new_id: int) -> list[int]:
    """Replace every occurrence of `pair` in `ids`, left to right, by `new_id`."""
    out, i, n = [], 0, len(ids)
    while i < n:
        if i + 1 < n and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def train_merges_plain(words: Mapping[str, int], n_merges: int) -> list[Pair]:
    """The readable BPE trainer: before each merge, count every adjacent pair again from scratch.

    `words` maps each chunk to its count. The most frequent pair wins (ties: the smallest pair of
    ids); merge k creates token id 256 + k. Stops early when no pair is left.
    """
    sequences = [list(word.encode("utf-8")) for word in words]
    weights = list(words.values())
    merges: list[Pair] = []
    for new_id in range(256, 256 + n_merges):
        counts: Counter = Counter()
        for seq, weight in zip(sequences, weights):
            for pair in zip(seq, seq[1:]):
                counts[pair] += weight
        if not counts:
            break
        best = min(counts, key=lambda pair: (-counts[pair], pair))
        sequences = [merge_pair(seq, best, new_id) for seq in sequences]
        merges.append(best)
    return merges


def train_merges(words: Mapping[str, int], n_merges: int) -> list[Pair]:
    """The same merges as `train_merges_plain`, fast: counts are updated, not recounted.

    An index pair -> words that contain it means a merge only revisits those words, and a heap of
    (-count, pair) with lazily discarded stale entries finds the most frequent pair in log time.
    """
    sequences = [list(word.encode("utf-8")) for word in words]
    weights = list(words.values())
    counts: dict[Pair, int] = defaultdict(int)
    where: dict[Pair, set[int]] = defaultdict(set)
    for index, seq in enumerate(sequences):
        for pair in zip(seq, seq[1:]):
            counts[pair] += weights[index]
            where[pair].add(index)
    heap = [(-count, pair) for pair, count in counts.items()]
    heapq.heapify(heap)
    merges: list[Pair] = []
    while heap and len(merges) < n_merges:
        negative, best = heapq.heappop(heap)
        if counts.get(best, 0) != -negative:
            continue  # stale: this pair's count changed after the entry was pushed
        new_id = 256 + len(merges)
        merges.append(best)
        changed = set()
        for index in where.pop(best):
            seq, weight = sequences[index], weights[index]
            for pair in zip(seq, seq[1:]):
                counts[pair] -= weight
                changed.add(pair)
            seq = sequences[index] = merge_pair(seq, best, new_id)
            for pair in zip(seq, seq[1:]):
                counts[pair] += weight
                where[pair].add(index)
                changed.add(pair)
        for pair in changed:
            if counts[pair] > 0:
                heapq.heappush(heap, (-counts[pair], pair))
            else:
                del counts[pair]
                where.pop(pair, None)
    return merges


class BPETokenizer:
    """Byte-level BPE with GPT-2 regex pre-tokenization and special tokens.

    Train one (`BPETokenizer().train(text, vocab_size)`) or load a real vocabulary
    (`BPETokenizer.from_pretrained_vocab(vocab, merges)`); `decode(encode(s)) == s` for every str.
    """

    def __init__(self, pattern: str = GPT2_SPLIT_PATTERN):
        self.pattern = check_text("pattern", pattern)
        self._split = regex.compile(pattern)
        self.vocab: dict[int, bytes] = {b: bytes([b]) for b in range(256)}  # id -> bytes
        # byte value -> id of its token; None where a pretrained vocabulary has no token for that byte
        # (SmolLM2 lacks 21 bytes that UTF-8 text never or hardly uses): such bytes are dropped, as HF does
        self.byte_ids: list[int | None] = list(range(256))
        self.merges: dict[Pair, int] = {}  # (left id, right id) -> merged id, in training order
        self._ranks: dict[Pair, int] = {}
        self.special_tokens: dict[str, int] = {}
        self._special_split = None
        self._cache: dict[str, list[int]] = {}

    # --- building -----------------------------------------------------------------------------
    def _set(self, vocab: dict[int, bytes], byte_ids: list[int | None], merges: Iterable[tuple[int, int, int]],
             special_tokens: Mapping[str, int]) -> "BPETokenizer":
        self.vocab, self.byte_ids = dict(vocab), list(byte_ids)
        self.merges, self._ranks = {}, {}
        for left, right, new in merges:
            if (left, right) not in self.merges:
                self._ranks[(left, right)] = len(self._ranks)
                self.merges[(left, right)] = new
        self.special_tokens = {}
        self.add_special_tokens(special_tokens)
        return self

    def add_special_tokens(self, tokens: Mapping[str, int]) -> "BPETokenizer":
        """Register strings that always become one token (e.g. '<|endoftext|>'), never split by BPE."""
        for text, token_id in tokens.items():
            check_text("special token", text)
            if not text:
                raise ValueError("special token: expected a non-empty string, got ''")
            check_non_negative_int(f"special token {text!r}", token_id, "a non-negative int id")
            if token_id in self.vocab and self.vocab[token_id] != text.encode("utf-8"):
                raise ValueError(f"special token {text!r}: id {token_id} is already the token {self.vocab[token_id]!r}")
            self.special_tokens[text] = token_id
            self.vocab[token_id] = text.encode("utf-8")
        if self.special_tokens:  # longest first, so '<|im_start|>' wins over a shorter prefix
            alternatives = sorted(self.special_tokens, key=lambda t: (-len(t), t))
            self._special_split = regex.compile("(" + "|".join(regex.escape(t) for t in alternatives) + ")")
        self._cache.clear()
        return self

    def train(self, text: str, vocab_size: int, special_tokens: Sequence[str] = (ENDOFTEXT,)) -> "BPETokenizer":
        """Learn `vocab_size - 256 - len(special_tokens)` merges from `text` (fewer if it runs out of pairs).

        Special tokens get the last ids; in `text` they separate documents and are never merged.
        """
        check_text("text", text)
        specials = list(dict.fromkeys(special_tokens))
        check_int("vocab_size", vocab_size, low=256 + len(specials),
                  what=f"at least 256 (one token per byte) + {len(specials)} special token(s) = {256 + len(specials)}")
        pieces = [text]
        if specials:
            pieces = regex.split("|".join(regex.escape(t) for t in specials), text)
        words: Counter = Counter()
        for piece in pieces:
            words.update(self._split.findall(piece))
        pairs = train_merges(words, vocab_size - 256 - len(specials))
        vocab = {b: bytes([b]) for b in range(256)}
        triples = []
        for k, (left, right) in enumerate(pairs):
            vocab[256 + k] = vocab[left] + vocab[right]
            triples.append((left, right, 256 + k))
        first_special = 256 + len(pairs)
        return self._set(vocab, list(range(256)), triples, {t: first_special + i for i, t in enumerate(specials)})

    @classmethod
    def from_merges(cls, merges: Sequence[Pair], special_tokens: Sequence[str] = (),
                    pattern: str = GPT2_SPLIT_PATTERN) -> "BPETokenizer":
        """A tokenizer from a list of merged id pairs (merge k creates id 256 + k), as the trainers return."""
        tokenizer = cls(pattern)
        vocab = {b: bytes([b]) for b in range(256)}
        triples = []
        for k, (left, right) in enumerate(merges):
            if left not in vocab or right not in vocab:
                raise ValueError(f"merges[{k}]: ({left}, {right}) uses an id not created before it")
            vocab[256 + k] = vocab[left] + vocab[right]
            triples.append((left, right, 256 + k))
        first_special = 256 + len(merges)
        return tokenizer._set(vocab, list(range(256)), triples,
                              {t: first_special + i for i, t in enumerate(dict.fromkeys(special_tokens))})

    @classmethod
    def from_pretrained_vocab(cls, vocab: Mapping[str, int], merges: Sequence, special_tokens: Mapping[str, int] | None = None,
                              pattern: str = GPT2_SPLIT_PATTERN) -> "BPETokenizer":
        """Load a GPT-2-style byte-level vocabulary: tokens written in GPT-2's byte alphabet ('Ġthe'),
        merges as [left, right] pairs (or 'left right' strings), in priority order, as in a HF tokenizer.json.
        """
        check_type("vocab", vocab, Mapping, "a mapping token string -> id")
        decoder = {char: byte for byte, char in bytes_to_unicode().items()}
        tokens: dict[int, bytes] = {}
        for token, token_id in vocab.items():
            if all(char in decoder for char in token):
                tokens[token_id] = bytes(decoder[char] for char in token)
            else:  # not written in the byte alphabet (an added token): its UTF-8 bytes
                tokens[token_id] = token.encode("utf-8")
        byte_to_id = {token[0]: token_id for token_id, token in sorted(tokens.items()) if len(token) == 1}
        if not byte_to_id:
            raise ValueError("vocab: expected a byte-level vocabulary with single-byte tokens ('a', 'Ġ', ...), found none")
        triples = []
        for k, merge in enumerate(merges):
            left, right = merge.split(" ") if isinstance(merge, str) else merge
            for part in (left, right, left + right):
                if part not in vocab:
                    raise ValueError(f"merges[{k}]: {part!r} of the merge ({left!r}, {right!r}) is not in vocab")
            triples.append((vocab[left], vocab[right], vocab[left + right]))
        return cls(pattern)._set(tokens, [byte_to_id.get(b) for b in range(256)], triples, dict(special_tokens or {}))

    # --- using ------------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        """Number of token ids (bytes + merges + special tokens)."""
        return len(self.vocab)

    def __len__(self) -> int:
        return self.vocab_size

    def __repr__(self) -> str:
        return f"BPETokenizer(vocab_size={self.vocab_size}, merges={len(self.merges)}, special_tokens={len(self.special_tokens)})"

    def _encode_chunk(self, chunk: str) -> list[int]:
        cached = self._cache.get(chunk)
        if cached is not None:
            return cached
        byte_ids = self.byte_ids
        ids = [byte_ids[b] for b in chunk.encode("utf-8") if byte_ids[b] is not None]
        ranks = self._ranks
        while len(ids) >= 2:  # merge the highest-priority (earliest learned) pair first
            pair = min(zip(ids, ids[1:]), key=lambda p: ranks.get(p, 1 << 62))
            if pair not in ranks:
                break
            ids = merge_pair(ids, pair, self.merges[pair])
        if len(self._cache) >= 200_000:
            self._cache.clear()
        self._cache[chunk] = ids
        return ids

    def encode_ordinary(self, text: str) -> list[int]:
        """Token ids of `text`, treating special-token strings as ordinary text."""
        ids: list[int] = []
        for chunk in self._split.findall(check_text("text", text)):
            ids.extend(self._encode_chunk(chunk))
        return ids

    def encode(self, text: str, allow_special: bool = True) -> list[int]:
        """Token ids of `text`. Special-token strings in it become their one id (as Hugging Face does),
        unless `allow_special=False`, which encodes them as ordinary text."""
        check_text("text", text)
        if not allow_special or self._special_split is None:
            return self.encode_ordinary(text)
        ids: list[int] = []
        for k, part in enumerate(self._special_split.split(text)):
            if k % 2:  # the captured separators are the special tokens
                ids.append(self.special_tokens[part])
            elif part:
                ids.extend(self.encode_ordinary(part))
        return ids

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """The bytes the ids stand for (a token can be part of a multi-byte character)."""
        if isinstance(ids, (str, bytes)):
            raise TypeError(f"ids: expected a sequence of int token ids, got {type(ids).__name__}")
        out = []
        for position, token_id in enumerate(ids):
            try:
                token_id = operator.index(token_id)
            except TypeError:
                raise TypeError(f"ids[{position}]: expected an int token id, got {type(token_id).__name__}") from None
            token = self.vocab.get(token_id)
            if token is None:
                raise ValueError(f"ids[{position}]: unknown token id {token_id}; this vocabulary has ids "
                                 f"0..{max(self.vocab)} ({self.vocab_size} tokens)")
            out.append(token)
        return b"".join(out)

    def decode(self, ids: Iterable[int]) -> str:
        """The text of `ids`; bytes that are not valid UTF-8 on their own (a cut character) become '�'."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def tokens(self, text: str) -> list[bytes]:
        """The pieces `text` is cut into, as bytes (to show or colour them)."""
        return [self.vocab[i] for i in self.encode(text)]

    # --- saving -----------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """A JSON-ready description: base tokens (bytes, as hex), merges [left, right, new id], special tokens."""
        made, special = set(self.merges.values()), set(self.special_tokens.values())
        return {
            "format": FORMAT,
            "pattern": self.pattern,
            "base_tokens": [[i, self.vocab[i].hex()] for i in sorted(self.vocab) if i not in made and i not in special],
            "byte_ids": self.byte_ids,
            "merges": [[left, right, new] for (left, right), new in self.merges.items()],
            "special_tokens": self.special_tokens,
        }

    def save(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write the tokenizer as JSON; an existing file is kept unless `overwrite=True`."""
        path = Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"path: {path} exists; pass overwrite=True to replace it")
        path.write_text(json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "BPETokenizer":
        """Read a tokenizer written by `save`."""
        path = check_file("path", path, "a tokenizer file is written by `BPETokenizer.save(path)`; the course's "
                          "own, data/tokenizer_python_docs_4096.json, by `python scripts/build_python_docs_tokenizer.py`")
        state = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            raise ValueError(f"path: {path} is not a {FORMAT} file (format: {state.get('format') if isinstance(state, dict) else None!r})")
        vocab = {int(i): bytes.fromhex(h) for i, h in state["base_tokens"]}
        merges = [tuple(m) for m in state["merges"]]
        for left, right, new in merges:
            vocab.setdefault(new, vocab[left] + vocab[right])
        return cls(state["pattern"])._set(vocab, state["byte_ids"], merges, state["special_tokens"])
