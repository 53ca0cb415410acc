import math

import pytest
import torch

from transferkit.adaptation import (
    CORAL,
    DANN,
    MMD,
    MSTN,
    AdaptationObjective,
    adaptation_loss,
    batch_centroids,
    coral,
    create_adaptation,
    list_adaptations,
    mmd2,
    register_adaptation,
    update_centroids,
)
from transferkit.adaptation.objectives import ADAPTATIONS
from transferkit.testing.adaptation import check_adaptation_objective


def test_registry_lists_the_four_objectives():
    assert {"mmd", "coral", "dann", "mstn"} <= set(list_adaptations())


@pytest.mark.parametrize("name", list_adaptations())
def test_property_suite_over_registered_objectives(name):
    res = check_adaptation_objective(name, in_features=8, n_classes=3)
    assert abs(res.equal) <= 0.02
    assert res.shifted > 0.02
    assert res.source_grad_norm > 0 and res.target_grad_norm > 0


def test_property_check_catches_a_broken_objective():
    class Constant(AdaptationObjective):
        def forward(self, source, target, source_labels=None, target_logits=None, coeff=1.0):
            return (source.sum() - source.sum()) + 1.0

    with pytest.raises(AssertionError, match="about 0"):
        check_adaptation_objective(Constant())

    class NoGrad(AdaptationObjective):
        def forward(self, source, target, source_labels=None, target_logits=None, coeff=1.0):
            return (source.mean(0) - target.mean(0)).detach().pow(2).sum() + 0 * source.sum()

    with pytest.raises(AssertionError, match="gradient"):
        check_adaptation_objective(NoGrad())


def test_register_new_objective_and_duplicate_name():
    @register_adaptation("test-mean-gap")
    def make(in_features, n_classes):
        class MeanGap(AdaptationObjective):
            def forward(self, source, target, source_labels=None, target_logits=None, coeff=1.0):
                return (source.mean(0) - target.mean(0)).pow(2).sum()

        return MeanGap()

    try:
        assert "test-mean-gap" in list_adaptations()
        check_adaptation_objective("test-mean-gap")
        with pytest.raises(ValueError, match="already registered"):
            register_adaptation("test-mean-gap")(lambda **kw: None)
    finally:
        ADAPTATIONS.unregister("test-mean-gap")


def test_create_unknown_and_bad_sizes():
    with pytest.raises(KeyError, match="unknown adaptation objective"):
        create_adaptation("nope", in_features=4, n_classes=2)
    with pytest.raises(ValueError, match="in_features"):
        create_adaptation("dann", in_features=0, n_classes=2)


def test_input_validation_messages():
    s = torch.randn(5, 4)
    with pytest.raises(ValueError, match="4 columns but target features have 3"):
        mmd2(s, torch.randn(5, 3))
    with pytest.raises(ValueError, match=r"shape \(n, d\)"):
        coral(torch.randn(5), s)
    with pytest.raises(ValueError, match="in_features=8"):
        DANN(8)(s, s)
    obj = MSTN(4, n_classes=3)
    with pytest.raises(ValueError, match="source_labels are required"):
        obj(s, s, None, torch.randn(5, 3))
    with pytest.raises(ValueError, match=r"lie in \[0, 3\)"):
        obj(s, s, torch.tensor([0, 1, 2, 3, 0]), torch.randn(5, 3))
    with pytest.raises(ValueError, match=r"target_logits must have shape \(5, 3\)"):
        obj(s, s, torch.tensor([0, 1, 2, 0, 0]), torch.randn(5, 4))


def test_mmd_matches_direct_computation():
    g = torch.Generator().manual_seed(0)
    s, t = (
        torch.randn(6, 2, generator=g, dtype=torch.float64),
        torch.randn(4, 2, generator=g, dtype=torch.float64),
    )

    def k(a, b, bw):
        return sum(math.exp(-((a - b) ** 2).sum().item() / (bw * 2.0**j)) for j in range(3))

    bw = 0.7
    first = bw / 2.0
    kss = sum(k(a, b, first) for a in s for b in s) / 36
    ktt = sum(k(a, b, first) for a in t for b in t) / 16
    kst = sum(k(a, b, first) for a in s for b in t) / 24
    expected = kss + ktt - 2 * kst
    got = float(mmd2(s, t, kernel_mul=2.0, kernel_num=3, bandwidth=bw))
    assert got == pytest.approx(expected, rel=1e-9)


def test_coral_matches_numpy():
    import numpy as np

    g = torch.Generator().manual_seed(1)
    s, t = (
        torch.randn(10, 3, generator=g, dtype=torch.float64),
        torch.randn(7, 3, generator=g, dtype=torch.float64),
    )
    expected = ((np.cov(s.numpy().T) - np.cov(t.numpy().T)) ** 2).sum() / (4 * 9)
    assert float(CORAL()(s, t)) == pytest.approx(expected, rel=1e-10)


def test_batch_centroids_hand_example():
    f = torch.tensor([[1.0, 0.0], [3.0, 2.0], [5.0, 5.0]])
    c, n = batch_centroids(f, torch.tensor([1, 1, 0]), 3)
    assert c.tolist() == [[5.0, 5.0], [2.0, 1.0], [0.0, 0.0]]
    assert n.tolist() == [1.0, 2.0, 0.0]


def test_centroid_update_hand_computed_with_missing_class():
    # three classes; class 2 is absent from the batch and must keep its previous centroid
    prev = torch.tensor([[1.0, 1.0], [0.0, 2.0], [4.0, -4.0]], dtype=torch.float64)
    feats = torch.tensor(
        [[2.0, 0.0], [4.0, 2.0], [10.0, 10.0]], dtype=torch.float64, requires_grad=True
    )
    labels = torch.tensor([0, 0, 1])
    new, present = update_centroids(prev, feats, labels, decay=0.3)
    # class 0: batch mean (3, 1) -> 0.3*(3,1) + 0.7*(1,1) = (1.6, 1.0)
    # class 1: batch mean (10, 10) -> 0.3*(10,10) + 0.7*(0,2) = (3.0, 4.4)
    # class 2: absent -> (4, -4) unchanged (not 0.7*(4,-4))
    expected = torch.tensor([[1.6, 1.0], [3.0, 4.4], [4.0, -4.0]], dtype=torch.float64)
    assert torch.allclose(new, expected, atol=1e-12)
    assert present.tolist() == [True, True, False]
    new.sum().backward()
    # d new / d feats: 0.3 / count for each row of a present class
    assert torch.allclose(
        feats.grad, torch.tensor([[0.15, 0.15], [0.15, 0.15], [0.3, 0.3]], dtype=torch.float64)
    )


def test_previous_centroid_is_detached():
    prev = torch.ones(2, 2, requires_grad=True)
    feats = torch.zeros(2, 2, requires_grad=True)
    new, _ = update_centroids(prev, feats, torch.tensor([0, 1]))
    new.sum().backward()
    assert prev.grad is None
    assert feats.grad is not None


def test_mstn_buffers_follow_the_hand_computed_update_over_two_steps():
    torch.manual_seed(0)
    obj = MSTN(2, n_classes=3, hidden=(4,)).double()
    s1 = torch.tensor([[2.0, 0.0], [4.0, 2.0], [10.0, 10.0]], dtype=torch.float64)
    y1 = torch.tensor([0, 0, 1])
    # target pseudo-labels from logits: argmax -> [2, 2]
    t1 = torch.tensor([[1.0, 1.0], [3.0, 3.0]], dtype=torch.float64)
    l1 = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.5, 2.0]], dtype=torch.float64)
    out = obj(s1, t1, y1, l1, coeff=0.5)
    exp_s = torch.tensor([[0.9, 0.3], [3.0, 3.0], [0.0, 0.0]], dtype=torch.float64)
    exp_t = torch.tensor([[0.0, 0.0], [0.0, 0.0], [0.6, 0.6]], dtype=torch.float64)
    assert torch.allclose(obj.source_centroids, exp_s)
    assert torch.allclose(obj.target_centroids, exp_t)
    assert float(out.semantic) == pytest.approx(float(((exp_s - exp_t) ** 2).mean()))
    assert float(out.loss.detach()) == pytest.approx(
        float((out.adversarial + 0.5 * out.semantic).detach())
    )
    # second step: only class 1 in the source batch, class 0 keeps (0.9, 0.3)
    obj(torch.tensor([[0.0, 1.0]], dtype=torch.float64), t1, torch.tensor([1]), l1, coeff=0.5)
    assert torch.allclose(
        obj.source_centroids,
        torch.tensor([[0.9, 0.3], [2.1, 2.4], [0.0, 0.0]], dtype=torch.float64),
    )
    # eval mode leaves the buffers alone
    obj.eval()
    before = obj.source_centroids.clone()
    obj(s1, t1, y1, l1)
    assert torch.equal(obj.source_centroids, before)


def test_dann_gradients_match_classic_formulation():
    # ours: loss = 2 log2 - BCE with reversals; classic: BCE(D(GRL_coeff(f))) -> same gradients
    torch.manual_seed(0)
    obj = DANN(3, hidden=(5,)).double()
    s = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    t = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    out = obj(s, t, coeff=0.3)
    grads = torch.autograd.grad(out.loss, [s, t, *obj.parameters()])

    s2, t2 = s.detach().clone().requires_grad_(True), t.detach().clone().requires_grad_(True)
    from transferkit.adaptation import grad_reverse

    z = obj.discriminator(grad_reverse(torch.cat([s2, t2]), 0.3))
    # summed over the two domains, as the MSTN authors' D_real + D_fake
    bce = torch.nn.functional.softplus(z[:4]).mean() + torch.nn.functional.softplus(-z[4:]).mean()
    classic = torch.autograd.grad(bce, [s2, t2, *obj.parameters()])
    for a, b in zip(grads, classic, strict=True):
        assert torch.equal(a, b)  # one reversal node: bit for bit the classic gradients
    assert float(out.loss.detach()) == 2 * math.log(2) - float(bce.detach())
    assert 0 <= float(out.domain_accuracy) <= 1  # computed when asked for


def test_adaptation_loss_rejects_other_outputs():
    assert adaptation_loss(MMD()(torch.randn(4, 2), torch.randn(4, 2))).dim() == 0
    with pytest.raises(TypeError, match="loss"):
        adaptation_loss((1, 2))
