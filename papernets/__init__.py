"""papernets: the classic CNN papers, implemented line by line, trained fast, verified by tests.

The top level, as in timm:

    import papernets

    papernets.list_models("resnet*")                      # registered names matching a pattern
    model = papernets.create_model("resnet20", num_classes=10, input_size=(1, 28, 28))
    data = papernets.load_dataset("fashion-mnist")        # uint8 arrays (N, C, H, W), labels, class names
    run_dir = papernets.train(model="fastnet", dataset="fashion-mnist", epochs=1)   # -> the run folder

Names are imported on first use, so `import papernets` loads neither torch nor any model file; the parts
(`papernets.models`, `papernets.data`, `papernets.training`, ...) are reachable as attributes too.
"""

import importlib

__version__ = "0.1.0"

__all__ = ["TrainConfig", "__version__", "create_model", "list_models", "load_config", "load_dataset",
           "train"]

# Public name -> the module that defines it.
_LAZY_NAMES = {
    "create_model": "papernets.models",
    "list_models": "papernets.models",
    "load_dataset": "papernets.data",
    "TrainConfig": "papernets.config",
    "load_config": "papernets.config",
}
_SUBPACKAGES = {"analysis", "cli", "config", "data", "distributed", "errors", "evaluation", "export", "files", "hardware",
                "models", "runs", "stats", "training"}


def train(config=None, /, *, recipe: str | None = None, data=None, **fields):
    """Train a model and return its run folder (a `pathlib.Path` holding summary.json, metrics.csv,
    checkpoints/, model.safetensors and report.md).

    Give a `TrainConfig`, or keyword arguments naming config fields (`model`, `dataset`, `epochs`, `lr`,
    `batch_size`, `augmentation={"flip": False}`, ...; `papernets train --help` lists them) over a recipe:
    `recipe` (default: the data set's fast recipe, `fast-<dataset>`, where there is one). The fields and the
    recipe are resolved and checked exactly as `papernets train` does. `data` replaces loading the data set
    (a `papernets.data.Dataset`, e.g. generated images).

        papernets.train(model="resnet20", dataset="mnist", epochs=3, recipe="resnet-cifar-he2015")
    """
    from papernets.config import default_recipe, load_config
    from papernets.training.engine import train as train_run

    if config is not None and (recipe or fields):
        raise TypeError("papernets.train takes a TrainConfig or recipe/fields, not both")
    if config is None:
        config = load_config(recipe or default_recipe(fields.get("dataset")), fields)
    return train_run(config, dataset=data)


def __getattr__(name: str):
    if name in _LAZY_NAMES:
        return getattr(importlib.import_module(_LAZY_NAMES[name]), name)
    if name in _SUBPACKAGES:
        return importlib.import_module(f"papernets.{name}")
    raise AttributeError(f"module 'papernets' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | _SUBPACKAGES)
