"""course_lib.data finds data/ from any working directory and names missing files clearly."""

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
