"""Normalization statistics and class priors, estimated by maximum likelihood (`papernets.stats`).

Per-channel mean and standard deviation come from the released training set, never the test set. For a
`Dataset` they are cached as a small JSON file in the user cache, keyed by the SHA-256 of the data files,
so a changed file can never reuse stale figures. (They include the images that `split_dataset` later
holds out for validation: that is the usual convention and keeps the figures independent of the split seed.)
"""

import json
from pathlib import Path

import numpy as np

from papernets import stats
from papernets.data.locate import cache_dir
from papernets.data.splits import ArraySplit
from papernets.errors import WriteError
from papernets.files import write_text

STATISTICS_FORMAT = 1


def channel_statistics(dataset_or_images) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) per channel in [0, 1] units: a Gaussian MLE over all pixels of each channel.

    Takes a `Dataset` (its training images; cached by file checksum when read from files), an `ArraySplit`,
    or uint8 images (N, C, H, W).
    """
    if isinstance(dataset_or_images, ArraySplit):
        return _channel_statistics(dataset_or_images.images)
    if isinstance(dataset_or_images, np.ndarray):
        return _channel_statistics(dataset_or_images)
    dataset = dataset_or_images
    if not dataset.files:  # built from arrays in memory: hashing them would cost as much as the statistics
        return _channel_statistics(dataset.train_images)
    cache_file = cache_dir() / "statistics" / f"{dataset.name}-{dataset.fingerprint[:20]}.json"
    cached = _read_cached(cache_file, dataset)
    if cached is not None:
        return cached
    mean, std = _channel_statistics(dataset.train_images)
    _write_cached(cache_file, dataset, mean, std)
    return mean, std


def _channel_statistics(images: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    if images.ndim != 4 or len(images) == 0:
        raise ValueError(f"images must be a non-empty (N, C, H, W) array, not shape {images.shape}.")
    mean, var = stats.gaussian_mle(images, axis=(0, 2, 3))  # in pixel units, 0..255
    scale = 255.0 if images.dtype == np.uint8 else 1.0
    return tuple(float(m) / scale for m in mean), tuple(float(np.sqrt(v)) / scale for v in var)


def _read_cached(path: Path, dataset) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """The cached figures, or None when absent or unusable (they are recomputed and the file rewritten)."""
    try:
        record = json.loads(path.read_text())
        if record["format"] != STATISTICS_FORMAT or record["fingerprint"] != dataset.fingerprint:
            return None
        mean, std = tuple(map(float, record["mean"])), tuple(map(float, record["std"]))
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return None
    channels = dataset.image_shape[0]
    if len(mean) != channels or len(std) != channels:
        return None
    return mean, std


def _write_cached(path: Path, dataset, mean, std) -> None:
    """Best effort: a cache that cannot be written only costs recomputing next time."""
    record = {
        "format": STATISTICS_FORMAT,
        "dataset": dataset.name,
        "fingerprint": dataset.fingerprint,
        "images": len(dataset.train_images),
        "mean": list(mean),
        "std": list(std),
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text(path, json.dumps(record, indent=1))
    except (OSError, WriteError):
        pass  # the cache only saves time: without it the statistics are computed again next time


def class_counts(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """How many examples each class has (int64, length num_classes)."""
    return np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes)[:num_classes]


def class_priors(labels: np.ndarray, num_classes: int, smoothing: float = 0.0) -> np.ndarray:
    """p(y = k), the categorical MLE of the class frequencies (add-`smoothing` pseudo-counts if given)."""
    return stats.categorical_mle(class_counts(labels, num_classes), smoothing=smoothing)
