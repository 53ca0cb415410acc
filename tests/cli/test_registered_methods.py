"""A method is offered by being registered: the CLI's choices and the workflows' checks read
the registries, so a throw-away method shows up (and goes away) without touching them."""

import pytest
import torch

from transferkit.adaptation import AdaptationObjective
from transferkit.adaptation.objectives import ADAPTATIONS
from transferkit.cli import main
from transferkit.finetune import (
    FinetuneRegularizer,
    alpha_grid,
    list_finetune_methods,
    register_regularizer,
)
from transferkit.finetune.methods import FINETUNE_METHODS
from transferkit.finetune.regularizers import REGULARIZERS


def _choices(capsys, argv):
    with pytest.raises(SystemExit):
        main([*argv, "--help"])
    return capsys.readouterr().out


class _MeanGap(AdaptationObjective):
    def forward(self, source, target, source_labels=None, target_logits=None, coeff=1.0):
        return (source.mean(0) - target.mean(0)).pow(2).sum()


def test_a_registered_adaptation_objective_is_offered_by_adapt(capsys):
    from transferkit.workflows.adapt import AdaptOptions

    assert "mean-gap-demo" not in _choices(capsys, ["adapt"])
    with ADAPTATIONS.temporary("mean-gap-demo", lambda in_features, n_classes: _MeanGap()):
        assert "mean-gap-demo" in _choices(capsys, ["adapt"])
        AdaptOptions(method="mean-gap-demo").check()  # the workflow accepts it
    assert "mean-gap-demo" not in _choices(capsys, ["adapt"])


def test_a_registered_regularizer_is_offered_by_finetune_with_its_alpha_scale(capsys):
    from transferkit.workflows import FinetuneOptions

    @register_regularizer("half-sp-demo", alpha_scale=0.5)
    class HalfSP(FinetuneRegularizer):
        def forward(self, model):
            return torch.zeros(())

    try:
        assert "half-sp-demo" in list_finetune_methods()
        assert "half-sp-demo" in _choices(capsys, ["finetune"])
        assert alpha_grid("half-sp-demo") == (0.0005, 0.005, 0.05, 0.5)
        assert FinetuneOptions(method="half-sp-demo", alpha="auto").alphas() == \
            alpha_grid("half-sp-demo")
    finally:
        REGULARIZERS.unregister("half-sp-demo")
        FINETUNE_METHODS.unregister("half-sp-demo")
    assert "half-sp-demo" not in _choices(capsys, ["finetune"])


def test_the_l2_regularizer_is_the_finetune_method_and_the_probe_is_registered():
    assert {"finetune", "linear-probe", "l2sp", "l1sp", "group-lasso-sp",
            "l2sp-fisher"} <= set(list_finetune_methods())
    assert "l2" not in list_finetune_methods()
    assert alpha_grid("l1sp") == tuple(a * 0.01 for a in alpha_grid("l2sp"))


def test_every_backbone_finetune_offers_builds_with_an_input_spec(capsys):
    from transferkit.nets import (
        InputSpec,
        TextSpec,
        create_backbone,
        image_backbones,
        text_backbones,
    )

    text = " ".join(_choices(capsys, ["finetune"]).split())
    offered_images = [n for n, missing in image_backbones().items() if missing is None]
    offered_texts = [n for n, missing in text_backbones().items() if missing is None]
    named = text.split("--backbone NAME|FOLDER pretrained architecture:")[1].split("--")[0]
    assert offered_images and all(n in named for n in offered_images + offered_texts)
    import re

    assert not re.search(r"\b(lenet|mlp)\b", named)          # they take no images
    for name in offered_images:
        net = create_backbone(name, image_size=32)
        assert isinstance(net.input_spec, InputSpec) and net.input_spec.size == 32
    for name in offered_texts:
        assert isinstance(create_backbone(name, max_length=16).input_spec, TextSpec)
    with pytest.raises(SystemExit):
        main(["finetune", "--train", "x.csv", "--out", "o", "--backbone", "lenet"])
    assert "neither auto" in capsys.readouterr().err


def test_a_constant_classifier_is_called_collapsed_and_at_chance():
    import warnings

    from transferkit.workflows.images import ResultWarning, result_warnings

    probs = torch.tensor([[0.1, 0.8, 0.1]] * 60)           # always class "b"
    labels = torch.arange(60) % 3
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found = result_warnings("target", probs, labels, ["a", "b", "c"], steps=500)
    assert len(found) == 2 and "collapsed" in found[0] and "within noise" in found[1]
    assert all(issubclass(w.category, ResultWarning) for w in caught)
    good = torch.nn.functional.one_hot(labels, 3).double()  # a perfect classifier: silence
    assert result_warnings("target", good, labels, ["a", "b", "c"], steps=500) == []
