"""Time every notebook: `python -m course_lib.bench notebooks [--repeat N]`.

Each notebook runs top to bottom in a fresh kernel, in a fresh child process, so the peak memory
(the kernel's and its children's) belongs to that notebook alone. The table it prints is where the
README's "CPU minutes" column comes from. Outputs are not written back: stored notebooks stay as they are.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path


def run_one(path: Path, timeout: int) -> dict:
    """Execute one notebook in a fresh kernel (in this process) and return its wall time and peak memory."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"notebook": str(path), "seconds": seconds, "peak_mb": peak_kb / 1e3}


def notebooks_in(folder: Path, pattern: str) -> list[Path]:
    found = sorted(p for p in folder.glob(pattern) if ".ipynb_checkpoints" not in p.parts)
    if not found:
        raise ValueError(f"folder: no notebooks matching {pattern!r} in {folder}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="folder of notebooks, e.g. notebooks")
    parser.add_argument("--pattern", default="[0-9][0-9]_*.ipynb", help="which notebooks (glob)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per notebook; the median is shown")
    parser.add_argument("--timeout", type=int, default=1200, help="seconds allowed per cell")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.one:  # child mode: one notebook, result as JSON on stdout
        print(json.dumps(run_one(args.folder, args.timeout)))
        return 0

    rows = []
    for path in notebooks_in(args.folder, args.pattern):
        runs = []
        for _ in range(args.repeat):
            done = subprocess.run([sys.executable, "-m", "course_lib.bench", str(path), "--one",
                                   "--timeout", str(args.timeout)], capture_output=True, text=True)
            if done.returncode != 0:
                print(f"{path.name}: FAILED\n{done.stderr[-2000:]}", file=sys.stderr)
                return 1
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
        rows.append((path.name, statistics.median(r["seconds"] for r in runs), max(r["peak_mb"] for r in runs)))
        print(f"{path.name:45s} {rows[-1][1]:8.1f} s {rows[-1][2]:8.0f} MB", flush=True)

    total = sum(r[1] for r in rows)
    print("\n| notebook | wall time (min) | peak memory (MB) |\n|---|---|---|")
    for name, seconds, peak in rows:
        print(f"| {name} | {seconds / 60:.1f} | {peak:.0f} |")
    print(f"| **total** | **{total / 60:.1f}** | {max(r[2] for r in rows):.0f} (largest) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
