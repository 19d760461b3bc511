"""Download a model's Hugging Face files at one revision, the files `litgpt download` would take.

    python ec2/hf_download.py REPO_ID REVISION DIRECTORY

`litgpt download` (LitGPT 0.5.13) has no revision option, so llama7b.sh downloads with this script,
in the LitGPT venv, and converts with `litgpt convert_to_litgpt`. Like LitGPT it takes the tokenizer,
config.json, generation_config.json and the weights: the *.bin files if the repository has any
(e.g. open_llama_7b), else the *.safetensors files. The download resumes where an interrupted one
stopped. It writes DIRECTORY/.revision: the revision asked for and the commit it resolved to.
"""

from __future__ import annotations

import fnmatch
import os
import sys
from pathlib import Path


def main(argv: list[str]) -> None:
    if len(argv) != 3 or "/" not in argv[0] or not argv[1]:
        sys.exit(f"usage: hf_download.py ORG/NAME REVISION DIRECTORY (got: {' '.join(argv) or 'nothing'})")
    repo_id, revision, directory = argv[0], argv[1], Path(argv[2])
    from huggingface_hub import repo_info, snapshot_download

    token = os.environ.get("HF_TOKEN")
    info = repo_info(repo_id, revision=revision, token=token)
    names = [s.rfilename for s in info.siblings]
    patterns = ["tokenizer*", "generation_config.json", "config.json"]
    if any(fnmatch.fnmatch(n, "*model*.bin*") for n in names):
        patterns.append("*.bin*")
    elif any(fnmatch.fnmatch(n, "*.safetensors*") for n in names):
        patterns.append("*.safetensors*")
    else:
        sys.exit(f"{repo_id} at revision {revision} has no *.bin or *.safetensors weights"
                 f" (its files: {', '.join(sorted(names)) or 'none'})")
    print(f"    {repo_id} at {revision} is commit {info.sha}; downloading {' '.join(patterns)}")
    snapshot_download(repo_id, revision=info.sha, local_dir=directory, allow_patterns=patterns, token=token)
    (directory / ".revision").write_text(f"{revision} {info.sha}\n")


if __name__ == "__main__":
    main(sys.argv[1:])
