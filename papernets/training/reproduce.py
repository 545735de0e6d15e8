"""`papernets reproduce EXPERIMENT`: rerun a paper's reported result with one command.

An experiment is a recipe, a dataset, a list of models and the figures the paper reports for them
(`papernets/analysis/paper_results.toml`, each with its table and page). `reproduce` trains every (model, seed)
into `<output>/<model>-seed<k>/` and resumes a reproduction that stopped half way (finished runs are kept, an
interrupted one continues from its last checkpoint); `papernets.analysis.reproduction_report` then writes
`report.md` and `reproduction.json` beside the runs: paper vs ours, mean ± std over the seeds, the difference,
and the evidence (config, code version, hardware, wall time).

`--quick` trains each model briefly on a few images: a check that the experiment runs end to end (CI runs it),
never a figure.
"""

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

from papernets.errors import ConfigError
from papernets.config import FieldKind, TrainConfig, fields_of_kind, load_config

# A stored run belongs to the reproduction asked for when these fields agree (the rest may change on resume).
SAME_EXPERIMENT_FIELDS = fields_of_kind(FieldKind.EXPERIMENT, FieldKind.EXECUTION) | {"epochs", "iterations"}


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    recipe: str
    dataset: str
    models: tuple[str, ...]
    seeds: int                                    # runs per model unless --seeds says otherwise (--quick: 1)
    overrides: dict = field(default_factory=dict)  # over the recipe, for every model
    quick: dict = field(default_factory=dict)     # over everything with --quick
    deviations: tuple[str, ...] = ()              # how this run departs from the paper's, and why
    claims_figure: bool = True                    # False: runnable, but no figure from it is claimed here


QUICK_SIZES = {"epochs": 1, "iterations": 0, "train_size": 512, "val_size": 256, "test_size": 256,
               "checkpoint_every_steps": 0}

EXPERIMENTS = {experiment.name: experiment for experiment in (
    Experiment(
        name="lenet5-mnist",
        title="LeNet-5 on MNIST without distortions (LeCun et al. 1998, Sec. III.B: 0.95% test error)",
        recipe="lenet-lecun1998", dataset="mnist", models=("lenet5",), seeds=3,
        # Batch 16 instead of 1 (see deviations) at the paper's global rates per update. The paper trains on all
        # 60,000 images and reports the last pass: no validation split, the final weights are tested. One thread:
        # a batch of 16 LeNet-5 images gains nothing from a second.
        overrides={"batch_size": 16, "val_size": 0, "amp": "off", "threads": 1},
        quick={**QUICK_SIZES, "val_size": 0, "batch_size": 16},
        deviations=(
            "Mini-batches of 16 instead of one pattern per update: batch 1 trains at 467 images/s on a quiet "
            "2-core CPU, 210 to 550 on a shared one (benchmarks/lenet_speed.py; batch 16: 3,942, and 1,900 to "
            "3,300), so 20 passes x 3 seeds would take 2 to 5 hours instead of 15 to 32 minutes. The global "
            "rates are the paper's, per update, so each pass makes 16 times fewer updates of the paper's size; "
            "scaling the rates with the batch is unstable with these step sizes (x2: 88.9% validation accuracy after 3 "
            "passes against 97.7% at x1; x4 and more diverge in the first pass), and smaller batches at the "
            "paper's rates learnt worse here (batch 1: 18.5% validation accuracy after 10,000 images; batch 4 "
            "diverged in its first pass).",
            "The RBF codes are seeded random +-1 codes, not the paper's 7x12 bitmaps of Fig. 3 (the paper prints "
            "them only as a picture, and papernets has no transcription of them whose source it can cite).",
            "The paper gives no value for the constant j of Eq. (9); map_rubbish_j = 1.",
        )),
    Experiment(
        name="resnet-cifar10-table6",
        title="ResNet-20/32/44/56/110 on CIFAR-10 (He et al. 2015, arXiv:1512.03385, Table 6)",
        recipe="resnet-cifar-he2015", dataset="cifar10",
        models=("resnet20", "resnet32", "resnet44", "resnet56", "resnet110"), seeds=1,
        quick={**QUICK_SIZES, "train_size": 32, "val_size": 0, "test_size": 32, "batch_size": 32,
               "milestones": [], "schedule": "constant", "warmup_steps": 0},
        deviations=("The paper reports ResNet-110 over 5 runs, best 6.43% and mean 6.61 ± 0.16% (compared here: "
                    "the mean); pass --seeds 5 for as many runs.",),
        claims_figure=False),
    Experiment(
        name="fashion-mnist-zoo",
        title="One network per family on Fashion-MNIST, against the Fashion-MNIST benchmark's figures",
        recipe="fast-fashion-mnist", dataset="fashion-mnist",
        models=("lenet5", "vgg16_bn", "googlenet", "resnet18", "mobilenet_v1", "mobilenet_v2",
                "mobilenet_v3_small"), seeds=1,
        overrides={"epochs": 10},
        quick={**QUICK_SIZES, "train_size": 32, "val_size": 0, "test_size": 32, "batch_size": 32,
               "warmup_steps": 0},
        deviations=("The networks take 28x28 images through their small-input variants (each model file "
                    "states how its stem changes); the benchmark's figures come from submitted, unverified "
                    "runs with their own recipes.",)),
)}


def get_experiment(name: str) -> Experiment:
    try:
        return EXPERIMENTS[name]
    except KeyError:
        raise ConfigError(f"Unknown experiment {name!r}; pass one of {', '.join(EXPERIMENTS)}.") from None


def experiment_config(experiment: Experiment, model: str, seed: int, *, quick: bool,
                      data_dir: str | None) -> TrainConfig:
    overrides = {**experiment.overrides, **(experiment.quick if quick else {}), "model": model,
                 "dataset": experiment.dataset, "seed": seed, "data_dir": data_dir, "quiet": True}
    return load_config(experiment.recipe, overrides)


def run_name(model: str, seed: int) -> str:
    return f"{model}-seed{seed}"


def _comparable(config: dict) -> dict:
    return {name: value for name, value in config.items() if name in SAME_EXPERIMENT_FIELDS}


@dataclass(frozen=True)
class Reproduction:
    experiment: Experiment
    folder: Path
    run_names: list[str]     # (model, seed) in order, each a run folder inside `folder`
    quick: bool
    command: list[str]       # the command line that reruns it


def reproduce(experiment: Experiment, output: Path, *, seeds: int | None = None, quick: bool = False,
              data_dir: str | None = None, dataset=None, log=print) -> Reproduction:
    """Train every (model, seed) that is not finished: a finished run is kept, an interrupted one resumes from
    its last checkpoint. `dataset` replaces loading (generated data in tests). The report is
    `analysis.reproduction_report.write_reproduction_report(reproduction)`."""
    from papernets.runs.checkpoint import load_newest_valid
    from papernets.training.engine import train
    from papernets.runs.names import CONFIG_FILE, LAST_CHECKPOINT, SUMMARY_FILE

    command = ["papernets", "reproduce", experiment.name, *(["--seeds", str(seeds)] if seeds is not None else []),
               *(["--quick"] if quick else []), *(["--data-dir", str(data_dir)] if data_dir else []),
               "--output", str(output)]
    seeds = seeds if seeds is not None else 1 if quick else experiment.seeds
    if seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {seeds}.")
    runs = [(model, seed) for model in experiment.models for seed in range(seeds)]
    for index, (model, seed) in enumerate(runs, start=1):
        config = replace(experiment_config(experiment, model, seed, quick=quick, data_dir=data_dir),
                         output=str(output), run_name=run_name(model, seed), report=False)
        run_dir = output / config.run_name
        saved_config = run_dir / CONFIG_FILE
        if saved_config.is_file() and (_comparable(json.loads(saved_config.read_text()))
                                       != _comparable(config.to_dict())):
            raise ConfigError(f"{run_dir} holds a run of another configuration (not this "
                              f"{'quick ' if quick else ''}{experiment.name}); pass another --output.")
        if (run_dir / SUMMARY_FILE).is_file():
            log(f"[{index}/{len(runs)}] {run_dir.name}: done before, kept.")
            continue
        resume = None
        if (run_dir / LAST_CHECKPOINT).is_file() or (run_dir / LAST_CHECKPOINT).with_suffix(".prev.pt").is_file():
            resume = load_newest_valid(run_dir / LAST_CHECKPOINT, warn=log)
            log(f"[{index}/{len(runs)}] {run_dir.name}: resuming at epoch {resume['epoch'] + 1}.")
        else:
            log(f"[{index}/{len(runs)}] {run_dir.name}: training.")
        # A folder without a checkpoint (a run killed before its first one) is trained again in place.
        train(config, dataset=dataset, resume=resume, run_dir=run_dir if run_dir.exists() else None)
    return Reproduction(experiment, output, [run_name(model, seed) for model, seed in runs], quick, command)
