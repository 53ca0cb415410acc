"""Bad and degenerate input, table-driven: each row is one input a user might give.

Add a case in one line: ``(id, call(tmp_path) -> None, exception type, message pattern)``
for the API, or ``(id, argv(tmp_path) -> list, message pattern)`` for the command line
(which must answer with one line on stderr, exit status 2, and no traceback).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from transferkit.cli import main
from transferkit.data import Domain, few_shot_split, load_digits
from transferkit.labelshift import BBSE, MLLS, chi2_shift_test
from transferkit.nets import MLP
from transferkit.train import DatasetStream, Stream, Update


def _digits() -> Domain:
    return load_digits()


API = [
    ("split-k-float", lambda p: few_shot_split(_digits(), 2.5, seed=0), TypeError, "whole number"),
    ("split-k-str", lambda p: few_shot_split(_digits(), "3", seed=0), TypeError, "whole number"),
    ("split-k-zero", lambda p: few_shot_split(_digits(), 0, seed=0), ValueError, ">= 1"),
    ("split-seed-none", lambda p: few_shot_split(_digits(), 3, seed=None), TypeError, "seed"),
    ("split-tensor", lambda p: few_shot_split(torch.zeros(3, 1, 2, 2), 1, seed=0), TypeError,
     "Domain"),
    ("domain-label-minus-one", lambda p: Domain(torch.zeros(2, 1, 2, 2), torch.tensor([0, -1]),
                                                "x"), ValueError, "label -1 at row 1"),
    ("domain-float-labels", lambda p: Domain(torch.zeros(2, 1, 2, 2), torch.zeros(2), "x"),
     ValueError, "int64"),
    ("stream-rows", lambda p: Stream(torch.zeros(4), torch.zeros(3)), ValueError,
     "tensor 1 has 3 rows"),
    ("stream-list", lambda p: Stream([1, 2, 3]), TypeError, "expected a Tensor or a numpy"),
    ("stream-strings", lambda p: Stream(np.array(["a", "b"])), TypeError, "dtype <U1"),
    ("stream-scalar", lambda p: Stream(torch.tensor(1.0)), ValueError, "scalar"),
    ("stream-seed-float", lambda p: Stream(torch.zeros(4), seed=1.5), TypeError, "seed"),
    ("datasetstream-tensor", lambda p: DatasetStream(torch.zeros(4)), TypeError, "map-style"),
    ("update-accumulate", lambda p: Update(accumulate=0), ValueError, "accumulate"),
    ("mlp-shape", lambda p: MLP((0, 8), n_classes=2), ValueError, "positive"),
    ("bbse-string-unknown-target",
     lambda p: BBSE().fit(np.array(["a", "b", "a", "b", "a", "b"]),
                          np.array(["a", "b", "a", "b", "b", "a"])).estimate(np.array(["c"])),
     ValueError, "unknown class 'c'"),
    ("bbse-label-out-of-range", lambda p: BBSE().fit(np.array([0, 1]), np.array([0, 5])),
     ValueError, "class"),
    ("mlls-hard", lambda p: MLLS().fit(np.array([0, 1, 0, 1]), np.array([0, 1, 0, 1])),
     ValueError, "needs predicted probabilities"),
    ("chi2-class-counts", lambda p: chi2_shift_test(np.full((4, 3), 1 / 3), np.full((4, 2), 0.5)),
     ValueError, "3 class columns but target probabilities have 2"),
    ("proba-rows", lambda p: BBSE(soft=True).fit(np.array([[0.5, 0.6], [0.5, 0.5]]),
                                                 np.array([0, 1])), ValueError, "sum to one"),
    # the newer methods' entry points (issue 34, items 8 and 9)
    ("maml-adapt-nan", lambda p: _maml().adapt(torch.full((3, 1), float("nan")),
                                               torch.zeros(3, 1)), ValueError, "support_x"),
    ("maml-adapt-empty", lambda p: _maml().adapt(torch.zeros(0, 1), torch.zeros(0, 1)),
     ValueError, "at least one"),
    ("dsmt-no-channels", lambda p: _dsmt(0), ValueError, "n_channels must be >= 1"),
    ("dsmt-wrong-channels", lambda p: _dsmt(2)(torch.zeros(4, 3, 64), torch.zeros(4, 3)),
     ValueError, "expected windows \\(n, 2, steps\\)"),
    ("reform-predict-unfitted", lambda p: _reform().predict(np.zeros((2, 3))), Exception,
     "not fitted"),
    ("reform-fit-no-rows", lambda p: _reform().fit(np.zeros((0, 3)), np.zeros(0)),
     ValueError, "no rows"),
    ("reform-fit-nan", lambda p: _reform().fit(np.full((2, 3), np.nan), np.array([0, 1])),
     ValueError, "NaN or infinite"),
]


def _maml():
    from transferkit.meta import MAML

    return MAML(torch.nn.Linear(1, 1), torch.nn.functional.mse_loss)


def _dsmt(channels):
    from transferkit.multitask import DSMTNet

    return DSMTNet(channels, 0, width=4, units=8)


def _reform():
    from transferkit.heterogeneous import ReForm

    return ReForm((np.eye(2, 3), np.zeros(2)), np.eye(3), np.eye(3))


@pytest.mark.parametrize("case, call, exc, match", API, ids=[c[0] for c in API])
def test_api_bad_input(tmp_path, case, call, exc, match):
    with pytest.raises(exc, match=match):
        call(tmp_path)


def _csv(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return str(path)


def _holdout(p, n=60):
    rows = "".join(f"{'ab'[i % 2]},{0.8 if i % 2 == 0 else 0.2},{0.2 if i % 2 == 0 else 0.8}\n"
                   for i in range(n))
    return _csv(p / "h.csv", "label,p_a,p_b\n" + rows)


def _target(p, n=40):
    rows = "".join("0.7,0.3\n" if i % 3 else "0.2,0.8\n" for i in range(n))
    return _csv(p / "t.csv", "p_a,p_b\n" + rows)


def _ls(*extra):
    return ["labelshift", *extra]


CLI = [
    ("tiny-target", lambda p: _ls("--holdout", _holdout(p), "--target", _target(p, 5)),
     "the target has 5 rows: too few"),
    ("one-row-target", lambda p: _ls("--holdout", _holdout(p), "--target", _target(p, 1)),
     "the target has 1 rows"),
    ("never-predicted", lambda p: _ls(
        "--holdout", _csv(p / "h.csv", "label,p_a,p_b\n" + "a,0.9,0.1\nb,0.6,0.4\n" * 30),
        "--target", _target(p)), "cannot identify the target prior.*\\['b'\\] are never"),
    ("out-under-a-file", lambda p: _ls("--holdout", _holdout(p), "--target", _target(p),
                                       "--out", _csv(p / "f", "x") + "/sub"),
     "cannot write to output folder.*is a file"),
    ("not-utf8", lambda p: _ls("--holdout", _csv(p / "h.csv", "label,p_a,p_b\né,0.5,0.5\n",
                                                 "latin-1"), "--target", _target(p)),
     "not UTF-8 text"),
    ("complex-npy", lambda p: _ls("--holdout", _npy(p / "h.npy", np.ones((4, 3), complex)),
                                  "--target", _target(p)), "complex values"),
    ("semicolon-bad-row", lambda p: _ls(
        "--holdout", _csv(p / "h.csv", "label;p_a;p_b\na;0.5;0.5\nb;0.5\n"),
        "--target", _target(p)), "row 3 has 2 columns"),
    ("unknown-method", lambda p: _ls("--holdout", _holdout(p), "--target", _target(p),
                                     "--method", "magic"), "invalid choice"),
    ("set-unknown-field", lambda p: ["reproduce", "finetune", "--set", "nope=1"],
     "has no field 'nope'"),
]


def _npy(path, arr):
    np.save(path, arr)
    return str(path)


@pytest.mark.parametrize("case, argv, match", CLI, ids=[c[0] for c in CLI])
def test_cli_bad_input(tmp_path, capsys, case, argv, match):
    import re

    args = argv(tmp_path)
    try:
        status = main(args)
    except SystemExit as exc:  # argparse's own errors
        status = exc.code
    err = capsys.readouterr().err
    assert status == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert re.search(match, err), err
    assert not (tmp_path / "f" / "sub").exists()


GOOD = [  # inputs a spreadsheet or a numpy user produces, which must just work
    ("utf8-bom", lambda p: _ls("--holdout",
                               _csv(p / "h.csv", "\ufeff" + Path(_holdout(p)).read_text()),
                               "--target", _target(p))),
    ("semicolons", lambda p: _ls("--holdout", _csv(p / "h.csv",
                                                   Path(_holdout(p)).read_text().replace(",", ";")),
                                 "--target", _target(p))),
    ("forced-tiny-target", lambda p: _ls("--holdout", _holdout(p), "--target", _target(p, 5),
                                         "--force")),
]


@pytest.mark.parametrize("case, argv", GOOD, ids=[c[0] for c in GOOD])
def test_cli_accepts(tmp_path, capsys, case, argv):
    assert main(argv(tmp_path)) == 0, capsys.readouterr().err


def test_forced_tiny_target_prints_honest_intervals(tmp_path, capsys):
    assert main(_ls("--holdout", _holdout(tmp_path), "--target", _target(tmp_path, 5),
                    "--force", "--out", str(tmp_path / "o"))) == 0
    import json

    summary = json.loads((tmp_path / "o" / "labelshift.json").read_text())
    lo = [iv[0] for iv in summary["target_prior_interval"]]
    hi = [iv[1] for iv in summary["target_prior_interval"]]
    # 5 rows cannot pin a share down: the exact bounds are wide, not [0.93, 1.0]
    assert all(h - lo_ > 0.4 for lo_, h in zip(lo, hi, strict=True))
    assert any("fewer than 5 per class" in w for w in summary["warnings"])


def test_numpy_float64_arrays_train(tmp_path):
    from transferkit.train import classification_step, fit

    x = np.random.default_rng(0).normal(size=(32, 4))  # float64, as numpy makes them
    y = (x[:, 0] > 0).astype(np.int64)
    net = MLP(4, n_classes=2, hidden=(8,))
    before = [p.detach().clone() for p in net.parameters()]
    stream = Stream(x, y, seed=0)
    assert stream.tensors[0].dtype == torch.float32 and stream.tensors[1].dtype == torch.int64
    hist = fit(net, classification_step(), {"train": stream},
               torch.optim.SGD(net.parameters(), lr=0.1), 3)
    assert len(hist.series("loss/ce")[1]) == 3
    assert any(not torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))


@pytest.mark.parametrize("register", ["transferkit.multitask:register_weighting",
                                      "transferkit.finetune:register_regularizer",
                                      "transferkit.labelshift:register_estimator"])
def test_a_registry_takes_only_its_base_class(register):
    import importlib

    module, fn = register.split(":")
    decorator = getattr(importlib.import_module(module), fn)("not-a-method")
    with pytest.raises(TypeError, match="subclasses can be registered"):
        decorator(dict)


# -- issue 34 items 8 and 9: entry points that refuse, by name --------------------------------
def _pta_model(in_features=8):
    from transferkit.multitask import PseudoTaskModel

    return PseudoTaskModel(torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU()),
                           in_features, {"a": 3}, n_decoders=2, seed=0)


ENTRY = [
    ("fewshot-nan", lambda: __import__("transferkit.meta", fromlist=["FewShotTasks"]).FewShotTasks(
        torch.full((20, 3), float("nan")), torch.arange(20) % 4, [0, 1, 2, 3], n_way=2,
        k_shot=1, k_query=2), "NaN or infinite values \\(first in row 0\\)"),
    ("maml-adapt-width", lambda: _maml().adapt(torch.zeros(4, 5), torch.zeros(4, 1)),
     "cannot adapt on support_x of shape \\(4, 5\\)"),
    ("mmd2-widths", lambda: __import__("transferkit.l2t", fromlist=["x"]).mmd2_unbiased(
        torch.zeros(4, 3), torch.zeros(4, 2), torch.ones(1)), "same features"),
    ("linear-mmd2-1d", lambda: __import__("transferkit.l2t", fromlist=["x"]).linear_mmd2(
        torch.zeros(8), torch.zeros(8), torch.ones(1)), "2-d samples"),
    ("fisher-width", lambda: __import__("transferkit.finetune", fromlist=["x"]).fisher_diagonal(
        torch.nn.Linear(4, 3), torch.zeros(5, 6)), "a batch of shape \\(5, 6\\)"),
    ("pta-input-width", lambda: _pta_model()(torch.zeros(2, 5)),
     "the trunk cannot take input of shape \\(2, 5\\)"),
    ("pta-in-features", lambda: _pta_model(7)(torch.zeros(2, 6)),
     "the decoders take \\(n, 7\\)"),
    ("pta-predict-best", lambda: _pta_model().predict(torch.zeros(2, 6), torch.tensor([5])),
     "one decoder in 0..1 per task"),
    ("balanced-order-index", lambda: __import__(
        "transferkit.curriculum", fromlist=["x"]).balanced_order([0, 5], [0, 1]),
     "labels has 2 entries"),
]


@pytest.mark.parametrize("case, call, match", ENTRY, ids=[c[0] for c in ENTRY])
def test_newer_entry_points_refuse_by_name(case, call, match):
    with pytest.raises(ValueError, match=match):
        call()


# -- issue 34 item 10: non-finite inputs give a documented result -------------------------------
@pytest.mark.parametrize("name", __import__("transferkit.adaptation",
                                            fromlist=["x"]).list_adaptations())
def test_every_adaptation_objective_turns_nan_features_into_a_non_finite_loss(name):
    # documented in AdaptationObjective: no check per step (it would cost a device sync);
    # the loop's non-finite policy stops the step (NonFiniteLossError by default)
    from transferkit.adaptation import adaptation_loss, create_adaptation

    objective = create_adaptation(name, in_features=4, n_classes=3)
    source = torch.full((6, 4), float("nan"))
    out = objective(source, torch.randn(6, 4), source_labels=torch.arange(6) % 3,
                    target_logits=torch.randn(6, 3))
    assert not bool(torch.isfinite(adaptation_loss(out)))


@pytest.mark.parametrize("name", __import__("transferkit.multitask",
                                            fromlist=["x"]).list_weightings())
def test_every_weighting_keeps_a_non_finite_loss_out_of_its_state(name):
    from transferkit.multitask import create_weighting

    shared = torch.nn.Linear(3, 3)
    weighting = create_weighting(name, tasks=2, shared=list(shared.parameters()))
    finite = {"a": (shared.weight ** 2).sum(), "b": shared.weight.sum() ** 2}
    weighting.combine(finite).backward()
    before = {k: v.clone() for k, v in weighting.state_dict().items()
              if isinstance(v, torch.Tensor)}
    total = weighting.combine({"a": torch.tensor(float("nan")), "b": shared.weight.sum()})
    assert not bool(torch.isfinite(total))
    after = weighting.state_dict()
    for key, value in before.items():
        torch.testing.assert_close(after[key], value, equal_nan=True)


def test_l2sp_of_non_finite_weights_is_non_finite():
    from transferkit.finetune import create_regularizer

    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    reg = create_regularizer("l2sp", model=net, alpha=0.1, beta=0.1, new=["1"])
    with torch.no_grad():
        net[0].weight[0, 0] = float("nan")
    assert not bool(torch.isfinite(reg(net)))


def test_a_singular_confusion_matrix_is_flagged_not_trusted():
    # every estimator: either identifiable (RLLS regularises) or flagged with a warning
    from transferkit.labelshift import create_estimator, list_estimators

    y = np.array([0, 1, 2] * 6)
    hard = np.array([0, 1, 0] * 6)  # class 2 is never predicted
    soft = np.eye(3)[hard] * 0.9 + 0.05
    soft /= soft.sum(axis=1, keepdims=True)
    for name in list_estimators():
        est = create_estimator(name)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                estimate = est.fit(hard, y).estimate(hard[:6])
            except ValueError:
                estimate = est.fit(soft, y).estimate(soft[:6])
        assert estimate.identifiable or caught, name
