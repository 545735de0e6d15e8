"""papernets.stats against scipy and torch, by hand-worked examples, and by the properties derived in docs/math.md."""

import math

import numpy as np
import pytest
import scipy.integrate
import scipy.stats
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from papernets import stats
from papernets.errors import PapernetsError

PROPERTY = settings(max_examples=200, deadline=None)


def normalized(weights) -> np.ndarray:
    weights = np.asarray(weights, dtype=np.float64)
    return weights / weights.sum(axis=-1, keepdims=True)


# A distribution over 1 to 8 outcomes, with exact zeros drawn often enough to exercise 0 log 0.
distributions = st.integers(1, 8).flatmap(
    lambda size: st.lists(st.one_of(st.just(0.0), st.floats(1e-3, 10.0)), min_size=size, max_size=size)
).filter(lambda weights: sum(weights) > 0).map(normalized)


def distribution_pairs():
    return st.integers(1, 8).flatmap(
        lambda size: st.tuples(
            *[st.lists(st.one_of(st.just(0.0), st.floats(1e-3, 10.0)), min_size=size, max_size=size)] * 2
        )
    ).filter(lambda pair: sum(pair[0]) > 0 and sum(pair[1]) > 0).map(lambda pair: (normalized(pair[0]), normalized(pair[1])))


# ---------------------------------------------------------------------------------------------------------
# Fixed cases against scipy and closed forms.

P = np.array([[0.1, 0.2, 0.7], [0.5, 0.5, 0.0], [1.0, 0.0, 0.0]])
Q = np.array([[0.3, 0.3, 0.4], [0.2, 0.3, 0.5], [0.9, 0.05, 0.05]])


def test_entropy_and_kl_match_scipy_along_either_axis():
    np.testing.assert_allclose(stats.entropy(P), scipy.stats.entropy(P, axis=-1), rtol=1e-12)
    np.testing.assert_allclose(stats.kl_divergence(P, Q), scipy.stats.entropy(P, Q, axis=-1), rtol=1e-12)
    np.testing.assert_allclose(stats.entropy(P.T, axis=0), scipy.stats.entropy(P.T, axis=0), rtol=1e-12)
    np.testing.assert_allclose(stats.kl_divergence(P.T, Q.T, axis=0), scipy.stats.entropy(P.T, Q.T, axis=0), rtol=1e-12)
    np.testing.assert_allclose(stats.cross_entropy(P, Q), -(P * np.log(Q)).sum(-1), rtol=1e-12)


def test_logits_give_the_same_values_as_their_softmax():
    logits = np.array([[2.0, -1.0, 0.5], [0.0, 0.0, 0.0], [30.0, -30.0, 1.0]])
    q = scipy.special.softmax(logits, axis=-1)
    np.testing.assert_allclose(stats.cross_entropy(P, logits=logits), stats.cross_entropy(P, q), rtol=1e-10)
    np.testing.assert_allclose(stats.kl_divergence(P, logits=logits), stats.kl_divergence(P, q), rtol=1e-10)


def test_batched_over_leading_axes():
    p = normalized(np.random.default_rng(0).random((2, 3, 4)))
    q = normalized(np.random.default_rng(1).random((2, 3, 4)))
    assert stats.entropy(p).shape == (2, 3)
    np.testing.assert_allclose(stats.kl_divergence(p, q)[1, 2], scipy.stats.entropy(p[1, 2], q[1, 2]), rtol=1e-12)
    np.testing.assert_allclose(stats.kl_divergence(p, q[0, 0]), scipy.stats.entropy(p, q[0, 0], axis=-1), rtol=1e-12)


def test_gaussian_mle_matches_scipy_norm_fit():
    x = np.random.default_rng(2).normal(3.0, 2.0, size=500)
    mean, var = stats.gaussian_mle(x)
    loc, scale = scipy.stats.norm.fit(x)
    assert mean == pytest.approx(loc, rel=1e-12)
    assert var == pytest.approx(scale**2, rel=1e-12)
    _, unbiased_var = stats.gaussian_mle(x, unbiased=True)
    assert unbiased_var == pytest.approx(np.var(x, ddof=1), rel=1e-12)
    assert unbiased_var == pytest.approx(var * 500 / 499, rel=1e-12)


@pytest.mark.parametrize("axis", [0, 1, (0, 2, 3), None])
def test_gaussian_mle_of_uint8_images_in_chunks_is_exact(monkeypatch, axis):
    monkeypatch.setattr(stats, "_CHUNK_ELEMENTS", 997)  # many uneven chunks
    images = np.random.default_rng(3).integers(0, 256, size=(50, 3, 8, 8), dtype=np.uint8)
    mean, var = stats.gaussian_mle(images, axis=axis)
    as_float = images.astype(np.float64)
    assert mean.dtype == var.dtype == np.float64
    np.testing.assert_allclose(mean, as_float.mean(axis=axis), rtol=1e-13)
    np.testing.assert_allclose(var, as_float.var(axis=axis), rtol=1e-12)
    torch_mean, torch_var = stats.gaussian_mle(torch.from_numpy(images), axis=axis)
    np.testing.assert_allclose(torch_mean.numpy(), mean, rtol=1e-12)
    np.testing.assert_allclose(torch_var.numpy(), var, rtol=1e-12)


def test_gaussian_mle_keeps_float32():
    mean, var = stats.gaussian_mle(np.arange(12, dtype=np.float32).reshape(4, 3))
    assert mean.dtype == var.dtype == np.float32
    np.testing.assert_allclose(var, [11.25, 11.25, 11.25])


@pytest.mark.parametrize(("mean_p", "var_p", "mean_q", "var_q"), [(0.0, 1.0, 0.0, 1.0), (1.0, 0.5, -0.5, 2.0), (-2.0, 3.0, 1.0, 0.7)])
def test_kl_gaussian_equals_numerical_integration(mean_p, var_p, mean_q, var_q):
    p = scipy.stats.norm(mean_p, math.sqrt(var_p))
    q = scipy.stats.norm(mean_q, math.sqrt(var_q))
    integral, _ = scipy.integrate.quad(lambda x: p.pdf(x) * (p.logpdf(x) - q.logpdf(x)), -40, 40, limit=200)
    assert stats.kl_gaussian(mean_p, var_p, mean_q, var_q) == pytest.approx(integral, rel=1e-7, abs=1e-10)


def test_kl_diagonal_gaussian_equals_monte_carlo():
    rng = np.random.default_rng(4)
    mean_p, var_p = np.array([0.0, 1.0, -1.0]), np.array([1.0, 0.5, 2.0])
    mean_q, var_q = np.array([0.5, 0.0, -1.0]), np.array([1.5, 1.0, 1.0])
    samples = rng.normal(mean_p, np.sqrt(var_p), size=(200_000, 3))
    log_ratio = scipy.stats.norm(mean_p, np.sqrt(var_p)).logpdf(samples) - scipy.stats.norm(mean_q, np.sqrt(var_q)).logpdf(samples)
    monte_carlo = log_ratio.sum(axis=1)
    standard_error = monte_carlo.std() / math.sqrt(len(monte_carlo))
    closed_form = stats.kl_diagonal_gaussian(mean_p, var_p, mean_q, var_q)
    assert abs(closed_form - monte_carlo.mean()) < 5 * standard_error
    assert closed_form == pytest.approx(stats.kl_gaussian(mean_p, var_p, mean_q, var_q).sum(), rel=1e-15)


def test_categorical_mle_smoothing_and_log_likelihood():
    counts = np.array([3, 0, 7])
    np.testing.assert_allclose(stats.categorical_mle(counts), [0.3, 0.0, 0.7])
    np.testing.assert_allclose(stats.categorical_mle(counts, smoothing=1.0), [4 / 13, 1 / 13, 8 / 13])
    assert stats.categorical_log_likelihood(counts, [0.3, 0.0, 0.7]) == pytest.approx(3 * math.log(0.3) + 7 * math.log(0.7))
    assert stats.categorical_log_likelihood(counts, [0.3, 0.7, 0.0]) == -math.inf


def test_gaussian_log_likelihood_matches_scipy_and_takes_mle_shapes():
    x = np.random.default_rng(5).normal(size=(20, 3))
    mean, var = stats.gaussian_mle(x, axis=1)
    expected = scipy.stats.norm(mean[:, None], np.sqrt(var[:, None])).logpdf(x).sum(axis=1)
    np.testing.assert_allclose(stats.gaussian_log_likelihood(x, mean, var, axis=1), expected, rtol=1e-12)
    assert stats.gaussian_log_likelihood(x, 0.0, 1.0, axis=None) == pytest.approx(scipy.stats.norm.logpdf(x).sum())


def test_bayes_rule_on_a_diagnostic_test():
    # 1% prevalence, 90% sensitivity, 5% false positives: P(ill | positive) = 0.009 / (0.009 + 0.0495).
    posterior = stats.bayes_posterior([0.01, 0.99], [0.90, 0.05])
    np.testing.assert_allclose(posterior, [0.009 / 0.0585, 0.0495 / 0.0585])
    batched = stats.bayes_posterior(np.array([[0.5, 0.5], [0.01, 0.99]]), np.array([[0.2, 0.6], [0.90, 0.05]]))
    np.testing.assert_allclose(batched, [[0.25, 0.75], posterior])
    one_prior_many_observations = stats.bayes_posterior(np.array([0.01, 0.99]), np.array([[0.90, 0.05], [0.10, 0.95]]))
    np.testing.assert_allclose(one_prior_many_observations[0], posterior)
    np.testing.assert_allclose(one_prior_many_observations[1], [0.001 / 0.9415, 0.9405 / 0.9415])


def test_conjugate_updates():
    alpha, beta = stats.beta_bernoulli_update(2.0, 3.0, successes=7, failures=1)
    assert (alpha, beta) == (9.0, 4.0)
    np.testing.assert_array_equal(stats.dirichlet_categorical_update([1.0, 1.0, 1.0], [5, 0, 2]), [6.0, 1.0, 3.0])
    # The Dirichlet posterior mean equals the categorical MLE with smoothing alpha (add-alpha estimator).
    posterior = stats.dirichlet_categorical_update(np.full(3, 0.5), [5, 0, 2])
    np.testing.assert_allclose(posterior / posterior.sum(), stats.categorical_mle([5, 0, 2], smoothing=0.5))


def test_expected_calibration_error_by_hand():
    probs = np.array([[0.9, 0.1], [0.85, 0.15], [0.3, 0.7], [0.65, 0.35], [0.45, 0.55], [0.5, 0.5], [0.6, 0.4]])
    labels = np.array([0, 1, 1, 0, 0, 0, 1])
    ece, bins = stats.expected_calibration_error(probs, labels, n_bins=5)
    # (0.4, 0.6]: confidences .55 .5 .6, right 0 1 0 -> 0.55 vs 1/3; (0.6, 0.8]: .7 .65 both right -> 0.675 vs 1;
    # (0.8, 1]: .9 .85, one right -> 0.875 vs 0.5.  ECE = (3 * 0.21666 + 2 * 0.325 + 2 * 0.375) / 7 = 2.05 / 7.
    assert ece == pytest.approx(2.05 / 7, rel=1e-12)
    np.testing.assert_array_equal(bins.count, [0, 0, 3, 2, 2])
    np.testing.assert_allclose(bins.confidence[2:], [0.55, 0.675, 0.875])
    np.testing.assert_allclose(bins.accuracy[2:], [1 / 3, 1.0, 0.5])
    assert np.isnan(bins.confidence[:2]).all() and np.isnan(bins.accuracy[:2]).all()
    np.testing.assert_allclose(bins.lower, [0.0, 0.2, 0.4, 0.6, 0.8])
    torch_ece, _ = stats.expected_calibration_error(torch.tensor(probs), torch.tensor(labels), n_bins=5)
    assert torch_ece == ece


def test_calibration_bins_are_right_closed():
    # Edges 0, 0.25, 0.5, 0.75, 1 are exact in binary: 0.5 belongs to (0.25, 0.5], 0.75 to (0.5, 0.75].
    ece, bins = stats.expected_calibration_error(np.array([[0.5, 0.5], [0.75, 0.25]]), np.array([0, 1]), n_bins=4)
    np.testing.assert_array_equal(bins.count, [0, 1, 1, 0])
    assert ece == 0.5 * abs(1.0 - 0.5) + 0.5 * abs(0.0 - 0.75)


# ---------------------------------------------------------------------------------------------------------
# Conventions: 0 log 0 = 0, +inf where q = 0 < p, nothing infinite from finite logits.


@pytest.mark.parametrize("to_array", [np.asarray, lambda values: torch.tensor(values, dtype=torch.float64)], ids=["numpy", "torch"])
def test_zero_log_zero_and_infinity(to_array):
    p, q = to_array([0.0, 0.5, 0.5]), to_array([0.0, 0.5, 0.5])
    assert float(stats.entropy(to_array([0.0, 1.0]))) == 0.0
    assert float(stats.kl_divergence(p, q)) == 0.0
    assert float(stats.cross_entropy(p, q)) == pytest.approx(math.log(2))
    assert float(stats.kl_divergence(p, to_array([0.5, 0.5, 0.0]))) == math.inf
    assert float(stats.cross_entropy(p, to_array([0.5, 0.5, 0.0]))) == math.inf
    assert float(stats.categorical_log_likelihood(to_array([0.0, 2.0]), to_array([0.0, 1.0]))) == 0.0
    extreme = to_array([1000.0, -1000.0, 0.0])
    assert float(stats.cross_entropy(to_array([0.0, 1.0, 0.0]), logits=extreme)) == pytest.approx(2000.0)
    assert float(stats.kl_divergence(to_array([0.0, 1.0, 0.0]), logits=extreme)) == pytest.approx(2000.0)
    masked = to_array([0.0, -math.inf, 1.0])
    assert float(stats.cross_entropy(to_array([0.5, 0.0, 0.5]), logits=masked)) == pytest.approx(math.log(1 + math.e) - 0.5)


def test_masked_logits_keep_gradients_finite():
    logits = torch.tensor([[0.0, -math.inf, 1.0]], requires_grad=True)
    target = torch.tensor([[0.5, 0.0, 0.5]])
    stats.kl_divergence(target, logits=logits).sum().backward()
    torch.testing.assert_close(logits.grad, torch.softmax(logits.detach(), -1) - target)  # d KL / d z = q - p


# ---------------------------------------------------------------------------------------------------------
# Properties (docs/math.md).


@PROPERTY
@given(distribution_pairs())
def test_kl_is_nonnegative_zero_only_for_equal_distributions_and_obeys_pinsker(pair):
    p, q = pair
    assert stats.kl_divergence(p, p) == 0.0
    divergence = stats.kl_divergence(p, q)
    # Pinsker: KL >= (1/2) ||p - q||_1^2, so KL > 0 whenever p != q.
    assert divergence >= 0.5 * np.abs(p - q).sum() ** 2 - 1e-12
    if np.abs(p - q).max() > 1e-6:
        assert divergence > 0


@PROPERTY
@given(distribution_pairs())
def test_cross_entropy_is_entropy_plus_kl(pair):
    p, q = pair
    cross = stats.cross_entropy(p, q)
    decomposed = stats.entropy(p) + stats.kl_divergence(p, q)
    if math.isinf(cross):
        assert decomposed == math.inf
    else:
        assert cross == pytest.approx(decomposed, rel=1e-9, abs=1e-12)


@PROPERTY
@given(
    st.lists(st.floats(-100, 100), min_size=2, max_size=40),
    st.floats(-5, 5).filter(lambda shift: shift != 0),
    st.floats(-0.9, 10).filter(lambda scale: scale != 0),
)
def test_gaussian_mle_maximises_the_log_likelihood(values, mean_shift, var_scale):
    x = np.array(values)
    mean, var = stats.gaussian_mle(x)
    assume(var > 1e-6)
    best = stats.gaussian_log_likelihood(x, mean, var)
    tolerance = 1e-9 * abs(best)
    assert stats.gaussian_log_likelihood(x, mean + mean_shift, var) <= best + tolerance
    assert stats.gaussian_log_likelihood(x, mean, var * (1 + var_scale)) <= best + tolerance
    assert stats.gaussian_log_likelihood(x, mean + mean_shift, var * (1 + var_scale)) <= best + tolerance


@PROPERTY
@given(st.lists(st.integers(0, 50), min_size=2, max_size=6).filter(lambda counts: sum(counts) > 0), st.integers(0, 2**32 - 1))
def test_categorical_mle_maximises_the_log_likelihood_over_the_simplex(counts, seed):
    counts = np.array(counts)
    best = stats.categorical_log_likelihood(counts, stats.categorical_mle(counts))
    for other in np.random.default_rng(seed).dirichlet(np.ones(len(counts)), size=20):
        assert stats.categorical_log_likelihood(counts, other / other.sum()) <= best + 1e-9 * (1 + abs(best))


@PROPERTY
@given(distributions.flatmap(lambda prior: st.tuples(st.just(prior), st.lists(st.floats(0, 1), min_size=len(prior), max_size=len(prior)))))
def test_posterior_is_a_distribution(prior_and_likelihood):
    prior, likelihood = prior_and_likelihood
    likelihood = np.array(likelihood)
    assume((prior * likelihood).sum() > 1e-300)
    posterior = stats.bayes_posterior(prior, likelihood)
    assert posterior.sum() == pytest.approx(1.0, rel=1e-12)
    assert (posterior >= 0).all() and (posterior[prior == 0] == 0).all()


# ---------------------------------------------------------------------------------------------------------
# torch: agreement with numpy, autograd, dtype, and equality with torch's own losses.

RNG = np.random.default_rng(6)
P_BATCH, Q_BATCH, LOGITS = normalized(RNG.random((4, 5))), normalized(RNG.random((4, 5))), RNG.normal(size=(4, 5))
X = RNG.normal(size=(6, 3))
POSITIVE = RNG.random(3) + 0.5

AGREEMENT_CASES = {
    "entropy": (stats.entropy, (P_BATCH,), {}),
    "cross_entropy": (stats.cross_entropy, (P_BATCH, Q_BATCH), {}),
    "cross_entropy_logits": (stats.cross_entropy, (P_BATCH,), {"logits": LOGITS}),
    "kl_divergence": (stats.kl_divergence, (P_BATCH.T.copy(), Q_BATCH.T.copy()), {"axis": 0}),
    "kl_divergence_logits": (stats.kl_divergence, (P_BATCH,), {"logits": LOGITS}),
    "kl_gaussian": (stats.kl_gaussian, (X[0], POSITIVE, X[1], POSITIVE[::-1].copy()), {}),
    "kl_diagonal_gaussian": (stats.kl_diagonal_gaussian, (X, POSITIVE, 0.0, 1.0), {}),
    "gaussian_mle_mean": (lambda x: stats.gaussian_mle(x, unbiased=True)[0], (X,), {}),
    "gaussian_mle_var": (lambda x: stats.gaussian_mle(x, unbiased=True)[1], (X,), {}),
    "gaussian_log_likelihood": (stats.gaussian_log_likelihood, (X, X[0], POSITIVE), {}),
    "categorical_mle": (stats.categorical_mle, (np.array([[3.0, 0.0, 1.0], [1.0, 1.0, 1.0]]),), {"smoothing": 0.5}),
    "categorical_log_likelihood": (stats.categorical_log_likelihood, (np.array([3.0, 0.0, 1.0]), Q_BATCH[0, :3] / Q_BATCH[0, :3].sum()), {}),
    "bayes_posterior": (stats.bayes_posterior, (P_BATCH, POSITIVE[0] * Q_BATCH), {}),
    "beta_bernoulli_update": (lambda *a: stats.beta_bernoulli_update(*a)[0], (POSITIVE, POSITIVE, 2.0, 3.0), {}),
    "dirichlet_categorical_update": (stats.dirichlet_categorical_update, (POSITIVE, np.array([1.0, 0.0, 4.0])), {}),
}


@pytest.mark.parametrize("name", AGREEMENT_CASES)
def test_torch_and_numpy_agree(name):
    function, arguments, keywords = AGREEMENT_CASES[name]
    expected = function(*arguments, **keywords)
    as_tensor = lambda value: torch.tensor(value) if isinstance(value, np.ndarray) else value  # noqa: E731
    result = function(*map(as_tensor, arguments), **{key: as_tensor(value) for key, value in keywords.items()})
    assert isinstance(result, torch.Tensor) and result.dtype == torch.float64
    np.testing.assert_allclose(result.numpy(), expected, rtol=1e-12, atol=1e-14)


def test_torch_keeps_float32_and_mixes_with_numpy():
    p = torch.tensor(P_BATCH, dtype=torch.float32)
    assert stats.entropy(p).dtype == torch.float32
    assert stats.kl_divergence(p, logits=LOGITS).dtype == torch.float32  # numpy logits follow the tensor's dtype
    assert stats.kl_gaussian(torch.zeros(3, dtype=torch.float32), 1.0, 0.5, 2.0).dtype == torch.float32


def test_tolerance_follows_the_dtype():
    off_by = lambda epsilon, dtype: torch.tensor([0.5, 0.5 + epsilon], dtype=dtype)  # noqa: E731
    stats.entropy(off_by(5e-7, torch.float64))
    stats.entropy(off_by(5e-6, torch.float32))
    stats.entropy(torch.randn(64, 1000).softmax(-1))
    stats.entropy(torch.randn(64, 1000).softmax(-1).to(torch.bfloat16))
    for epsilon, dtype in [(5e-6, torch.float64), (1e-4, torch.float32), (0.1, torch.bfloat16)]:
        with pytest.raises(ValueError, match="does not sum to one"):
            stats.entropy(off_by(epsilon, dtype))


def test_gradients_flow_through_every_torch_function():
    torch.manual_seed(0)
    weights, logits = torch.randn(3, 4, dtype=torch.float64, requires_grad=True), torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    target = torch.softmax(torch.randn(3, 4, dtype=torch.float64), -1)
    softmax = lambda w: torch.softmax(w, -1)  # noqa: E731 — keeps the gradcheck perturbations on the simplex
    checks = {
        "entropy": (lambda w: stats.entropy(softmax(w)), (weights,)),
        "cross_entropy": (lambda w, z: stats.cross_entropy(softmax(w), softmax(z)), (weights, logits)),
        "cross_entropy_logits": (lambda w, z: stats.cross_entropy(softmax(w), logits=z), (weights, logits)),
        "kl_divergence": (lambda w, z: stats.kl_divergence(softmax(w), softmax(z)), (weights, logits)),
        "kl_divergence_logits": (lambda z: stats.kl_divergence(target, logits=z), (logits,)),
        "kl_gaussian": (lambda m, v: stats.kl_gaussian(m, v.exp(), 0.0, 1.0), (weights, logits)),
        "gaussian_mle": (lambda x: stats.gaussian_mle(x, axis=1), (weights,)),
        "gaussian_log_likelihood": (lambda x, m: stats.gaussian_log_likelihood(x, m, 2.0), (weights, logits[0])),
        "bayes_posterior": (lambda w, v: stats.bayes_posterior(softmax(w), v.exp()), (weights, logits)),
    }
    for name, (function, inputs) in checks.items():
        assert torch.autograd.gradcheck(function, inputs), name


def test_label_smoothing_equals_torch_cross_entropy():
    torch.manual_seed(0)
    logits, labels = torch.randn(32, 10, dtype=torch.float64), torch.randint(0, 10, (32,))
    for smoothing in (0.0, 0.1, 0.5):
        targets = stats.label_smoothing_targets(labels, 10, smoothing, dtype=torch.float64)
        ours = stats.cross_entropy(targets, logits=logits).mean()
        torch.testing.assert_close(ours, F.cross_entropy(logits, labels, label_smoothing=smoothing), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(stats.label_smoothing_targets(np.array([2, 0]), 3, 0.3), [[0.1, 0.1, 0.8], [0.8, 0.1, 0.1]])


def test_distillation_kl_equals_torch_kl_div():
    torch.manual_seed(1)
    teacher, student = torch.randn(16, 10), torch.randn(16, 10, requires_grad=True)
    temperature = 4.0
    ours = stats.kl_divergence(torch.softmax(teacher / temperature, -1), logits=student / temperature).mean()
    theirs = F.kl_div(torch.log_softmax(student / temperature, -1), torch.softmax(teacher / temperature, -1), reduction="batchmean")
    torch.testing.assert_close(ours, theirs)
    (ours_grad,) = torch.autograd.grad(ours, student)
    (theirs_grad,) = torch.autograd.grad(theirs, student)
    torch.testing.assert_close(ours_grad, theirs_grad)


# ---------------------------------------------------------------------------------------------------------
# Every invalid input is a one-sentence ValueError (a PapernetsError).

GOOD = np.array([0.5, 0.5])
INVALID_CASES = {
    "not summing to one": lambda: stats.entropy([0.5, 0.6]),
    "negative probability": lambda: stats.entropy([-0.1, 1.1]),
    "NaN probability": lambda: stats.entropy([math.nan, 1.0]),
    "negative torch probability": lambda: stats.kl_divergence(torch.tensor([-0.1, 1.1]), logits=torch.zeros(2)),
    "q not summing to one": lambda: stats.kl_divergence(GOOD, [0.5, 0.4]),
    "empty distribution": lambda: stats.entropy(np.zeros(0)),
    "scalar distribution": lambda: stats.entropy(1.0),
    "axis out of range": lambda: stats.entropy(GOOD, axis=1),
    "neither q nor logits": lambda: stats.cross_entropy(GOOD),
    "both q and logits": lambda: stats.cross_entropy(GOOD, GOOD, logits=GOOD),
    "mismatched outcomes": lambda: stats.kl_divergence(GOOD, [0.2, 0.3, 0.5]),
    "mismatched logits": lambda: stats.cross_entropy(np.full((2, 3), 1 / 3), logits=np.zeros((3, 2))),
    "zero variance": lambda: stats.kl_gaussian(0.0, 0.0, 0.0, 1.0),
    "negative variance": lambda: stats.kl_diagonal_gaussian([0.0, 0.0], [1.0, 1.0], [0.0, 0.0], [1.0, -1.0]),
    "mismatched Gaussians": lambda: stats.kl_gaussian(np.zeros(2), np.ones(3), 0.0, 1.0),
    "empty data": lambda: stats.gaussian_mle([]),
    "empty batch": lambda: stats.gaussian_mle(np.zeros((0, 3))),
    "one value unbiased": lambda: stats.gaussian_mle([1.0], unbiased=True),
    "repeated axis": lambda: stats.gaussian_mle(np.ones((2, 2)), axis=(0, -2)),
    "non-numeric data": lambda: stats.gaussian_mle(np.array(["a", "b"])),
    "log-likelihood variance": lambda: stats.gaussian_log_likelihood([1.0, 2.0], 0.0, 0.0),
    "log-likelihood shapes": lambda: stats.gaussian_log_likelihood(np.ones((3, 2)), np.zeros(4), 1.0),
    "negative counts": lambda: stats.categorical_mle([3, -1]),
    "all-zero counts": lambda: stats.categorical_mle([0, 0]),
    "negative smoothing": lambda: stats.categorical_mle([1, 2], smoothing=-1.0),
    "counts against bad probs": lambda: stats.categorical_log_likelihood([1, 2], [0.5, 0.6]),
    "zero evidence": lambda: stats.bayes_posterior([1.0, 0.0], [0.0, 1.0]),
    "unnormalised prior": lambda: stats.bayes_posterior([1.0, 1.0], [0.5, 0.5]),
    "negative likelihood": lambda: stats.bayes_posterior(GOOD, [0.5, -0.5]),
    "non-positive beta prior": lambda: stats.beta_bernoulli_update(0.0, 1.0, 1, 1),
    "negative successes": lambda: stats.beta_bernoulli_update(1.0, 1.0, -1, 1),
    "non-positive Dirichlet prior": lambda: stats.dirichlet_categorical_update([1.0, 0.0], [1, 1]),
    "negative Dirichlet counts": lambda: stats.dirichlet_categorical_update([1.0, 1.0], [1, -1]),
    "label out of range": lambda: stats.label_smoothing_targets(torch.tensor([0, 3]), 3, 0.1),
    "float labels": lambda: stats.label_smoothing_targets(np.array([0.0, 1.0]), 3, 0.1),
    "smoothing above one": lambda: stats.label_smoothing_targets(torch.tensor([0]), 3, 1.5),
    "no classes": lambda: stats.label_smoothing_targets(torch.tensor([0]), 0, 0.1),
    "calibration of one row": lambda: stats.expected_calibration_error(GOOD, [0]),
    "calibration labels": lambda: stats.expected_calibration_error(np.array([GOOD]), [0, 1]),
    "calibration bins": lambda: stats.expected_calibration_error(np.array([GOOD]), [0], n_bins=0),
}


@pytest.mark.parametrize("name", INVALID_CASES)
def test_invalid_input_is_one_clear_value_error(name):
    with pytest.raises(ValueError) as raised:
        INVALID_CASES[name]()
    assert isinstance(raised.value, PapernetsError)
    message = str(raised.value)
    assert "\n" not in message and message.endswith(".") and "; " in message  # the problem; the fix
