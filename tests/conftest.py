"""Fixtures shared by the unit tests: the pre-trained models load once per test session, not per module."""

import pytest


@pytest.fixture(scope="session")
def smollm2_pair():
    """SmolLM2-135M-Instruct as transformers loads it, with its tokenizer (~17 s: loaded once).

    Tests must not change it: copy it (`copy.deepcopy`) before training or adapting it.
    """
    from course_lib import pretrained

    model, tokenizer = pretrained.load_smollm2()
    model.eval()
    return model, tokenizer
