"""The scripts behind notebook 08's stored experiments: they run, say how their results were made, never
overwrite a result file silently, and the CSVs the notebook reads hold the whole grid it describes."""

import importlib.util

import pandas as pd
import pytest

from course_lib.data import data_path, read_text


def load_script(name):
    spec = importlib.util.spec_from_file_location(name, data_path("README.md").parents[1] / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sft_masking = load_script("sft_masking")
ppo_sweep = load_script("ppo_sweep")


def test_the_masking_script_trains_both_ways_and_writes_how(tmp_path):
    out = tmp_path / "masking.csv"
    sft_masking.main(["--seeds", "0", "--steps", "2", "--tasks", "2", "--out", str(out)])
    note, *_ = out.read_text().splitlines()
    assert note.startswith("# written by: python scripts/sft_masking.py --seeds 0 --steps 2 --tasks 2")
    rows = pd.read_csv(out, comment="#")
    assert list(rows["loss on"]) == ["answer only", "every token"] and (rows["held-out tasks"] == 2).all()
    with pytest.raises(SystemExit):  # an existing result is not overwritten without --force
        sft_masking.main(["--seeds", "0", "--steps", "2", "--tasks", "2", "--out", str(out)])


def test_merging_sweep_parts_keeps_every_parts_note_and_refuses_to_overwrite(tmp_path):
    parts = []
    for i, row in enumerate(["1,0.5", "2,0.7"]):
        parts.append(tmp_path / f"part{i}.csv")
        parts[-1].write_text(f"# part {i}: how it ran\nseed,solved\n{row}\n")
    out = tmp_path / "merged.csv"
    ppo_sweep.main(["--merge", *map(str, parts), "--out", str(out)])
    assert out.read_text() == "# part 0: how it ran\n# part 1: how it ran\nseed,solved\n1,0.5\n2,0.7\n"
    with pytest.raises(SystemExit):
        ppo_sweep.main(["--merge", *map(str, parts), "--out", str(out)])
    (tmp_path / "other.csv").write_text("# other\nseed,score\n1,2\n")
    with pytest.raises(SystemExit):  # parts with other columns do not merge
        ppo_sweep.main(["--merge", str(parts[0]), str(tmp_path / "other.csv"), "--out", str(tmp_path / "x.csv")])


def test_the_stored_masking_results_hold_five_seeds_both_ways():
    rows = pd.read_csv(data_path("sft_masking.csv"), comment="#")
    assert read_text("sft_masking.csv").startswith("# written by: python scripts/sft_masking.py")
    assert sorted(rows.groupby("loss on")["seed"].apply(sorted).items()) == [
        ("answer only", [0, 1, 2, 3, 4]), ("every token", [0, 1, 2, 3, 4])]
    assert (rows["held-out tasks"] == 60).all() and rows["solved"].between(0, 1).all()


def test_the_stored_sweep_holds_the_whole_grid_notebook_08_shows():
    runs = pd.read_csv(data_path("ppo_sweep.csv"), comment="#")
    notes = [line for line in read_text("ppo_sweep.csv").splitlines() if line.startswith("#")]
    assert len(notes) == 3 and all(n.startswith("# scripts/ppo_sweep.py ") for n in notes)
    against_rm = runs[runs["reward"] == "reward_model"]
    assert len(against_rm) == 45 and (against_rm["start"] == "sft").all()
    for _, group in against_rm.groupby(["beta", "lr"]):  # 3 betas x 3 learning rates, 5 seeds each
        assert sorted(group["seed"]) == [0, 1, 2, 3, 4]
    assert sorted(against_rm["beta"].unique()) == [0.0, 0.1, 0.3]
    assert sorted(against_rm["lr"].unique()) == [2e-5, 5e-5, 2e-4]
    checker = runs[runs["reward"] == "checker"]
    assert len(checker) == 15 and (checker["start"] == "early").all()
    assert (runs["n_score"] == 60).all() and runs["solved"].between(0, 1).all()
