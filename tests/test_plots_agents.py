"""plots.agent_loop_diagram and plots.rag_pipeline_diagram: notebook 10's two pictures, drawn by code."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from course_lib import plots  # noqa: E402


def _bold(ax):
    return [t.get_text() for t in ax.texts if t.get_fontweight() == "bold"]


def _arrows(ax):
    return [p for p in ax.patches if type(p).__name__ == "FancyArrowPatch"]


def test_the_agent_loop_goes_from_question_to_tool_result_back_to_the_model_and_out_to_an_answer():
    ax = plots.agent_loop_diagram()
    assert _bold(ax) == ["question", "model", "tool call", "tool", "tool result", "answer"]
    assert len(_arrows(ax)) == 6  # four forward, one back to the model, one out to the answer
    plt.close(ax.figure)


def test_the_rag_pipeline_indexes_once_and_retrieves_for_each_question():
    ax = plots.rag_pipeline_diagram()
    assert _bold(ax) == ["documents", "chunks", "embeddings", "vector DB",
                         "question", "embedding", "nearest chunks", "prompt", "model", "answer"]
    assert len(_arrows(ax)) == 3 + 5 + 1  # indexing, retrieval and generation, the search into the DB
    assert any("once" in t.get_text() for t in ax.texts) and any("each question" in t.get_text() for t in ax.texts)
    plt.close(ax.figure)
