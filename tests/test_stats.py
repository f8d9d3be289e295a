"""The report's statistics against values computed by hand."""

import pytest

from webqa.stats import paired, sign_test, wilson


def test_wilson_interval_matches_hand_computed_values():
    # 0 of 10: centre = (0 + z²/20) / (1 + z²/10) = half-width, so the interval is [0, 2·0.13876].
    assert wilson(0, 10) == pytest.approx((0.0, 0.27753), abs=1e-5)
    assert wilson(5, 10) == pytest.approx((0.23659, 0.76341), abs=1e-5)
    assert wilson(10, 10) == pytest.approx((0.72247, 1.0), abs=1e-5)
    low, high = wilson(145, 500)  # an accuracy of 0.29 on the final split: about ±0.04
    assert 0.25 < low < 0.29 < high < 0.34


def test_wilson_refuses_impossible_counts_and_is_uninformative_without_trials():
    assert wilson(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson(11, 10)


def test_sign_test_is_the_exact_two_sided_binomial_tail():
    assert sign_test(0, 5) == pytest.approx(2 / 32)  # both tails of a 5-0 split
    assert sign_test(9, 1) == pytest.approx(2 * (1 + 10) / 1024)
    assert sign_test(2, 8) == pytest.approx(2 * (1 + 10 + 45) / 1024)
    assert sign_test(5, 5) == 1.0 and sign_test(0, 0) == 1.0  # capped at 1; no discordant pairs, no evidence
    assert sign_test(28, 9) < 0.01 < sign_test(12, 6)


def test_paired_counts_only_the_questions_both_systems_answered():
    agent = {"a": True, "b": True, "c": False, "d": False, "e": True}
    baseline = {"a": True, "b": False, "c": True, "d": False, "f": True}
    result = paired(agent, baseline)
    assert result == {"questions": 4, "first_only": 1, "second_only": 1, "p_value": 1.0}
