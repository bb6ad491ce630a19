"""The threshold's quantile and the share of new normal images expected above it."""

from __future__ import annotations

import numpy as np
import pytest

from piade.inference.calibration import expected_false_alarm_rate, threshold_from_normal


@pytest.mark.parametrize(("n", "quantile"), [(6, 0.99), (21, 0.99), (40, 0.9), (5, 0.5)])
def test_the_expected_false_alarm_rate_matches_a_simulation(n: int, quantile: float) -> None:
    rng = np.random.default_rng(0)
    trials = 20_000
    normal = rng.standard_normal((trials, n))
    thresholds = np.array([threshold_from_normal(row, quantile) for row in normal])
    above = (rng.standard_normal(trials) > thresholds).mean()  # one new normal image per trial
    assert above == pytest.approx(expected_false_alarm_rate(n, quantile), abs=0.012)


def test_the_rate_tends_to_one_minus_the_quantile_and_is_one_in_n_plus_one_at_the_maximum() -> None:
    assert expected_false_alarm_rate(100_000, 0.99) == pytest.approx(0.01, abs=1e-4)
    assert expected_false_alarm_rate(6, 1.0) == pytest.approx(1 / 7)
