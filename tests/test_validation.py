"""course_lib.validation: every refusal names the argument, what was expected and what came."""

import hashlib
import re
import types

import pytest

from course_lib import validation as V


@pytest.mark.parametrize("call, error, message", [
    (lambda: V.check_type("alpha", "8", (int, float)), TypeError, r"alpha: expected an int or float, got str \('8'\)"),
    (lambda: V.check_type("n", True, int), TypeError, r"n: expected an int, got bool \(True\)"),
    (lambda: V.check_positive_int("n_layers", True), ValueError, "n_layers: expected a positive int, got True"),
    (lambda: V.check_positive_int("k", 0, allow_none=True), ValueError, "k: expected a positive int or None, got 0"),
    (lambda: V.check_non_negative_int("steps", -1), ValueError, "steps: expected a non-negative int, got -1"),
    (lambda: V.check_int("rank", 2.5), TypeError, r"rank: expected an int, got float \(2.5\)"),
    (lambda: V.check_int("rank", 0, low=1), ValueError, r"rank: expected an int in \[1, inf\], got 0"),
    (lambda: V.check_number("lr", "0.1"), TypeError, r"lr: expected a number, got str \('0.1'\)"),
    (lambda: V.check_number("lr", float("nan"), positive=True), ValueError, "lr: expected a positive number, got nan"),
    (lambda: V.check_text("text", 3), TypeError, r"text: expected a str, got int \(3\)"),
    (lambda: V.check_choice("norm", "mid", ("pre", "post")), ValueError,
     r"norm: expected one of \('pre', 'post'\), got 'mid'"),
    (lambda: V.check_file("path", "/no/such/file.json", "run make_it.py"), FileNotFoundError,
     r"path: /no/such/file.json does not exist; run make_it.py"),
])
def test_each_check_names_the_argument_what_was_expected_and_what_came(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_a_bool_never_passes_as_an_int_but_valid_values_come_back_unchanged():
    assert V.check_positive_int("n", 3) == 3 and V.check_positive_int("n", None, allow_none=True) is None
    assert V.check_int("rank", 4, low=1) == 4 and V.check_number("alpha", 8) == 8.0
    assert V.check_type("flag", True, bool) is True
    with pytest.raises(ValueError):
        V.check_non_negative_int("n", False)


def test_two_classes_with_one_name_are_told_apart_by_their_modules():
    ours = types.new_class("LlamaConfig")
    ours.__module__ = "course_lib.llama"
    theirs = types.new_class("LlamaConfig")
    theirs.__module__ = "transformers.models.llama.configuration_llama"
    with pytest.raises(TypeError, match=re.escape("config: expected course_lib.llama.LlamaConfig, got "
                                                  "transformers.models.llama.configuration_llama.LlamaConfig")):
        V.check_type("config", theirs(), ours)


def test_a_file_is_hashed_once_until_it_changes(tmp_path, monkeypatch):
    path = tmp_path / "weights.bin"
    path.write_bytes(b"abc")
    digest = hashlib.sha256(b"abc").hexdigest()
    assert V.check_sha256(path, digest, "restore it") == path
    monkeypatch.setattr(V.hashlib, "sha256", None)  # hashing again would fail: the cached digest is used
    assert V.file_sha256(path) == digest
    monkeypatch.undo()
    path.write_bytes(b"abcd")  # another size: hashed again
    with pytest.raises(ValueError, match=re.escape(f"{path}: sha256 {hashlib.sha256(b'abcd').hexdigest()[:16]}... "
                                                   f"does not match the expected {digest[:16]}...") + ".*restore it"):
        V.check_sha256(path, digest, "restore it")
