"""course_lib.translation: the dict translator, its matrix twin, the data files and the scores."""

import itertools
import random
import unicodedata

import pytest
import torch
import torch.nn.functional as F

from course_lib import translation as tr

RUNNING_FR, RUNNING_EN = "le chat est sous la table", "the cat is under the table"
SMALL = {"le": "the", "chat": "cat", "est": "is", "sous": "under", "la": "the", "table": "table", "l'": "the",
         "oiseau": "bird", "être": "be"}


# --- tokenizing and the dict translator (notebook 01) --------------------------------------------

def test_tokenize_lower_cases_drops_punctuation_and_splits_elisions():
    assert tr.tokenize("Le chat est sous la table.") == ["le", "chat", "est", "sous", "la", "table"]
    assert tr.tokenize("L’oiseau n'est pas là !") == ["l'", "oiseau", "n'", "est", "pas", "là"]
    assert tr.tokenize("Aujourd'hui, peut-être.", keep_punctuation=True) == ["aujourd'hui", ",", "peut-être", "."]


def test_tokenize_agrees_with_a_plain_split_when_there_is_nothing_to_split():
    rng = random.Random(0)
    words = ["chat", "maison", "sœur", "été", "garçon", "table", "où"]
    for _ in range(50):
        sentence = " ".join(rng.choice(words) for _ in range(rng.randint(0, 8)))
        assert tr.tokenize(sentence) == sentence.split()


def test_normalize_makes_composed_and_decomposed_accents_equal():
    decomposed = unicodedata.normalize("NFD", "Être  Là")
    assert decomposed != "être là"
    assert tr.normalize(decomposed) == "être là"
    assert tr.strip_accents("tâble à thé") == "table a the"


def test_literal_translate_gives_the_running_example():
    assert tr.literal_translate(RUNNING_FR, SMALL) == RUNNING_EN


def test_literal_translate_is_a_lookup_of_each_token():
    sentence = "L'oiseau est sous la table, le chat est là"
    expected = " ".join(SMALL.get(t, "<unk>") for t in tr.tokenize(sentence))
    assert tr.literal_translate(sentence, SMALL) == expected
    assert expected.endswith("is <unk>")


def test_unknown_words_become_unk_or_stay_when_unknown_is_none():
    assert tr.literal_translate("le chien est sous la table", SMALL) == "the <unk> is under the table"
    assert tr.literal_translate("le chien est sous la table", SMALL, unknown="?") == "the ? is under the table"
    assert tr.literal_translate("le chien est sous la table", SMALL, unknown=None) == "the chien is under the table"


def test_fallbacks_find_missing_accents_and_typos():
    assert tr.literal_translate("etre", SMALL) == "<unk>"
    assert tr.literal_translate("etre", SMALL, normalize_accents=True) == "be"
    assert tr.literal_translate("le chta", SMALL, nearest=True) == "the cat"
    how = [item.how for item in tr.lookup(["chat", "etre", "tabel", "xyz"], SMALL, normalize_accents=True, nearest=True)]
    assert how == ["found", "normalized", "nearest", "unknown"]


def test_nearest_spelling_is_difflibs_best_match():
    import difflib

    candidates = list(tr.load_glossary())
    for word in ["chta", "maisn", "tabel", "bonjur", "zzzz"]:
        best = difflib.get_close_matches(word, candidates, n=1, cutoff=0.75)
        assert tr.nearest_spelling(word, candidates) == (best[0] if best else None)


def test_an_empty_sentence_translates_to_an_empty_string():
    assert tr.literal_translate("", SMALL) == ""
    assert tr.literal_translate("  ?! ", SMALL) == ""


def test_bad_inputs_name_the_argument():
    with pytest.raises(TypeError, match="sentence: expected a str"):
        tr.literal_translate(["le", "chat"], SMALL)
    with pytest.raises(TypeError, match="sentence: expected a str"):
        tr.literal_translate(None, SMALL)
    with pytest.raises(TypeError, match="dictionary: expected a mapping"):
        tr.literal_translate("le chat", [("le", "the")])
    with pytest.raises(TypeError, match="tokens: expected a list of str"):
        tr.lookup("le chat", SMALL)
    with pytest.raises(ValueError, match="cutoff"):
        tr.nearest_spelling("chat", ["chat"], cutoff=2)


# --- the data files -------------------------------------------------------------------------------

def test_glossary_has_at_least_300_entries_and_the_running_example():
    glossary = tr.load_glossary()
    assert len(glossary) >= 300
    assert tr.literal_translate(RUNNING_FR, glossary) == RUNNING_EN


def test_sentence_file_has_300_pairs_both_splits_and_known_tags():
    pairs = tr.load_sentence_pairs()
    assert len(pairs) >= 300
    assert len({p.fr for p in pairs}) == len(pairs), "no French sentence appears twice"
    assert {p.split for p in pairs} == set(tr.SPLITS)
    assert {t for p in pairs for t in p.tags} == set(tr.TAGS)
    test = tr.load_sentence_pairs(split="test")
    assert 0.1 <= len(test) / len(pairs) <= 0.3
    for tag in tr.TAGS:
        assert tr.load_sentence_pairs(split="test", tags=tag), f"the test split has {tag} examples"


def test_every_word_of_the_sentences_is_in_the_glossary():
    glossary = tr.load_glossary()
    missing = {t for p in tr.load_sentence_pairs() for t in tr.tokenize(p.fr) if t not in glossary}
    assert not missing


def test_word_for_word_is_right_exactly_on_the_pairs_no_failing_tag_marks():
    glossary = tr.load_glossary()
    for pair in tr.load_sentence_pairs():
        literal = tr.literal_translate(pair.fr, glossary)
        assert tr.exact_match(literal, pair.en) == pair.literal_ok, (pair, literal)


def test_elision_pairs_need_the_tokenizer_a_space_split_breaks_them():
    glossary = tr.load_glossary()
    for pair in tr.load_sentence_pairs(tags="elision"):
        assert any(word not in glossary for word in pair.fr.split()), pair


def test_load_sentence_pairs_filters_by_split_and_tag():
    everything = tr.load_sentence_pairs()
    negation_test = tr.load_sentence_pairs(split="test", tags=["negation"])
    assert negation_test == [p for p in everything if p.split == "test" and "negation" in p.tags]
    with pytest.raises(ValueError, match="split: expected one of"):
        tr.load_sentence_pairs(split="dev")
    with pytest.raises(ValueError, match="tags: expected some of"):
        tr.load_sentence_pairs(tags=["sarcasm"])


# --- scores (notebooks 01 and 07) ------------------------------------------------------------------

def brute_force_edit_distance(a, b):
    """Independent definition: the shortest path of single-word edits, by breadth-first search."""
    frontier, seen, steps = {tuple(a)}, {tuple(a)}, 0
    alphabet = set(a) | set(b)
    while tuple(b) not in frontier:
        new = set()
        for s in frontier:
            for i in range(len(s) + 1):
                new |= {s[:i] + (w,) + s[i:] for w in alphabet}
                if i < len(s):
                    new.add(s[:i] + s[i + 1:])
                    new |= {s[:i] + (w,) + s[i + 1:] for w in alphabet}
        frontier = new - seen
        seen |= frontier
        steps += 1
    return steps


def test_edit_distance_is_the_fewest_insertions_deletions_and_substitutions():
    rng = random.Random(1)
    for _ in range(25):
        a = [rng.choice("abc") for _ in range(rng.randint(0, 4))]
        b = [rng.choice("abc") for _ in range(rng.randint(0, 4))]
        assert tr.edit_distance(a, b) == brute_force_edit_distance(a, b), (a, b)


def test_word_error_rate_and_exact_match_ignore_case_and_punctuation():
    assert tr.exact_match("The cat is under the table.", RUNNING_EN)
    assert not tr.exact_match("the table is under the cat", RUNNING_EN)
    assert tr.word_error_rate("the house blue", "the blue house") == pytest.approx(2 / 3)
    assert tr.word_error_rate("I not eat not", "I do not eat") == pytest.approx(2 / 4)
    assert tr.word_error_rate("", "") == 0.0


def test_score_is_exact_match_rate_and_one_minus_corpus_word_error_rate():
    hyps = ["the cat is under the table", "the house blue", "<unk>"]
    refs = ["the cat is under the table", "the blue house", "it is cold"]
    result = tr.score(hyps, refs)
    assert result.n == 3
    assert result.exact_match == pytest.approx(1 / 3)
    assert result.word_accuracy == pytest.approx(1 - (0 + 2 + 3) / (6 + 3 + 3))
    with pytest.raises(ValueError, match="same length"):
        tr.score(hyps, refs[:2])


def test_score_by_tag_groups_plain_and_each_tag():
    pairs = tr.load_sentence_pairs(split="test")
    glossary = tr.load_glossary()
    hyps = [tr.literal_translate(p.fr, glossary) for p in pairs]
    by_tag = tr.score_by_tag(hyps, pairs)
    assert by_tag["all"] == tr.score(hyps, [p.en for p in pairs])
    assert by_tag["plain"].exact_match == 1.0
    assert by_tag["negation"].exact_match == 0.0
    assert by_tag["negation"].n == sum("negation" in p.tags for p in pairs)


# --- one-hot vectors and matrices (notebook 02) ----------------------------------------------------

def test_vocabulary_maps_tokens_to_indices_with_unk_at_zero():
    vocab = tr.Vocabulary(["le", "chat", "le", "table"])
    assert vocab.tokens == ["<unk>", "le", "chat", "table"]
    assert vocab.encode(["chat", "chien"]) == [2, 0]
    assert vocab.decode([3, 1]) == ["table", "le"]
    assert "chat" in vocab and "chien" not in vocab and len(vocab) == 4
    with pytest.raises(ValueError, match=r"index: expected an int in \[0, 4\)"):
        vocab.token(4)
    with pytest.raises(TypeError, match="tokens: expected a list of str"):
        vocab.encode("chat")


def test_one_hot_equals_torch_one_hot():
    vocab = tr.Vocabulary(tr.tokenize(RUNNING_FR))
    tokens = tr.tokenize(RUNNING_FR) + ["chien"]
    expected = F.one_hot(torch.tensor(vocab.encode(tokens)), num_classes=len(vocab)).float()
    assert torch.equal(tr.one_hot(tokens, vocab), expected)
    assert tr.one_hot([], vocab).shape == (0, len(vocab))


def test_one_hot_times_a_matrix_is_a_row_lookup():
    vocab = tr.Vocabulary(["le", "chat", "table"])
    table = torch.randn(len(vocab), 5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(tr.one_hot(["table", "le"], vocab) @ table, table[[3, 1]])


def test_dictionary_matrices_translate_every_glossary_word_like_the_dict():
    glossary = tr.load_glossary()
    K, V, src, tgt = tr.dictionary_matrices(glossary)
    assert K.shape == (len(glossary) + 1, len(src)) and V.shape == (len(glossary) + 1, len(tgt))
    words = list(glossary)
    found = tr.one_hot(words, src) @ K.T @ V
    assert tr.cosine_decode(found, torch.eye(len(tgt)), tgt) == [glossary[w] for w in words]
    assert torch.equal(found, tr.one_hot([glossary[w] for w in words], tgt))


def test_matrix_translation_equals_the_dict_translation_on_all_sentences():
    glossary = tr.load_glossary()
    matrices = tr.dictionary_matrices(glossary)
    for pair in tr.load_sentence_pairs()[:120]:
        assert tr.matrix_translate(pair.fr, *matrices) == tr.literal_translate(pair.fr, glossary)
    assert tr.matrix_translate("le chien rouge", *tr.dictionary_matrices({"le": "the"})) == "the <unk> <unk>"
    assert tr.matrix_translate("", *matrices) == ""


def test_cosine_similarity_equals_torchs():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(4, 6, generator=g), torch.randn(3, 6, generator=g)
    expected = F.cosine_similarity(a[:, None, :], b[None, :, :], dim=-1)
    assert torch.allclose(tr.cosine_similarity(a, b), expected, atol=1e-6)


def test_cosine_decode_picks_the_most_similar_row_and_survives_noise():
    g = torch.Generator().manual_seed(0)
    vocab = tr.Vocabulary(["the", "cat", "is", "under", "table"])
    codes = torch.randn(len(vocab), 64, generator=g)
    wanted = ["the", "cat", "is", "under", "the", "table"]
    noisy = codes[vocab.encode(wanted)] * 3.0 + 0.5 * torch.randn(6, 64, generator=g)
    assert tr.cosine_decode(noisy, codes, vocab) == wanted
    assert tr.cosine_decode(codes[2], codes, vocab) == ["cat"]
    assert tr.cosine_decode(torch.zeros(2, 64), codes, vocab) == ["<unk>", "<unk>"]


def test_mismatched_dimensions_are_value_errors_naming_the_shapes():
    vocab = tr.Vocabulary(["a", "b"])
    with pytest.raises(ValueError, match=r"table: expected shape \(3, d\).*got \(2, 4\)"):
        tr.cosine_decode(torch.zeros(1, 4), torch.zeros(2, 4), vocab)
    with pytest.raises(ValueError, match=r"vectors: expected shape \(n, 4\).*got \(1, 5\)"):
        tr.cosine_decode(torch.zeros(1, 5), torch.zeros(3, 4), vocab)
    with pytest.raises(ValueError, match=r"a, b: expected the same number of features, got shapes \(2, 3\) and \(2, 4\)"):
        tr.cosine_similarity(torch.zeros(2, 3), torch.zeros(2, 4))
    K, V, src, tgt = tr.dictionary_matrices(SMALL)
    with pytest.raises(ValueError, match=r"K, V: expected"):
        tr.matrix_translate(RUNNING_FR, K[:, :-1], V, src, tgt)
    with pytest.raises(TypeError, match="vocab: expected a Vocabulary"):
        tr.one_hot(["a"], {"a": 0})
    with pytest.raises(ValueError, match="dictionary: expected at least one entry"):
        tr.dictionary_matrices({})


def test_every_pair_of_distinct_one_hot_rows_is_orthogonal():
    vocab = tr.Vocabulary(["x", "y", "z"])
    rows = tr.one_hot(vocab.tokens, vocab)
    for i, j in itertools.combinations(range(len(vocab)), 2):
        assert float(rows[i] @ rows[j]) == 0.0
    assert torch.equal(rows @ rows.T, torch.eye(len(vocab)))


def test_highlighted_translation_marks_how_each_word_was_found():
    from course_lib.widgets import highlighted_translation

    view = highlighted_translation(tr.lookup(["le", "chta", "etre", "zzz"], SMALL, normalize_accents=True, nearest=True))
    assert repr(view) == "the [cat: chta, nearest] [be: etre, normalized] [<unk>: zzz, unknown]"
    html = view._repr_html_()
    assert html.count('title="found"') == 1 and html.count('title="unknown"') == 1 and "&lt;unk&gt;" in html
    assert repr(highlighted_translation([])) == "(no words)"
    with pytest.raises(ValueError, match="lookups: expected `how`"):
        highlighted_translation([tr.Lookup("x", "y", "guessed")])
