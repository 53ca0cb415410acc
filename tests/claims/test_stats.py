import math

import pytest

from transferkit.claims.stats import paired_comparison, summarize


def test_paired_comparison_against_hand_computed_example():
    # d = [0.1, 0.05, 0.05, 0.1] -> mean 0.075, sd = sqrt(sum((d-0.075)^2)/3) = 0.0288675
    r = paired_comparison([0.9, 0.85, 0.8, 0.95], [0.8, 0.8, 0.75, 0.85], True, 0.05)
    assert r["n"] == 4
    assert r["delta_mean"] == pytest.approx(0.075)
    assert r["delta_std"] == pytest.approx(0.0288675, rel=1e-5)
    # against zero: t = 0.075 / (0.0288675 / 2) = 5.19615; one-sided p, 3 df = 0.0069 (tables)
    assert r["p_zero"] == pytest.approx(0.006921, rel=1e-3)
    # against the margin: t = (0.075 - 0.05) / 0.01443376 = 1.7321; p, 3 df = 0.0908 (tables)
    assert r["p_value"] == pytest.approx(0.0908, rel=1e-3)
    # 95% CI: 0.075 +- 3.18245 * 0.01443376 = [0.029066, 0.120934]
    assert r["ci95"] == pytest.approx([0.029066, 0.120934], rel=1e-4)
    assert r["p_wilcoxon"] is None  # 4 differences cannot reach 0.05 one-sided
    assert r["holds"] is False  # above the margin on average, not shown to exceed it
    assert paired_comparison([0.9, 0.85, 0.8, 0.95], [0.8, 0.8, 0.75, 0.85], True, 0.0)["holds"]


def test_barely_over_the_margin_does_not_hold():
    # the review's example: mean 0.0053 against a margin of 0.005
    m = [0.5073, 0.5033, 0.5063, 0.5043, 0.5078, 0.5028, 0.5053, 0.5053]
    r = paired_comparison(m, [0.5] * 8, True, 0.005)
    assert r["delta_mean"] == pytest.approx(0.0053)
    assert r["p_zero"] < 1e-4 and r["p_value"] > 0.25 and not r["holds"]


def test_non_inferiority_and_bounds():
    from transferkit.claims.stats import one_sample_comparison

    # slightly worse, by far less than the margin of 0.05: not inferior
    worse = paired_comparison([0.79, 0.80, 0.785, 0.795], [0.8, 0.805, 0.79, 0.8], True, -0.05)
    assert worse["delta_mean"] < 0 and worse["holds"]
    assert not paired_comparison([0.7, 0.71, 0.69], [0.8, 0.8, 0.8], True, -0.05)["holds"]
    inside = one_sample_comparison([0.045, 0.05, 0.04, 0.055], 0.08, above=False)
    assert inside["holds"] and inside["delta_mean"] == pytest.approx(0.0325)
    assert not one_sample_comparison([0.045, 0.05, 0.04, 0.055], 0.05, above=True)["holds"]


def test_direction_and_threshold():
    lower = paired_comparison([1.0, 1.1, 0.9], [2.0, 2.2, 1.8], higher_is_better=False)
    assert lower["delta_mean"] == pytest.approx(1.0) and lower["holds"]
    small = paired_comparison([0.51, 0.52, 0.515], [0.5, 0.5, 0.5], True, required_delta=0.05)
    assert small["p_zero"] < 0.05 and small["p_value"] > 0.5 and not small["holds"]
    worse = paired_comparison([0.4, 0.41, 0.39], [0.5, 0.5, 0.5])
    assert worse["delta_mean"] < 0 and worse["p_value"] > 0.5 and not worse["holds"]


def test_wilcoxon_reported_when_n_allows():
    r = paired_comparison([1, 2, 3, 4, 5, 6], [0, 0, 0, 0, 0, 0])
    assert r["p_wilcoxon"] == pytest.approx(1 / 64)  # all 6 ranks positive, exact test


def test_degenerate_inputs():
    one = paired_comparison([1.0], [0.0])
    assert math.isnan(one["p_value"]) and not one["holds"]
    tie = paired_comparison([0.5, 0.5], [0.5, 0.5])
    assert tie["p_value"] == 1.0 and not tie["holds"]
    with pytest.raises(ValueError, match="equal-length"):
        paired_comparison([1, 2], [1])
    s = summarize([1.0, 2.0, 3.0])
    assert s["mean"] == 2.0 and s["std"] == 1.0


def test_an_optional_comparison_cannot_decide_the_verdict():
    import pytest

    from transferkit.claims.base import Comparison

    Comparison("a", "b", 0.0, own=False, optional=True)
    with pytest.raises(ValueError, match="optional"):
        Comparison("a", "b", 0.0, optional=True)


@pytest.mark.parametrize(
    "d, need, verdict",
    [
        ([0.12, 0.10, 0.11, 0.13, 0.09, 0.12], 0.05, "holds"),  # shown above the margin
        ([0.01, 0.02, 0.00, 0.03, 0.01, 0.02], 0.05, "does not hold"),  # shown below it
        ([0.09, -0.02, 0.15, 0.01, 0.08, 0.02], 0.05, "inconclusive"),  # neither
        ([-0.2, -0.1, -0.15, -0.12, -0.18], -0.05, "does not hold"),  # non-inferiority fails
    ],
)
def test_three_outcomes_on_constructed_differences(d, need, verdict):
    r = paired_comparison(d, [0.0] * len(d), True, need)
    assert r["verdict"] == verdict and r["holds"] is (verdict == "holds")
    # the outcomes are the two one-sided tests, and they never both reject
    assert not (r["p_value"] < 0.05 and r["p_short"] < 0.05)
    assert (r["seeds_for_power"] is not None) is (verdict == "inconclusive")


def test_seeds_for_power_matches_the_noncentral_t_and_grows_as_the_effect_shrinks():
    from scipy import stats

    from transferkit.claims.stats import seeds_for_power

    n = seeds_for_power(0.5, 1.0)
    power = lambda k: stats.nct.sf(stats.t.ppf(0.95, k - 1), k - 1, 0.5 * k ** 0.5)  # noqa: E731
    assert power(n) >= 0.8 > power(n - 1)
    assert n == 27  # textbook: about (1.645 + 0.842)^2 / 0.25 + 2 = 26.7
    assert seeds_for_power(0.25, 1.0) > n > seeds_for_power(1.0, 1.0)
    assert seeds_for_power(-0.5, 1.0) == n  # towards "does not hold" alike
    assert seeds_for_power(1e-6, 1.0) is None  # beyond any budget


def test_a_bound_follows_the_same_three_outcomes():
    from transferkit.claims.stats import one_sample_comparison

    assert one_sample_comparison([0.2, 0.21, 0.19, 0.2, 0.22], 0.3, above=True)["verdict"] == \
        "does not hold"
    assert one_sample_comparison([0.2, 0.4, 0.1, 0.5, 0.3], 0.3, above=True)["verdict"] == \
        "inconclusive"
