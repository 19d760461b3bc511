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
