"""course_lib.prompting: label log-probabilities after a prompt are what a full forward pass gives at the
last position, calibration removes the content-free scores, accuracy counts the argmax label."""

import pytest
import torch

from course_lib import prompting
from course_lib.llama import Llama, LlamaConfig


class CharTokenizer:
    """One token per character (id = code point % 100), like a Hugging Face tokenizer's __call__."""

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [ord(c) % 100 for c in text]}


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=100, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, d_ff=64, max_seq_len=64)
    return Llama(config).eval()


def test_label_logprobs_are_the_log_softmax_at_the_last_position(model):
    tokenizer, prompts, labels = CharTokenizer(), ["Review: good\nLabel:", "bad!"], ["yes", "no"]
    got = prompting.label_logprobs(model, tokenizer, prompts, labels)
    assert got.shape == (2, 2)
    for row, prompt in zip(got, prompts):
        ids = torch.tensor([tokenizer(prompt)["input_ids"]])
        with torch.no_grad():
            expected = torch.log_softmax(model(ids)[0, -1], -1)[[ord("y") % 100, ord("n") % 100]]
        assert torch.allclose(row, expected, atol=1e-5)


def test_labels_must_start_with_different_tokens(model):
    with pytest.raises(ValueError, match="first tokens differ"):
        prompting.label_logprobs(model, CharTokenizer(), ["x"], ["yes", "yeah"])
    with pytest.raises(ValueError, match="at least two"):
        prompting.label_token_ids(CharTokenizer(), ["yes"])
    with pytest.raises(TypeError, match="one str"):
        prompting.label_logprobs(model, CharTokenizer(), "x", ["yes", "no"])


def test_calibration_subtracts_the_content_free_scores():
    scores = torch.tensor([[-1.0, -2.0], [-0.5, -0.1]])
    assert torch.equal(prompting.calibrate(scores, torch.tensor([[-1.0, -3.0]])), torch.tensor([[0.0, 1.0], [0.5, 2.9]]))
    with pytest.raises(ValueError, match="content_free"):
        prompting.calibrate(scores, torch.zeros(3))


def test_accuracy_counts_the_highest_scoring_label():
    scores = torch.tensor([[0.0, -1.0], [0.0, -1.0], [-2.0, -1.0]])
    assert prompting.accuracy(scores, ["positive", "negative"], ["positive", "negative", "negative"]) == 2 / 3
    with pytest.raises(ValueError, match="not among the labels"):
        prompting.accuracy(scores, ["positive", "negative"], ["positive", "good", "negative"])
