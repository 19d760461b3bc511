"""llama.cpp runs in a child process: same answers as in-process, and a crash or a hang is a clear error."""

import os
import shutil
import signal

import numpy as np
import pytest

from course_lib import pretrained
from course_lib.llamacpp import LlamaCpp, LlamaCppCrashed

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def llm():
    with LlamaCpp(pretrained.smollm2_gguf_path(), n_threads=1, logits_all=True) as served:  # 1: the suite runs 2 workers
        yield served


def test_the_child_gives_the_same_reply_and_logits_as_llama_cpp_in_this_process(llm):
    from llama_cpp import Llama

    direct = Llama(model_path=str(pretrained.smollm2_gguf_path()), n_ctx=512, n_threads=1, logits_all=True, verbose=False)
    reply = direct.create_chat_completion(QUESTION, max_tokens=12, temperature=0.0)["choices"][0]["message"]["content"]
    ids = [1, 504, 3458, 314, 260]
    direct.reset()
    direct.eval(ids)
    expected = np.asarray(direct.scores[:len(ids)], dtype=np.float32)
    direct.close()
    assert llm.chat(QUESTION, max_tokens=12) == reply
    np.testing.assert_array_equal(llm.logits(ids), expected)


def test_a_grammar_constrains_the_reply(llm):
    assert llm.complete("The answer is", max_tokens=8, grammar='root ::= "yes" | "no"') in ("yes", "no")


def test_a_crash_in_the_child_is_an_error_that_says_what_happened_and_the_fix():
    served = LlamaCpp(pretrained.smollm2_gguf_path())
    os.kill(served._process.pid, signal.SIGSEGV)  # what a CPU-specific build or a corrupt file does
    with pytest.raises(LlamaCppCrashed, match=r"(?s)SIGSEGV.*this kernel is fine.*GGML_NATIVE=OFF"):
        served.chat(QUESTION, max_tokens=4)
    with pytest.raises(RuntimeError, match="closed"):
        served.chat(QUESTION, max_tokens=4)


def test_a_hang_in_the_child_fails_after_the_timeout_instead_of_waiting_forever():
    served = LlamaCpp(pretrained.smollm2_gguf_path(), timeout=2)
    os.kill(served._process.pid, signal.SIGSTOP)
    with pytest.raises(TimeoutError, match="did not answer 'chat' within 2 s"):
        served.chat(QUESTION, max_tokens=4)


def test_a_corrupt_gguf_is_a_readable_error_not_a_dead_kernel(tmp_path):
    corrupt = tmp_path / "corrupt.gguf"
    data = pretrained.smollm2_gguf_path().read_bytes()
    corrupt.write_bytes(data[:len(data) // 2])
    with pytest.raises(RuntimeError, match="Failed to load model"):
        LlamaCpp(corrupt)


def test_bad_arguments_are_refused_by_name(tmp_path):
    with pytest.raises(FileNotFoundError, match="model_path: .*missing.gguf does not exist; no GGUF file there"):
        LlamaCpp(tmp_path / "missing.gguf")
    shutil.copy(pretrained.smollm2_gguf_path(), tmp_path / "m.gguf")
    with pytest.raises(ValueError, match="n_threads: expected a positive int"):
        LlamaCpp(tmp_path / "m.gguf", n_threads=0)
