"""Temperature scaling and expected calibration error: known answers on generated scores."""
import numpy as np
import pytest
from scipy.special import softmax

from utils.models.calibration import (apply_temperature, calibration_summary, expected_calibration_error,
                               fit_temperature, log_loss, log_probs, reliability_curve)

N, C = 20_000, 5


def calibrated_logits(rng: np.random.Generator, n: int = N, c: int = C) -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels drawn from softmax(logits): calibrated by construction."""
    z = rng.normal(0.0, 2.0, (n, c))
    cumulative = softmax(z, axis=1).cumsum(axis=1)
    y = np.minimum((rng.random((n, 1)) > cumulative).sum(axis=1), c - 1)
    return z, y


@pytest.mark.parametrize("true_t", [2.5, 0.5])
def test_recovers_known_temperature_and_improves_calibration(true_t):
    z, y = calibrated_logits(np.random.default_rng(0))
    distorted = z * true_t  # softmax(distorted / true_t) is calibrated
    t = fit_temperature(distorted, y)
    assert t == pytest.approx(true_t, rel=0.05)
    summary = calibration_summary(y, distorted, t)
    assert summary["temperature"] == t
    assert summary["log_loss_after"] < summary["log_loss_before"]
    assert summary["ece_after"] < summary["ece_before"] / 3
    assert summary["ece_after"] < 0.02


def test_log_probabilities_give_the_same_temperature_as_logits():
    z, y = calibrated_logits(np.random.default_rng(1), n=5000)
    over = 3.0 * z
    assert fit_temperature(log_probs(softmax(over, axis=1)), y) == pytest.approx(fit_temperature(over, y),
                                                                                 rel=1e-4)


def test_binary_sigmoid_logits_and_probabilities():
    rng = np.random.default_rng(2)
    z = rng.normal(0.0, 2.0, 20_000)
    y = (rng.random(z.size) < 1 / (1 + np.exp(-z))).astype(int)
    t = fit_temperature(3.0 * z, y)
    assert t == pytest.approx(3.0, rel=0.05)
    p = apply_temperature(3.0 * z, t)
    assert p.shape == z.shape  # 1-D in, positive-class probability out
    np.testing.assert_allclose(p, 1 / (1 + np.exp(-3.0 * z / t)), rtol=1e-12)
    # the same scores given as probabilities of the positive class
    assert fit_temperature(log_probs(1 / (1 + np.exp(-3.0 * z))), y) == pytest.approx(t, rel=1e-4)
    summary = calibration_summary(y, 3.0 * z, t)
    assert summary["ece_after"] < summary["ece_before"]
    column = (3.0 * z)[:, None]  # a Keras sigmoid unit's (N, 1) output
    assert fit_temperature(column, y) == t
    np.testing.assert_array_equal(apply_temperature(column, t), p[:, None])
    assert calibration_summary(y, column, t) == summary


def test_temperature_keeps_predictions_and_t1_is_softmax():
    z, _ = calibrated_logits(np.random.default_rng(3), n=500)
    np.testing.assert_allclose(apply_temperature(z, 1.0), softmax(z, axis=1), rtol=1e-12)
    for t in (0.3, 4.0):
        np.testing.assert_array_equal(apply_temperature(z, t).argmax(axis=1), z.argmax(axis=1))


def test_ece_known_answers():
    n = 1000
    y = np.zeros(n, dtype=int)
    confident = np.tile([0.9, 0.1], (n, 1))
    y_90 = np.where(np.arange(n) < 900, 0, 1)  # 90 % right at confidence 0.9
    assert expected_calibration_error(y_90, confident) == pytest.approx(0.0, abs=1e-12)
    y_60 = np.where(np.arange(n) < 600, 0, 1)  # 60 % right at confidence 0.9
    assert expected_calibration_error(y_60, confident) == pytest.approx(0.3)
    assert expected_calibration_error(y, np.tile([1.0, 0.0], (n, 1))) == 0.0
    assert log_loss(y, np.tile([0.5, 0.5], (n, 1))) == pytest.approx(np.log(2))


def test_reliability_curve_bins():
    p = np.array([[0.95, 0.05], [0.55, 0.45], [0.52, 0.48], [1.0, 0.0]])
    y = np.array([0, 1, 0, 0])
    curve = reliability_curve(y, p, n_bins=10)
    np.testing.assert_allclose(curve.edges, np.linspace(0, 1, 11))
    assert curve.count.tolist() == [0, 0, 0, 0, 0, 2, 0, 0, 0, 2]  # 1.0 falls in the last, closed bin
    assert curve.confidence[5] == pytest.approx(0.535) and curve.accuracy[5] == 0.5
    assert curve.confidence[9] == pytest.approx(0.975) and curve.accuracy[9] == 1.0
    assert np.isnan(curve.accuracy[0])
    assert curve.ece == pytest.approx((2 * 0.035 + 2 * 0.025) / 4)


@pytest.mark.parametrize("call, message", [
    (lambda: fit_temperature(np.zeros((3, 2)), np.array([0, 1, 2])), "must lie in"),
    (lambda: fit_temperature(np.zeros((3, 2)), np.array([0.0, 1.0, 1.0])), "integer"),
    (lambda: fit_temperature(np.full((2, 2), np.nan), np.array([0, 1])), "NaN"),
    (lambda: apply_temperature(np.zeros((2, 2)), 0.0), "temperature must be > 0"),
    (lambda: log_loss(np.array([0, 1]), np.array([[0.7, 0.7], [0.5, 0.5]])), "sum to 1"),
    (lambda: expected_calibration_error(np.array([0, 1, 0]), np.full((2, 2), 0.5)), "shape"),
    (lambda: log_loss(np.array([], dtype=int), np.zeros((0, 3))), "no samples"),
])
def test_bad_input_is_a_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_separable_validation_gives_no_temperature():
    # every sample right: the NLL keeps falling as T -> 0, so no temperature is fitted
    scores = np.log(np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]))
    assert fit_temperature(scores, np.array([0, 1, 0])) == 1.0
