import pytest
import torch

from transferkit.finetune import freeze, param_groups
from transferkit.nets import MLP, LeNet, replace_head
from transferkit.train import Stream, classification_step, fit, seeded


def test_frozen_parameters_do_not_change_after_steps(tiny_xy):
    x, y = tiny_xy
    with seeded(0):
        net = MLP((1, 4, 4), n_classes=2, hidden=(8, 8))
    frozen = freeze(net, blocks=2)
    assert frozen == ["features.1.0.weight", "features.1.0.bias"]
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    opt = torch.optim.SGD(
        param_groups(net, lr=0.1, pretrained_lr=0.1), lr=0.1, momentum=0.9, weight_decay=1e-2
    )
    fit(net, classification_step(), {"train": Stream(x, y, batch_size=16)}, opt, 5)
    for name, p in net.named_parameters():
        same = torch.equal(p, before[name])
        assert same == (name in frozen), name


def test_freeze_by_name_and_errors():
    net = LeNet((1, 8, 8), n_classes=3)
    names = freeze(net, names=["features.0"])
    assert names == ["features.0.0.weight", "features.0.0.bias"]
    with pytest.raises(ValueError, match="no module or parameter named"):
        freeze(net, names=["encoder"])
    with pytest.raises(ValueError, match=r"blocks must be in \[0, 3\]"):
        freeze(net, blocks=4)


def test_param_groups_lower_lr_for_pretrained():
    net = MLP((1, 4, 4), n_classes=2, hidden=(8,))
    freeze(net, blocks=1)
    groups = param_groups(net, lr=0.1, pretrained_lr=0.01)
    assert [g["lr"] for g in groups] == [0.01, 0.1]
    assert sum(len(g["params"]) for g in groups) == 4
    with pytest.raises(ValueError, match="no trainable parameter"):
        param_groups(net, 0.1, 0.01, new=["nothing"])


def test_replace_head():
    net = MLP((1, 4, 4), n_classes=10, hidden=(8,))
    replace_head(net, 5)
    assert net(torch.zeros(2, 1, 4, 4)).shape == (2, 5)
    with pytest.raises(ValueError, match="n_classes"):
        replace_head(net, 0)
