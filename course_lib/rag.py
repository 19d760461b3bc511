"""Retrieval-augmented generation from its parts: vector stores, chunking, recall@k, prompts, scores.

Notebook 10 builds it: a vector store in a few lines of numpy (notebook 02's cosine decoder, kept
as a database), the same searches in Qdrant running embedded in the Python process (in memory or
in a folder on disk), the course notes in `data/` cut into chunks with `langchain-text-splitters`,
retrieval recall@k on a labelled question set, the RAG prompt, and a score for the answers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from course_lib import data
from course_lib.validation import check_positive_int, check_text, check_type

NOTES_FILE = "course_notes.md"
QUESTIONS_FILE = "rag_questions.jsonl"


# --- a vector store in numpy -------------------------------------------------------------------

@dataclass(frozen=True)
class Hit:
    """One search result: the point's id, its cosine similarity to the query, its payload."""

    id: int
    score: float
    payload: dict = field(default_factory=dict)


def _as_matrix(vectors, dim: int | None, name: str) -> np.ndarray:
    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or (dim is not None and array.shape[1] != dim):
        want = f"(n, {dim})" if dim is not None else "(n, dim)"
        raise ValueError(f"{name}: expected an array of shape {want} or ({dim or 'dim'},), got shape {np.shape(vectors)}")
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    if np.any(norms == 0) or not np.all(np.isfinite(array)):
        raise ValueError(f"{name}: every vector must be finite and non-zero (cosine similarity divides by the length)")
    return array / norms


def _matches(payload: Mapping[str, Any], where: Mapping[str, Any] | None) -> bool:
    return where is None or all(payload.get(key) == value for key, value in where.items())


class NumpyVectorStore:
    """A vector database in numpy: unit-length rows, cosine similarity as one matrix product, top k."""

    def __init__(self, dim: int):
        check_positive_int("dim", dim)
        self.dim = dim
        self.vectors = np.zeros((0, dim), dtype=np.float32)
        self.payloads: list[dict] = []

    def __len__(self) -> int:
        return len(self.payloads)

    def add(self, vectors, payloads: Sequence[dict] | None = None) -> list[int]:
        """Store vectors (normalised to length 1) with their payloads; return their ids."""
        rows = _as_matrix(vectors, self.dim, "vectors")
        payloads = [{} for _ in rows] if payloads is None else [dict(p) for p in payloads]
        if len(payloads) != len(rows):
            raise ValueError(f"payloads: expected one per vector ({len(rows)}), got {len(payloads)}")
        first = len(self)
        self.vectors = np.vstack([self.vectors, rows])
        self.payloads.extend(payloads)
        return list(range(first, len(self)))

    def search(self, query, k: int = 3, where: Mapping[str, Any] | None = None) -> list[Hit]:
        """The k stored vectors most similar to `query`, best first; `where` keeps payloads equal to it."""
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"k: expected a positive int, got {k!r}")
        scores = self.vectors @ _as_matrix(query, self.dim, "query")[0]
        keep = [i for i, p in enumerate(self.payloads) if _matches(p, where)]
        best = sorted(keep, key=lambda i: -scores[i])[:k]
        return [Hit(i, float(scores[i]), self.payloads[i]) for i in best]


# --- Qdrant, embedded in the process -------------------------------------------------------------

def open_qdrant(path: str | Path | None = None):
    """A Qdrant client running inside this process: in memory (`path=None`) or stored in a folder.

    A folder can be held by one client at a time: `close()` the client before opening it again.
    """
    from qdrant_client import QdrantClient

    if path is None:
        return QdrantClient(":memory:")
    check_type("path", path, (str, Path), "a folder path (str or Path) or None for memory")
    return QdrantClient(path=str(path))


def create_collection(client, name: str, dim: int) -> None:
    """A new cosine-similarity collection; refuses to replace one that exists (it would lose its points)."""
    from qdrant_client import models

    check_positive_int("dim", dim)
    if client.collection_exists(name):
        raise ValueError(f"name: collection {name!r} already exists; delete it with "
                         f"client.delete_collection({name!r}) first if you mean to replace it")
    client.create_collection(name, vectors_config=models.VectorParams(size=dim, distance=models.Distance.COSINE))


def upsert(client, name: str, vectors, payloads: Sequence[dict] | None = None, first_id: int = 0) -> list[int]:
    """Store vectors and payloads under the ids first_id, first_id + 1, ... (same ids as NumpyVectorStore)."""
    from qdrant_client import models

    rows = np.asarray(vectors, dtype=np.float32)
    if rows.ndim != 2:
        raise ValueError(f"vectors: expected shape (n, dim), got {rows.shape}")
    payloads = [{} for _ in rows] if payloads is None else list(payloads)
    if len(payloads) != len(rows):
        raise ValueError(f"payloads: expected one per vector ({len(rows)}), got {len(payloads)}")
    ids = list(range(first_id, first_id + len(rows)))
    client.upsert(name, points=[models.PointStruct(id=i, vector=row.tolist(), payload=dict(p))
                                for i, row, p in zip(ids, rows, payloads)])
    return ids


def payload_filter(where: Mapping[str, Any] | None):
    """A Qdrant filter that keeps the points whose payload has each key equal to its value."""
    from qdrant_client import models

    if where is None:
        return None
    if not isinstance(where, Mapping) or not where:
        raise ValueError(f"where: expected a non-empty dict such as {{'notebook': 'Notebook 11 - Scaling'}}, got {where!r}")
    return models.Filter(must=[models.FieldCondition(key=key, match=models.MatchValue(value=value))
                               for key, value in where.items()])


def qdrant_search(client, name: str, query, k: int = 3, where: Mapping[str, Any] | None = None) -> list[Hit]:
    """The k nearest points to `query` in collection `name` (cosine), best first, as `Hit`s."""
    check_positive_int("k", k)
    vector = np.asarray(query, dtype=np.float32).ravel().tolist()
    points = client.query_points(name, query=vector, limit=k, query_filter=payload_filter(where),
                                 with_payload=True).points
    return [Hit(int(p.id), float(p.score), dict(p.payload or {})) for p in points]


# --- the documents: course notes, chunks, questions ---------------------------------------------

def load_course_notes(name: str = NOTES_FILE) -> list:
    """The course notes from `data/` as LangChain Documents, one per `##` section, with the notebook
    and section titles in their metadata (from `#` and `##` headings)."""
    from langchain_text_splitters import MarkdownHeaderTextSplitter

    splitter = MarkdownHeaderTextSplitter([("#", "notebook"), ("##", "section")])
    return [doc for doc in splitter.split_text(data.read_text(name)) if "section" in doc.metadata]


def chunk_documents(documents: Sequence, chunk_size: int = 400, chunk_overlap: int = 50) -> list:
    """Cut Documents into chunks of at most `chunk_size` characters (on paragraph, sentence, word
    boundaries where it can), keeping their metadata and numbering the chunks in `metadata['chunk']`."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    if not isinstance(chunk_size, int) or chunk_size < 20:
        raise ValueError(f"chunk_size: expected an int of at least 20 characters, got {chunk_size!r}")
    if not isinstance(chunk_overlap, int) or not 0 <= chunk_overlap < chunk_size:
        raise ValueError(f"chunk_overlap: expected an int in [0, chunk_size={chunk_size}), got {chunk_overlap!r}")
    splitter = RecursiveCharacterTextSplitter(chunk_size=chunk_size, chunk_overlap=chunk_overlap,
                                              separators=["\n\n", "\n", ". ", " ", ""], keep_separator="end")
    chunks = splitter.split_documents(list(documents))
    for number, chunk in enumerate(chunks):
        chunk.metadata["chunk"] = number
    return chunks


def load_questions(name: str = QUESTIONS_FILE) -> list[dict]:
    """The labelled questions: each has `question`, the `section` that answers it, and a short `answer`."""
    rows = data.read_jsonl(name)
    for number, row in enumerate(rows, start=1):
        missing = {"question", "section", "answer"} - set(row)
        if missing:
            raise ValueError(f"data/{name}, row {number}: missing field(s) {sorted(missing)}")
    return rows


def embed(model, texts: Sequence[str]) -> np.ndarray:
    """Sentence embeddings as a float32 (n, dim) array of unit vectors (`model`: a SentenceTransformer)."""
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise TypeError("texts: expected a list of strings (wrap a single text in a list)")
    return model.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True,
                        show_progress_bar=False).astype(np.float32)


# --- measuring retrieval and answers -------------------------------------------------------------

def recall_at_k(retrieved: Sequence[Sequence[str]], gold: Sequence[str], k: int) -> float:
    """Fraction of questions whose gold label is among their first k retrieved labels."""
    check_positive_int("k", k)
    if len(retrieved) != len(gold) or not gold:
        raise ValueError(f"retrieved, gold: expected one ranked list per gold label, got {len(retrieved)} "
                         f"lists for {len(gold)} labels")
    return sum(g in list(r)[:k] for r, g in zip(retrieved, gold)) / len(gold)


_STOPWORDS = frozenset("a an and are as at be by for from in is it its of on or the to with".split())


def answer_tokens(text: str) -> set[str]:
    """The content words and numbers of a text, lower-cased: '49,152 tokens' -> {'49152', 'tokens'}."""
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text.lower())
    return set(re.findall(r"(?<![\w.])-?\d+(?:\.\d+)?(?!\w)|\w+", text)) - _STOPWORDS


def answer_score(answer: str, reference: str) -> float:
    """Share of the reference answer's content words and numbers that the answer contains (0 to 1)."""
    check_text("answer", answer)
    check_text("reference", reference)
    wanted = answer_tokens(reference)
    if not wanted:
        raise ValueError(f"reference: {reference!r} has no content words or numbers to look for")
    return len(wanted & answer_tokens(answer)) / len(wanted)


# --- the prompt -----------------------------------------------------------------------------------

RAG_INSTRUCTION = "Answer the question in one short sentence, using the context."


def format_context(passages: Sequence[str]) -> str:
    """Numbered passages, one paragraph each, as they go into the prompt."""
    if isinstance(passages, str):
        raise TypeError("passages: expected a list of strings, got one string")
    return "\n\n".join(f"[{i}] {' '.join(p.split())}" for i, p in enumerate(passages, start=1))


def rag_prompt():
    """The RAG chat prompt: a system instruction, then the context and the question in one user turn.

    A `ChatPromptTemplate` with the variables `context` and `question`.
    """
    from langchain_core.prompts import ChatPromptTemplate

    return ChatPromptTemplate.from_messages([
        ("system", RAG_INSTRUCTION),
        ("human", "Context:\n{context}\n\nQuestion: {question}"),
    ])


def plain_prompt():
    """The same question with no context, for the side-by-side comparison (variable `question`)."""
    from langchain_core.prompts import ChatPromptTemplate

    return ChatPromptTemplate.from_messages([
        ("system", "Answer the question in one short sentence."),
        ("human", "{question}"),
    ])
