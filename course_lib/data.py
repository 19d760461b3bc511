"""Paths and loaders for the files in `data/`, found from any working directory.

Notebooks run from `notebooks/`, tests from the repository root, and a learner may import
`course_lib` from anywhere: `data_dir()` finds the one `data/` folder that ships with the course.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from course_lib.validation import check_non_negative_int, check_sha256, check_type

ENV_VAR = "COURSE_DATA"
_PACKAGE_ROOT = Path(__file__).resolve().parent.parent
CHECKSUMS = "checksums.json"  # sha256 of shipped files that loaders check (data/README.md)
REBUILT_BY = {"tokenizer_python_docs_4096.json": "python scripts/build_python_docs_tokenizer.py",
              "tiny_gpt.safetensors": "python scripts/train_tiny_gpt.py"}  # the scripts that write checked files


def _candidates(start: Path | None = None) -> list[Path]:
    found = []
    if os.environ.get(ENV_VAR):
        found.append(Path(os.environ[ENV_VAR]).expanduser())
    found.append(_PACKAGE_ROOT / "data")  # the repository this course_lib lives in
    here = (start or Path.cwd()).resolve()
    found.extend(parent / "data" for parent in (here, *here.parents))
    return found


def data_dir(start: Path | None = None) -> Path:
    """The course's `data/` folder: $COURSE_DATA, else beside `course_lib`, else above the cwd."""
    wanted = os.environ.get(ENV_VAR)
    if wanted and not Path(wanted).expanduser().is_dir():
        raise FileNotFoundError(
            f"{ENV_VAR}={wanted}: no such folder. Unset {ENV_VAR} (course_lib then finds the data/ folder "
            f"of its repository by itself) or point it at the repository's data/ folder, e.g. "
            f"{ENV_VAR}={_PACKAGE_ROOT / 'data'}."
        )
    for candidate in _candidates(start):
        if (candidate / "README.md").is_file() or (candidate / "LICENSES.md").is_file():
            return candidate
    raise FileNotFoundError(
        "data/: the course's data folder was not found (looked in: "
        + ", ".join(str(c) for c in dict.fromkeys(_candidates(start)))
        + "). It ships with the repository: run from a clone of it, or set "
        f"{ENV_VAR}=/path/to/the/repo/data."
    )


def data_path(name: str) -> Path:
    """The path of one file in `data/`, checked to exist, with a clear error if it does not."""
    check_type("name", name, (str, os.PathLike), "a file name such as 'fr_en_glossary.tsv'")
    path = data_dir() / name
    if not path.exists():
        raise FileNotFoundError(
            f"data/{name}: no such file in {path.parent}. It ships with the repository "
            "(`git checkout -- data/` restores it); files the course builds say in data/README.md "
            "which command rebuilds them."
        )
    return path


def checked_path(name: str, sha256: str | None = None) -> Path:
    """`data_path(name)` after checking the file's sha256: `sha256` if given, else its entry in data/checksums.json.

    Each file is hashed once per process (again only if it changes). A mismatch is a ValueError that
    names the file, both digests and how to restore or rebuild it.
    """
    path = data_path(name)
    if sha256 is None:
        manifest = json.loads(data_path(CHECKSUMS).read_text(encoding="utf-8"))["sha256"]
        if name not in manifest:
            raise ValueError(f"data/{name}: has no sha256 in data/{CHECKSUMS}; add it there (data/README.md)")
        sha256 = manifest[name]
    fix = f"Restore it with `git checkout data/{name}`"
    if name in REBUILT_BY:
        fix += f" or rebuild it with `{REBUILT_BY[name]}`"
    return check_sha256(path, sha256, fix + ".")


def read_text(name: str) -> str:
    """A text file from `data/` as one string (UTF-8)."""
    return data_path(name).read_text(encoding="utf-8")


def read_tsv(name: str) -> list[dict[str, str]]:
    """A tab-separated file with a header row, as a list of dicts (one per row)."""
    with data_path(name).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))


def read_jsonl(name: str) -> list[dict]:
    """A JSON-lines file, one object per non-empty line."""
    rows = []
    for number, line in enumerate(read_text(name).splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise ValueError(f"data/{name}, line {number}: not valid JSON ({error.msg})") from None
    return rows


# --- Notebook 05's corpus and tokenizer (notebook 07 pre-trains a tiny GPT on them) ------------
PYTHON_DOCS_CORPUS = "python_docs_corpus.txt"  # CPython 3.11.7 docstrings + language reference, PSF licence
PYTHON_DOCS_TOKENIZER = "tokenizer_python_docs_4096.json"  # BPETokenizer trained on it, vocab 4,096


def python_docs_corpus(n_chars: int | None = None) -> str:
    """The Python-documentation corpus (about 1.9 MB of English prose and code), or its first `n_chars`."""
    if n_chars is not None:
        check_non_negative_int("n_chars", n_chars, "a non-negative int or None")
    text = read_text(PYTHON_DOCS_CORPUS)
    return text if n_chars is None else text[:n_chars]


def python_docs_tokenizer():
    """The `BPETokenizer` trained on the corpus (vocab 4,096), loaded from data/ (sha256 checked) instead of retrained."""
    from course_lib.tokenizer import BPETokenizer

    return BPETokenizer.load(checked_path(PYTHON_DOCS_TOKENIZER))
