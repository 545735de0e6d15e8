"""The math papernets rests on: entropy, cross-entropy, KL divergence, maximum likelihood and Bayes' rule.

Each function's derivation sits next to its name in docs/math.md. Where papernets uses them:
data statistics (`gaussian_mle` per channel, `categorical_mle` for class priors), the training losses
(label smoothing and distillation are `cross_entropy` / `kl_divergence` with `logits=`), and reports
(`entropy` of the predictive distribution, `expected_calibration_error`).

Conventions shared by every function:
- numpy arrays and torch tensors alike. If any argument is a tensor the computation runs in torch on that
  tensor's device, keeps autograd, and returns tensors of the promoted floating dtype of the tensor
  arguments (integer-only tensors become `torch.get_default_dtype()`); otherwise it runs in numpy and
  integer input becomes float64.
- Distributions lie along `axis` (default the last); leading axes are a batch.
- 0 log 0 = 0, also where q = 0 and p = 0; q = 0 where p > 0 gives +inf. With `logits=` the log-probabilities
  come from log-softmax (never the log of a softmax), so finite logits never give +inf.
- Invalid input raises `StatisticsError` (a `ValueError`) with one sentence naming the problem and the fix.
  A distribution must be non-negative and sum to one along its axis within a tolerance that follows the
  dtype's precision (`SUM_TOLERANCE`). Validation is a few vectorised reductions and one host sync: about
  30 µs for a 256 x 10 batch on one CPU thread, so it always runs (docs/math.md, "Cost of validation").
"""

from dataclasses import dataclass
from functools import reduce
import math
from typing import Any

import numpy as np
import torch

from papernets.errors import PapernetsError


class StatisticsError(PapernetsError, ValueError):
    """Input a statistics function cannot take: not a distribution, mismatched shapes, empty data."""


# How far from one a distribution's sum may be, by dtype. float64 as the contract asks; for the narrower
# types about 10 units of roundoff (float32 2^-24 is lifted to 1e-5 because a float32 softmax over 1,000
# classes, normalised by a float32 sum, is off by a few 1e-6), so a softmax computed in that dtype passes.
SUM_TOLERANCE = {
    "float64": 1e-6,
    "float32": 1e-5,
    "float16": 5e-3,  # 10 x 2^-11
    "bfloat16": 4e-2,  # 10 x 2^-8
}

_LOG_2PI = math.log(2 * math.pi)
_CHUNK_ELEMENTS = 1 << 22  # gaussian_mle's centred pass over numpy arrays: 32 MiB of float64 at a time


# ---------------------------------------------------------------------------------------------------------
# Dispatch between numpy and torch, and validation.


def _is_tensor(value: Any) -> bool:
    return isinstance(value, torch.Tensor)


def _as_float_arrays(*values: Any) -> list:
    """All values as one kind: tensors if any value is a tensor, else numpy arrays, in one floating dtype."""
    tensors = [value for value in values if _is_tensor(value)]
    if tensors:
        floating = [tensor.dtype for tensor in tensors if tensor.is_floating_point()]
        dtype = reduce(torch.promote_types, floating) if floating else torch.get_default_dtype()
        device = tensors[0].device
        return [
            value.to(dtype) if _is_tensor(value) else torch.as_tensor(value, dtype=dtype, device=device)
            for value in values
        ]
    arrays = [value if isinstance(value, (int, float)) else np.asarray(value) for value in values]
    dtype = np.result_type(*arrays)
    if not np.issubdtype(dtype, np.floating):
        dtype = np.float64
    try:
        return [np.asarray(array, dtype=dtype) for array in arrays]
    except (TypeError, ValueError):
        kinds = ", ".join(str(np.asarray(array).dtype) for array in arrays)
        raise StatisticsError(f"the arguments have dtypes {kinds}, not all numeric; pass numbers.") from None


def _dtype_name(array) -> str:
    return str(array.dtype).removeprefix("torch.")


def _all(condition) -> bool:
    """One host synchronisation for a whole boolean array."""
    return bool(condition.all())


def _check_axis(name: str, array, axis: int) -> int:
    if not isinstance(axis, (int, np.integer)) or not -array.ndim <= axis < array.ndim:
        raise StatisticsError(
            f"axis {axis!r} does not exist for {name} of shape {tuple(array.shape)}; "
            f"pass an integer axis in [-{array.ndim}, {array.ndim})."
        )
    if array.shape[axis] == 0:
        raise StatisticsError(f"{name} is empty along axis {axis} (shape {tuple(array.shape)}); pass at least one value.")
    return axis % array.ndim


def _check_axes(name: str, array, axis) -> tuple[int, ...]:
    """`axis` as a tuple of non-negative axes: an int, a tuple of ints, or None for all axes."""
    if axis is None:
        return tuple(range(array.ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    if not all(isinstance(a, (int, np.integer)) and -array.ndim <= a < array.ndim for a in axes):
        raise StatisticsError(
            f"axis {axis!r} does not exist for {name} of shape {tuple(array.shape)}; "
            f"pass integers in [-{array.ndim}, {array.ndim}) or None."
        )
    normalized = tuple(sorted(a % array.ndim for a in axes))
    if len(set(normalized)) != len(normalized):
        raise StatisticsError(f"axis {axis!r} names the same axis twice; name each axis once.")
    return normalized


def _check_broadcast(names: tuple[str, ...], arrays: tuple) -> None:
    shapes = [tuple(array.shape) for array in arrays]
    try:
        np.broadcast_shapes(*shapes)
    except ValueError:
        described = ", ".join(f"{name} {shape}" for name, shape in zip(names, shapes))
        raise StatisticsError(f"shapes do not match ({described}); pass arrays of the same or broadcastable shapes.") from None


def _check_same_support(p_name: str, p, q_name: str, q, axis: int) -> int:
    """p and q broadcast over the batch axes and have the same outcomes along p's `axis`.

    Returns that axis counted from the end, which names it in p, q and their broadcast alike.
    """
    _check_broadcast((p_name, q_name), (p, q))
    from_end = axis - p.ndim
    if q.ndim < -from_end or q.shape[from_end] != p.shape[axis]:
        raise StatisticsError(
            f"{p_name} has shape {tuple(p.shape)} and {q_name} has shape {tuple(q.shape)}, so they do not describe "
            f"the same outcomes along {p_name}'s axis {axis}; pass arrays whose outcome axes line up."
        )
    return from_end


def _check_distribution(name: str, p, axis: int) -> None:
    """Non-negative and summing to one along `axis` (within SUM_TOLERANCE for p's dtype)."""
    tolerance = SUM_TOLERANCE.get(_dtype_name(p), SUM_TOLERANCE["float32"])
    if _is_tensor(p):
        with torch.no_grad():
            p = p.detach()
            wide = torch.float64 if p.dtype == torch.float64 else torch.float32
            total = p.sum(dim=axis, dtype=wide)
            valid = (p >= 0).all() & ((total - 1).abs() <= tolerance).all()
    else:
        total = p.sum(axis=axis, dtype=np.float64)
        valid = (p >= 0).all() & (np.abs(total - 1) <= tolerance).all()
    if _all(valid):
        return
    if not _all(p == p):
        raise StatisticsError(f"{name} contains NaN; pass finite probabilities.")
    if not _all(p >= 0):
        raise StatisticsError(f"{name} has a negative entry ({float(p.min()):.3g}); probabilities must be non-negative.")
    worst = float(total.flatten()[(total - 1).abs().argmax()]) if _is_tensor(total) else float(total.flat[np.abs(total - 1).argmax()])
    raise StatisticsError(
        f"{name} does not sum to one along axis {axis} (a sum is {worst:.9g}, tolerance {tolerance:g} for "
        f"{_dtype_name(p)}); normalise it (divide by its sum along the axis) or pass logits= instead."
    )


def _check_positive(name: str, values) -> None:
    if not _all(values > 0):
        raise StatisticsError(f"{name} must be positive everywhere (smallest {float(values.min()):.3g}); pass values > 0.")


def _check_nonnegative(name: str, values) -> None:
    if not _all(values >= 0):
        raise StatisticsError(f"{name} must be non-negative everywhere (smallest {float(values.min()):.3g}); pass values >= 0.")


def _xlogy(x, y):
    """x log y with 0 log y = 0 for every y (also y = 0): the convention 0 log 0 = 0."""
    if _is_tensor(x):
        return torch.special.xlogy(x, y)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x == 0, 0, x * np.log(y))


def _log_softmax(logits, axis: int):
    if _is_tensor(logits):
        return torch.log_softmax(logits, dim=axis)
    shift = logits.max(axis=axis, keepdims=True)
    shift = np.where(np.isfinite(shift), shift, 0)  # a row of -inf stays -inf rather than NaN
    shifted = logits - shift
    with np.errstate(divide="ignore"):
        return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def _p_log_q(function_name: str, p, q, logits, axis: int):
    """(p, the terms p_k log q_k with 0 log 0 = 0, the axis counted from the end), q as probabilities or logits."""
    if (q is None) == (logits is None):
        raise StatisticsError(f"{function_name} takes q as probabilities or as logits=, exactly one; pass one of them.")
    if logits is None:
        p, q = _as_float_arrays(p, q)
        axis = _check_same_support("p", p, "q", q, _check_axis("p", p, axis))
        _check_distribution("p", p, axis)
        _check_distribution("q", q, axis)
        return p, _xlogy(p, q), axis
    p, logits = _as_float_arrays(p, logits)
    axis = _check_same_support("p", p, "logits", logits, _check_axis("p", p, axis))
    _check_distribution("p", p, axis)
    log_q = _log_softmax(logits, axis)
    # 0 log q = 0 also where a logit is -inf; zeroing log q there, not the product, keeps gradients finite.
    log_q = log_q.where(p > 0, 0) if _is_tensor(log_q) else np.where(p > 0, log_q, 0)
    return p, p * log_q, axis


# ---------------------------------------------------------------------------------------------------------
# Entropy, cross-entropy, KL divergence (docs/math.md, "Entropy, cross-entropy and KL divergence").


def entropy(p, axis: int = -1):
    """H(p) = -sum_k p_k log p_k (nats) along `axis`."""
    (p,) = _as_float_arrays(p)
    axis = _check_axis("p", p, axis)
    _check_distribution("p", p, axis)
    return -_xlogy(p, p).sum(axis=axis)


def cross_entropy(p, q=None, *, logits=None, axis: int = -1):
    """H(p, q) = -sum_k p_k log q_k along `axis`; q as probabilities, or `logits=` for q = softmax(logits)."""
    _, p_log_q, axis = _p_log_q("cross_entropy", p, q, logits, axis)
    return -p_log_q.sum(axis=axis)


def kl_divergence(p, q=None, *, logits=None, axis: int = -1):
    """KL(p || q) = sum_k p_k (log p_k - log q_k) along `axis`; q as probabilities or `logits=`."""
    p, p_log_q, axis = _p_log_q("kl_divergence", p, q, logits, axis)
    return (_xlogy(p, p) - p_log_q).sum(axis=axis)


def kl_gaussian(mean_p, var_p, mean_q, var_q):
    """KL(N(mean_p, var_p) || N(mean_q, var_q)) elementwise, broadcasting; variances, not standard deviations."""
    mean_p, var_p, mean_q, var_q = _as_float_arrays(mean_p, var_p, mean_q, var_q)
    _check_broadcast(("mean_p", "var_p", "mean_q", "var_q"), (mean_p, var_p, mean_q, var_q))
    _check_positive("var_p", var_p)
    _check_positive("var_q", var_q)
    log = torch.log if _is_tensor(var_p) else np.log
    return 0.5 * (log(var_q) - log(var_p) + (var_p + (mean_p - mean_q) ** 2) / var_q - 1)


def kl_diagonal_gaussian(mean_p, var_p, mean_q, var_q, axis: int = -1):
    """KL between Gaussians with diagonal covariances: the univariate KLs summed over `axis`."""
    elementwise = kl_gaussian(mean_p, var_p, mean_q, var_q)
    axis = _check_axis("the broadcast Gaussians", elementwise, axis)
    return elementwise.sum(axis=axis)


# ---------------------------------------------------------------------------------------------------------
# Maximum likelihood (docs/math.md, "Gaussian maximum likelihood", "Categorical maximum likelihood").


def gaussian_mle(x, axis=0, unbiased: bool = False):
    """(mean, var) of a Gaussian fitted by maximum likelihood over `axis` (an int, a tuple, or None for all).

    var divides by n (the MLE), or by n - 1 with `unbiased=True`. numpy input of any size is reduced with
    float64 accumulation in chunks, so 60,000 x 784 uint8 images cost tens of MiB, not a float64 copy;
    results keep a floating input's dtype and are float64 for integer input. Torch integer input becomes
    float64; torch floating input keeps its dtype and autograd.
    """
    if not _is_tensor(x):
        x = np.asarray(x)
    if x.ndim == 0:
        x = x.reshape(1)
    axes = _check_axes("x", x, axis)
    count = math.prod(x.shape[a] for a in axes)
    if count == 0:
        raise StatisticsError(f"x has no values along axis {axis!r} (shape {tuple(x.shape)}); pass at least one value.")
    if unbiased and count < 2:
        raise StatisticsError("the unbiased variance needs at least two values; pass more data or unbiased=False.")
    correction = 1 if unbiased else 0
    if _is_tensor(x):
        if not x.is_floating_point():
            x = x.to(torch.float64)
        var, mean = torch.var_mean(x, dim=axes, correction=correction)
        return mean, var
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise StatisticsError(f"x has dtype {x.dtype}, which is not numeric; pass numbers.")
    result_dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float64
    # First pass: the mean; numpy casts to float64 in small buffers, and integer sums stay exact below 2^53.
    mean = x.sum(axis=axes, dtype=np.float64, keepdims=True) / count
    # Second pass: the centred sum of squares, in chunks along the first reduced axis.
    chunk_axis = axes[0]
    step = max(1, _CHUNK_ELEMENTS // max(1, x.size // x.shape[chunk_axis]))
    squares = np.zeros_like(mean)
    for start in range(0, x.shape[chunk_axis], step):
        chunk = x[(slice(None),) * chunk_axis + (slice(start, start + step),)]
        squares += ((chunk.astype(np.float64) - mean) ** 2).sum(axis=axes, keepdims=True)
    var = squares / (count - correction)
    return mean.squeeze(axes).astype(result_dtype), var.squeeze(axes).astype(result_dtype)


def categorical_mle(counts, smoothing: float = 0.0, axis: int = -1):
    """probs_k = (n_k + smoothing) / (sum_j n_j + K smoothing) along `axis` (smoothing 0: the MLE)."""
    (counts,) = _as_float_arrays(counts)
    axis = _check_axis("counts", counts, axis)
    _check_nonnegative("counts", counts)
    if not smoothing >= 0:
        raise StatisticsError(f"smoothing is {smoothing!r}; pass a pseudo-count >= 0.")
    smoothed = counts + smoothing
    total = smoothed.sum(axis=axis, keepdims=True)
    if not _all(total > 0):
        raise StatisticsError("counts are all zero along an axis and smoothing is 0, so no probability can be estimated; "
                              "pass counts with at least one observation or smoothing > 0.")
    return smoothed / total


def gaussian_log_likelihood(x, mean, var, axis=0):
    """sum over `axis` of log N(x; mean, var).

    mean and var are shaped like `gaussian_mle(x, axis)` returns them (the reduced axes removed), or
    broadcast against x as they are.
    """
    x, mean, var = _as_float_arrays(x, mean, var)
    axes = _check_axes("x", x, axis)
    if math.prod(x.shape[a] for a in axes) == 0:
        raise StatisticsError(f"x has no values along axis {axis!r} (shape {tuple(x.shape)}); pass at least one value.")

    def restore_reduced_axes(parameter):
        if parameter.ndim == x.ndim - len(axes) and axes:
            for a in axes:
                parameter = parameter.unsqueeze(a) if _is_tensor(parameter) else np.expand_dims(parameter, a)
        return parameter

    mean, var = restore_reduced_axes(mean), restore_reduced_axes(var)
    _check_broadcast(("x", "mean", "var"), (x, mean, var))
    _check_positive("var", var)
    log = torch.log if _is_tensor(var) else np.log
    log_density = -0.5 * (_LOG_2PI + log(var) + (x - mean) ** 2 / var)
    if _is_tensor(log_density):
        return log_density.sum(dim=axes) if axes else log_density
    return log_density.sum(axis=axes)


def categorical_log_likelihood(counts, probs, axis: int = -1):
    """sum_k n_k log p_k along `axis`: the log-likelihood of the counts, up to the multinomial coefficient."""
    counts, probs = _as_float_arrays(counts, probs)
    axis = _check_same_support("counts", counts, "probs", probs, _check_axis("counts", counts, axis))
    _check_nonnegative("counts", counts)
    _check_distribution("probs", probs, axis)
    return _xlogy(counts, probs).sum(axis=axis)


# ---------------------------------------------------------------------------------------------------------
# Bayes' rule and conjugate updates (docs/math.md, "Bayes' rule and conjugate updates").


def bayes_posterior(prior, likelihood, axis: int = -1):
    """P(h | d) = P(d | h) P(h) / sum_h' P(d | h') P(h') over the hypotheses along `axis`."""
    prior, likelihood = _as_float_arrays(prior, likelihood)
    axis = _check_same_support("prior", prior, "likelihood", likelihood, _check_axis("prior", prior, axis))
    _check_distribution("prior", prior, axis)
    _check_nonnegative("likelihood", likelihood)
    joint = prior * likelihood
    evidence = joint.sum(axis=axis, keepdims=True)
    if not _all(evidence > 0):
        raise StatisticsError("the evidence (total probability of the data) is zero, so the posterior is undefined; "
                              "pass a likelihood that is positive for some hypothesis with prior probability > 0.")
    return joint / evidence


def beta_bernoulli_update(alpha, beta, successes, failures):
    """Beta(alpha, beta) prior, Bernoulli data -> Beta(alpha + successes, beta + failures) posterior."""
    alpha, beta, successes, failures = _as_float_arrays(alpha, beta, successes, failures)
    _check_broadcast(("alpha", "beta", "successes", "failures"), (alpha, beta, successes, failures))
    _check_positive("alpha", alpha)
    _check_positive("beta", beta)
    _check_nonnegative("successes", successes)
    _check_nonnegative("failures", failures)
    return alpha + successes, beta + failures


def dirichlet_categorical_update(alpha, counts):
    """Dirichlet(alpha) prior, categorical counts -> Dirichlet(alpha + counts) posterior."""
    alpha, counts = _as_float_arrays(alpha, counts)
    _check_broadcast(("alpha", "counts"), (alpha, counts))
    _check_positive("alpha", alpha)
    _check_nonnegative("counts", counts)
    return alpha + counts


# ---------------------------------------------------------------------------------------------------------
# Targets for training (docs/math.md, "Label smoothing") and calibration for reports ("Expected calibration error").


def _check_labels(labels, num_classes: int) -> None:
    if _is_tensor(labels):
        is_integer = not (labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool)
    else:
        is_integer = np.issubdtype(labels.dtype, np.integer)
    if not is_integer:
        raise StatisticsError(f"labels have dtype {_dtype_name(labels)}; pass integer class indices.")
    if math.prod(labels.shape) > 0 and not _all((labels >= 0) & (labels < num_classes)):
        raise StatisticsError(
            f"labels range over [{int(labels.min())}, {int(labels.max())}], outside [0, {num_classes}); "
            f"pass class indices from 0 to num_classes - 1."
        )


def label_smoothing_targets(labels, num_classes: int, smoothing: float, *, dtype=None):
    """Soft targets (1 - smoothing) one_hot(labels) + smoothing / num_classes, one row per label.

    Szegedy et al. 2016 (Inception v3), Sec. 7; the same targets as
    `F.cross_entropy(logits, labels, label_smoothing=smoothing)`. Tensor labels give tensors on their
    device in `dtype` (default `torch.get_default_dtype()`); numpy labels give numpy arrays (default float64).
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise StatisticsError(f"num_classes is {num_classes!r}; pass a positive integer.")
    if not 0 <= smoothing <= 1:
        raise StatisticsError(f"smoothing is {smoothing!r}; pass a value in [0, 1].")
    if not _is_tensor(labels):
        labels = np.asarray(labels)
    _check_labels(labels, num_classes)
    if _is_tensor(labels):
        one_hot = torch.nn.functional.one_hot(labels.long(), num_classes).to(dtype or torch.get_default_dtype())
    else:
        one_hot = np.eye(num_classes, dtype=dtype or np.float64)[labels]
    return one_hot * (1 - smoothing) + smoothing / num_classes


@dataclass(frozen=True)
class CalibrationBins:
    """Per-bin table of `expected_calibration_error`; empty bins have NaN confidence and accuracy."""

    lower: np.ndarray  # bin i holds confidences in (lower[i], upper[i]]; bin 0 also holds 0
    upper: np.ndarray
    confidence: np.ndarray  # mean top-class probability in the bin
    accuracy: np.ndarray  # fraction of the bin's predictions that are right
    count: np.ndarray  # int64


def expected_calibration_error(probs, labels, n_bins: int = 15) -> tuple[float, CalibrationBins]:
    """ECE = sum_b (n_b / n) |accuracy_b - confidence_b| over equal-width confidence bins (Guo et al. 2017).

    probs (N, K) rows are predictive distributions, labels (N,) the true classes. Works on numpy arrays
    or tensors; the result is a float and numpy arrays.
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise StatisticsError(f"n_bins is {n_bins!r}; pass a positive integer.")
    probs = probs.detach().cpu().double().numpy() if _is_tensor(probs) else np.asarray(probs, dtype=np.float64)
    labels = labels.detach().cpu().numpy() if _is_tensor(labels) else np.asarray(labels)
    if probs.ndim != 2 or probs.shape[0] == 0 or probs.shape[1] == 0:
        raise StatisticsError(f"probs has shape {probs.shape}; pass a non-empty (N, K) array of predictive distributions.")
    if labels.shape != probs.shape[:1]:
        raise StatisticsError(f"labels has shape {labels.shape} but probs has {probs.shape[0]} rows; pass one label per row.")
    _check_distribution("probs", probs, 1)
    _check_labels(labels, probs.shape[1])
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == labels).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bin_index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)  # right-closed bins
    count = np.bincount(bin_index, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(bin_index, weights=confidence, minlength=n_bins) / count
        accuracy = np.bincount(bin_index, weights=correct, minlength=n_bins) / count
    occupied = count > 0
    ece = float(np.sum(count[occupied] / len(labels) * np.abs(accuracy[occupied] - mean_confidence[occupied])))
    return ece, CalibrationBins(edges[:-1], edges[1:], mean_confidence, accuracy, count.astype(np.int64))
