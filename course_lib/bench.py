"""Time every notebook, or check them all on a GPU: `python -m course_lib.bench notebooks [--profile gpu]`.

`python -m course_lib.bench notebooks` (the README's "CPU minutes") runs each numbered notebook top to
bottom; `--profile cpu|gpu` sets COURSE_PROFILE for the kernels, and `--profile gpu` (the GPU check on
the instance) also runs notebooks/solutions/*_solutions.ipynb (`--with-solutions` does so on a CPU).
Each notebook runs in a fresh kernel in a fresh child process, so its peak RAM (the kernel's and its
children's) belongs to it alone; one extra cell, run in the same kernel after the notebook's own,
reports torch's peak GPU memory if the notebook used CUDA ("—" otherwise). A failing notebook is named
with its error's last lines, the others still run, and the exit code is 1. Outputs are not compared and
stored notebooks are never written.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from course_lib.validation import check_positive_int

# Runs in the kernel after the notebook. It must not import torch itself: a notebook without torch
# has no GPU memory to report, and importing it would cost time and RAM the notebook never spent.
PROBE = """\
import json as _json, sys as _sys
_torch = _sys.modules.get("torch")
_cuda = _torch is not None and _torch.cuda.is_initialized()
print(_json.dumps({"torch_loaded": _torch is not None, "python": _sys.executable,
                   "gpu_peak_mb": _torch.cuda.max_memory_allocated() / 1e6 if _cuda else None}))
"""
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def last_lines(text: str, n: int = 8) -> str:
    return "\n".join(ANSI.sub("", text).strip().splitlines()[-n:])


def run_one(path: Path, timeout: int) -> dict:
    """Execute one notebook in a fresh kernel, then PROBE; wall time, peak RAM and GPU memory, or the error."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)  # in memory only: never written back
    notebook.cells.append(nbformat.v4.new_code_cell(PROBE))
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    from course_lib.progress import bar

    result, where = {"notebook": str(path)}, "starting the kernel"
    cells = bar(total=len(notebook.cells) - 1, desc=path.stem, leave=False)  # on stderr, one line per notebook
    try:
        with client.setup_kernel():
            start = time.perf_counter()
            for index, cell in enumerate(notebook.cells[:-1]):
                where = f"cell {index + 1} of {len(notebook.cells) - 1}"
                client.execute_cell(cell, index)
                cells.update()
            result["seconds"] = time.perf_counter() - start
            probe = client.execute_cell(notebook.cells[-1], len(notebook.cells) - 1)
    except Exception as error:  # a cell's error, a timeout, a dead kernel: reported, not raised
        result["error"] = f"{where}: {type(error).__name__}\n{last_lines(str(error))}"
        return result
    finally:
        cells.close()
    stdout = "".join(o.get("text", "") for o in probe.outputs if o.output_type == "stream")
    result.update(json.loads(stdout.strip().splitlines()[-1]))
    result["peak_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e3  # kernel reaped
    return result


def run_child(path: Path, timeout: int, env: dict) -> dict:
    """run_one in a fresh `python -m course_lib.bench --one` process; its JSON, or an error.

    The child's stderr is this process's: its progress bar (cells done) shows while it runs, and
    what a crashed child printed stays on the screen above the error line."""
    done = subprocess.run([sys.executable, "-m", "course_lib.bench", str(path), "--one", "--timeout", str(timeout)],
                          stdout=subprocess.PIPE, text=True, env=env)
    try:
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {"notebook": str(path), "error": f"exit code {done.returncode} (its messages are above)"}


def notebooks_in(folder: Path, pattern: str, with_solutions: bool = False) -> list[Path]:
    """The notebooks matching `pattern` in `folder`, then (if asked) folder/solutions/*_solutions.ipynb."""
    if not folder.is_dir():
        raise ValueError(f"folder: expected a folder of notebooks, got {str(folder)!r} (no such folder)")
    found = sorted(p for p in folder.glob(pattern) if ".ipynb_checkpoints" not in p.parts)
    if not found:
        raise ValueError(f"--pattern: expected notebooks matching {pattern!r} in {folder}, found none")
    if with_solutions:
        solutions = sorted((folder / "solutions").glob("*_solutions.ipynb"))
        if not solutions:
            raise ValueError(f"--with-solutions: expected {folder / 'solutions'}/*_solutions.ipynb, found none")
        found += solutions
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.bench", description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="folder of notebooks, e.g. notebooks")
    parser.add_argument("--pattern", default="[0-9][0-9]_*.ipynb", help="which notebooks (glob)")
    parser.add_argument("--profile", choices=("cpu", "gpu"), help="COURSE_PROFILE for the kernels (default: auto)")
    parser.add_argument("--with-solutions", action="store_true", help="also run solutions/ (on with --profile gpu)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per notebook; the median is shown")
    parser.add_argument("--timeout", type=int, default=1200, help="seconds allowed per cell")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.one:  # child mode: one notebook, result as JSON on stdout
        result = run_one(args.folder, args.timeout)
        print(json.dumps(result))
        return 1 if "error" in result else 0

    import torch

    try:
        check_positive_int("--repeat", args.repeat)
        check_positive_int("--timeout", args.timeout)
        if args.profile == "gpu" and not torch.cuda.is_available():
            raise ValueError("--profile: 'gpu' asked for, but torch sees no CUDA device here; "
                             "use --profile cpu or leave --profile out")
        paths = notebooks_in(args.folder, args.pattern, args.with_solutions or args.profile == "gpu")
    except ValueError as error:
        parser.error(str(error))  # exits with code 2 and the message

    env = dict(os.environ, **({"COURSE_PROFILE": args.profile} if args.profile else {}))
    profile = args.profile or ("gpu" if torch.cuda.is_available() else "cpu")
    device = torch.cuda.get_device_name(0) if profile == "gpu" else "CPU"
    print(f"{device} · torch {torch.__version__} · {datetime.date.today().isoformat()} · profile {profile}", flush=True)

    rows, failures = [], []
    for path in paths:
        runs = [run_child(path, args.timeout, env) for _ in range(args.repeat)]
        failed = next((r for r in runs if "error" in r), None)
        if failed:
            failures.append(f"{path.name}: FAILED in {failed['error']}")
            rows.append((path.name, None, None, None))
            print(f"{path.name:45s} FAILED: {failed['error'].splitlines()[-1]}", flush=True)
            continue
        gpu = [r["gpu_peak_mb"] for r in runs if r["gpu_peak_mb"] is not None]
        rows.append((path.name, statistics.median(r["seconds"] for r in runs), max(r["peak_mb"] for r in runs),
                     max(gpu) if gpu else None))
        gpu_text = f"{rows[-1][3]:8.0f} MB GPU" if gpu else "       — GPU"
        print(f"{path.name:45s} {rows[-1][1]:8.1f} s {rows[-1][2]:8.0f} MB RAM {gpu_text}", flush=True)

    print("\n| notebook | profile | wall time (min) | peak RAM (MB) | peak GPU memory (MB) |\n|---|---|---|---|---|")
    for name, seconds, ram, gpu in rows:
        if seconds is None:
            print(f"| {name} | {profile} | FAILED | FAILED | FAILED |")
        else:
            print(f"| {name} | {profile} | {seconds / 60:.1f} | {ram:.0f} | {'—' if gpu is None else f'{gpu:.0f}'} |")
    done = [r for r in rows if r[1] is not None]
    if done:
        gpu = max((r[3] for r in done if r[3] is not None), default=None)
        print(f"| **total** | {profile} | **{sum(r[1] for r in done) / 60:.1f}** | {max(r[2] for r in done):.0f} "
              f"(largest) | {'—' if gpu is None else f'{gpu:.0f}'} (largest) |")
    if failures:
        print(f"\n{len(failures)} of {len(rows)} notebooks FAILED:\n\n" + "\n\n".join(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
