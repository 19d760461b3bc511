"""course_lib.tokenizer: byte-level BPE that round-trips any text and matches the real SmolLM2 tokenizer.

The independent references are Hugging Face's SmolLM2 tokenizer (same vocabulary and merges, so it
must give the same ids), the readable recount trainer (the fast trainer must give the same merges),
and the classic worked example of BPE.
"""

from __future__ import annotations

import json
import re
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from course_lib import data
from course_lib.tokenizer import (ENDOFTEXT, GPT2_SPLIT_PATTERN, BPETokenizer, bytes_to_unicode, merge_pair,
                                  train_merges, train_merges_plain, word_counts)

VARIED_TEXTS = [
    "The cat is under the table.",
    "Le chat est sous la table ; l'été à Orléans, où êtes-vous ? Ça va très bien, naïve façon, cœur.",
    "def fib(n: int) -> list[int]:\n    a, b = 0, 1\n    while a < n:\n        yield a\n        a, b = b, a + b\n",
    "Emoji 🐍🚀👩‍💻👍🏽 and 日本語のテキスト, Ελληνικά, русский, العربية",
    "  spaces   runs\n\n\n\tand tabs\t\t  \n  ",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "123456789 3.14159 1e-10 0xFF",
    "don't I'll we've THEY'RE it's",
    "x" * 50 + " " * 7 + "!" * 9,
    "",
]
SMALL = 60_000  # characters of the corpus the small test tokenizers train on


@pytest.fixture(scope="module")
def smollm2():
    """(ours, Hugging Face's): the same vocabulary and merges, loaded into both."""
    from course_lib.pretrained import load_smollm2_tokenizer

    hf = load_smollm2_tokenizer()
    state = json.loads(hf.backend_tokenizer.to_str())
    special = {t["content"]: t["id"] for t in state["added_tokens"] if t["special"]}
    ours = BPETokenizer.from_pretrained_vocab(state["model"]["vocab"], state["model"]["merges"], special)
    return ours, hf


@pytest.fixture(scope="module")
def trained() -> BPETokenizer:
    return BPETokenizer().train(data.python_docs_corpus(SMALL), 512)


# --- the real thing: identical ids to Hugging Face ----------------------------------------------
@pytest.mark.parametrize("text", VARIED_TEXTS, ids=["english", "french", "python", "emoji", "whitespace",
                                                     "special", "numbers", "contractions", "repeats", "empty"])
def test_encode_gives_the_same_ids_as_the_hugging_face_smollm2_tokenizer(smollm2, text):
    ours, hf = smollm2
    assert ours.encode(text) == hf.encode(text, add_special_tokens=False)
    assert ours.decode(ours.encode(text)) == hf.decode(hf.encode(text, add_special_tokens=False)) == text


def test_a_page_of_the_corpus_gives_the_same_ids_as_hugging_face(smollm2):
    ours, hf = smollm2
    page = data.python_docs_corpus(20_000)
    assert ours.encode(page) == hf.encode(page, add_special_tokens=False)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=60))
def test_any_unicode_text_gives_the_same_ids_as_hugging_face(smollm2, text):
    ours, hf = smollm2
    assert ours.encode(text) == hf.encode(text, add_special_tokens=False)


def test_bytes_missing_from_the_smollm2_vocabulary_are_dropped_as_hugging_face_drops_them(smollm2):
    ours, hf = smollm2
    missing = [b for b in range(256) if ours.byte_ids[b] is None]
    assert 4 in missing and 0 not in missing  # control byte 0x04 has no token in SmolLM2, 0x00 has one
    text = "a\x04b\x00c"
    assert ours.encode(text) == hf.encode(text, add_special_tokens=False)
    assert ours.decode(ours.encode(text)) == "ab\x00c"


def test_the_smollm2_vocabulary_loads_whole(smollm2):
    ours, hf = smollm2
    assert ours.vocab_size == len(hf) == 49_152
    assert len(ours.merges) <= 48_900 and ours.special_tokens["<|im_start|>"] == 1
    to_bytes = {c: b for b, c in bytes_to_unicode().items()}
    token, token_id = "Ġtable", hf.convert_tokens_to_ids("Ġtable")
    assert ours.vocab[token_id] == bytes(to_bytes[c] for c in token) == b" table"


# --- round trips -------------------------------------------------------------------------------
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text())
def test_decode_of_encode_is_the_identity_on_any_unicode_text(trained, text):
    assert trained.decode(trained.encode(text)) == text


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(st.text(max_size=20), st.just(ENDOFTEXT)), max_size=6))
def test_special_tokens_round_trip_and_stay_one_token(trained, parts):
    text = "".join(parts)
    ids = trained.encode(text)
    assert trained.decode(ids) == text
    assert ids.count(trained.special_tokens[ENDOFTEXT]) == text.count(ENDOFTEXT)


def test_special_tokens_can_be_encoded_as_ordinary_text(trained):
    eot = trained.special_tokens[ENDOFTEXT]
    assert trained.encode(ENDOFTEXT) == [eot]
    plain = trained.encode(ENDOFTEXT, allow_special=False)
    assert eot not in plain and len(plain) > 1 and trained.decode(plain) == ENDOFTEXT


def test_save_and_load_give_the_same_tokenizer(trained, tmp_path):
    path = trained.save(tmp_path / "tok.json")
    loaded = BPETokenizer.load(path)
    assert loaded.to_dict() == trained.to_dict()
    text = data.python_docs_corpus(5_000) + " 🐍 été " + ENDOFTEXT
    assert loaded.encode(text) == trained.encode(text)


def test_a_pretrained_vocabulary_survives_save_and_load(smollm2, tmp_path):
    ours, hf = smollm2
    loaded = BPETokenizer.load(ours.save(tmp_path / "smollm2.json"))
    text = VARIED_TEXTS[1] + VARIED_TEXTS[3] + VARIED_TEXTS[5] + "a\x04b"
    assert loaded.encode(text) == hf.encode(text, add_special_tokens=False)
    assert loaded.vocab == ours.vocab


def test_save_does_not_overwrite_an_existing_file(trained, tmp_path):
    path = tmp_path / "mine.json"
    path.write_text("a learner's file")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        trained.save(path)
    assert path.read_text() == "a learner's file"
    trained.save(path, overwrite=True)
    assert BPETokenizer.load(path).to_dict() == trained.to_dict()


# --- training ------------------------------------------------------------------------------------
def test_the_classic_example_merges_the_most_frequent_pair_first():
    # Wikipedia's worked example of byte-pair encoding: "aaabdaaabac" -> Z = aa, Y = ab, X = ZY.
    merges = train_merges_plain({"aaabdaaabac": 1}, 3)
    a, b = ord("a"), ord("b")
    assert merges[0] == (a, a)
    tokenizer = BPETokenizer.from_merges(merges)
    assert [tokenizer.vocab[i] for i in tokenizer.encode("aaabdaaabac")] == [b"aaab", b"d", b"aaab", b"a", b"c"]
    assert merges == [(a, a), (a, b), (256, 257)]  # (aa, a) and (a, b) tie at 2: the smaller pair wins


@pytest.mark.parametrize("n_chars,n_merges", [(20_000, 300), (SMALL, 200)])
def test_the_fast_trainer_learns_exactly_the_merges_of_the_plain_recount_trainer(n_chars, n_merges):
    words = word_counts(data.python_docs_corpus(n_chars))
    assert train_merges(words, n_merges) == train_merges_plain(words, n_merges)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=8, alphabet="abcé d"), st.integers(1, 5), max_size=12),
       st.integers(0, 30))
def test_the_two_trainers_agree_on_any_word_counts(words, n_merges):
    assert train_merges(words, n_merges) == train_merges_plain(words, n_merges)


def test_training_stops_when_no_pair_is_left():
    tokenizer = BPETokenizer().train("ab ab", 1000, special_tokens=())
    # chunks 'ab' and ' ab': merge (a, b) -> 256, then (' ', 256) -> 257, then nothing is left to merge
    assert tokenizer.vocab_size == 258 and tokenizer.merges == {(97, 98): 256, (32, 256): 257}
    assert tokenizer.encode("ab ab") == [256, 257]
    assert tokenizer.decode(tokenizer.encode("ab ab")) == "ab ab"


def test_vocab_size_counts_bytes_merges_and_special_tokens(trained):
    assert trained.vocab_size == 512 == 256 + len(trained.merges) + len(trained.special_tokens)
    assert trained.special_tokens == {ENDOFTEXT: 511}


def test_special_tokens_in_training_text_are_never_merged():
    text = ("hello world" + ENDOFTEXT) * 50
    tokenizer = BPETokenizer().train(text, 300)
    assert not any(ENDOFTEXT.encode() in token or b"|>" in token for i, token in tokenizer.vocab.items()
                   if i != tokenizer.special_tokens[ENDOFTEXT])


def test_merge_pair_replaces_left_to_right_without_overlap():
    assert merge_pair([1, 1, 1, 2, 1, 1], (1, 1), 9) == [9, 1, 2, 9]


def test_the_gpt2_pattern_splits_words_spaces_and_digits_as_gpt2_does():
    import regex

    assert regex.findall(GPT2_SPLIT_PATTERN, "Hello  world's 2024!!\n") == ["Hello", " ", " world", "'s", " 2024", "!!", "\n"]


# --- bad input --------------------------------------------------------------------------------------
def test_vocab_size_below_256_is_a_value_error():
    with pytest.raises(ValueError, match="vocab_size: expected at least 256"):
        BPETokenizer().train("some text", 255, special_tokens=())
    with pytest.raises(ValueError, match="vocab_size: expected at least 256.*257, got 256"):
        BPETokenizer().train("some text", 256, special_tokens=(ENDOFTEXT,))


@pytest.mark.parametrize("bad", [b"bytes", 42, None, ["a", "list"]])
def test_non_string_text_is_a_type_error(trained, bad):
    with pytest.raises(TypeError, match="text: expected a str"):
        trained.encode(bad)
    with pytest.raises(TypeError, match="text: expected a str"):
        BPETokenizer().train(bad, 300)


def test_unknown_id_in_decode_is_a_value_error(trained):
    with pytest.raises(ValueError, match=r"ids\[1\]: unknown token id 512"):
        trained.decode([65, 512])
    with pytest.raises(ValueError, match="unknown token id -1"):
        trained.decode([-1])
    with pytest.raises(TypeError, match="ids: expected a sequence of int"):
        trained.decode("abc")
    with pytest.raises(TypeError, match=r"ids\[0\]: expected an int token id, got float"):
        trained.decode([1.5])


def test_a_vocabulary_whose_merge_makes_an_unknown_token_is_rejected():
    vocab = {bytes_to_unicode()[b]: b for b in range(256)}
    with pytest.raises(ValueError, match=r"merges\[0\]: 'ab' of the merge \('a', 'b'\) is not in vocab"):
        BPETokenizer.from_pretrained_vocab(vocab, [["a", "b"]])


# --- the shipped corpus and tokenizer -----------------------------------------------------------
def test_the_corpus_is_1_to_3_mb_of_normalized_utf8_text():
    raw = data.data_path(data.PYTHON_DOCS_CORPUS).read_bytes()
    assert 1_000_000 <= len(raw) <= 3_000_000
    text = raw.decode("utf-8")
    assert text == unicodedata.normalize("NFC", text) and "\r" not in text and "\t" not in text
    assert not any(line != line.rstrip() for line in text.splitlines())
    assert "# Module json" in text and "# Topic if" in text and data.python_docs_corpus(12) == text[:12]


def test_the_shipped_tokenizer_is_the_corpus_tokenizer_at_vocab_4096():
    tokenizer = data.python_docs_tokenizer()
    assert tokenizer.vocab_size == 4096 and tokenizer.special_tokens == {ENDOFTEXT: 4095}
    page = data.python_docs_corpus(50_000)
    ids = tokenizer.encode(page)
    assert tokenizer.decode(ids) == page and len(ids) < len(page) / 3  # it compresses its own corpus
    # its first merges are what the corpus is made of: indentation and ' t' / ' a'
    assert [tokenizer.vocab[i] for i in range(256, 260)][:2] == [b"  ", b"    "]


def test_the_shipped_tokenizer_starts_with_the_merges_that_training_on_the_corpus_gives():
    # Training is deterministic (ties: smaller pair) and greedy, so a smaller vocabulary learns the first
    # merges of a larger one: 200 merges of the whole corpus here (seconds), all 3,839 in
    # `python scripts/build_python_docs_tokenizer.py --check` (about a minute).
    retrained = BPETokenizer().train(data.python_docs_corpus(), 256 + 200 + 1, special_tokens=(ENDOFTEXT,))
    shipped = list(data.python_docs_tokenizer().merges.items())
    assert list(retrained.merges.items()) == shipped[:200]


def test_loading_a_missing_tokenizer_file_names_the_path_and_what_writes_it(tmp_path):
    missing = tmp_path / "no_tokenizer.json"
    with pytest.raises(FileNotFoundError, match=re.escape(f"path: {missing} does not exist; ")
                       + r".*BPETokenizer\.save\(path\).*scripts/build_python_docs_tokenizer\.py"):
        BPETokenizer.load(missing)
