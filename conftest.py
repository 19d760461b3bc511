"""Settings for the README's test command, `pytest --nbval notebooks tests`.

pyproject.toml runs it on two workers (pytest-xdist, one notebook or test file per worker at a time).
Two workers on a two-core machine each get one torch thread: the notebooks' kernels inherit this
process's environment, and `course_lib.runtime.set_seed` reads COURSE_THREADS. One thread per worker
also keeps a busy machine from slowing the suite many times over (two threads spinning on one core).
"""

import os

if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("COURSE_THREADS", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def pytest_collection_modifyitems(items):
    """nbval waits only 5 s (fixed in nbval 0.11) for a cell's output messages once the kernel has
    answered. On a loaded machine a long cell's last messages can come later than that: CI's
    portability pass once failed notebook 07's 110-second training cell this way, its code done and
    correct. Wait up to two minutes instead; a cell that really hangs still fails on
    --nbval-cell-timeout."""
    for item in items:
        if hasattr(item, "output_timeout"):
            item.output_timeout = 120
    # The JupyterLab browser test is the longest file (it runs most of every notebook again): first in
    # line, so that one worker starts it while the other takes everything else, instead of last.
    items.sort(key=lambda item: "test_jupyterlab_browser.py" not in item.nodeid)
