"""course_lib.seq2seq: the made-up training pairs of notebook 07 never copy a held-out sentence."""

import pytest

from course_lib import translation as tr
from course_lib.seq2seq import augment_pairs


def tokens(sentence: str) -> tuple[str, ...]:
    return tuple(tr.tokenize(sentence))


@pytest.fixture(scope="module")
def course_data():
    return (tr.load_glossary(), tr.load_glossary_kinds(), tr.load_sentence_pairs("train"),
            tr.load_sentence_pairs("test"))


def test_without_avoid_the_swaps_can_rebuild_a_held_out_sentence(course_data):
    # the leak notebook 07 used to have: a made-up pair equal to the held-out "elle cherche sa mère"
    glossary, kinds, train_pairs, test_pairs = course_data
    held_out = {tokens(p.fr) for p in test_pairs}
    made = augment_pairs(train_pairs, glossary, kinds, 2000, seed=0)
    assert tokens("elle cherche sa mère") in {tokens(fr) for fr, _ in made} & held_out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_made_up_pairs_never_contain_a_held_out_sentence(course_data, seed):
    glossary, kinds, train_pairs, test_pairs = course_data
    held_out = {tokens(p.fr) for p in test_pairs}
    made = augment_pairs(train_pairs, glossary, kinds, 2000, seed=seed, avoid=[p.fr for p in test_pairs])
    assert len(made) == 2000
    assert not {tokens(fr) for fr, _ in made} & held_out
    assert made == augment_pairs(train_pairs, glossary, kinds, 2000, seed=seed, avoid=[p.fr for p in test_pairs])


def test_avoid_compares_tokens_so_elisions_and_spacing_do_not_slip_through(course_data):
    glossary, kinds, _, _ = course_data
    source = tr.SentencePair("l'enfant est dans la gare", "the child is in the station", ("elision",), "train")
    made = augment_pairs([source], glossary, kinds, 50, seed=3, swap=0.0, avoid=["x"])
    assert made[0] == ("l' enfant est dans la gare", "the child is in the station")  # nothing swapped
    with pytest.raises(ValueError, match="avoid: after 5000 draws only 0 of 50 pairs"):
        augment_pairs([source], glossary, kinds, 50, seed=3, swap=0.0, avoid=["L'enfant  est dans la gare"])


def test_a_single_sentence_to_avoid_must_be_wrapped_in_a_list(course_data):
    glossary, kinds, train_pairs, _ = course_data
    with pytest.raises(TypeError, match="avoid: expected a list of French sentences, got a single str"):
        augment_pairs(train_pairs, glossary, kinds, 10, avoid="elle cherche sa mère")
