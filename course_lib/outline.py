"""The course's own topic list, one entry per notebook (from COURSE_OUTLINE.md and DESIGN.md).

Each topic is a phrase that must appear in one of its notebook's markdown headings, so a learner
who saw the topic list finds each topic; `tests/test_notebook_structure.py` checks that, and the
README's notebook table is written from the same list.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Notebook:
    number: int
    stem: str
    title: str
    topics: tuple[str, ...]

    @property
    def filename(self) -> str:
        return f"{self.stem}.ipynb"

    @property
    def solutions_filename(self) -> str:
        return f"{self.stem}_solutions.ipynb"


NOTEBOOKS: tuple[Notebook, ...] = (
    Notebook(1, "01_literal_translation", "Language translation",
             ("literal translation", "missing tokens")),
    Notebook(2, "02_translation_with_matrices", "Literal translation using \"ML\"",
             ("one hot", "using matrices", "dictionary using matrices", "cosine similarity")),
    Notebook(3, "03_attention", "Attention",
             ("softmax", "matrix query", "scaled dot product attention")),
    Notebook(4, "04_attention_head", "Attention head",
             ("weight matrices", "connecting matrices")),
    Notebook(5, "05_tokens_and_embeddings", "Revisiting tokens & encoding",
             ("bpe", "embeddings")),
    Notebook(6, "06_transformer_block", "Transformer block",
             ("multi headed attention", "feed forward", "stack blocks", "masked attention")),
    Notebook(7, "07_transformer", "Transformer",
             ("stacking deep networks", "normalization layers", "skip connections", "dropout",
              "encoder decoder", "contextual embeddings", "tiny gpt", "kv cache")),
    Notebook(8, "08_pretraining_to_instruct", "Pre-training, training, fine-tuning, adapting, instruct",
             ("pre training numbers", "instruct", "rlhf", "fine tuning", "lora")),
    Notebook(9, "09_prompts", "Prompts all the way down",
             ("chat", "context", "prompt engineering")),
    Notebook(10, "10_frameworks", "Frameworks",
             ("langchain", "vector databases", "hugging face")),
    Notebook(11, "11_scaling", "Scaling inference & training",
             ("single gpu", "quantization", "fp16", "multiple gpus", "zero", "sharding",
              "tensor parallel", "pipeline parallel")),
)


# The course in four parts, for the course map (`plots.course_map`, the README's picture).
PARTS: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("by hand: dictionaries and matrices", (1, 2)),
    ("attention and the transformer", (3, 4, 5, 6, 7)),
    ("from a model to an assistant", (8, 9, 10)),
    ("at scale", (11,)),
)


def normalize(text: str) -> str:
    """Lower-case, hyphens and punctuation to spaces, single spaces: 'Multi-headed' ~ 'multi headed'."""
    text = re.sub(r"[^\w]+", " ", text.lower().replace("_", " "))
    return " ".join(text.split())


def missing_topics(notebook: Notebook, headings: list[str]) -> list[str]:
    """The topics of `notebook` that appear in none of `headings`."""
    normalized = [f" {normalize(h)} " for h in headings]
    return [t for t in notebook.topics if not any(f" {t} " in h for h in normalized)]


def by_stem(stem: str) -> Notebook:
    for notebook in NOTEBOOKS:
        if notebook.stem == stem:
            return notebook
    raise ValueError(f"stem: expected one of {[n.stem for n in NOTEBOOKS]}, got {stem!r}")
