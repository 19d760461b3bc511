"""course_lib: the code that the notebooks of *LLMs from Dummies* build.

One module per idea, in the order the course builds them:
translation (01-02) -> attention (03-04, 06) -> tokenizer, embeddings (05) -> model, seq2seq, train (06-07)
-> scaling, rlhf, lora (08) -> llama, pretrained, chat (09) -> rag (10) -> distributed (11).
Shared helpers: runtime, data, plots, widgets, exercises.
"""

from course_lib import runtime as _runtime

_runtime.configure_offline()
_runtime.quiet_noisy_loggers()

__version__ = "0.1.0"
