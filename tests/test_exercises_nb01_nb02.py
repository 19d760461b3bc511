"""The checkers of notebooks 01 and 02 pass a right answer, fail every wrong one with a message (never a
traceback), and name the cause of the usual mistakes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from wrong_answers import assert_fails_naming_it, wrong_kinds

from course_lib import translation as tr
from course_lib.exercises import FAILED, NOT_ATTEMPTED, PASSED, Result, nb01, nb02


# --- right answers (the solutions notebooks' code) -----------------------------------------------

def translate_marking_unknowns(sentence, dictionary):
    return " ".join(dictionary.get(token, f"[{token}]") for token in tr.tokenize(sentence))


def move_adjectives(tokens, kinds):
    tokens = list(tokens)
    for i in range(len(tokens) - 1):
        if kinds.get(tokens[i]) == "noun" and kinds.get(tokens[i + 1]) == "adjective":
            tokens[i], tokens[i + 1] = tokens[i + 1], tokens[i]
    return tokens


def edit_distance(a, b):
    previous = list(range(len(b) + 1))
    for i, word_a in enumerate(a, start=1):
        current = [i]
        for j, word_b in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (word_a != word_b)))
        previous = current
    return previous[-1]


def one_hot_by_hand(tokens, vocab):
    out = torch.zeros(len(tokens), len(vocab))
    for row, token in enumerate(tokens):
        out[row, vocab.index(token)] = 1.0
    return out


def lookup_with_matrices(word, K, V, src_vocab, tgt_vocab):
    return tgt_vocab.token(int((tr.one_hot([word], src_vocab) @ K.T @ V).argmax()))


def cosine_matrix(a, b):
    return F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T


EXERCISES = {
    "nb01.exercise_1": (nb01.exercise_1, translate_marking_unknowns),
    "nb01.exercise_2": (nb01.exercise_2, move_adjectives),
    "nb01.exercise_3": (nb01.exercise_3, edit_distance),
    "nb02.exercise_1": (nb02.exercise_1, one_hot_by_hand),
    "nb02.exercise_2": (nb02.exercise_2, lookup_with_matrices),
    "nb02.exercise_3": (nb02.exercise_3, cosine_matrix),
}


@pytest.mark.parametrize("name", EXERCISES)
def test_the_reference_solution_passes(name):
    checker, solution = EXERCISES[name]
    assert checker(solution).status == PASSED


def not_yet(*args, **kwargs):
    raise NotImplementedError


@pytest.mark.parametrize("name", EXERCISES)
@wrong_kinds
def test_a_wrong_answer_fails_with_a_message_and_no_traceback(name, answer):
    checker, _ = EXERCISES[name]
    result = checker(answer)  # must not raise
    assert isinstance(result, Result)
    assert_fails_naming_it(result, answer)


@pytest.mark.parametrize("name", EXERCISES)
def test_an_unanswered_exercise_is_not_attempted(name):
    assert EXERCISES[name][0](not_yet).status == NOT_ATTEMPTED


# --- targeted hints ------------------------------------------------------------------------------

def test_nb01_a_key_error_for_a_missing_word_names_the_word_the_input_and_the_fallback():
    def plain_lookup(sentence, dictionary):
        return " ".join(dictionary[token] for token in tr.tokenize(sentence))

    result = nb01.exercise_1(plain_lookup)
    assert result.status == FAILED
    assert "translate_marking_unknowns('le chien est sous la table', ...)" in result.detail
    assert "KeyError: 'chien'" in result.detail
    assert ".get(word)" in result.detail and "`word in d`" in result.detail
    assert "(line " in result.detail  # where in the learner's code


def test_nb01_exercise_1_shows_the_expected_and_received_translation():
    result = nb01.exercise_1(lambda sentence, d: " ".join(d.get(t, "<unk>") for t in tr.tokenize(sentence)))
    assert result.status == FAILED
    assert "'the [chien] is under the table'" in result.detail and "'the <unk> is under the table'" in result.detail


def test_nb01_exercise_2_lists_exactly_the_adjective_sentences_the_rule_still_gets_wrong():
    glossary, kinds = tr.load_glossary(), tr.load_glossary_kinds()
    pairs = tr.load_sentence_pairs(tags="adjective_order")
    still_wrong = [p for p in pairs if not tr.exact_match(
        " ".join(glossary[t] for t in move_adjectives(tr.tokenize(p.fr), kinds)), p.en)]
    assert 0 < len(still_wrong) < len(pairs)  # the rule fixes some, not all: there is something to list
    result = nb01.exercise_2(move_adjectives)
    assert result.status == PASSED
    assert f"{len(pairs) - len(still_wrong)} of the {len(pairs)} adjective_order sentences" in result.detail
    for pair in still_wrong:
        assert f"'{pair.fr}'" in result.detail and f"reference '{pair.en}'" in result.detail
    listed = result.detail.split("wrong:")[1]
    assert not any(f"'{p.fr}'" in listed for p in pairs if p not in still_wrong)


def test_nb01_exercise_2_a_rule_that_indexes_kinds_hears_about_words_missing_from_it():
    def indexing(tokens, kinds):
        tokens = list(tokens)
        for i in range(len(tokens) - 1):
            if kinds[tokens[i]] == "noun" and kinds[tokens[i + 1]] == "adjective":
                tokens[i], tokens[i + 1] = tokens[i + 1], tokens[i]
        return tokens

    result = nb01.exercise_2(indexing)
    assert result.status == FAILED and "KeyError: 'hamster'" in result.detail and ".get(word)" in result.detail


def test_nb01_exercise_2_a_rule_that_moves_every_adjective_is_caught_on_the_small_cases():
    def every_adjective_first(tokens, kinds):
        return [t for t in tokens if kinds.get(t) == "adjective"] + [t for t in tokens if kinds.get(t) != "adjective"]

    result = nb01.exercise_2(every_adjective_first)
    assert result.status == FAILED and "move_adjectives(" in result.detail and "expected" in result.detail


def test_nb01_exercise_3_an_off_by_one_distance_is_reported_with_its_input():
    result = nb01.exercise_3(lambda a, b: edit_distance(a, b) + 1)
    assert result.status == FAILED and "edit_distance(['the', 'house', 'blue']" in result.detail
    assert "expected 2, got 3" in result.detail


def test_nb02_a_row_vector_one_hot_of_the_wrong_width_names_the_shape():
    result = nb02.exercise_1(lambda tokens, vocab: one_hot_by_hand(tokens, vocab)[:, 1:])
    assert result.status == FAILED and ".shape" in result.detail and "(6, 7)" in result.detail


def test_nb02_a_lookup_that_ignores_the_given_matrices_is_caught():
    small = {"le": "the", "chat": "cat", "est": "is", "sous": "under", "la": "the", "table": "table", "chien": "dog"}
    result = nb02.exercise_2(lambda word, K, V, s, t: small.get(word, "<unk>"))
    assert result.status == FAILED and "use the K and V you are given" in result.detail


def test_nb02_a_product_without_the_transpose_gets_the_shape_hint():
    result = nb02.exercise_3(lambda a, b: F.normalize(a, dim=-1) @ F.normalize(b, dim=-1))
    assert result.status == FAILED
    assert "cosine_matrix(a (4, 8), b (3, 8))" in result.detail and "`A @ B.T`" in result.detail


def test_nb02_dot_products_without_normalising_are_not_cosines():
    result = nb02.exercise_3(lambda a, b: a @ b.T)
    assert result.status == FAILED and "largest difference" in result.detail
