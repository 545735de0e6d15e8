"""Data: the four data sets found or downloaded and verified, strictly parsed, split, described by their
statistics, and fed from the device in seeded, augmented batches.

    dataset = load_dataset("fashion-mnist")                  # locate.py, readers.py, dataset.py
    splits = split_dataset(dataset, val_size=5000, seed=0)   # splits.py
    mean, std = channel_statistics(dataset)                  # statistics.py
    loader = BatchLoader(splits.train.images, splits.train.labels, batch_size=128, seed=0,
                         augment=default_augmentation("fashion-mnist"), mean=mean, std=std, device="cpu")
    for x, y in loader.batches(epoch):                       # loader.py
        ...
"""

from papernets.data.catalog import DATASETS, DatasetSpec, get_spec
from papernets.data.dataset import Dataset, load_dataset
from papernets.data.loader import Augmentation, BatchLoader, default_augmentation
from papernets.data.locate import cache_dir
from papernets.data.splits import ArraySplit, Splits, split_dataset
from papernets.data.statistics import channel_statistics, class_counts, class_priors

__all__ = [
    "DATASETS",
    "ArraySplit",
    "Augmentation",
    "BatchLoader",
    "Dataset",
    "DatasetSpec",
    "Splits",
    "cache_dir",
    "channel_statistics",
    "class_counts",
    "class_priors",
    "default_augmentation",
    "get_spec",
    "load_dataset",
    "split_dataset",
]
