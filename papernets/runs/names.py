"""The files of a run folder (docs/ARCHITECTURE.md, "The run folder"): written by `papernets.runs.writer` and
the engine, read by `papernets.runs.reader`."""

from pathlib import Path

CHECKPOINTS = "checkpoints"
CONFIG_FILE = "config.json"
ENVIRONMENT_FILE = "env.json"
METRICS_FILE = "metrics.csv"
STEPS_FILE = "steps.csv"
SUMMARY_FILE = "summary.json"
PREDICTIONS_FILE = "predictions.npz"
SAFETENSORS_FILE = "model.safetensors"
LAST_CHECKPOINT = Path(CHECKPOINTS, "last.pt")
BEST_CHECKPOINT = Path(CHECKPOINTS, "best.pt")

METRICS_COLUMNS = ("epoch", "step", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "images_per_s",
                   "seconds")
STEP_COLUMNS = ("step", "epoch", "lr", "batch_loss", "train_loss", "train_acc", "images_per_s", "seconds")
TIMING_COLUMNS = ("images_per_s", "seconds")  # differ between an interrupted-and-resumed run and a straight one
