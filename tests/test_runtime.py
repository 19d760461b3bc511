"""course_lib.runtime: reproducible seeds, the CPU/GPU profile, offline defaults."""

import logging
import os
import random

import numpy as np
import pytest
import torch

from course_lib import runtime


def test_set_seed_makes_python_numpy_and_torch_repeat():
    runtime.set_seed(123)
    first = (random.random(), np.random.rand(), torch.rand(3))
    runtime.set_seed(123)
    second = (random.random(), np.random.rand(), torch.rand(3))
    assert first[0] == second[0] and first[1] == second[1]
    assert torch.equal(first[2], second[2])


def test_set_seed_fixes_the_cpu_thread_count():
    runtime.set_seed(0)
    assert torch.get_num_threads() == runtime.CPU_THREADS


def test_set_seed_rejects_a_non_integer_seed():
    with pytest.raises(TypeError, match="seed: expected an int, got str"):
        runtime.set_seed("42")


def test_profile_is_cpu_without_cuda_and_obeys_the_override(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    assert runtime.profile() == "cpu"
    assert runtime.pick(cpu=1, gpu=2) == 1
    monkeypatch.setenv("COURSE_PROFILE", "CPU")
    assert runtime.profile() == "cpu"


def test_profile_is_gpu_when_cuda_is_present(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    assert runtime.profile() == "gpu"
    assert runtime.pick(cpu=1, gpu=2) == 2


def test_an_unknown_profile_is_refused_by_name(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "tpu")
    with pytest.raises(ValueError, match=r"COURSE_PROFILE: expected one of \('cpu', 'gpu'\), got 'tpu'"):
        runtime.profile()


def test_the_gpu_profile_is_refused_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("COURSE_PROFILE", "gpu")
    with pytest.raises(ValueError, match="no CUDA device"):
        runtime.profile()


def test_get_device_falls_back_to_the_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert runtime.get_device() == torch.device("cpu")


def test_course_profile_cpu_keeps_everything_on_the_cpu_even_where_cuda_is_present(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("COURSE_PROFILE", "cpu")
    assert runtime.profile() == "cpu"
    assert runtime.get_device() == torch.device("cpu")


def test_without_course_profile_a_cuda_machine_uses_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    assert runtime.profile() == "gpu"
    assert runtime.get_device() == torch.device("cuda")


def test_a_misspelt_course_profile_is_named_in_the_error(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "gpus")
    with pytest.raises(ValueError, match="COURSE_PROFILE"):
        runtime.get_device()


def test_the_gpu_profile_leaves_torch_all_its_cpu_threads(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("COURSE_PROFILE", "gpu")
    try:
        torch.set_num_threads(3)
        runtime.set_seed(0)
        assert torch.get_num_threads() == 3  # not pinned to CPU_THREADS: the CPU only feeds the GPU
        runtime.set_seed(0, threads=1)  # an explicit count still applies
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_synchronize_has_nothing_to_wait_for_on_the_cpu():
    runtime.synchronize("cpu")
    runtime.synchronize(torch.device("cpu"))


def test_device_of_is_where_the_parameters_are():
    assert runtime.device_of(torch.nn.Linear(2, 2)) == torch.device("cpu")
    assert runtime.device_of(torch.nn.ReLU()) == torch.device("cpu")  # no parameters: the CPU
    assert runtime.device_of(object()) == torch.device("cpu")  # a stand-in model (tests use some)


def test_importing_course_lib_turns_hugging_face_offline_and_quiets_torchao():
    import course_lib  # noqa: F401  (configures on import)

    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert logging.getLogger("torchao").level == logging.ERROR


def test_median_time_runs_the_function_and_rejects_zero_repeats():
    calls = []
    assert runtime.median_time(lambda: calls.append(1), repeat=3, warmup=1) >= 0
    assert len(calls) == 4
    with pytest.raises(ValueError, match="repeat: expected >= 1, got 0"):
        runtime.median_time(lambda: None, repeat=0)


def test_versions_names_missing_packages():
    found = runtime.versions("torch", "no-such-package-xyz")
    assert found["torch"] == torch.__version__.split("+")[0] or found["torch"].startswith("2.")
    assert found["no-such-package-xyz"] == "not installed"
