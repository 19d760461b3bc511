"""course_lib.data finds data/ from any working directory and names missing files clearly."""

import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest

from course_lib import data

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("cwd", [ROOT, ROOT / "notebooks", ROOT / "tests", Path("/")])
def test_data_dir_is_found_from_any_working_directory(monkeypatch, cwd):
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    monkeypatch.chdir(cwd)
    assert data.data_dir() == ROOT / "data"


def test_the_environment_variable_points_elsewhere(monkeypatch, tmp_path):
    (tmp_path / "README.md").write_text("other data")
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path))
    assert data.data_dir() == tmp_path


def test_a_missing_file_names_itself_and_how_to_get_it():
    with pytest.raises(FileNotFoundError, match=r"data/no_such_file\.tsv: no such file .*git checkout"):
        data.data_path("no_such_file.tsv")


def test_a_non_string_name_is_a_type_error():
    with pytest.raises(TypeError, match="name: expected a file name"):
        data.data_path(42)


def test_tsv_and_jsonl_loaders_read_rows(monkeypatch, tmp_path):
    (tmp_path / "README.md").write_text("x")
    (tmp_path / "t.tsv").write_text("fr\ten\nchat\tcat\n", encoding="utf-8")
    (tmp_path / "j.jsonl").write_text('{"a": 1}\n\n{"a": 2}\n', encoding="utf-8")
    (tmp_path / "bad.jsonl").write_text('{"a": 1}\n{oops\n', encoding="utf-8")
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path))
    assert data.read_tsv("t.tsv") == [{"fr": "chat", "en": "cat"}]
    assert data.read_jsonl("j.jsonl") == [{"a": 1}, {"a": 2}]
    with pytest.raises(ValueError, match=r"data/bad\.jsonl, line 2: not valid JSON"):
        data.read_jsonl("bad.jsonl")


def test_course_data_pointing_at_a_missing_folder_names_the_variable_the_path_and_the_fix(monkeypatch, tmp_path):
    missing = tmp_path / "no_such_data"
    monkeypatch.setenv(data.ENV_VAR, str(missing))
    with pytest.raises(FileNotFoundError, match=re.escape(f"COURSE_DATA={missing}: no such folder. Unset COURSE_DATA")
                       + r".*or point it at the repository's data/ folder"):
        data.data_path("fr_en_glossary.tsv")


def test_the_checksum_manifest_matches_the_shipped_files(monkeypatch):
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    manifest = json.loads(data.read_text(data.CHECKSUMS))["sha256"]
    assert data.PYTHON_DOCS_TOKENIZER in manifest
    for name, digest in manifest.items():
        assert hashlib.sha256(data.data_path(name).read_bytes()).hexdigest() == digest, name
    assert set(data.REBUILT_BY) - set(manifest) == {"tiny_gpt.safetensors"}  # its sha256 is in tiny_gpt.json


def test_a_changed_tokenizer_file_is_refused_with_both_digests_and_the_fix(monkeypatch, tmp_path):
    for name in ("README.md", data.CHECKSUMS, data.PYTHON_DOCS_TOKENIZER):
        shutil.copy(ROOT / "data" / name, tmp_path / name)
    changed = tmp_path / data.PYTHON_DOCS_TOKENIZER
    changed.write_bytes(changed.read_bytes().rstrip(b"\n") + b" \n")  # still valid JSON, no longer the shipped bytes
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path))
    expected = json.loads((ROOT / "data" / data.CHECKSUMS).read_text())["sha256"][data.PYTHON_DOCS_TOKENIZER]
    actual = hashlib.sha256(changed.read_bytes()).hexdigest()
    with pytest.raises(ValueError, match=re.escape(f"{changed}: sha256 {actual[:16]}... does not match the expected "
                                                   f"{expected[:16]}...")
                       + r".*`git checkout data/tokenizer_python_docs_4096\.json` or rebuild it with "
                         r"`python scripts/build_python_docs_tokenizer\.py`"):
        data.python_docs_tokenizer()
