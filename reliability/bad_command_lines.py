"""Bad command lines: wrong invocations of every `papernets` command, each of which must exit non-zero with one
clear sentence on stderr (`error: ...`, one line, ending in a full stop) and no traceback.

    .venv/bin/python reliability/bad_command_lines.py                 # in-process, every row
    .venv/bin/python reliability/bad_command_lines.py --subprocess    # each row as a real `papernets` process

The table is `bad_command_lines(workdir)`: it writes the files the rows need (a valid and a corrupt checkpoint,
a run folder, a non-image, a broken recipe, a file standing where a folder should be) and returns the rows;
tests/test_reliability_cli.py runs the same table. The last line printed is the count handled correctly.
"""

import argparse
import contextlib
import io
import os
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class BadCommand:
    name: str
    argv: list[str]
    expected: str  # a fragment the error sentence must hold (what it names)


def write_fixtures(workdir: Path) -> dict[str, Path]:
    """Files the table points at. The checkpoint is a real one for Fashion-MNIST, built without training."""
    import numpy as np
    import torch
    from PIL import Image

    from papernets.data.catalog import get_spec
    from papernets.models import create_model
    from papernets.config import load_config
    from papernets.runs.checkpoint import capture_rng_state, save_checkpoint
    from papernets.training.optim import build_optimizer

    workdir = Path(workdir)
    paths = {name: workdir / name for name in (
        "model.pt", "corrupt.pt", "empty.pt", "run", "broken-run", "notes.txt", "shirt.png", "broken.toml",
        "a-file", "empty-folder", "recipe-folder.toml", "runs")}
    torch.manual_seed(0)
    model = create_model("lenet5_modern", num_classes=10, input_size=(1, 28, 28))
    config = load_config("lenet-lecun1998", {"model": "lenet5_modern", "dataset": "fashion-mnist", "val_size": 0,
                                             "epochs": 1})
    checkpoint = {"model": "lenet5_modern", "model_options": {}, "num_classes": 10, "in_channels": 1,
                  "input_size": [1, 28, 28], "dataset": "fashion-mnist",
                  "class_names": list(get_spec("fashion-mnist").class_names),
                  "normalization": {"mean": [0.286], "std": [0.353]}, "precision": "off", "config": config.to_dict(),
                  "model_state": model.state_dict(), "optimizer_state": build_optimizer(model, config).state_dict(),
                  "schedule_state": {}, "scaler_state": {}, "epoch": 1, "step": 0, "global_step": 1,
                  "rng": capture_rng_state(), "epoch_sums": [0.0, 0.0, 0.0], "metrics_rows": [],
                  "best_val_accuracy": None, "best_epoch": None, "train_seconds": 0.0}
    save_checkpoint(checkpoint, paths["model.pt"])
    save_checkpoint(checkpoint, paths["run"] / "checkpoints" / "last.pt")
    data = paths["model.pt"].read_bytes()
    paths["corrupt.pt"].write_bytes(data[: len(data) // 3])
    paths["empty.pt"].write_bytes(b"")
    (paths["broken-run"] / "checkpoints").mkdir(parents=True)
    (paths["broken-run"] / "checkpoints" / "last.pt").write_bytes(data[:100])
    paths["notes.txt"].write_text("not an image\n")
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(paths["shirt.png"])
    paths["broken.toml"].write_text('model = "lenet5"\nlr = [0.1\n')
    paths["a-file"].write_text("a file where a folder should be\n")
    paths["empty-folder"].mkdir()
    paths["recipe-folder.toml"].mkdir()
    return paths


def bad_command_lines(workdir: Path) -> list[BadCommand]:
    """The table (at least 30 rows), with its files written into `workdir`."""
    paths = {name: str(path) for name, path in write_fixtures(workdir).items()}
    small = ["--set", "train_size=64", "val_size=64", "test_size=64"]
    train = ["train", "--model", "lenet5_modern", "--dataset", "fashion-mnist", "--epochs", "1",
             "--output", paths["runs"], "--quiet", "--no-report"]
    rows = [
        # The command itself.
        ("no command", [], "required: command"),
        ("unknown command", ["fit"], "invalid choice: 'fit'"),
        ("unknown flag", ["list", "--colour"], "unrecognized arguments: --colour"),
        # Unknown names.
        ("unknown model", ["train", "--model", "resnet2O", "--dataset", "fashion-mnist", "--epochs", "1"],
         "Unknown model 'resnet2O'"),
        ("unknown dataset", ["train", "--model", "lenet5", "--dataset", "imagenet", "--epochs", "1"], "imagenet"),
        ("unknown recipe", train + ["--recipe", "resnet-imagenet-he2015"], "Unknown recipe"),
        ("unknown model for info", ["info", "alexnet"], "alexnet"),
        ("no model matches a pattern", ["list", "transformer*"], "No model matches 'transformer*'"),
        ("unknown dataset for data info", ["data", "info", "svhn"], "invalid choice: 'svhn'"),
        ("unknown --sort column", ["compare", paths["run"], "--sort", "speed"], "Unknown column 'speed'"),
        # Bad numbers.
        ("epochs not a number", ["train", "--model", "lenet5", "--dataset", "mnist", "--epochs", "ten"],
         "invalid int value: 'ten'"),
        ("negative epochs", train + ["--epochs", "-2"], "epochs"),
        ("zero batch size", train + ["-b", "0"], "Batch size must be at least 1"),
        ("negative learning rate", train + ["--lr", "-0.1"], "Learning rate must be positive"),
        ("NaN learning rate", train + ["--lr", "nan"], "must be a finite number"),
        ("batch larger than the data", train + ["-b", "4096"] + small, "exceeds the"),
        ("input size with two numbers", ["info", "lenet5", "--input", "1x28"], "is not an input size"),
        ("zero channels", ["info", "lenet5", "--input", "0x28x28"], "is not an input size"),
        ("negative width multiplier", ["info", "mobilenet_v1", "--width", "-1"], "width_multiplier must be positive"),
        ("zero classes", ["info", "lenet5", "--num-classes", "0"], "--num-classes must be at least 1"),
        ("top-k of zero", ["predict", "--checkpoint", paths["model.pt"], paths["shirt.png"], "--top-k", "0"],
         "--top-k is 0"),
        # --set.
        ("--set without =", train + ["--set", "lr"], "--set takes field=value"),
        ("--set of an unknown field", train + ["--set", "warmup=3"], "'warmup' is not a training config field"),
        ("--set of the wrong type", train + ["--set", "momentum=fast"], "momentum must be of type float"),
        ("--set of an unknown augmentation", train + ["--set", "augmentation.rotate=5"], "augmentation.rotate"),
        ("--set of a value and a sub-field", train + ["--set", "lr=0.1", "lr.decay=2"], "lr"),
        ("bad --option for info", ["info", "lenet5", "--option", "=3"], "is not KEY=VALUE"),
        ("option a model does not take", ["info", "lenet5", "--option", "depth=50"], "does not take these options"),
        # Incompatible flags.
        ("epochs and iterations", train + ["--set", "iterations=10"], "exactly one of epochs or iterations"),
        ("plateau without validation", train + ["--set", "schedule=plateau", "val_size=0"], "needs val_size > 0"),
        ("resume with another model", ["train", "--resume", paths["run"], "--model", "resnet20"], "drop --model"),
        ("resume with another recipe value", ["train", "--resume", paths["run"], "--lr", "0.5"], "lr cannot change"),
        ("resume with --recipe", ["train", "--resume", paths["run"], "--recipe", "lenet-lecun1998"], "drop --recipe"),
        ("--output for one report", ["report", paths["run"], "--output", paths["runs"]], "drop --output"),
        ("no GPU for --device cuda", train + ["--device", "cuda"] + small, "no CUDA GPU"),
        # Missing, unreadable or unwritable paths.
        ("missing recipe file", train + ["--recipe", "/nonexistent/recipe.toml"], "Unknown recipe"),
        ("recipe that is a folder", train + ["--recipe", paths["recipe-folder.toml"]], "Unknown recipe"),
        ("recipe that is not TOML", train + ["--recipe", paths["broken.toml"]], "cannot be read as TOML"),
        ("missing data folder", train + ["--data-dir", "/nonexistent/data"], "does not exist"),
        ("data folder without the data", ["data", "info", "mnist", "--data-dir", paths["empty-folder"]],
         "holds no MNIST handwritten digits files"),
        ("output under a file", train + ["-b", "32", "--output", paths["a-file"] + "/runs"] + small,
         "Cannot write to the output folder"),
        ("resume of a missing run", ["train", "--resume", "/nonexistent/run"], "no run folder or .pt checkpoint"),
        ("resume of a run with only corrupt checkpoints", ["train", "--resume", paths["broken-run"]],
         "No valid checkpoint to resume from"),
        ("missing teacher", train + ["--teacher", "/nonexistent/teacher.pt"] + small, "does not exist"),
        ("report of a missing folder", ["report", "/nonexistent/run"], "/nonexistent/run"),
        # Bad checkpoints and inputs.
        ("eval of a missing checkpoint", ["eval", "--checkpoint", "/nonexistent/best.pt"], "does not exist"),
        ("eval of a corrupt checkpoint", ["eval", "--checkpoint", paths["corrupt.pt"]], "corrupt or truncated"),
        ("eval of an empty checkpoint", ["eval", "--checkpoint", paths["empty.pt"]], "corrupt or truncated"),
        ("eval of a non-checkpoint", ["eval", "--checkpoint", paths["notes.txt"]], "notes.txt"),
        ("eval on a split the run lacks", ["eval", "--checkpoint", paths["model.pt"], "--split", "val"],
         "without a validation split"),
        ("eval without --checkpoint", ["eval"], "--checkpoint"),
        ("predict on a non-image", ["predict", "--checkpoint", paths["model.pt"], paths["notes.txt"]],
         "cannot be read as an image"),
        ("predict on a missing image", ["predict", "--checkpoint", paths["model.pt"], "/nonexistent/shirt.png"],
         "does not exist"),
        ("predict on a folder", ["predict", "--checkpoint", paths["model.pt"], paths["empty-folder"]], "is a folder"),
        ("predict with a corrupt checkpoint", ["predict", "--checkpoint", paths["corrupt.pt"], paths["shirt.png"]],
         "corrupt or truncated"),
    ]
    return [BadCommand(name, argv, expected) for name, argv, expected in rows]


def verdict(code: int, stderr: str, expected: str) -> str | None:
    """None if the invocation was handled as it must be; else what is wrong. The one `error:` line may follow
    `warning:` lines that name files it passed over (a resume that finds every checkpoint corrupt)."""
    lines = stderr.strip().splitlines()
    if code == 0:
        return "exit status 0"
    if "Traceback" in stderr:
        return "traceback: " + lines[-1]
    if not lines or not lines[-1].startswith("error: ") or not all(line.startswith("warning: ") for line in lines[:-1]):
        return f"not one `error: ...` line (after warnings): {stderr.strip()[:300]!r}"
    if not lines[-1].endswith((".", "?")):
        return f"not a sentence ending in a full stop: {lines[-1]!r}"
    if expected not in lines[-1]:
        return f"does not name {expected!r}: {lines[-1]!r}"
    return None


def run_in_process(argv: list[str]) -> tuple[int, str]:
    """(exit status, stderr) of `papernets.cli.main(argv)`; an uncaught exception counts as a traceback."""
    from papernets.cli import main

    stderr, stdout = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(stdout):
        try:
            code = main(argv)
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else 1
        except Exception:  # noqa: BLE001  (exactly what this script looks for)
            traceback.print_exc()
            code = 1
    return code, stderr.getvalue()


def run_as_process(argv: list[str], environment: dict) -> tuple[int, str]:
    result = subprocess.run([sys.executable, "-m", "papernets", *argv], capture_output=True, text=True,
                            timeout=300, env=environment)
    return result.returncode, result.stderr


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subprocess", action="store_true", help="run each row as a real `papernets` process")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bad-command-lines-") as workdir:
        environment = {**os.environ, "XDG_CACHE_HOME": str(Path(workdir) / "cache")}
        os.environ["XDG_CACHE_HOME"] = environment["XDG_CACHE_HOME"]
        rows = bad_command_lines(Path(workdir))
        handled = 0
        for row in rows:
            code, stderr = run_as_process(row.argv, environment) if args.subprocess else run_in_process(row.argv)
            problem = verdict(code, stderr, row.expected)
            handled += problem is None
            status = "ok  " if problem is None else "FAIL"
            shown = stderr.strip().splitlines()[-1] if problem is None else problem
            print(f"{status} {row.name:<48} exit {code}: {shown}")
    print(f"{len(rows)} bad command lines in {time.perf_counter() - started:.0f} s "
          f"({'subprocesses' if args.subprocess else 'in-process'})")
    print(f"handled with exit status != 0 and one clear sentence on stderr: {handled}/{len(rows)}")
    return 0 if handled == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
