"""Shared by the training and reliability tests: a tiny generated data set that trains in a few steps."""

from pathlib import Path

import numpy as np

from papernets.data import Dataset


def generated_dataset(train_count=256, test_count=128, size=12, classes=4, seed=0) -> Dataset:
    """Noise images whose class is the horizontal band holding a bright stripe: learnable in a few steps, and
    unchanged in class by a horizontal flip."""
    rng = np.random.default_rng(seed)

    def make(count):
        labels = rng.integers(0, classes, count)
        images = rng.integers(0, 60, (count, 1, size, size)).astype(np.uint8)
        band = size // classes
        for index, label in enumerate(labels):
            images[index, 0, label * band:(label + 1) * band, :] += 150
        return images, labels.astype(np.int64)

    train_images, train_labels = make(train_count)
    test_images, test_labels = make(test_count)
    return Dataset(name="generated", train_images=train_images, train_labels=train_labels, test_images=test_images,
                   test_labels=test_labels, class_names=tuple(f"band {k}" for k in range(classes)),
                   source=Path("generated"))
