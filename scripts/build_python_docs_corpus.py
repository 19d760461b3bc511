"""Rebuild data/python_docs_corpus.txt from the Python installed here, offline and deterministically.

The corpus is the Python documentation that ships inside CPython itself: the docstrings of the
standard-library modules (laid out as Python code: signatures with their docstrings) followed by
the language-reference topics of `pydoc_data.topics` (the text `help("if")` shows). Both are
CPython source, under the PSF licence (data/PSF_LICENSE.txt, copied from the same installation).

Nothing is downloaded and nothing from the standard library is executed except the import of
C-extension modules (to read their docstrings); pure-Python modules are read with `ast`, so
modules with side effects (antigravity, this) are never imported. Modules, classes and functions
are visited in a fixed (sorted, or source) order and whitespace is normalized, so the same Python
version gives the same bytes. Notebooks 05 and 07 train on it; it was built with CPython 3.11.7.

    python scripts/build_python_docs_corpus.py            # writes data/python_docs_corpus.txt
    python scripts/build_python_docs_corpus.py --check    # rebuilds in memory, compares with the file
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import importlib
import inspect
import re
import shutil
import sys
import sysconfig
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "data" / "python_docs_corpus.txt"
LICENCE = ROOT / "data" / "PSF_LICENSE.txt"
EXPECTED_PYTHON = (3, 11)
STDLIB = Path(sysconfig.get_paths()["stdlib"])

# Packages of tests, demos, IDEs and tools, not library documentation; and modules whose docstrings
# are mostly generated tables or that are deprecated duplicates of other modules.
SKIP = {"test", "tests", "idlelib", "lib2to3", "turtledemo", "ensurepip", "pydoc_data", "distutils",
        "site-packages", "encodings", "antigravity", "this", "readline", "xxlimited", "xxlimited_35",
        "tkinter", "turtle", "msilib", "venv", "config-3.11-x86_64-linux-gnu", "lib-dynload"}
MAX_DOCSTRING_CHARS = 3000  # a few modules carry whole manuals in one docstring; keep their start


def normalize(text: str) -> str:
    """NFC, tabs to spaces, no trailing spaces, at most one blank line in a row, one final newline."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n").expandtabs(4)
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip("\n") + "\n"


def clip(doc: str) -> str:
    doc = inspect.cleandoc(doc).strip()
    if len(doc) > MAX_DOCSTRING_CHARS:
        cut = doc.rfind("\n\n", 0, MAX_DOCSTRING_CHARS)
        doc = doc[: cut if cut > 0 else MAX_DOCSTRING_CHARS].rstrip()
    return doc.replace('"""', "'''")


def docstring_lines(doc: str, indent: str) -> list[str]:
    body = clip(doc)
    lines = body.split("\n")
    if len(lines) == 1:
        return [f'{indent}"""{body}"""']
    return [f'{indent}"""{lines[0]}'] + [f"{indent}{line}" if line else "" for line in lines[1:]] + [f'{indent}"""']


def public(name: str) -> bool:
    return not name.startswith("_") or name == "__init__"


def source_entries(tree: ast.Module) -> list[str]:
    """Module docstring, then each public class / function (and their methods) that has a docstring."""
    out: list[str] = []
    if ast.get_docstring(tree):
        out += docstring_lines(ast.get_docstring(tree, clean=False), "") + [""]

    def visit(node: ast.AST, indent: str) -> None:
        for child in getattr(node, "body", []):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) and public(child.name):
                doc = ast.get_docstring(child, clean=False)
                if not doc:
                    continue
                prefix = "async def" if isinstance(child, ast.AsyncFunctionDef) else "def"
                returns = f" -> {ast.unparse(child.returns)}" if child.returns else ""
                out.append(f"{indent}{prefix} {child.name}({ast.unparse(child.args)}){returns}:")
                out.extend(docstring_lines(doc, indent + "    "))
                out.append("")
            elif isinstance(child, ast.ClassDef) and public(child.name):
                bases = ", ".join(ast.unparse(b) for b in child.bases + child.keywords)
                mark = len(out)
                out.append(f"{indent}class {child.name}({bases}):" if bases else f"{indent}class {child.name}:")
                doc = ast.get_docstring(child, clean=False)
                if doc:
                    out.extend(docstring_lines(doc, indent + "    "))
                    out.append("")
                before = len(out)
                if not indent:  # methods of top-level classes; nested classes are rare and noisy
                    visit(child, indent + "    ")
                if not doc and len(out) == before:
                    del out[mark:]  # a class with nothing documented says nothing
            elif isinstance(child, ast.If) and not indent:  # `if sys.platform == ...:` blocks
                visit(child, indent)

    visit(tree, "")
    return out


def python_files(name: str) -> list[Path]:
    single = STDLIB / f"{name}.py"
    if single.is_file():
        return [single]
    package = STDLIB / name
    if not (package / "__init__.py").is_file():
        return []
    files = []
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(STDLIB).with_suffix("").parts
        if any(p in SKIP or (p.startswith("_") and p != "__init__") for p in parts):
            continue
        files.append(path)
    return files


def dotted(path: Path) -> str:
    parts = list(path.relative_to(STDLIB).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def extension_entries(name: str) -> list[str]:
    """C modules have no source here: import them (no side effects) and read docstrings and signatures."""
    try:
        module = importlib.import_module(name)
    except ImportError:
        return []
    out: list[str] = []
    if module.__doc__:
        out += docstring_lines(module.__doc__, "") + [""]
    for attr in sorted(vars(module)):
        value = getattr(module, attr)
        if not public(attr) or attr == "__init__" or getattr(value, "__module__", name) not in (name, None):
            continue
        if not (inspect.isbuiltin(value) or inspect.isclass(value) or inspect.isroutine(value)):
            continue
        doc = inspect.getdoc(value)
        if not doc:
            continue
        try:
            signature = str(inspect.signature(value))
        except (TypeError, ValueError):
            signature = "(...)"
        if inspect.isclass(value):
            out.append(f"class {attr}:")
        else:
            out.append(f"def {attr}{signature}:")
        out.extend(docstring_lines(doc, "    "))
        out.append("")
    return out


def module_sections() -> list[str]:
    sections = []
    for name in sorted(sys.stdlib_module_names):
        if name.startswith("_") or name in SKIP:
            continue
        files = python_files(name)
        if files:
            for path in files:
                tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
                lines = source_entries(tree)
                if lines:
                    sections.append(f"# Module {dotted(path)}\n\n" + "\n".join(lines))
        elif name in sys.builtin_module_names or any((STDLIB / "lib-dynload").glob(f"{name}.*")):
            lines = extension_entries(name)
            if lines:
                sections.append(f"# Module {name}\n\n" + "\n".join(lines))
    return sections


def topic_sections() -> list[str]:
    """The language reference as `help()` shows it, one topic per section, sorted by topic name."""
    from pydoc_data.topics import topics

    return [f"# Topic {key}\n\n{topics[key].strip()}\n" for key in sorted(topics)]


def build() -> str:
    return normalize("\n\n".join(module_sections() + topic_sections()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed file instead of writing")
    parser.add_argument("--any-python", action="store_true", help=f"allow a Python other than {EXPECTED_PYTHON}")
    args = parser.parse_args(argv)
    if sys.version_info[:2] != EXPECTED_PYTHON and not args.any_python:
        parser.error(f"the committed corpus was built with Python {EXPECTED_PYTHON[0]}.{EXPECTED_PYTHON[1]}; "
                     f"this is {sys.version.split()[0]} (pass --any-python to build anyway)")
    text = build()
    data = text.encode("utf-8")
    digest = hashlib.sha256(data).hexdigest()
    summary = f"{len(data):,} bytes, {len(text):,} characters, sha256 {digest}, Python {sys.version.split()[0]}"
    if args.check:
        same = CORPUS.is_file() and CORPUS.read_bytes() == data
        print(("identical to " if same else "DIFFERS from ") + f"{CORPUS.relative_to(ROOT)}: {summary}")
        return 0 if same else 1
    CORPUS.write_bytes(data)
    shutil.copyfile(STDLIB / "LICENSE.txt", LICENCE)
    print(f"wrote {CORPUS.relative_to(ROOT)}: {summary}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
