"""Checkers for notebook 01 (literal translation, missing tokens): each says what is wrong, not only "wrong"."""

from __future__ import annotations

import random
from typing import Callable

from course_lib import translation as tr
from course_lib.exercises import Mismatch, Result, call, check, expect_equal, expect_type

_SMALL = {"le": "the", "chat": "cat", "est": "is", "sous": "under", "la": "the", "table": "table", "l'": "the",
          "oiseau": "bird", "mange": "eats"}


def _key_error_hint(error: BaseException) -> str:
    """The usual cause of a KeyError here: `d[word]` on a word that is not a key."""
    if not isinstance(error, KeyError):
        return ""
    key = error.args[0] if error.args else "?"
    return (f" {key!r} is not a key of the dict, and `d[{key!r}]` raises for a missing key. Look it up with "
            "`d.get(word)` (None when missing) or test `word in d` first, and use the fallback for words that "
            "are not there.")


def _call(what: str, function: Callable, *args, hint: Callable[[BaseException], str] = _key_error_hint):
    """`exercises.call` with, by default, what to do about a KeyError."""
    return call(what, function, *args, hint=hint)


def exercise_1(translate_marking_unknowns: Callable[[str, dict], str]) -> Result:
    """Translate word for word, writing each unknown word as [word] instead of <unk>."""
    cases = [("le chat est sous la table", "the cat is under the table"),
             ("le chien est sous la table", "the [chien] is under the table"),
             ("L'oiseau mange une pomme.", "the bird eats [une] [pomme]"),
             ("", "")]

    def attempt():
        for sentence, expected in cases:
            got = _call(f"translate_marking_unknowns({sentence!r}, ...)", translate_marking_unknowns, sentence,
                        dict(_SMALL))
            expect_type(got, str, f"translate_marking_unknowns({sentence!r}, ...)")
            expect_equal(got, expected, f"translate_marking_unknowns({sentence!r}, ...)")

    return check("1", attempt, "Unknown words now stand out, and the reader still sees what they were.")


def _still_wrong(move_adjectives: Callable, kinds: dict) -> tuple[int, list[str]]:
    """Apply the learner's rule to every adjective_order sentence: how many come out exactly right, and a line
    for each one that does not (French, what the rule gives, the reference, the sentence's other tags)."""
    glossary = tr.load_glossary()
    pairs = tr.load_sentence_pairs(tags="adjective_order")
    wrong = []
    for pair in pairs:
        tokens = tr.tokenize(pair.fr)
        moved = _call(f"move_adjectives({tokens})", move_adjectives, list(tokens), kinds)
        expect_type(moved, list, f"move_adjectives({tokens})")
        english = " ".join(glossary.get(t, "<unk>") if isinstance(t, str) else "<?>" for t in moved)
        if not tr.exact_match(english, pair.en):
            others = [t for t in pair.tags if t != "adjective_order"]
            wrong.append(f"'{pair.fr}' -> '{english}' (reference '{pair.en}'"
                         f"{'; also tagged ' + ', '.join(others) if others else ''})")
    return len(pairs), wrong


def exercise_2(move_adjectives: Callable[[list[str], dict], list[str]]) -> Result:
    """Move each adjective that directly follows a noun in front of it (French tokens, glossary kinds).

    On success the message lists the adjective_order sentences the rule still gets wrong: the exercise asks
    which ones they are and why."""
    kinds = tr.load_glossary_kinds()
    cases = [(["la", "maison", "bleue"], ["la", "bleue", "maison"]),
             (["le", "chat", "noir", "est", "sous", "la", "table"], ["le", "noir", "chat", "est", "sous", "la", "table"]),
             (["le", "petit", "chat", "dort"], ["le", "petit", "chat", "dort"]),
             (["les", "chats", "sont", "noirs"], ["les", "chats", "sont", "noirs"]),
             (["il", "a", "une", "voiture", "rouge", "et", "un", "vélo", "vert"],
              ["il", "a", "une", "rouge", "voiture", "et", "un", "vert", "vélo"]),
             (["le", "hamster", "noir", "dort"], ["le", "hamster", "noir", "dort"]),
             ([], [])]
    report = []

    def attempt():
        for tokens, expected in cases:
            what = f"move_adjectives({tokens})"
            got = _call(what, move_adjectives, list(tokens), kinds)
            expect_type(got, list, what)
            if tokens and "hamster" in tokens and got != expected:
                raise Mismatch(f"{what}: expected {expected!r}, got {got!r}. 'hamster' is not in the glossary, so "
                               "it is neither a noun nor an adjective: leave it and its neighbour where they are.")
            expect_equal(got, expected, what)
        total, wrong = _still_wrong(move_adjectives, kinds)
        if len(wrong) == total:
            raise Mismatch("the rule passes the small cases but fixes none of the adjective_order sentences.")
        shown = wrong[:8] + ([f"... and {len(wrong) - 8} more"] if len(wrong) > 8 else [])
        report.append(f"Your rule gets {total - len(wrong)} of the {total} adjective_order sentences exactly right"
                      + (f"; it still gets these {len(wrong)} wrong:\n  " + "\n  ".join(shown)
                         + "\nCompare each with its reference: what is still wrong, and could one more rule fix it?" if wrong else "."))

    result = check("2", attempt)
    if result.passed:
        return Result("2", result.status, "One rule, and sentences like 'la maison bleue' come out right. " + report[0])
    return result


def exercise_3(edit_distance: Callable[[list[str], list[str]], int]) -> Result:
    """The fewest word insertions, deletions and substitutions that turn one list into the other."""
    rng = random.Random(0)
    fixed = [(["the", "house", "blue"], ["the", "blue", "house"]), (["I", "not", "eat", "not"], ["I", "do", "not", "eat"]),
             ([], ["a", "b"]), (["a", "b"], []), ([], []), (["a"], ["a"])]
    randoms = [([rng.choice("abcd") for _ in range(rng.randint(0, 7))], [rng.choice("abcd") for _ in range(rng.randint(0, 7))])
               for _ in range(40)]

    def attempt():
        for a, b in fixed + randoms:
            got = _call(f"edit_distance({a}, {b})", edit_distance, list(a), list(b))
            expect_type(got, int, f"edit_distance({a}, {b})")
            expect_equal(got, tr.edit_distance(a, b), f"edit_distance({a}, {b})")

    return check("3", attempt, "That is the Levenshtein distance; divided by the reference length it is the word error rate.")
