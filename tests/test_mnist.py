"""Real MNIST end to end: the data as papernets reads it, the two LeNets learning it through the command line,
and `predict` on PNG files written from MNIST test images.

The data are the official files (60,000 train + 10,000 test; `make data` installs them). The accuracy floors are
measured here (docs/REFERENCE.md, "MNIST in papernets' tests"), with a margin below the lowest seed, so that a
regression in the data path, the loss, the optimiser or the LeNet layers fails them while seed noise does not.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from papernets.cli import main
from conftest import dataset_flags

pytestmark = pytest.mark.real_data("mnist")

# docs/REFERENCE.md, "MNIST in papernets' tests": the run lengths and the floors that they justify.
TRAIN_SIZE = 0  # 0: all 55,000 training images left after the validation split
MODERN_FLOOR = 0.980    # seeds 0/1/2 measured 98.40/98.26/98.22%
FAITHFUL_FLOOR = 0.940  # seeds 0/1/2 measured 97.14/97.57/94.72%
PNG_IMAGES = 20


def train(model: str, output: Path) -> Path:
    """One epoch of the `fast-mnist` recipe's LeNet settings on the training images, tested on all
    10,000 test images; returns the run folder."""
    status = main(["train", "--model", model, *dataset_flags("mnist"), "--recipe", "fast-mnist", "--epochs", "1",
                   "--seed", "0", "--output", str(output), "--quiet", "--no-report",
                   "--set", f"train_size={TRAIN_SIZE}", "val_size=5000", f"run_name={model}", "threads=1"])
    assert status == 0
    return output / model


@pytest.fixture(scope="module")
def modern_run(tmp_path_factory) -> Path:
    return train("lenet5_modern", tmp_path_factory.mktemp("mnist"))


def test_data_info_shows_the_official_sizes_and_statistics(mnist_dir, capsys):
    assert main(["data", "info", "mnist", "--data-dir", str(mnist_dir), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["train_size"], info["test_size"], info["image_shape"]) == (60_000, 10_000, [1, 28, 28])
    # docs/REFERENCE.md, MNIST: mean 0.1307, std 0.3081 over the 60,000 training images, in [0, 1] units.
    assert info["mean"] == [pytest.approx(0.1307, abs=5e-5)] and info["std"] == [pytest.approx(0.3081, abs=5e-5)]
    # docs/REFERENCE.md, MNIST: the official training set's class counts (digits 0..9).
    assert info["train_counts"] == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert info["test_counts"] == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert info["default_augmentation"]["flip"] is False  # a mirrored digit is another symbol


@pytest.mark.slow
def test_lenet5_modern_learns_mnist(modern_run):
    summary = json.loads((modern_run / "summary.json").read_text())
    assert summary["dataset"] == "mnist" and summary["model"] == "lenet5_modern"
    assert summary["test_accuracy"] >= MODERN_FLOOR, summary["test_accuracy"]


@pytest.mark.slow
def test_faithful_lenet5_learns_mnist(tmp_path):
    summary = json.loads((train("lenet5", tmp_path) / "summary.json").read_text())
    assert summary["test_accuracy"] >= FAITHFUL_FLOOR, summary["test_accuracy"]


@pytest.mark.slow
def test_predict_on_png_files_of_mnist_test_digits(modern_run, mnist_dir, tmp_path, capsys):
    from papernets.data import load_dataset

    dataset = load_dataset("mnist", data_dir=mnist_dir)
    paths = []
    for index, image in enumerate(dataset.test_images[:PNG_IMAGES]):
        path = tmp_path / f"digit_{index:02d}.png"
        Image.fromarray(image[0], mode="L").save(path)
        paths.append(path)
    assert main(["predict", "--checkpoint", str(modern_run), *map(str, paths), "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    predicted = np.array([int(result["predictions"][0]["class"]) for result in results])
    labels = dataset.test_labels[:PNG_IMAGES]
    assert (predicted == labels).sum() >= PNG_IMAGES - 1, (predicted, labels)
