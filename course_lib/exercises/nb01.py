"""Checkers for notebook 01 (literal translation, missing tokens): each says what is wrong, not only "wrong"."""

from __future__ import annotations

import random
from typing import Callable

from course_lib import translation as tr
from course_lib.exercises import Mismatch, Result, check, expect_equal, expect_type

_SMALL = {"le": "the", "chat": "cat", "est": "is", "sous": "under", "la": "the", "table": "table", "l'": "the",
          "oiseau": "bird", "mange": "eats"}


def exercise_1(translate_marking_unknowns: Callable[[str, dict], str]) -> Result:
    """Translate word for word, writing each unknown word as [word] instead of <unk>."""
    cases = [("le chat est sous la table", "the cat is under the table"),
             ("le chien est sous la table", "the [chien] is under the table"),
             ("L'oiseau mange une pomme.", "the bird eats [une] [pomme]"),
             ("", "")]

    def attempt():
        for sentence, expected in cases:
            got = translate_marking_unknowns(sentence, dict(_SMALL))
            expect_type(got, str, f"translate_marking_unknowns({sentence!r}, ...)")
            expect_equal(got, expected, f"translate_marking_unknowns({sentence!r}, ...)")

    return check("1", attempt, "Unknown words now stand out, and the reader still sees what they were.")


def exercise_2(move_adjectives: Callable[[list[str], dict], list[str]]) -> Result:
    """Move each adjective that directly follows a noun in front of it (French tokens, glossary kinds)."""
    kinds = tr.load_glossary_kinds()
    cases = [(["la", "maison", "bleue"], ["la", "bleue", "maison"]),
             (["le", "chat", "noir", "est", "sous", "la", "table"], ["le", "noir", "chat", "est", "sous", "la", "table"]),
             (["le", "petit", "chat", "dort"], ["le", "petit", "chat", "dort"]),
             (["les", "chats", "sont", "noirs"], ["les", "chats", "sont", "noirs"]),
             (["il", "a", "une", "voiture", "rouge", "et", "un", "vélo", "vert"],
              ["il", "a", "une", "rouge", "voiture", "et", "un", "vert", "vélo"]),
             ([], [])]

    def attempt():
        for tokens, expected in cases:
            got = move_adjectives(list(tokens), kinds)
            expect_type(got, list, f"move_adjectives({tokens})")
            expect_equal(got, expected, f"move_adjectives({tokens})")
        glossary = tr.load_glossary()
        pairs = tr.load_sentence_pairs(tags="adjective_order")
        fixed = sum(tr.exact_match(" ".join(glossary.get(t, "<unk>") for t in move_adjectives(tr.tokenize(p.fr), kinds)), p.en)
                    for p in pairs if set(p.tags) <= {"adjective_order", "elision"})
        if fixed == 0:
            raise Mismatch("the rule passes the small cases but fixes none of the adjective_order sentences.")

    return check("2", attempt, "One rule, and sentences like 'la maison bleue' come out right; idioms still will not.")


def exercise_3(edit_distance: Callable[[list[str], list[str]], int]) -> Result:
    """The fewest word insertions, deletions and substitutions that turn one list into the other."""
    rng = random.Random(0)
    fixed = [(["the", "house", "blue"], ["the", "blue", "house"]), (["I", "not", "eat", "not"], ["I", "do", "not", "eat"]),
             ([], ["a", "b"]), (["a", "b"], []), ([], []), (["a"], ["a"])]
    randoms = [([rng.choice("abcd") for _ in range(rng.randint(0, 7))], [rng.choice("abcd") for _ in range(rng.randint(0, 7))])
               for _ in range(40)]

    def attempt():
        for a, b in fixed + randoms:
            got = edit_distance(list(a), list(b))
            expect_type(got, int, f"edit_distance({a}, {b})")
            expect_equal(got, tr.edit_distance(a, b), f"edit_distance({a}, {b})")

    return check("3", attempt, "That is the Levenshtein distance; divided by the reference length it is the word error rate.")
