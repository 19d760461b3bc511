"""Rebuild data/tokenizer_python_docs_4096.json: a BPETokenizer trained on the whole corpus.

Training is deterministic (ties between equally frequent pairs go to the smaller pair of ids), so
the same corpus gives the same file. Notebook 07 loads it with `course_lib.data.python_docs_tokenizer()`,
which checks it against its sha256 in data/checksums.json: writing the file updates that entry too.

    python scripts/build_python_docs_tokenizer.py           # trains (about a minute) and writes the file
    python scripts/build_python_docs_tokenizer.py --check   # trains and compares with the committed file
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's course_lib, even if another one is installed

from course_lib import data  # noqa: E402
from course_lib.tokenizer import ENDOFTEXT, BPETokenizer  # noqa: E402

VOCAB_SIZE = 4096


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed file instead of writing")
    args = parser.parse_args(argv)
    tokenizer = BPETokenizer().train(data.python_docs_corpus(), VOCAB_SIZE, special_tokens=(ENDOFTEXT,))
    target = ROOT / "data" / data.PYTHON_DOCS_TOKENIZER
    if args.check:
        same = target.is_file() and BPETokenizer.load(target).to_dict() == tokenizer.to_dict()
        print(("identical to " if same else "DIFFERS from ") + str(target.relative_to(ROOT)))
        return 0 if same else 1
    tokenizer.save(target, overwrite=True)
    manifest_path = ROOT / "data" / data.CHECKSUMS
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["sha256"][data.PYTHON_DOCS_TOKENIZER] = hashlib.sha256(target.read_bytes()).hexdigest()
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {target.relative_to(ROOT)}: {tokenizer!r}, {target.stat().st_size:,} bytes, "
          f"and its sha256 in {manifest_path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
