"""Checkers for notebook 10 (vector search, recall@k, a tool that never crashes, Qdrant filters).

Each compares the learner's answer with the course's own code or with Qdrant itself and, when they
differ, names the likely cause. None of them loads a language model, so they run in a second.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from course_lib import rag
from course_lib.exercises import Mismatch, Result, call, check, expect, expect_equal, expect_type, what_it_is


def _as_list(value: Any, what: str) -> list[int]:
    if value is None or isinstance(value, str):
        raise Mismatch(f"{what}: expected a list of row indices, got {what_it_is(value)}.")
    try:
        return [int(i) for i in np.asarray(value).ravel()]
    except (TypeError, ValueError):
        raise Mismatch(f"{what}: expected a list of row indices, got {type(value).__name__}.") from None


def exercise_1(cosine_top_k: Callable[..., Any]) -> Result:
    """cosine_top_k(query, matrix, k) -> the indices of the k rows most similar to `query`, best first."""

    def attempt():
        rng = np.random.default_rng(10)
        matrix = rng.standard_normal((30, 6)) * rng.uniform(0.1, 10.0, size=(30, 1))  # rows of very different lengths
        store = rag.NumpyVectorStore(6)
        store.add(matrix)
        for trial in range(3):
            query = rng.standard_normal(6)
            k = (1, 3, 5)[trial]
            what = f"cosine_top_k(query, matrix of shape {matrix.shape}, k={k})"
            got = _as_list(call(what, cosine_top_k, query, matrix, k), what)
            expected = [h.id for h in store.search(query, k=k)]
            by_dot = [int(i) for i in np.argsort(-(matrix @ query))[:k]]
            if got == by_dot and got != expected:
                raise Mismatch(f"{what}: you ranked by the plain dot product, so long rows win; divide by the "
                               "lengths (np.linalg.norm) to rank by the angle alone.")
            if got == expected[::-1] and k > 1:
                raise Mismatch(f"{what}: right rows, wrong order: the most similar row comes first.")
            worst = [int(i) for i in np.argsort(store.vectors @ (query / np.linalg.norm(query)))[:k]]
            if got == worst:
                raise Mismatch(f"{what}: these are the k least similar rows; sort by decreasing similarity.")
            expect_equal(got, expected, what)

    return check("1", attempt, "Cosine ranking ignores the vectors' lengths, as a vector database does.")


def exercise_2(recall_at_k: Callable[..., float]) -> Result:
    """recall_at_k(retrieved, gold, k) -> the share of questions whose gold label is in their first k results."""

    def attempt():
        retrieved = [["a", "b", "c"], ["c", "a", "b"], ["b", "c", "a"], ["d", "e", "f"]]
        gold = ["a", "a", "a", "a"]
        for k in (1, 2, 3):
            what = f"recall_at_k(retrieved, gold, k={k}) on 4 questions"
            got = call(what, recall_at_k, retrieved, gold, k)
            if isinstance(got, bool) or not isinstance(got, (int, float, np.floating)):
                raise Mismatch(f"{what}: expected a number between 0 and 1, got {what_it_is(got)}.")
            expected = rag.recall_at_k(retrieved, gold, k)
            if abs(got - expected * len(gold)) < 1e-9 and expected:
                raise Mismatch(f"{what}: you returned the count of hits ({got:g}); divide by the number of "
                               "questions to get a share between 0 and 1.")
            if k == 1 and abs(got - rag.recall_at_k(retrieved, gold, 3)) < 1e-9:
                raise Mismatch(f"{what}: it equals recall@3; look only at the first k results of each list.")
            expect(abs(got - expected) < 1e-9, f"{what}: expected {expected:.4g}, got {got!r}.")

    return check("2", attempt, "recall@k only asks whether the right passage is among the first k.")


def exercise_3(safe_divide: Any) -> Result:
    """A LangChain tool `safe_divide(a, b)` that answers bad arguments with an error message, not a crash."""

    def run_tool(args: dict):
        return safe_divide.invoke({"name": safe_divide.name, "args": args, "id": "check", "type": "tool_call"})

    def attempt():
        from langchain_core.messages import ToolMessage
        from langchain_core.tools import BaseTool

        if callable(safe_divide) and not isinstance(safe_divide, BaseTool):
            call("safe_divide(1, 1)", safe_divide, 1, 1)
            raise Mismatch("safe_divide is a plain function: decorate it with @tool so LangChain can describe "
                           "it to a model and run its tool calls.")
        expect_type(safe_divide, BaseTool, "safe_divide")
        good = run_tool({"a": 7, "b": 2})
        expect_type(good, ToolMessage, "safe_divide called with a=7, b=2")
        expect(good.status != "error" and good.content.strip() in ("3.5", "3.50"),
               f"safe_divide(a=7, b=2): expected the tool's answer '3.5', got {good.content!r}.")
        for args, why in (({"a": 1, "b": 0}, "b=0"), ({"a": 1}, "a missing argument b"),
                          ({"a": "seven", "b": 2}, "a='seven'")):
            try:
                result = run_tool(args)
            except Exception as error:  # noqa: BLE001 - the point is that nothing escapes
                raise Mismatch(f"safe_divide with {why} raised {type(error).__name__}: {error}. A tool should "
                               "answer the model with a message: raise ToolException and set "
                               "handle_tool_error = True (and handle_validation_error for bad arguments).") from None
            expect(result.status == "error", f"safe_divide with {why}: expected a ToolMessage with status='error', "
                                             f"got status={result.status!r} and content {result.content!r}.")
            expect(len(result.content) > 15, f"safe_divide with {why}: the message {result.content!r} is too short "
                                             "to tell the model what to do instead.")

    return check("3", attempt, "The model reads the error message and can try again; the program never crashes.")


def exercise_4(either_notebook_filter: Callable[..., Any]) -> Result:
    """either_notebook_filter(first, second) -> a qdrant `models.Filter` keeping points from either notebook."""

    def attempt():
        from qdrant_client import models

        names = ["Notebook 03", "Notebook 08", "Notebook 10", "Notebook 11"]
        rng = np.random.default_rng(4)
        vectors = rng.standard_normal((40, 8)).astype(np.float32)
        payloads = [{"notebook": names[i % 4], "n": i} for i in range(40)]
        client = rag.open_qdrant()
        try:
            rag.create_collection(client, "check", 8)
            rag.upsert(client, "check", vectors, payloads)
            wanted = {"Notebook 08", "Notebook 11"}
            what = "either_notebook_filter('Notebook 08', 'Notebook 11')"
            flt = call(what, either_notebook_filter, "Notebook 08", "Notebook 11")
            if not isinstance(flt, models.Filter):
                raise Mismatch(f"{what}: expected a models.Filter, got {what_it_is(flt)}.")
            query = rng.standard_normal(8).tolist()
            points = client.query_points("check", query=query, limit=40, query_filter=flt).points
            got = {p.payload["notebook"] for p in points}
            if not points and isinstance(flt.must, list) and len(flt.must) > 1 and not flt.should:
                raise Mismatch("your filter puts both conditions in `must`: a point would need to be in both notebooks "
                               "at once, so nothing matches. Use `should` (any of) instead.")
            expect(got == wanted, f"the filtered search returned points from {sorted(got)}; expected exactly "
                                  f"{sorted(wanted)}.")
            expect_equal(len(points), 20, "the number of points kept (10 per notebook)")
        finally:
            client.close()

    return check("4", attempt, "`should` is OR, `must` is AND, `must_not` is NOT: filters compose like queries.")
