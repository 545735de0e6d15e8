"""Every recipe on every data set: a few steps of real training on generated data shaped like the data set, with
the augmentation the loader actually used checked against the recipe and the data set's label constraints
(MNIST: no mirroring, whatever the recipe says); and auxiliary-loss weights only where the model has the heads."""

from pathlib import Path

import numpy as np
import pytest

import papernets.data
from papernets.data import DATASETS, Dataset, default_augmentation
from papernets.errors import ConfigError
from papernets.config import list_recipes, load_config, read_recipe
from papernets.training.engine import train

# Two steps of batch 4, a validation and a test batch: enough to run every part of the loop.
FEW_STEPS = {"epochs": 1, "batch_size": 4, "train_size": 8, "val_size": 4, "test_size": 4, "report": False,
             "threads": 1}


def dataset_like(name: str, images: int = 16) -> Dataset:
    """Random images with the data set's shape and classes."""
    spec = DATASETS[name]
    rng = np.random.default_rng(0)

    def make():
        return (rng.integers(0, 256, (images, *spec.image_shape)).astype(np.uint8),
                rng.integers(0, spec.num_classes, images).astype(np.int64))

    (train_images, train_labels), (test_images, test_labels) = make(), make()
    return Dataset(name=name, train_images=train_images, train_labels=train_labels, test_images=test_images,
                   test_labels=test_labels, class_names=spec.class_names, source=Path("generated"))


@pytest.fixture
def used_augmentations(monkeypatch) -> list:
    """The `augment` of every shuffling (training) BatchLoader the engine builds."""
    used = []

    class RecordingBatchLoader(papernets.data.BatchLoader):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            if kwargs.get("shuffle"):
                used.append(self.augment)

    monkeypatch.setattr(papernets.data, "BatchLoader", RecordingBatchLoader)
    return used


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


# The large-image networks take seconds a run: the quick loop (`-m "not slow"`) trains them on cifar10 alone.
HEAVY_RECIPES = {"vgg-simonyan2014", "googlenet-szegedy2014"}
RECIPE_DATASET_PAIRS = [
    pytest.param(recipe, dataset, id=f"{recipe}-{dataset}",
                 marks=[pytest.mark.slow] if recipe in HEAVY_RECIPES and dataset != "cifar10" else [])
    for recipe in list_recipes() for dataset in sorted(DATASETS)]


@pytest.mark.parametrize("recipe, dataset", RECIPE_DATASET_PAIRS)
def test_each_recipe_trains_on_each_dataset_with_the_augmentation_its_labels_allow(
        recipe, dataset, tmp_path, used_augmentations, capsys):
    config = load_config(recipe, {**FEW_STEPS, "dataset": dataset, "output": str(tmp_path)})
    run_dir = train(config, dataset=dataset_like(dataset))
    assert (run_dir / "summary.json").is_file()

    written = read_recipe(recipe).get("augmentation", {})
    default = default_augmentation(dataset)
    (used,) = used_augmentations
    assert (used.pad, used.crop, used.cutout) == (written.get("pad", default.pad), written.get("crop", default.crop),
                                                  written.get("cutout", default.cutout))
    recipe_flips = written.get("flip", default.flip)
    assert used.flip == (recipe_flips and DATASETS[dataset].mirroring_keeps_labels)
    printed = capsys.readouterr().err
    assert f"Augmentation: {used}" in printed and "Schedule over 2 steps" in printed
    assert ("flip off for mnist" in printed) == (dataset == "mnist" and recipe_flips)


@pytest.mark.parametrize("model, options", [("googlenet", {}), ("googlenet", {"aux_logits": False}),
                                             ("resnet20", {}), ("inception_v3", {})])
def test_googlenet_recipe_weights_auxiliary_losses_only_where_the_model_has_heads(model, options, tmp_path):
    config = load_config("googlenet-szegedy2014", {**FEW_STEPS, "dataset": "cifar10", "model": model,
                                                   "model_options": options, "output": str(tmp_path),
                                                   "quiet": True})
    assert (train(config, dataset=dataset_like("cifar10")) / "summary.json").is_file()


def test_auxiliary_weights_that_do_not_fit_the_heads_are_one_sentence(tmp_path):
    config = load_config("googlenet-szegedy2014", {**FEW_STEPS, "dataset": "cifar10", "model": "resnet20",
                                                   "aux_loss_weights": [0.3, 0.3], "output": str(tmp_path)})
    with pytest.raises(ConfigError, match="resnet20 has 0 auxiliary heads") as error:
        train(config, dataset=dataset_like("cifar10"))
    assert len(str(error.value).splitlines()) == 1


def test_a_warm_up_longer_than_the_run_is_refused(tmp_path):
    config = load_config("resnet-cifar-he2015", {**FEW_STEPS, "dataset": "mnist", "model": "resnet110",
                                                 "output": str(tmp_path)})
    with pytest.raises(ConfigError, match="warm-up of 400 steps covers the whole run of 2 steps"):
        train(config, dataset=dataset_like("mnist"))
