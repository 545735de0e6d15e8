"""`papernets data list`, `papernets data info DATASET` and `papernets data download DATASET ...`: what data
papernets knows, where it was found, what it holds (sizes, classes and their counts, priors, normalization
statistics), and fetching it from the official mirrors into the cache when it is not found anywhere."""

import dataclasses
import json

from papernets.data import DATASETS, channel_statistics, class_counts, class_priors, default_augmentation, load_dataset
from papernets.data.locate import files_in, search_folders


def add_commands(subparsers) -> None:
    from papernets.cli import ArgumentParser

    data = subparsers.add_parser("data", help="list the data sets, or describe one")
    commands = data.add_subparsers(dest="data_command", required=True, parser_class=ArgumentParser)

    listing = commands.add_parser("list", help="the data sets papernets knows and where each was found")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.set_defaults(run=run_list)

    info = commands.add_parser("info", help="sizes, classes, priors and normalization statistics of a data set")
    info.add_argument("dataset", choices=list(DATASETS), help="data set name")
    info.add_argument("--data-dir", help="folder holding the data set (default: PAPERNETS_DATA, system, cache)")
    info.add_argument("--download", action="store_true", help="download into the cache if it is not found")
    info.add_argument("--json", action="store_true", help="print JSON instead of text")
    info.set_defaults(run=run_info)

    download = commands.add_parser("download", help="make data sets available: found locally, or downloaded from "
                                   "the official mirrors into the cache and verified against published checksums")
    download.add_argument("datasets", nargs="+", choices=list(DATASETS), metavar="DATASET",
                          help=f"data set name ({', '.join(DATASETS)})")
    download.add_argument("--data-dir", help="look in this folder first (default: PAPERNETS_DATA, system, cache)")
    download.set_defaults(run=run_download)


def run_list(args) -> int:
    rows = []
    for spec in DATASETS.values():
        found = next(filter(None, (files_in(spec, folder, origin) for origin, folder in search_folders(spec))), None)
        rows.append({
            "name": spec.name,
            "title": spec.title,
            "classes": spec.num_classes,
            "image_shape": list(spec.image_shape),
            "train_size": spec.train_size,
            "test_size": spec.test_size,
            "found": None if found is None else str(found.folder),
        })
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'name':<14} {'classes':>7}  {'image':<8} {'train':>7} {'test':>7}  found")
    for row in rows:
        shape = "x".join(map(str, row["image_shape"]))
        where = row["found"] or f"not found (papernets data download {row['name']})"
        sizes = f"{row['train_size']:>7,} {row['test_size']:>7,}"
        print(f"{row['name']:<14} {row['classes']:>7}  {shape:<8} {sizes}  {where}")
    return 0


def run_download(args) -> int:
    for name in args.datasets:
        dataset = load_dataset(name, data_dir=args.data_dir, download=True)
        print(f"{name}: {len(dataset.train_labels):,} train + {len(dataset.test_labels):,} test images in "
              f"{dataset.source} ({dataset.origin})")
    return 0


def run_info(args) -> int:
    dataset = load_dataset(args.dataset, data_dir=args.data_dir, download=args.download)
    spec = DATASETS[dataset.name]
    mean, std = channel_statistics(dataset)
    train_counts = class_counts(dataset.train_labels, dataset.num_classes)
    test_counts = class_counts(dataset.test_labels, dataset.num_classes)
    priors = class_priors(dataset.train_labels, dataset.num_classes)
    info = {
        "name": dataset.name,
        "title": spec.title,
        "paper": spec.paper,
        "source": str(dataset.source),
        "origin": dataset.origin,
        "files": [path.name for path in dataset.files],
        "train_size": len(dataset.train_labels),
        "test_size": len(dataset.test_labels),
        "image_shape": list(dataset.image_shape),
        "class_names": list(dataset.class_names),
        "train_counts": train_counts.tolist(),
        "test_counts": test_counts.tolist(),
        "train_priors": [float(p) for p in priors],
        "mean": list(mean),
        "std": list(std),
        "default_augmentation": dataclasses.asdict(default_augmentation(dataset.name)),
    }
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    shape = "x".join(map(str, info["image_shape"]))
    print(f"{info['name']}: {info['title']} ({info['paper']})")
    print(f"found in      {info['source']} ({info['origin']}): {', '.join(info['files'])}")
    print(f"images        {info['train_size']:,} train, {info['test_size']:,} test, {shape} uint8 each")
    print(f"normalization mean {_floats(mean)}, std {_floats(std)} (per channel, [0, 1] units, training set)")
    augmentation = ", ".join(f"{key}={value}" for key, value in info["default_augmentation"].items())
    print(f"augmentation  {augmentation}")
    print(f"classes       {dataset.num_classes}:")
    width = max(map(len, dataset.class_names))
    for label, name in enumerate(dataset.class_names):
        print(f"  {label:>3} {name:<{width}}  train {train_counts[label]:>6,} (prior {priors[label]:.4f})  "
              f"test {test_counts[label]:>6,}")
    return 0


def _floats(values) -> str:
    return "(" + ", ".join(f"{value:.4f}" for value in values) + ")"
