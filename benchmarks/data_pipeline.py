"""Images per second of papernets' BatchLoader against the tutorial torchvision pipeline, one epoch each.

Both feed Fashion-MNIST's 60,000 training images in shuffled batches of 256 with the same augmentation
(zero-pad 2, random 28x28 crop, horizontal flip, normalize), as float32 (B, 1, 28, 28) tensors:
- torchvision: datasets.FashionMNIST + transforms RandomCrop(28, padding=2) / RandomHorizontalFlip /
  ToTensor / Normalize, DataLoader(num_workers=2) — per-image PIL transforms in worker processes;
- papernets: BatchLoader on the CPU — the split as one uint8 tensor, whole-batch augmentation in one gather.
The ratio is measured in the same run, side by side. The result is appended to docs/BENCHMARKS.md.

    .venv/bin/python benchmarks/data_pipeline.py [--data-dir DIR] [--epochs 1] [--no-record]
"""

import argparse
import gzip
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch
import torchvision
from torchvision import transforms

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import append_entry, hardware, markdown_table  # noqa: E402

from papernets.data import BatchLoader, channel_statistics, default_augmentation, load_dataset  # noqa: E402
from papernets.data.catalog import get_spec  # noqa: E402
from papernets.data.locate import locate_dataset  # noqa: E402

BATCH_SIZE = 256
WORKERS = 2


def torchvision_root(source_files: list[Path], folder: Path) -> Path:
    """A folder in torchvision's layout, root/FashionMNIST/raw, holding the four uncompressed IDX files
    (torchvision 0.29 checks for and reads the uncompressed names, so the .gz files cannot just be linked)."""
    raw = folder / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for path in source_files:
        name = path.name.removesuffix(".gz")
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as source, open(raw / name, "wb") as target:
                shutil.copyfileobj(source, target)
        else:
            (raw / name).symlink_to(path)
    return folder


def torchvision_epoch(root: Path, mean: float, std: float, epochs: int) -> tuple[float, int]:
    augmentation = transforms.Compose([
        transforms.RandomCrop(28, padding=2),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize((mean,), (std,)),
    ])
    dataset = torchvision.datasets.FashionMNIST(str(root), train=True, transform=augmentation, download=False)
    loader = torch.utils.data.DataLoader(dataset, batch_size=BATCH_SIZE, shuffle=True, num_workers=WORKERS)
    images = 0
    start = time.perf_counter()
    for _ in range(epochs):
        for x, _ in loader:
            images += len(x)
    return time.perf_counter() - start, images


def papernets_epoch(dataset, mean, std, epochs: int) -> tuple[float, int]:
    loader = BatchLoader(dataset.train_images, dataset.train_labels, batch_size=BATCH_SIZE, seed=0,
                         augment=default_augmentation("fashion-mnist"), mean=mean, std=std, drop_last=False)
    images = 0
    start = time.perf_counter()
    for epoch in range(epochs):
        for x, _ in loader.batches(epoch):
            images += len(x)
    return time.perf_counter() - start, images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="folder holding Fashion-MNIST (default: papernets' search order)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--no-record", action="store_true", help="do not append the result to docs/BENCHMARKS.md")
    args = parser.parse_args()

    found = locate_dataset(get_spec("fashion-mnist"), args.data_dir)
    dataset = load_dataset("fashion-mnist", data_dir=found.folder)
    (mean,), (std,) = channel_statistics(dataset)
    with tempfile.TemporaryDirectory() as folder:
        root = torchvision_root(list(found.files), Path(folder))
        torchvision_seconds, torchvision_images = torchvision_epoch(root, mean, std, args.epochs)
    papernets_seconds, papernets_images = papernets_epoch(dataset, (mean,), (std,), args.epochs)

    torchvision_rate = torchvision_images / torchvision_seconds
    papernets_rate = papernets_images / papernets_seconds
    ratio = papernets_rate / torchvision_rate
    rows = [
        [f"torchvision DataLoader, {WORKERS} workers, per-image transforms", f"{torchvision_images:,}",
         f"{torchvision_seconds:.2f}", f"{torchvision_rate:,.0f}"],
        ["papernets BatchLoader (cpu), whole-batch gather", f"{papernets_images:,}", f"{papernets_seconds:.2f}",
         f"{papernets_rate:,.0f}"],
    ]
    table = markdown_table(["pipeline", "images", "seconds", "images/s"], rows)
    print(hardware())
    print(table)
    print(f"ratio: {ratio:.1f}x")
    if not args.no_record:
        append_entry("Data pipeline (benchmarks/data_pipeline.py)", (
            f"Fashion-MNIST train, batch {BATCH_SIZE}, pad-2 random crop + horizontal flip + normalize, "
            f"{args.epochs} epoch(s) each, float32 NCHW on the CPU.\n\n{table}\n\n"
            f"**papernets / torchvision: {ratio:.1f}x** (target >= 20x)"
        ))


if __name__ == "__main__":
    main()
