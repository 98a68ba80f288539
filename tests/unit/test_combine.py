"""The combiners on hand-made answers: the weighted mean, vote fractions and the tie rule."""

from __future__ import annotations

import numpy as np

from maas.ensemble.combine import TIE_BONUS, combine


def rows(*values: list[float]) -> np.ndarray:
    return np.asarray(values, np.float32)


def test_mean_is_the_weighted_mean() -> None:
    a, b = rows([0.2, 0.8]), rows([0.6, 0.4])
    (mean,) = combine("mean", [3.0, 1.0], [[a], [b]])
    np.testing.assert_allclose(mean, [[0.3, 0.7]], atol=1e-7)
    assert mean.dtype == np.float32


def test_a_majority_wins_without_a_bonus() -> None:
    answers = [[rows([0.9, 0.1, 0.0])], [rows([0.6, 0.4, 0.0])], [rows([0.1, 0.0, 0.9])]]
    (votes,) = combine("vote", [1.0, 1.0, 1.0], answers)
    np.testing.assert_allclose(votes, [[2 / 3, 0.0, 1 / 3]], atol=1e-7)


def test_a_tie_goes_to_the_higher_weighted_mean_even_at_a_higher_index() -> None:
    answers = [[rows([0.1, 0.6, 0.3])], [rows([0.05, 0.25, 0.7])]]
    (votes,) = combine("vote", [1.0, 1.0], answers)
    np.testing.assert_allclose(votes, [[0.0, 0.5, 0.5 + TIE_BONUS]], atol=1e-7)
    assert int(votes.argmax()) == 2


def test_weights_can_break_what_would_be_a_tie() -> None:
    answers = [[rows([0.1, 0.6, 0.3])], [rows([0.05, 0.25, 0.7])]]
    (votes,) = combine("vote", [2.0, 1.0], answers)
    np.testing.assert_allclose(votes, [[0.0, 2 / 3, 1 / 3]], atol=1e-7)


def test_three_way_ties_of_three_voters() -> None:
    answers = [[rows([0.5, 0.3, 0.2])], [rows([0.0, 0.6, 0.4])], [rows([0.1, 0.1, 0.8])]]
    (votes,) = combine("vote", [1.0, 1.0, 1.0], answers)
    # Means: 0.2, 0.333, 0.467: class 2 wins the three-way tie.
    np.testing.assert_allclose(votes, [[1 / 3, 1 / 3, 1 / 3 + TIE_BONUS]], atol=1e-7)
