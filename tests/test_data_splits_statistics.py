"""Splits carved by seed, normalization statistics (cached by file checksum) and class priors."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from papernets.data import DATASETS, ArraySplit, BatchLoader, Dataset, channel_statistics, class_counts
from papernets.data import class_priors, load_dataset, split_dataset
from papernets.errors import ConfigError
from test_data_readers import write_idx, write_mnist_folder


def synthetic(train: int = 100, test: int = 10) -> Dataset:
    rng = np.random.default_rng(0)
    train_images = np.arange(train, dtype=np.uint8)[:, None, None, None] * np.ones((1, 1, 4, 4), np.uint8)
    return Dataset(
        name="synthetic", train_images=train_images, train_labels=rng.integers(0, 3, train),
        test_images=rng.integers(0, 256, (test, 1, 4, 4), dtype=np.uint8), test_labels=rng.integers(0, 3, test),
        class_names=("a", "b", "c"), source=Path("."),
    )


def ids(split: ArraySplit) -> list[int]:
    return split.images[:, 0, 0, 0].tolist()


def test_validation_is_carved_from_train_deterministically_by_seed():
    dataset = synthetic()
    splits = split_dataset(dataset, val_size=30, seed=4)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (70, 30, 10)
    assert set(ids(splits.train)).isdisjoint(ids(splits.val))
    assert sorted(ids(splits.train) + ids(splits.val)) == list(range(100))
    np.testing.assert_array_equal(splits.val.labels, dataset.train_labels[ids(splits.val)])
    assert ids(split_dataset(dataset, val_size=30, seed=4).val) == ids(splits.val)
    assert ids(split_dataset(dataset, val_size=30, seed=5).val) != ids(splits.val)
    assert splits.test.images is dataset.test_images  # the test split is never touched


def test_default_validation_size_is_5000():
    assert len(split_dataset(synthetic(train=6000)).val) == 5000


def test_empty_validation_split_is_allowed():
    splits = split_dataset(synthetic(), val_size=0)
    assert len(splits.val) == 0 and splits.val.images.shape == (0, 1, 4, 4) and len(splits.train) == 100


@pytest.mark.parametrize("val_size", [-1, 100, 2.5, True])
def test_invalid_validation_size_is_a_config_error(val_size):
    with pytest.raises(ConfigError, match=f"val_size {val_size!r} is not a whole number from 0 to 99"):
        split_dataset(synthetic(), val_size=val_size)


def test_channel_statistics_are_the_gaussian_mle_in_unit_range():
    images = np.random.default_rng(1).integers(0, 256, (50, 3, 5, 5), dtype=np.uint8)
    mean, std = channel_statistics(images)
    per_channel = images.transpose(1, 0, 2, 3).reshape(3, -1) / 255.0
    np.testing.assert_allclose(mean, per_channel.mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(std, per_channel.std(axis=1), rtol=1e-12)  # ddof=0: the MLE
    assert channel_statistics(ArraySplit(images, np.zeros(50))) == (mean, std)


def test_dataset_statistics_are_cached_by_file_checksum(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setitem(DATASETS, "mnist", dataclasses.replace(DATASETS["mnist"], train_size=12, test_size=4))
    write_mnist_folder(tmp_path / "data", 12, 4)
    dataset = load_dataset("mnist", data_dir=tmp_path / "data")
    mean, std = channel_statistics(dataset)
    np.testing.assert_allclose(mean, [dataset.train_images.mean() / 255], rtol=1e-12)
    statistics_folder = tmp_path / "cache" / "papernets" / "statistics"
    (cache_file,) = statistics_folder.iterdir()
    record = json.loads(cache_file.read_text())
    assert record["fingerprint"] == dataset.fingerprint and record["images"] == 12

    record["mean"] = [0.123]
    cache_file.write_text(json.dumps(record))
    assert channel_statistics(load_dataset("mnist", data_dir=tmp_path / "data"))[0] == (0.123,)  # read back

    write_idx(tmp_path / "data" / "train-images-idx3-ubyte.gz", np.full((12, 28, 28), 51, np.uint8))
    assert channel_statistics(load_dataset("mnist", data_dir=tmp_path / "data")) == ((0.2,), (0.0,))
    assert len(list(statistics_folder.iterdir())) == 2  # a changed file gets its own entry, never stale figures

    for path in statistics_folder.iterdir():
        path.write_text("{not json")
    assert channel_statistics(load_dataset("mnist", data_dir=tmp_path / "data")) == ((0.2,), (0.0,))


def test_class_counts_and_priors():
    labels = np.array([0, 2, 2, 2, 1, 2])
    assert class_counts(labels, 4).tolist() == [1, 1, 4, 0]
    np.testing.assert_allclose(class_priors(labels, 4), [1 / 6, 1 / 6, 4 / 6, 0])
    np.testing.assert_allclose(class_priors(labels, 4, smoothing=1), [2 / 10, 2 / 10, 5 / 10, 1 / 10])


def test_real_fashion_mnist_statistics_priors_and_normalization(tmp_path, monkeypatch, fashion_mnist_dir):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    dataset = load_dataset("fashion-mnist", data_dir=fashion_mnist_dir)
    mean, std = channel_statistics(dataset)
    assert mean[0] == pytest.approx(0.2860, abs=1e-4) and std[0] == pytest.approx(0.3530, abs=1e-4)
    np.testing.assert_allclose(class_priors(dataset.train_labels, 10), [0.1] * 10)

    loader = BatchLoader(dataset.train_images, dataset.train_labels, batch_size=10_000, mean=mean, std=std)
    x = torch.cat([x for x, _ in loader.eval_batches()])
    variance, average = torch.var_mean(x, correction=0)
    assert x.shape == (60_000, 1, 28, 28)
    assert average.item() == pytest.approx(0.0, abs=1e-5) and variance.item() == pytest.approx(1.0, abs=1e-5)


def test_dataset_built_from_arrays_is_not_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    dataset = synthetic()
    mean, _ = channel_statistics(dataset)
    assert mean == pytest.approx((dataset.train_images.mean() / 255,)) and not (tmp_path / "cache").exists()
