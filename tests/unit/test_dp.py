"""The differential-privacy mechanism: OpenDP's scale and accuracy, and noise whose spread matches the stated
error (many draws; bounds loose enough never to flake)."""

from __future__ import annotations

import pytest
from opendp.accuracy import discrete_laplacian_scale_to_accuracy

from renkei.hub.disclosure.dp import mechanism

DRAWS = 4000


def test_the_scale_is_sensitivity_over_epsilon_and_the_map_within_epsilon() -> None:
    for epsilon, sensitivity, scale in [(0.5, 1, 2.0), (1.0, 2, 2.0), (0.1, 1, 10.0)]:
        m = mechanism(epsilon, sensitivity)
        assert m.scale == pytest.approx(scale, rel=1e-6)
        assert m.privacy_loss <= epsilon
        assert m.accuracy(0.95) == discrete_laplacian_scale_to_accuracy(m.scale, 0.05)


def test_noise_exceeds_the_stated_error_about_five_times_in_a_hundred() -> None:
    """P(|noise| ≥ error) = 5%: in 4000 draws about 200 (σ ≈ 14); 100..320 is more than 7σ either way."""
    m = mechanism(0.5, 1)
    error = m.accuracy(0.95)
    noisy = m.release([50] * DRAWS)
    beyond = sum(abs(v - 50) >= error for v in noisy)
    assert 100 <= beyond <= 320
    # and the noise is really there: far more than half the draws move
    assert sum(v != 50 for v in noisy) > DRAWS // 2


def test_a_smaller_epsilon_gives_a_wider_spread() -> None:
    wide, narrow = mechanism(0.1, 1), mechanism(1.0, 1)
    assert wide.accuracy(0.95) > 5 * narrow.accuracy(0.95)
    spread = {m.epsilon: sum(abs(v) for v in m.release([0] * 1000)) for m in (wide, narrow)}
    assert spread[0.1] > 3 * spread[1.0]  # expected ratio ≈ 10


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="epsilon"):
        mechanism(0.0, 1)
    with pytest.raises(ValueError, match="sensitivity"):
        mechanism(1.0, 0)
    assert mechanism(1.0, 1).release([]) == []
