"""course_lib.train: the loop learns, records what notebook 07 plots, and checkpoints round-trip safely."""

import hashlib

import pytest
import torch
from safetensors.torch import load_file

from course_lib import runtime
from course_lib.model import GPT, GPTConfig
from course_lib.seq2seq import Seq2SeqConfig, Seq2SeqTransformer
from course_lib.train import (History, block_grad_norms, learning_rate, load_checkpoint, mean_loss,
                              random_windows, read_metadata, save_checkpoint, train)

TINY = dict(vocab_size=20, context_length=16, d_model=32, n_layers=2, n_heads=2)


def test_random_windows_targets_are_the_inputs_shifted_by_one():
    tokens = torch.arange(100)
    x, y = random_windows(tokens, 4, 8, generator=torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (4, 8)
    assert torch.equal(y[:, :-1], x[:, 1:]) and torch.equal(y, x + 1)
    with pytest.raises(ValueError, match="tokens: expected more than context_length"):
        random_windows(torch.arange(5), 2, 8)


def test_training_learns_a_repeating_pattern_and_keeps_its_history():
    runtime.set_seed(0)
    model = GPT(GPTConfig(**TINY))
    pattern = torch.tensor([3, 1, 4, 1, 5, 9, 2, 6] * 40)
    generator = torch.Generator().manual_seed(0)
    fixed = [random_windows(pattern, 4, 16, generator)]
    history = train(model, lambda: random_windows(pattern, 8, 16, generator), steps=60, lr=3e-3,
                    eval_fn=lambda m: mean_loss(m, fixed), eval_every=20,
                    sample_fn=lambda m: str(m.generate(pattern[None, :3], 5, temperature=0.0)[0].tolist()),
                    progress=False)
    assert len(history.losses) == 60 and len(history.learning_rates) == 60
    assert history.eval_steps == [20, 40, 60]
    assert history.losses[-1] < 0.2 * history.losses[0]
    assert history.eval_losses[-1] < 0.1
    assert history.samples[-1] == (60, str([3, 1, 4, 1, 5, 9, 2, 6]))
    assert model.training  # the loop leaves the mode as training left it


def test_recorded_gradient_norms_are_those_of_each_block():
    runtime.set_seed(1)
    model = GPT(GPTConfig(**TINY))
    batch = random_windows(torch.randint(0, 20, (200,)), 2, 16)
    model.loss(*batch).backward()
    manual = [torch.cat([p.grad.flatten() for p in b.parameters()]).norm().item() for b in model.blocks]
    assert block_grad_norms(model) == pytest.approx(manual)
    history = train(model, lambda: batch, steps=3, record_grad_norms=True, progress=False)
    assert len(history.grad_norms) == 3 and len(history.grad_norms[0]) == 2


def test_learning_rate_warms_up_then_decays_by_cosine():
    rates = [learning_rate(s, 100, 1.0, warmup=10, schedule="cosine", min_ratio=0.1) for s in range(100)]
    assert rates[0] == pytest.approx(0.1) and rates[9] == pytest.approx(1.0)
    assert rates[10] == pytest.approx(1.0) and rates[-1] == pytest.approx(0.1, abs=0.01)
    assert all(a >= b for a, b in zip(rates[10:], rates[11:]))


def test_a_checkpoint_round_trips_with_tied_weights_and_its_configuration(tmp_path):
    runtime.set_seed(2)
    model = GPT(GPTConfig(**TINY, dropout=0.1)).eval()
    path = save_checkpoint(model, tmp_path / "m.safetensors")
    raw = load_file(str(path))  # plain safetensors reads it: the tied output matrix is stored once
    assert "lm_head.weight" not in raw and torch.equal(raw["tok_emb.weight"], model.tok_emb.weight)
    assert read_metadata(path)["model"] == "GPT"
    again = load_checkpoint(path)
    assert again.config == model.config
    assert again.lm_head.weight is again.tok_emb.weight
    ids = torch.randint(0, 20, (2, 10))
    assert torch.equal(again(ids), model(ids))


def test_a_checkpoint_is_never_overwritten_unless_asked(tmp_path):
    runtime.set_seed(3)
    path = tmp_path / "m.safetensors"
    save_checkpoint(GPT(GPTConfig(**TINY)), path)
    before = path.read_bytes()
    other = GPT(GPTConfig(**TINY))
    with pytest.raises(FileExistsError, match="pass overwrite=True"):
        save_checkpoint(other, path)
    assert path.read_bytes() == before
    save_checkpoint(other, path, overwrite=True)
    assert path.read_bytes() != before
    with pytest.raises(ValueError, match=r"path: expected a file name ending in .safetensors, got 'm.pt'"):
        save_checkpoint(other, tmp_path / "m.pt")


def test_a_seq2seq_checkpoint_round_trips(tmp_path):
    runtime.set_seed(4)
    model = Seq2SeqTransformer(Seq2SeqConfig(src_vocab_size=11, tgt_vocab_size=13, context_length=8)).eval()
    again = load_checkpoint(save_checkpoint(model, tmp_path / "s.safetensors"))
    src, tgt = torch.randint(1, 11, (2, 5)), torch.randint(1, 13, (2, 4))
    assert isinstance(again, Seq2SeqTransformer) and torch.equal(again(src, tgt), model(src, tgt))


def test_the_same_seed_gives_the_same_checkpoint_bit_for_bit(tmp_path):
    digests = []
    for run in range(2):
        runtime.set_seed(5)
        model = GPT(GPTConfig(**TINY))
        tokens = torch.randint(0, 20, (300,))
        generator = torch.Generator().manual_seed(5)
        train(model, lambda: random_windows(tokens, 4, 16, generator), steps=5, progress=False)
        path = save_checkpoint(model, tmp_path / f"run{run}.safetensors")
        digests.append(hashlib.sha256(path.read_bytes()).hexdigest())
    assert digests[0] == digests[1]


def test_bad_training_settings_are_refused():
    model = GPT(GPTConfig(**TINY))
    with pytest.raises(ValueError, match="steps: expected an int >= 0, got -1"):
        train(model, lambda: None, steps=-1)
    with pytest.raises(ValueError, match="schedule: expected 'constant' or 'cosine', got 'linear'"):
        train(model, lambda: None, steps=1, schedule="linear")
    assert History().losses == []


def test_chrf_is_100_for_identical_text_0_for_disjoint_and_credits_near_misses():
    from course_lib.seq2seq import chrf

    assert chrf(["the cat is under the table"], ["the cat is under the table"]) == pytest.approx(100.0)
    assert chrf(["xyz"], ["abc"]) == 0.0
    near = chrf(["the cats is under the table"], ["the cat is under the table"])
    far = chrf(["a dog sleeps"], ["the cat is under the table"])
    assert 80 < near < 100 and far < 30 < near
    assert chrf(["thecat"], ["the cat"]) == pytest.approx(100.0)  # spaces are ignored
    with pytest.raises(ValueError, match="expected the same length, got 1 and 2"):
        chrf(["a"], ["a", "b"])


def test_chrf_matches_a_hand_computed_case():
    from course_lib.seq2seq import chrf

    # "ab" vs "abc", max_n=2: unigrams P=2/2 R=2/3, bigrams P=1/1 R=1/2 -> P=1, R=7/12
    p, r = 1.0, (2 / 3 + 1 / 2) / 2
    expected = 100 * 5 * p * r / (4 * p + r)
    assert chrf(["ab"], ["abc"], max_n=2) == pytest.approx(expected)


def test_translation_data_pads_and_shifts_targets_and_decodes_back():
    from course_lib.seq2seq import TranslationData

    data = TranslationData([("le chat dort", "the cat sleeps"), ("l'oiseau chante", "the bird sings")])
    assert "l'" in data.src_vocab and "oiseau" in data.src_vocab  # elision split on the French side
    src, tgt_in, tgt_out = data.batch(6, torch.Generator().manual_seed(0))
    assert src.shape[0] == tgt_in.shape[0] == 6 and tgt_in.shape == tgt_out.shape
    assert torch.all(tgt_in[:, 0] == data.bos_id)
    assert torch.equal(tgt_in[:, 1:], tgt_out[:, :-1])
    assert set(data.tgt_vocab.decode([data.eos_id])) == {"<eos>"}
    assert data.decode(data.tgt_vocab.encode(["the", "cat", "sleeps"])) == "the cat sleeps"
    assert data.source_ids(["le chien dort"]).tolist()[0][1] == 0  # an unseen word is <unk>


def test_a_small_translator_learns_its_training_pairs():
    from course_lib.seq2seq import TranslationData, translate

    runtime.set_seed(6)
    pairs = [("le chat dort", "the cat sleeps"), ("le chien mange", "the dog eats"),
             ("la fille lit", "the girl reads"), ("le chat mange", "the cat eats")]
    data = TranslationData(pairs)
    model = Seq2SeqTransformer(Seq2SeqConfig(len(data.src_vocab), len(data.tgt_vocab), context_length=8,
                                             d_model=32, n_layers=1, n_heads=2, pad_id=data.pad_id))
    generator = torch.Generator().manual_seed(0)
    train(model, lambda: data.batch(16, generator), steps=150, lr=3e-3, progress=False)
    assert translate(model, data, [fr for fr, _ in pairs]) == [en for _, en in pairs]
    with pytest.raises(TypeError, match="got a single str"):
        translate(model, data, "le chat dort")


def test_augmented_pairs_swap_glossary_words_in_both_languages_and_keep_the_grammar():
    from course_lib import translation as tr
    from course_lib.seq2seq import augment_pairs

    glossary, kinds = tr.load_glossary(), tr.load_glossary_kinds()
    source = tr.SentencePair("la clé lourde est sur la table", "the heavy key is on the table",
                             ("adjective_order",), "train")
    made = augment_pairs([source], glossary, kinds, 40, seed=1)
    assert made == augment_pairs([source], glossary, kinds, 40, seed=1)  # seeded
    assert len(set(made)) > 20
    for fr, en in made:
        article, noun, adjective, *rest = fr.split()
        assert (article, rest) == ("la", ["est", "sur", "la", table := rest[-1]]) and table in glossary
        assert kinds[noun] == "noun" and kinds[adjective] == "adjective" and kinds[table] == "noun"
        # English keeps its own order: adjective before the noun
        assert en == f"the {glossary[adjective]} {glossary[noun]} is on the {glossary[table]}"
    train_pairs = tr.load_sentence_pairs("train")
    many = augment_pairs(train_pairs, glossary, kinds, 300, seed=1)
    assert len({fr for fr, _ in many} - {p.fr for p in train_pairs}) > 200  # mostly new sentences
    plain = [(fr, en) for fr, en in many if tr.literal_translate(fr, glossary) == en]
    assert len(plain) > 100  # those made from untagged sentences still translate word for word
