"""`python -m course_lib.bench`: times notebooks on a CPU, checks them all on a GPU, never writes them.

Each test writes tiny notebooks to tmp_path; every real kernel is the course venv's `python3` kernel.
"""

import sys

import nbformat
import pytest
import torch
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from course_lib import bench


def write(folder, name, *sources):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    nbformat.write(new_notebook(cells=[new_markdown_cell("# tiny")] + [new_code_cell(s) for s in sources]), path)
    return path


def test_a_good_notebook_gives_its_time_and_ram_and_no_gpu_memory_on_a_cpu(tmp_path):
    path = write(tmp_path, "01_good.ipynb", "import time\ntime.sleep(0.2)\nprint('ran')")
    row = bench.run_one(path, timeout=60)
    assert "error" not in row
    assert row["seconds"] >= 0.2 and row["peak_mb"] > 0
    assert row["gpu_peak_mb"] is None
    assert row["python"] == sys.executable  # the kernel is this venv's python


def test_the_memory_cell_reports_torch_without_importing_it(tmp_path):
    without = bench.run_one(write(tmp_path, "01_plain.ipynb", "x = 1"), timeout=60)
    with_torch = bench.run_one(write(tmp_path, "02_torch.ipynb", "import torch\ntorch.ones(3).sum()"), timeout=120)
    assert without["torch_loaded"] is False  # the probe looked at sys.modules and left torch out
    assert with_torch["torch_loaded"] is True
    assert with_torch["gpu_peak_mb"] is None  # torch loaded, but CUDA never initialised here


def test_a_failing_notebook_is_named_with_its_error_while_the_others_still_run(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("COURSE_PROFILE", raising=False)  # only --profile cpu can set it for the kernels
    folder = tmp_path / "notebooks"
    paths = [write(folder, "01_first.ipynb", "import os\nassert os.environ['COURSE_PROFILE'] == 'cpu'"),
             write(folder, "02_broken.ipynb", "x = 1", "raise ValueError('boom in the second cell')"),
             write(folder, "03_after.ipynb", "import os\nassert os.environ['COURSE_PROFILE'] == 'cpu'")]
    before = [(p.read_bytes(), p.stat().st_mtime_ns) for p in paths]

    assert bench.main([str(folder), "--profile", "cpu", "--timeout", "60"]) == 1

    out, err = capsys.readouterr()
    assert "| notebook | profile | wall time (min) | peak RAM (MB) | peak GPU memory (MB) |" in out
    assert "| 02_broken.ipynb | cpu | FAILED | FAILED | FAILED |" in out
    for name in ("01_first.ipynb", "03_after.ipynb"):  # COURSE_PROFILE=cpu reached their kernels
        row = next(line for line in out.splitlines() if line.startswith(f"| {name} |"))
        assert row.startswith(f"| {name} | cpu | ") and row.endswith(" | — |")
    assert "02_broken.ipynb: FAILED in cell 3 of 3" in err
    assert "ValueError: boom in the second cell" in err
    assert out.splitlines()[0].startswith(f"CPU · torch {torch.__version__} · ")
    assert [(p.read_bytes(), p.stat().st_mtime_ns) for p in paths] == before  # stored notebooks untouched


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_profile_gpu_without_cuda_stops_before_running_anything(tmp_path, monkeypatch, capsys):
    write(tmp_path, "01_good.ipynb", "x = 1")
    monkeypatch.setattr(bench, "run_child", lambda *a: pytest.fail("a notebook ran"))
    with pytest.raises(SystemExit) as stopped:
        bench.main([str(tmp_path), "--profile", "gpu"])
    assert stopped.value.code == 2
    assert "--profile: 'gpu' asked for, but torch sees no CUDA device" in capsys.readouterr().err


def test_profile_gpu_runs_the_solutions_too_with_course_profile_gpu(tmp_path, monkeypatch, capsys):
    write(tmp_path, "01_a.ipynb", "x = 1")
    write(tmp_path / "solutions", "01_a_solutions.ipynb", "x = 1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index: "Fake GPU")
    ran = []

    def fake_child(path, timeout, env):
        ran.append((path.name, env["COURSE_PROFILE"]))
        return {"notebook": str(path), "seconds": 90.0, "peak_mb": 500.0, "gpu_peak_mb": 1234.0}

    monkeypatch.setattr(bench, "run_child", fake_child)
    assert bench.main([str(tmp_path), "--profile", "gpu"]) == 0
    out = capsys.readouterr().out
    assert ran == [("01_a.ipynb", "gpu"), ("01_a_solutions.ipynb", "gpu")]
    assert out.startswith("Fake GPU · torch ")
    assert "| 01_a_solutions.ipynb | gpu | 1.5 | 500 | 1234 |" in out


def test_without_profile_the_cpu_timing_keeps_its_old_shape(tmp_path, monkeypatch, capsys):
    write(tmp_path, "01_a.ipynb", "x = 1")
    write(tmp_path / "solutions", "01_a_solutions.ipynb", "x = 1")
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    envs = []
    monkeypatch.setattr(bench, "run_child", lambda path, timeout, env: envs.append(env) or
                        {"notebook": str(path), "seconds": 30.0, "peak_mb": 100.0, "gpu_peak_mb": None})
    assert bench.main([str(tmp_path), "--repeat", "2"]) == 0
    assert len(envs) == 2 and "COURSE_PROFILE" not in envs[0]  # auto profile, no solutions, two runs
    assert "| **total** | cpu | **0.5** | 100 (largest) | — (largest) |" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["{missing}"], "folder: expected a folder of notebooks, got "),
    (["{tmp}", "--repeat", "0"], "--repeat: expected a positive int, got 0"),
    (["{tmp}", "--timeout", "-5"], "--timeout: expected a positive int, got -5"),
    (["{tmp}", "--pattern", "*.txt"], "--pattern: expected notebooks matching '*.txt'"),
    (["{tmp}", "--with-solutions"], "--with-solutions: expected "),
])
def test_bad_arguments_are_refused_with_what_was_expected(tmp_path, capsys, argv, message):
    write(tmp_path, "01_a.ipynb", "x = 1")
    argv = [a.format(tmp=tmp_path, missing=tmp_path / "missing") for a in argv]
    with pytest.raises(SystemExit) as stopped:
        bench.main(argv)
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err
