"""Shared by the training and reliability tests: a tiny generated data set that trains in a few steps."""

import tracemalloc
from contextlib import contextmanager
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


def valid_checkpoint(global_step: int = 0, num_classes: int = 4, size: int = 12, seed: int = 0,
                     model_name: str = "lenet5_modern", dataset: str = "generated") -> dict:
    """A checkpoint payload with every field papernets writes (the model after one SGD step), as the engine
    builds it; tests change single fields of it."""
    import torch

    from papernets.models import create_model
    from papernets.runs.checkpoint import capture_rng_state
    from papernets.config import load_config

    torch.manual_seed(seed)
    config = load_config(None, {"model": model_name, "dataset": dataset, "epochs": 1, "val_size": 0})
    model = create_model(model_name, num_classes=num_classes, input_size=(1, size, size))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(2, 1, size, size)).sum().backward()
    optimizer.step()
    return {"model": model_name, "model_options": {}, "num_classes": num_classes, "in_channels": 1,
            "input_size": [1, size, size], "dataset": dataset,
            "class_names": [f"band {k}" for k in range(num_classes)],
            "normalization": {"mean": [0.3], "std": [0.2]}, "precision": "off", "config": config.to_dict(),
            "model_state": model.state_dict(), "optimizer_state": optimizer.state_dict(),
            "schedule_state": {}, "scaler_state": {}, "epoch": 0, "step": global_step, "global_step": global_step,
            "rng": capture_rng_state(), "epoch_sums": [0.0, 0.0, 0.0], "metrics_rows": [],
            "best_val_accuracy": None, "best_epoch": None, "train_seconds": 0.0}


@contextmanager
def peak_memory():
    """Measures the block: yields a dict whose "peak" is, on exit, the most bytes Python held at once inside it."""
    measured = {}
    tracemalloc.start()
    try:
        yield measured
    finally:
        measured["peak"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
