"""llama.cpp in a child process, so a crash in native code is an error in the cell, not a dead kernel.

`llama-cpp-python` runs llama.cpp's C++ inside the Python process that calls it. If that code was
built for another CPU (an instruction this CPU lacks) or meets a corrupt model file, it dies with a
signal and takes the Jupyter kernel with it. `LlamaCpp` keeps llama.cpp in a child Python process
and talks to it over a pipe: the notebook (11, and 10's grammar-constrained tool calls) gets the
same answers, and a crash becomes a `LlamaCppCrashed` that says what happened and how to fix it.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from course_lib.validation import check_file, check_positive_int

REBUILD_HINT = ("llama-cpp-python compiles llama.cpp for the CPU it is installed on unless told not to; "
                "reinstall it portably with: pip install --force-reinstall --no-cache-dir "
                "'llama-cpp-python==0.3.36' --config-settings=cmake.args=-DGGML_NATIVE=OFF")


class LlamaCppCrashed(RuntimeError):
    """llama.cpp's child process died (a signal or an exit) while answering a request."""


class LlamaCpp:
    """A GGUF model served by llama.cpp in a child process: `chat`, `complete`, `logits`, `tokens_per_second`.

    Use it as a context manager, or call `close()`; `timeout` (seconds) bounds every request, so a
    hang fails instead of waiting forever.
    """

    def __init__(self, model_path: str | os.PathLike, n_ctx: int = 512, n_threads: int = 2,
                 logits_all: bool = False, timeout: float = 300.0) -> None:
        path = check_file("model_path", model_path, "no GGUF file there; the course's is pretrained.smollm2_gguf_path()")
        check_positive_int("n_ctx", n_ctx)
        check_positive_int("n_threads", n_threads)
        self.timeout = float(timeout)
        self._stderr = tempfile.TemporaryFile()  # the child's log, shown if it crashes
        self._process = subprocess.Popen([sys.executable, "-m", "course_lib.llamacpp"],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr)
        self._request("load", model_path=str(path), n_ctx=n_ctx, n_threads=n_threads, logits_all=logits_all)

    # --- the requests a notebook makes ---

    def chat(self, messages: list[dict], max_tokens: int = 64, grammar: str | None = None) -> str:
        """Greedy reply to chat `messages`, formatted with the GGUF's own chat template."""
        return self._request("chat", messages=messages, max_tokens=max_tokens, grammar=grammar)["text"]

    def complete(self, prompt: str, max_tokens: int = 64, grammar: str | None = None) -> str:
        """Greedy continuation of a raw `prompt` (no chat template)."""
        return self._request("complete", prompt=prompt, max_tokens=max_tokens, grammar=grammar)["text"]

    def logits(self, ids) -> np.ndarray:
        """Logits (T, vocab) for one sequence of token ids (needs `logits_all=True`)."""
        ids = [int(i) for i in np.asarray(ids).reshape(-1)]
        with tempfile.TemporaryDirectory() as folder:
            out = Path(folder) / "logits.npy"
            self._request("logits", ids=ids, out=str(out))
            return np.load(out)

    def tokens_per_second(self, prompt: str, n_tokens: int = 32) -> float:
        """Greedy generation speed: new tokens (up to `n_tokens`) over wall time, timed in the child."""
        return self._request("speed", prompt=prompt, max_tokens=n_tokens)["tokens_per_second"]

    def resident_mb(self) -> float:
        """Resident memory of the child process (llama.cpp, its model and a Python interpreter), in MB."""
        import psutil

        if self._process is None:
            raise RuntimeError("this LlamaCpp is closed; make a new one")
        return psutil.Process(self._process.pid).memory_info().rss / 1e6

    # --- plumbing ---

    def _request(self, op: str, **arguments) -> dict:
        if self._process is None:
            raise RuntimeError("this LlamaCpp is closed; make a new one")
        try:
            self._process.stdin.write((json.dumps({"op": op, **arguments}) + "\n").encode())
            self._process.stdin.flush()
        except BrokenPipeError:
            self._crashed(op)
        ready, _, _ = select.select([self._process.stdout], [], [], self.timeout)
        if not ready:
            self._process.kill()
            self.close()
            raise TimeoutError(f"llama.cpp did not answer {op!r} within {self.timeout:.0f} s; its process was stopped")
        line = self._process.stdout.readline()
        if not line:
            self._crashed(op)
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"llama.cpp could not {op}: {reply['error']}")
        return reply

    def _crashed(self, op: str) -> None:
        code = self._process.wait(timeout=30)
        self._stderr.seek(0)
        log = self._stderr.read().decode(errors="replace").strip().splitlines()[-8:]
        self._process = None
        how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
        raise LlamaCppCrashed(f"llama.cpp's process died ({how}) during {op!r}; this kernel is fine. "
                              f"A corrupt GGUF file or a llama.cpp built for another CPU does this. {REBUILD_HINT}."
                              + ("\nIts last lines:\n" + "\n".join(log) if log else ""))

    def close(self) -> None:
        """Stop the child process (safe to call twice)."""
        if self._process is not None:
            self._process.stdin.close()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        self._stderr.close()

    def __enter__(self) -> "LlamaCpp":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_process", None) is not None:
            self.close()


# --- the child: one llama_cpp.Llama, answering one JSON request per line ---

def _answer(llm, request: dict) -> dict:
    op = request["op"]
    if op in ("chat", "complete"):
        from llama_cpp import LlamaGrammar

        grammar = LlamaGrammar.from_string(request["grammar"], verbose=False) if request.get("grammar") else None
        llm.reset()
        if op == "chat":
            out = llm.create_chat_completion(request["messages"], max_tokens=request["max_tokens"],
                                             temperature=0.0, grammar=grammar)
            return {"text": out["choices"][0]["message"]["content"]}
        out = llm.create_completion(request["prompt"], max_tokens=request["max_tokens"], temperature=0.0, grammar=grammar)
        return {"text": out["choices"][0]["text"]}
    if op == "logits":
        llm.reset()
        llm.eval(request["ids"])
        np.save(request["out"], np.asarray(llm.scores[:len(request["ids"])], dtype=np.float32))
        return {}
    if op == "speed":
        llm.reset()
        start = time.perf_counter()
        out = llm.create_completion(request["prompt"], max_tokens=request["max_tokens"], temperature=0.0)
        return {"tokens_per_second": out["usage"]["completion_tokens"] / (time.perf_counter() - start)}
    raise ValueError(f"op: unknown request {op!r}")


def _serve() -> None:
    replies = os.fdopen(os.dup(1), "w")  # the pipe to the parent; llama.cpp's own prints go to stderr
    os.dup2(2, 1)
    llm = None
    for line in sys.stdin:
        request = json.loads(line)
        try:
            if request["op"] == "load":
                from llama_cpp import Llama

                llm = Llama(model_path=request["model_path"], n_ctx=request["n_ctx"], n_threads=request["n_threads"],
                            logits_all=request["logits_all"], verbose=False)
                reply = {}
            else:
                reply = _answer(llm, request)
        except Exception as error:  # a Python-level failure: report it, keep serving
            reply = {"error": f"{type(error).__name__}: {error}"}
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


if __name__ == "__main__":
    _serve()


__all__ = ["LlamaCpp", "LlamaCppCrashed", "REBUILD_HINT"]
