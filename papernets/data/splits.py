"""Train / validation / test: the validation split is carved from the training set, deterministically by seed.

Model selection (early stopping, choosing the best epoch, tuning) uses only the validation split; the test
split is kept apart so that its accuracy is an unbiased estimate. The ResNet paper's CIFAR recipe uses the
same 45k/5k train/validation split (He et al., arXiv:1512.03385, Sec. 4.2).
"""

from dataclasses import dataclass

import numpy as np

from papernets.errors import ConfigError

DEFAULT_VAL_SIZE = 5000


@dataclass(eq=False)
class ArraySplit:
    """Images (N, C, H, W) uint8 and labels (N,) int64 of one split."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(eq=False)
class Splits:
    train: ArraySplit
    val: ArraySplit  # empty when val_size is 0
    test: ArraySplit


def split_dataset(dataset, val_size: int = DEFAULT_VAL_SIZE, seed: int = 0) -> Splits:
    """`val_size` training images, chosen by a seeded permutation, become the validation split.

    Both parts keep the original order of the training set (the loader shuffles), so the same seed gives
    the same splits on every machine and numpy version that keeps `default_rng`'s stream.
    """
    count = len(dataset.train_labels)
    if isinstance(val_size, bool) or not isinstance(val_size, (int, np.integer)) or not 0 <= val_size < count:
        raise ConfigError(f"val_size {val_size!r} is not a whole number from 0 to {count - 1} (the training set of "
                          f"{dataset.name} has {count} images); choose a smaller validation split.")
    permutation = np.random.default_rng(seed).permutation(count)
    val_indices = np.sort(permutation[:val_size])
    train_indices = np.sort(permutation[val_size:])
    return Splits(
        train=ArraySplit(dataset.train_images[train_indices], dataset.train_labels[train_indices]),
        val=ArraySplit(dataset.train_images[val_indices], dataset.train_labels[val_indices]),
        test=ArraySplit(dataset.test_images, dataset.test_labels),
    )
