"""`papernets train ...` and `papernets eval --checkpoint PATH`.

Every flag is a field of `TrainConfig`; `--set field=value` reaches the others. Flags and recipe are checked
(types, ranges, the model and dataset names, whether the model can take the dataset's images) before any
training starts. Without --recipe a model trains with the dataset's fast recipe (`fast-<dataset>`).
"""

import argparse
import json
import os
import sys
import textwrap
from pathlib import Path

from papernets.config import (AMP_MODES, DEVICES, FIELD_TYPES, FieldKind, TrainConfig, apply_overrides,
                              config_from_dict, default_recipe, fields_of_kind, list_recipes, load_config,
                              parse_overrides, type_name)
from papernets.errors import ConfigError, PapernetsError
from papernets.text import plural


def add_commands(subparsers) -> None:
    train = subparsers.add_parser("train", help="train a model on a dataset with a recipe",
                                  description="Train a model; every recipe field can be overridden with --set.",
                                  epilog=config_fields_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_argument("--model", help="a name from `papernets list`, e.g. resnet20")
    train.add_argument("--dataset", help="mnist, fashion-mnist, cifar10 or cifar100")
    train.add_argument("--recipe", metavar="NAME|FILE",
                       help=f"a recipe ({', '.join(list_recipes())}) or a .toml file (default: fast-<dataset>)")
    train.add_argument("--data-dir", metavar="DIR", help="folder holding the dataset's files")
    train.add_argument("--download", action="store_true", default=None, help="download the dataset if missing")
    train.add_argument("--epochs", type=int, metavar="N")
    train.add_argument("-b", "--batch-size", type=int, metavar="B", help="global batch size")
    train.add_argument("--lr", type=float, metavar="LR", help="peak learning rate")
    train.add_argument("--seed", type=int, metavar="S")
    train.add_argument("--output", metavar="DIR", help="root of the run folders (default: runs)")
    train.add_argument("--device", choices=DEVICES)
    train.add_argument("--amp", choices=AMP_MODES,
                       help="bf16 autocast (default auto: on where the hardware has bf16 arithmetic)")
    train.add_argument("--channels-last", action="store_true", default=None, help="NHWC memory format")
    train.add_argument("--compile", action="store_true", default=None, help="torch.compile the model")
    train.add_argument("--resume", nargs="?", const="", metavar="RUN_DIR|CHECKPOINT",
                       help="continue a run from its last checkpoint (alone: the newest run under --output)")
    train.add_argument("--teacher", metavar="CHECKPOINT", help="distil from this trained model (Hinton et al.)")
    train.add_argument("--set", action="extend", nargs="+", default=[], metavar="FIELD=VALUE", dest="overrides",
                       help="override any config field, e.g. --set lr=0.05 augmentation.flip=false")
    train.add_argument("--pretrained", metavar="FILE",
                       help="start from a torchvision state dict (.pth) of this model; the head is replaced for "
                            "the data set's classes (torchvision-exact models only)")
    train.add_argument("--print-config", action="store_true",
                       help="print the resolved config (recipe, per-model sections, --set, flags) as JSON and exit")
    train.add_argument("--quiet", action="store_true", default=None,
                       help="print only warnings, errors and the result (test accuracy, run folder)")
    train.add_argument("--no-report", action="store_false", default=None, dest="report",
                       help="skip report.md at the end")
    train.add_argument("--html", action="store_true", default=None, help="also write report.html")
    train.add_argument("--tensorboard", action="store_true", default=None,
                       help="log to RUN_DIR/tensorboard (needs the tensorboard package)")
    train.add_argument("--procs", type=int, default=1, metavar="N",
                       help="train in N processes on this machine (DDP ranks as under torchrun, gloo on the CPU, "
                            "one thread each by default); on 2 cores fastnet trained 1.13x faster in 2 processes "
                            "of 1 thread than in 1 of 2, and ResNet-20 2.6x faster when other work shared the cores "
                            "(docs/BENCHMARKS.md, 'Threads, processes and load')")
    train.set_defaults(run=run_train)

    evaluate = subparsers.add_parser("eval", help="accuracy of a checkpoint on the test or validation split")
    evaluate.add_argument("--checkpoint", required=True, metavar="PATH",
                          help="a .pt file, a run folder, or a .safetensors file (`papernets export`, model.safetensors)")
    evaluate.add_argument("--split", choices=("test", "val"), default="test")
    evaluate.add_argument("--data-dir", metavar="DIR")
    evaluate.add_argument("--device", choices=DEVICES)
    evaluate.add_argument("--json", action="store_true", help="print the result as JSON")
    evaluate.set_defaults(run=run_eval)


# The config fields that have a flag of their own (same name); --set reaches every field.
FLAG_FIELDS = ("model", "dataset", "data_dir", "download", "epochs", "batch_size", "lr", "seed", "output", "device",
               "amp", "channels_last", "compile", "teacher", "pretrained", "quiet", "report", "html", "tensorboard")


def config_fields_help() -> str:
    """The epilog of `papernets train --help`: every config field --set reaches, with its type."""
    fields = [f"{name} ({type_name(kind)})" for name, kind in FIELD_TYPES.items() if name != "adjustments"]
    wrapped = textwrap.fill(", ".join(fields), width=100, initial_indent="  ", subsequent_indent="  ")
    return ("config fields for --set FIELD=VALUE (tables: augmentation.pad/crop/flip/cutout, model_options.NAME);\n"
            f"--print-config shows their resolved values:\n{wrapped}")


def overrides_from(args) -> dict:
    """--set pairs, then the named flags (which win)."""
    overrides = parse_overrides(args.overrides)
    overrides.update({name: getattr(args, name) for name in FLAG_FIELDS if getattr(args, name) is not None})
    return overrides


def check_names(model: str | None, dataset: str | None):
    """Unknown model or dataset: one sentence before anything else is checked or loaded."""
    from papernets.data.catalog import get_spec
    from papernets.models import get_model_entry

    if model:
        get_model_entry(model)
    if dataset:
        get_spec(dataset)


def resume_target(resume: str, output: str) -> tuple[Path, Path]:
    """(run folder, checkpoint path) for `--resume` with a run folder, a checkpoint file, or nothing."""
    from papernets.runs.names import CHECKPOINTS, LAST_CHECKPOINT
    from papernets.runs.writer import newest_run

    path = Path(resume) if resume else newest_run(output)
    if path.is_dir():
        return path, path / LAST_CHECKPOINT
    if path.suffix == ".pt":
        run_dir = path.parent.parent if path.parent.name == CHECKPOINTS else path.parent
        return run_dir, path
    raise ConfigError(f"--resume {resume}: no run folder or .pt checkpoint there; pass the folder "
                      "`papernets train` wrote (runs/<model>-<dataset>-<time>).")


def resumed_config(saved: dict, overrides: dict) -> TrainConfig:
    """The run's saved config with the overrides a resumed run may make (fields of kind `resumable`)."""
    config = config_from_dict(saved)
    for name in ("model", "dataset"):
        if overrides.get(name) not in (None, getattr(config, name)):
            raise ConfigError(f"--resume continues a {config.model} run on {config.dataset}; drop --{name} or "
                              "start a new run without --resume.")
        overrides.pop(name, None)
    refused = sorted(set(overrides) - fields_of_kind(FieldKind.RESUMABLE))
    if refused:
        raise ConfigError(f"A resumed run keeps its recipe, so {', '.join(refused)} cannot change; drop "
                          f"{'them' if len(refused) > 1 else 'it'} or start a new run.")
    return apply_overrides(overrides, config)


def finished(run_dir: Path, checkpoint: dict, config: TrainConfig) -> bool:
    """True when the checkpoint is the end of the run as configured and the run wrote its summary."""
    from papernets.runs.names import SUMMARY_FILE

    done = (checkpoint["epoch"] >= config.epochs if config.epochs else checkpoint["global_step"] >= config.iterations)
    return done and (run_dir / SUMMARY_FILE).is_file()


def run_train(args) -> int:
    from papernets.runs import checkpoint
    from papernets.distributed import is_main_process
    from papernets.training.engine import TrainingInterrupted, train
    from papernets.runs.writer import check_same_run

    overrides = overrides_from(args)
    check_names(overrides.get("model"), overrides.get("dataset"))
    resume = run_dir = None
    if args.resume is not None:
        if args.recipe:
            raise ConfigError("A resumed run keeps its recipe; drop --recipe or start a new run without --resume.")
        run_dir, checkpoint_path = resume_target(args.resume, overrides.get("output", TrainConfig.output))
        resume = checkpoint.load_newest_valid(checkpoint_path, warn=lambda line: print(line, file=sys.stderr))
        check_same_run(run_dir, resume)
        config = resumed_config(resume["config"], overrides)
    else:
        recipe = args.recipe or default_recipe(overrides.get("dataset"))
        config = load_config(recipe, overrides)
    check_names(config.model, config.dataset)
    if args.print_config:
        print(json.dumps(config.to_dict(), indent=2))
        return 0
    if resume is not None and finished(run_dir, resume, config):
        length = plural(config.epochs, "epoch") if config.epochs else plural(config.iterations, "iteration")
        print(f"{run_dir} has finished its {length} (summary.json holds its test accuracy); nothing to resume. "
              "To train on, pass a longer --epochs.")
        return 0
    if args.procs != 1 and not under_torchrun():
        return run_in_processes(args.procs, args.argv, config)
    try:
        run_dir = train(config, resume=resume, run_dir=run_dir)
    except TrainingInterrupted as interruption:
        print(interruption, file=sys.stderr)
        return interruption.exit_code
    if config.report and is_main_process():
        write_run_report(run_dir, config)
    return 0


def under_torchrun() -> bool:
    return "LOCAL_RANK" in os.environ


def run_in_processes(procs: int, argv: list[str], config: TrainConfig) -> int:
    """`train --procs N`: the same command line in N processes on this machine, which the engine runs as DDP
    ranks (papernets.distributed, as under torchrun); returns the first non-zero exit status, else 0."""
    import torch

    from papernets.distributed import run_local_ranks

    if procs < 1:
        raise ConfigError(f"--procs {procs}: give a number of processes of at least 1.")
    if config.device == "cuda" or (config.device == "auto" and torch.cuda.is_available()):
        if procs > torch.cuda.device_count():
            raise ConfigError(f"--procs {procs} asks for one GPU per process but this machine has "
                              f"{torch.cuda.device_count()}; pass --procs {torch.cuda.device_count()} or --device cpu.")
    return run_local_ranks([sys.executable, "-m", "papernets", *without_procs(argv)], procs)


def without_procs(argv: list[str]) -> list[str]:
    """The command line without its --procs option (`--procs N` or `--procs=N`)."""
    kept, skip = [], False
    for token in argv:
        if skip:
            skip = False
        elif token == "--procs":
            skip = True
        elif not token.startswith("--procs="):
            kept.append(token)
    return kept


def write_run_report(run_dir: Path, config: TrainConfig):
    """train, then report: a report that fails is an error, and the message says the run itself is complete."""
    from papernets.analysis.report import write_report

    try:
        report = write_report(run_dir, html=config.html)
    except PapernetsError as error:
        raise PapernetsError(f"Training finished and {run_dir} is complete, but its report failed: {error}") from None
    print(f"Report: {report.with_suffix('.html') if config.html else report}")


def run_eval(args) -> int:
    from papernets.training.engine import evaluate_checkpoint

    result = evaluate_checkpoint(args.checkpoint, split=args.split, data_dir=args.data_dir,
                                 device=args.device or "auto")
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{result['model']} on {result['dataset']} {result['split']}: accuracy {result['accuracy']:.4f} "
              f"({result['correct']}/{result['images']}), top-5 {result['top5_accuracy']:.4f}, "
              f"loss {result['loss']:.4f}")
    return 0

