"""The translator of notebook 07: an encoder-decoder transformer and everything it needs.

`Seq2SeqConfig` / `Seq2SeqTransformer`: the 2017 paper's encoder-decoder, built from notebook 06's
`Block` (pre-norm); `TranslationData`: French-English pairs as padded id tensors; `augment_pairs`:
more training pairs written from the glossary, never one of the held-out sentences;
`translate`: greedy decoding; `chrf`: a character n-gram score. Notebook 07 writes the forward
pass and the greedy loop in plain code and checks them against these.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from course_lib.model import Block, _check_ids, _init_weights
from course_lib.runtime import device_of
from course_lib.translation import Vocabulary, tokenize
from course_lib.validation import check_positive_int, check_type


@dataclass
class Seq2SeqConfig:
    """Sizes of an encoder-decoder transformer (the 2017 translation model, with pre-norm blocks).

    src_vocab_size / tgt_vocab_size: token ids of the source (French) and target (English) sides;
    context_length: longest sentence on either side; pad_id: the padding id (ignored by attention
    and by the loss); the rest as in `GPTConfig`.
    """

    src_vocab_size: int
    tgt_vocab_size: int
    context_length: int = 32
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    d_ff: int | None = None
    dropout: float = 0.0
    pad_id: int = 0
    layer_norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        for name in ("src_vocab_size", "tgt_vocab_size", "context_length", "d_model", "n_layers", "n_heads"):
            check_positive_int(name, getattr(self, name))
        if self.d_ff is None:
            self.d_ff = 4 * self.d_model
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model, n_heads: d_model must be a multiple of n_heads, "
                             f"got d_model={self.d_model}, n_heads={self.n_heads}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout: expected a probability in [0, 1), got {self.dropout!r}")

    def to_dict(self) -> dict:
        return asdict(self)


class Seq2SeqTransformer(nn.Module):
    """Encoder (left of the famous figure) reads the source sentence with full attention; decoder
    (right) writes the target one token at a time, with masked self-attention and cross-attention
    to the encoder's vectors — the contextual embeddings of the source sentence."""

    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        check_type("config", config, Seq2SeqConfig)
        self.config = c = config
        self.src_emb = nn.Embedding(c.src_vocab_size, c.d_model)
        self.tgt_emb = nn.Embedding(c.tgt_vocab_size, c.d_model)
        self.pos_emb = nn.Embedding(c.context_length, c.d_model)
        self.drop = nn.Dropout(c.dropout)

        def blocks(decoder: bool) -> nn.ModuleList:
            return nn.ModuleList(Block(c.d_model, c.n_heads, c.d_ff, c.dropout, causal=decoder,
                                       cross_attention=decoder, layer_norm_eps=c.layer_norm_eps)
                                 for _ in range(c.n_layers))

        self.encoder, self.decoder = blocks(False), blocks(True)
        self.enc_norm = nn.LayerNorm(c.d_model, eps=c.layer_norm_eps)
        self.dec_norm = nn.LayerNorm(c.d_model, eps=c.layer_norm_eps)
        self.lm_head = nn.Linear(c.d_model, c.tgt_vocab_size, bias=False)
        _init_weights(self, c.n_layers)

    def _embed(self, ids: Tensor, table: nn.Embedding, name: str) -> Tensor:
        _check_ids(ids, table.num_embeddings, name)
        if ids.shape[1] > self.config.context_length:
            raise ValueError(f"{name}: sequence length {ids.shape[1]} is longer than the context length "
                             f"{self.config.context_length} (config.context_length)")
        positions = torch.arange(ids.shape[1], device=ids.device)
        return self.drop(table(ids) + self.pos_emb(positions))

    def source_mask(self, src: Tensor) -> Tensor:
        """(batch, 1, 1, src_length) boolean: True where a key is a real token, False on padding."""
        return (src != self.config.pad_id)[:, None, None, :]

    def encode(self, src: Tensor) -> Tensor:
        """Source ids (batch, src_length) → one contextual vector per source token (batch, src_length, d_model)."""
        x, mask = self._embed(src, self.src_emb, "src"), self.source_mask(src)
        for block in self.encoder:
            x = block(x, self_mask=mask)
        return self.enc_norm(x)

    def decode(self, tgt: Tensor, memory: Tensor, src: Tensor) -> Tensor:
        """Target ids so far (batch, tgt_length) and the encoder's output → next-token logits."""
        x, mask = self._embed(tgt, self.tgt_emb, "tgt"), self.source_mask(src)
        for block in self.decoder:
            x = block(x, context=memory, context_mask=mask)
        return self.lm_head(self.dec_norm(x))

    def forward(self, src: Tensor, tgt: Tensor) -> Tensor:
        """Teacher forcing: logits for every position of `tgt` given the whole source sentence."""
        return self.decode(tgt, self.encode(src), src)

    def loss(self, src: Tensor, tgt_in: Tensor, tgt_out: Tensor) -> Tensor:
        """Cross-entropy of predicting `tgt_out` (the target shifted left) from `tgt_in`; pads ignored."""
        logits = self(src, tgt_in)
        return F.cross_entropy(logits.flatten(0, 1), tgt_out.flatten(), ignore_index=self.config.pad_id)

    @torch.no_grad()
    def translate(self, src: Tensor, bos_id: int, eos_id: int, max_len: int | None = None) -> list[list[int]]:
        """Greedy decoding: the target ids (without BOS/EOS) for each source row of `src`."""
        max_len = self.config.context_length if max_len is None else min(max_len, self.config.context_length)
        was_training = self.training
        self.eval()
        try:
            memory = self.encode(src)
            out = torch.full((src.shape[0], 1), bos_id, dtype=torch.long, device=src.device)
            for _ in range(max_len - 1):
                next_id = self.decode(out, memory, src)[:, -1].argmax(-1, keepdim=True)
                out = torch.cat([out, next_id], dim=1)
                if bool((out == eos_id).any(dim=1).all()):
                    break
        finally:
            self.train(was_training)
        results = []
        for row in out[:, 1:].tolist():
            results.append(row[:row.index(eos_id)] if eos_id in row else row)
        return results


def pad_batch(sequences: Sequence[Sequence[int]], pad_id: int = 0) -> Tensor:
    """Lists of ids of different lengths → one (batch, longest) tensor, padded on the right."""
    if not sequences:
        raise ValueError("sequences: expected at least one sequence of ids, got none")
    longest = max(len(s) for s in sequences)
    out = torch.full((len(sequences), longest), pad_id, dtype=torch.long)
    for i, s in enumerate(sequences):
        out[i, :len(s)] = torch.as_tensor(list(s), dtype=torch.long)
    return out


SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>")


class TranslationData:
    """French–English pairs as padded id tensors for `model.Seq2SeqTransformer` (notebook 07).

    French is cut with `translation.tokenize` (which splits elisions: "l'oiseau" → "l'", "oiseau"),
    English on spaces. Both vocabularies hold `<unk>` (0), `<pad>`, `<bos>`, `<eos>` and every word of
    `pairs`; a word never seen in training becomes `<unk>`.
    """

    def __init__(self, pairs: Sequence[tuple[str, str]]):
        if not pairs:
            raise ValueError("pairs: expected at least one (french, english) pair, got none")
        self.src_vocab, self.tgt_vocab = Vocabulary(SPECIAL_TOKENS), Vocabulary(SPECIAL_TOKENS)
        for fr, en in pairs:
            for token in self.source_tokens(fr):
                self.src_vocab.add(token)
            for token in self.target_tokens(en):
                self.tgt_vocab.add(token)
        self.pad_id, self.bos_id, self.eos_id = (self.tgt_vocab.index(t) for t in SPECIAL_TOKENS)
        self.src = [self.src_vocab.encode(self.source_tokens(fr)) for fr, _ in pairs]
        self.tgt = [[self.bos_id, *self.tgt_vocab.encode(self.target_tokens(en)), self.eos_id] for _, en in pairs]
        self.max_length = max(max(len(s) for s in self.src), max(len(t) for t in self.tgt))

    @staticmethod
    def source_tokens(sentence: str) -> list[str]:
        return tokenize(sentence)

    @staticmethod
    def target_tokens(sentence: str) -> list[str]:
        return sentence.split()

    def __len__(self) -> int:
        return len(self.src)

    def batch(self, size: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """`size` random pairs as (source, target input, target output): the target input starts with
        <bos>, the output is the same shifted left and ends with <eos>; padding is <pad>."""
        rows = torch.randint(0, len(self.src), (size,), generator=generator).tolist()
        src = pad_batch([self.src[i] for i in rows], self.pad_id)
        tgt = pad_batch([self.tgt[i] for i in rows], self.pad_id)
        return src, tgt[:, :-1], tgt[:, 1:]

    def source_ids(self, sentences: Sequence[str]) -> Tensor:
        """French sentences as one padded (batch, length) tensor of ids."""
        return pad_batch([self.src_vocab.encode(self.source_tokens(s)) for s in sentences], self.pad_id)

    def decode(self, ids: Iterable[int]) -> str:
        """Target ids (without <bos>/<eos>) back to an English sentence."""
        return " ".join(self.tgt_vocab.decode(list(ids)))


def augment_pairs(pairs, glossary: dict[str, str], kinds: dict[str, str], n: int, seed: int = 0,
                  swap: float = 0.7, avoid: Iterable[str] = ()) -> list[tuple[str, str]]:
    """`n` new (french, english) pairs written from `pairs` (SentencePairs) with the glossary: a noun
    or adjective whose glossary translation appears once in the English sentence is swapped, with
    probability `swap`, for a random glossary word of the same kind and number, in both languages at
    once ("la clé lourde" / "the heavy key" → "la vache lourde" / "the heavy cow"). The sentence's
    grammar is kept, so the translator meets each glossary word in many contexts (notebook 07).
    Every pair that has a swappable word is a source, tagged ones included (the swap keeps their
    reordered English right). French genders are not matched ("le oiseau").

    `avoid`: French sentences that no made-up pair may be (compared token by token); pass the
    held-out sentences, or a made-up pair can copy one of them into the training data."""
    plural = lambda word: word.endswith(("s", "x"))
    groups: dict[tuple[str, bool], list[str]] = {}
    for word, kind in sorted(kinds.items()):
        if kind in ("noun", "adjective") and " " not in glossary[word]:
            groups.setdefault((kind, plural(word)), []).append(word)

    def swappable(fr: list[str], en: list[str]) -> list[tuple[int, int]]:
        """(French position, English position) of the words that can be swapped in this pair."""
        found = []
        for i, word in enumerate(fr):
            target = glossary.get(word)
            if kinds.get(word) in ("noun", "adjective") and target and " " not in target and en.count(target) == 1 \
                    and fr.count(word) == 1:
                found.append((i, en.index(target)))
        return found

    sources = []
    for pair in pairs:
        fr, en = tokenize(pair.fr), pair.en.split()
        if swappable(fr, en):
            sources.append((fr, en))
    if n and not sources:
        raise ValueError("pairs: no noun or adjective translates by the glossary in any pair, nothing to swap")
    if isinstance(avoid, str):
        raise TypeError("avoid: expected a list of French sentences, got a single str (wrap it in a list)")
    forbidden = {tuple(tokenize(sentence)) for sentence in avoid}
    rng, made, tries = random.Random(seed), [], 0
    while len(made) < n:
        tries += 1
        if tries > 100 * n:
            raise ValueError(f"avoid: after {tries - 1} draws only {len(made)} of {n} pairs differ from the "
                             "sentences to avoid; avoid fewer sentences or give more pairs")
        fr, en = (list(x) for x in rng.choice(sources))
        for i, j in swappable(fr, en):
            if rng.random() < swap:
                fr[i] = rng.choice(groups[(kinds[fr[i]], plural(fr[i]))])
                en[j] = glossary[fr[i]]
        if tuple(fr) not in forbidden:
            made.append((" ".join(fr), " ".join(en)))
    return made


def translate(model: nn.Module, data: TranslationData, sentences: Sequence[str]) -> list[str]:
    """Greedy translations of French `sentences` by a trained `Seq2SeqTransformer`."""
    if isinstance(sentences, str):
        raise TypeError("sentences: expected a list of sentences, got a single str (wrap it in a list)")
    out = model.translate(data.source_ids(sentences).to(device_of(model)), data.bos_id, data.eos_id)
    return [data.decode(ids) for ids in out]


def _char_ngrams(text: str, n: int) -> dict[str, int]:
    text = "".join(text.split())  # chrF ignores spaces
    counts: dict[str, int] = {}
    for i in range(len(text) - n + 1):
        counts[text[i:i + n]] = counts.get(text[i:i + n], 0) + 1
    return counts


def chrf(hypotheses: Sequence[str], references: Sequence[str], max_n: int = 6, beta: float = 2.0) -> float:
    """Corpus chrF (Popović, 2015) in percent: character n-gram (n = 1..max_n) precision and recall,
    counted over all sentences, averaged over n, combined as an F-score weighting recall beta times
    as much as precision. 100 means identical; a near miss ("cats" for "cat") still earns credit."""
    if isinstance(hypotheses, str) or isinstance(references, str):
        raise TypeError("hypotheses, references: expected sequences of sentences, got a single str")
    if len(hypotheses) != len(references):
        raise ValueError(f"hypotheses, references: expected the same length, got {len(hypotheses)} and {len(references)}")
    precisions, recalls = [], []
    for n in range(1, max_n + 1):
        match = hyp_total = ref_total = 0
        for hyp, ref in zip(hypotheses, references):
            h, r = _char_ngrams(hyp, n), _char_ngrams(ref, n)
            match += sum(min(count, r.get(gram, 0)) for gram, count in h.items())
            hyp_total += sum(h.values())
            ref_total += sum(r.values())
        if hyp_total and ref_total:
            precisions.append(match / hyp_total)
            recalls.append(match / ref_total)
    if not precisions:
        return 0.0
    p, r = sum(precisions) / len(precisions), sum(recalls) / len(recalls)
    return 0.0 if p + r == 0 else 100 * (1 + beta**2) * p * r / (beta**2 * p + r)
