"""`load_dataset(name)`: a data set's train and test arrays, found, verified and strictly parsed."""

import hashlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from papernets.data.catalog import DatasetSpec, get_spec
from papernets.data.locate import CHUNK_BYTES, FoundFiles, locate_dataset
from papernets.data.readers import read_cifar_binary, read_cifar_python, read_idx_pair
from papernets.errors import DatasetError


@dataclass(eq=False)
class Dataset:
    """Train and test images (N, C, H, W) uint8 and labels (N,) int64, with where they came from."""

    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    class_names: tuple[str, ...]
    source: Path  # the folder the files were read from
    origin: str = "arrays"  # "--data-dir", "PAPERNETS_DATA", "system folder", "cache" (or "arrays")
    files: tuple[Path, ...] = ()

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_images.shape[1:])

    @cached_property
    def fingerprint(self) -> str:
        """SHA-256 over the contents of the files read (over the arrays when there are no files)."""
        digest = hashlib.sha256()
        if not self.files:
            for array in (self.train_images, self.train_labels, self.test_images, self.test_labels):
                digest.update(np.ascontiguousarray(array).data)
        for path in sorted(self.files, key=lambda path: path.name):
            with open(path, "rb") as stream:
                while chunk := stream.read(CHUNK_BYTES):
                    digest.update(chunk)
        return digest.hexdigest()


def load_dataset(name: str, data_dir: str | Path | None = None, download: bool = False) -> Dataset:
    """The data set `name` ("mnist", "fashion-mnist", "cifar10", "cifar100"), found as described in
    `papernets.data.locate` (downloaded into the cache only with `download=True`)."""
    spec = get_spec(name)
    found = locate_dataset(spec, data_dir, download)
    train_images, train_labels = _read_split(spec, found, found.train, spec.train_size)
    test_images, test_labels = _read_split(spec, found, found.test, spec.test_size)
    return Dataset(
        name=spec.name,
        train_images=train_images,
        train_labels=train_labels,
        test_images=test_images,
        test_labels=test_labels,
        class_names=spec.class_names,
        source=found.folder,
        origin=found.origin,
        files=found.files,
    )


def _read_split(spec: DatasetSpec, found: FoundFiles, paths: tuple[Path, ...], expected_count: int):
    if found.layout == "idx":
        images, labels = read_idx_pair(*paths, image_size=spec.image_shape[1:], num_classes=spec.num_classes)
    else:
        records = expected_count // len(paths)  # the release splits a set evenly over its batch files
        if found.layout == "cifar-binary":
            parts = [read_cifar_binary(path, spec.label_bytes, spec.num_classes, records) for path in paths]
        else:
            parts = [read_cifar_python(path, spec.label_key, spec.num_classes, records) for path in paths]
        images = np.concatenate([part_images for part_images, _ in parts])
        labels = np.concatenate([part_labels for _, part_labels in parts])
    if len(images) != expected_count:
        raise DatasetError(f"{paths[0]} and its companions hold {len(images)} images where {spec.title} has "
                           f"{expected_count}; the files are incomplete or belong to another data set.")
    return images, labels
