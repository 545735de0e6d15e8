"""The training loop: `train(config) -> run folder`, one function that reads top to bottom.

1. device, precision (bf16 autocast where the hardware has bf16 arithmetic), threads, torchrun ranks;
2. data: train/val/test splits on the device, normalized with the training split's channel statistics;
3. model (seeded), teacher, optimizer, schedule; or all of them restored from a checkpoint (`--resume`);
4. the loop: one global step per batch (`train_step`), then `after_step` decides whether to save last.pt or
   stop; a row of steps.csv every `log_every_steps` steps; per epoch a validation pass, a row of metrics.csv,
   best.pt on each better validation accuracy;
5. final weights; the test pass of the best-validation weights (never selected by test), whose probabilities
   go to predictions.npz; summary.json.

Evaluation is `papernets.evaluation`'s one loop. The command line, not this module, writes the report from the
run folder afterwards.

Exact resume: every batch is a pure function of (seed, epoch, step), the learning rate a function of the
global step, and the checkpoint holds the RNG states and the running sums of the epoch, so on the CPU with
the same settings an interrupted and resumed run ends with the same weights, metrics.csv and steps.csv (bar
the timing columns `images_per_s` and `seconds`) as a run that was never interrupted.
"""

import contextlib
import copy
import math
import os
import random
import signal
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from papernets.config import TrainConfig, check_augmentation_fits, config_from_dict, validate
from papernets.distributed import from_environment
from papernets.errors import CheckpointError, ConfigError, TrainingError
from papernets.evaluation import Evaluation, autocast, evaluate
from papernets.files import RunLock, write_bytes
from papernets.hardware import bf16_supported
from papernets.runs import checkpoint as checkpoints
from papernets.runs.names import (BEST_CHECKPOINT, CONFIG_FILE, ENVIRONMENT_FILE, LAST_CHECKPOINT, METRICS_FILE,
                                  PREDICTIONS_FILE, SAFETENSORS_FILE, STEPS_FILE, SUMMARY_FILE)
from papernets.runs.predictions import Predictions
from papernets.runs.reader import read_run
from papernets.runs.writer import (RUN_FOLDER_ADVICE, StepLog, create_run_folder, default_run_name, environment,
                                   prepare_run_folder, write_json, write_metrics)
from papernets.training.losses import LossParts, training_loss
from papernets.training.optim import LearningRateSchedule, build_optimizer, set_lr
from papernets.text import plural
from papernets.training.progress import Progress
from papernets.training.sdlm import SDLM, estimate_curvature



class TrainingInterrupted(Exception):
    """A run stopped at a step boundary with its checkpoint saved (SIGTERM or SIGINT)."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


# ---------------------------------------------------------------------------------------------------------
# 1. Device and precision.

def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but no CUDA GPU is available; use --device cpu.")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def resolve_amp(mode: str, device: torch.device, progress: Progress) -> torch.dtype | None:
    if mode == "off":
        return None
    if mode == "bf16" and not bf16_supported(device):
        progress.message(f"warning: this {device.type} has no native bf16 arithmetic; bf16 autocast will run, "
                         "emulated and slower (use --amp off for fp32).")
    if mode == "auto" and not bf16_supported(device):
        return None
    return torch.bfloat16


# ---------------------------------------------------------------------------------------------------------
# 2. Data.

@dataclass
class PreparedData:
    train: object             # data.ArraySplit
    val: object | None
    test: object
    input_size: tuple[int, int, int]
    class_names: list[str]
    mean: list[float]
    std: list[float]


def _first(split, count: int):
    from papernets.data import ArraySplit

    if count == 0 or count >= len(split.labels):
        return split
    return ArraySplit(split.images[:count], split.labels[:count])


def prepare_data(config: TrainConfig, dataset=None, normalization: dict | None = None) -> PreparedData:
    """The splits the config names; `dataset` replaces loading (generated data in tests); `normalization`
    (a checkpoint's) replaces computing the training split's channel statistics."""
    from papernets.data import channel_statistics, load_dataset, split_dataset

    if dataset is None:
        dataset = load_dataset(config.dataset, data_dir=config.data_dir, download=config.download)
    splits = split_dataset(dataset, val_size=config.val_size, seed=config.seed)
    train = _first(splits.train, config.train_size)
    if normalization is None:
        mean, std = channel_statistics(dataset)  # the released training set, as papernets.data does
        normalization = {"mean": [float(value) for value in mean], "std": [float(value) for value in std]}
    return PreparedData(train=train, val=splits.val if config.val_size > 0 else None,
                        test=_first(splits.test, config.test_size),
                        input_size=tuple(int(size) for size in dataset.train_images.shape[1:]),
                        class_names=list(dataset.class_names),
                        mean=list(normalization["mean"]), std=list(normalization["std"]))


def augmentation_for(config: TrainConfig, input_size: tuple[int, int, int]):
    """The run's augmentation, refused before any batch is allocated if its padding or cutout exceeds the image."""
    from papernets.data import Augmentation, default_augmentation

    names = ("pad", "crop", "flip", "cutout")
    values = dict(config.augmentation)
    if not all(name in values for name in names):
        default = default_augmentation(config.dataset)
        values = {**{name: getattr(default, name) for name in names}, **values}
    check_augmentation_fits(values, input_size)
    return Augmentation(**values)


def evaluation_loader(split, data: PreparedData, config: TrainConfig, device: torch.device):
    from papernets.data import BatchLoader

    return BatchLoader(split.images, split.labels, batch_size=config.batch_size, seed=config.seed,
                       augment=None, mean=data.mean, std=data.std,
                       device=device, channels_last=config.channels_last, shuffle=False, drop_last=False)


# ---------------------------------------------------------------------------------------------------------
# 3. Model and teacher.

def build_model(config: TrainConfig, data: PreparedData) -> tuple[nn.Module, int, int]:
    """The seeded model for the dataset's image size and classes, with its parameter and MAC counts; a model
    that cannot take the dataset's images is refused here, before any training."""
    from papernets.models import count_macs, count_parameters, create_model

    torch.manual_seed(config.seed)
    if config.pretrained:
        model = pretrained_model(config, data)
    else:
        model = create_model(config.model, num_classes=len(data.class_names), input_size=data.input_size,
                             **config.model_options)
    try:
        macs = count_macs(model, data.input_size)
        with torch.no_grad(), torch.random.fork_rng(devices=[]):  # training mode too: auxiliary heads run there
            copy.deepcopy(model).train()(torch.zeros(2, *data.input_size))
    except (RuntimeError, ValueError) as error:
        size = "x".join(str(size) for size in data.input_size)
        raise ConfigError(f"Model {config.model} cannot take {config.dataset}'s {size} images "
                          f"({str(error).splitlines()[0]}); pick a model designed for images this size.") from None
    return model, count_parameters(model), macs


def curvature_images(data: PreparedData, config: TrainConfig, epoch: int, device: torch.device) -> torch.Tensor:
    """The `sdlm_samples` training images, drawn afresh for each epoch from (seed, epoch), on which the sdlm
    optimizer estimates its second derivatives before the epoch (LeCun et al. 1998, Appendix C)."""
    from papernets.data import BatchLoader

    count = min(config.sdlm_samples, len(data.train.labels))
    chosen = np.random.default_rng([config.seed, epoch]).choice(len(data.train.labels), count, replace=False)
    loader = BatchLoader(data.train.images[chosen], data.train.labels[chosen], batch_size=count, seed=config.seed,
                         augment=None, mean=data.mean, std=data.std, device=device, shuffle=False, drop_last=False)
    images, _ = next(iter(loader.eval_batches()))
    return images


def auxiliary_loss_weights(config: TrainConfig, model: nn.Module) -> tuple[float, ...]:
    """The config's weights for the model's auxiliary losses, or the model's own (GoogLeNet Sec. 5: 0.3 each);
    one weight per auxiliary head, checked here so that a mismatch is one sentence, not a traceback."""
    own = tuple(getattr(model, "aux_loss_weights", ()))
    if config.aux_loss_weights and len(config.aux_loss_weights) != len(own):
        raise ConfigError(f"aux_loss_weights gives {len(config.aux_loss_weights)} weights but {config.model} has "
                          f"{len(own)} auxiliary heads; give {len(own)} weights or drop aux_loss_weights.")
    return tuple(config.aux_loss_weights) or own


def pretrained_model(config: TrainConfig, data: PreparedData) -> nn.Module:
    """The model started from a torchvision state dict file, its head replaced for the data set's classes."""
    from papernets.models.interop import fine_tuning_start

    try:
        state_dict = torch.load(config.pretrained, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001  (torch.load on foreign bytes raises anything from IndexError up)
        raise CheckpointError(f"--pretrained {config.pretrained} cannot be read as a state dict "
                              f"({checkpoints.short_reason(error)}); pass a file saved with "
                              "torch.save(torchvision_model.state_dict()).") from None
    if not isinstance(state_dict, dict) or not all(isinstance(value, torch.Tensor) for value in state_dict.values()):
        raise CheckpointError(f"--pretrained {config.pretrained} holds no state dict of tensors; pass a file saved "
                              "with torch.save(torchvision_model.state_dict()).")
    model, _ = fine_tuning_start(config.model, state_dict, num_classes=len(data.class_names),
                                 input_size=data.input_size, **config.model_options)
    return model


def load_teacher(checkpoint: dict, data: PreparedData, device: torch.device) -> nn.Module:
    teacher, checkpoint = checkpoints.model_from_checkpoint(checkpoint)
    if checkpoint["num_classes"] != len(data.class_names) or tuple(checkpoint["input_size"]) != data.input_size:
        raise ConfigError(f"The teacher was trained on {checkpoint['dataset']} ({checkpoint['num_classes']} "
                          f"classes, input {tuple(checkpoint['input_size'])}); pass a teacher trained on this "
                          "dataset.")
    for parameter in teacher.parameters():
        parameter.requires_grad_(False)
    return teacher.to(device)


# ---------------------------------------------------------------------------------------------------------
# Evaluation (validation, test, `papernets eval`).

def model_for_evaluation(path: Path) -> tuple[nn.Module, dict]:
    """(model, its checkpoint's fields) from a checkpoint (.pt), or from a papernets safetensors file: a run's
    model.safetensors or what `papernets export` wrote (then `epoch` is None)."""
    if path.suffix != ".safetensors":
        return checkpoints.model_from_checkpoint(path)
    from papernets.export.fusion import load_exported_model

    model, info = load_exported_model(path)
    if info.config is None:
        raise CheckpointError(f"{path} was exported without its training config, so its test split is unknown; "
                              "export it again with `papernets export` to evaluate it.")
    return model, {**asdict(info), "epoch": None}


def evaluate_checkpoint(path: str | Path, *, split: str = "test", data_dir: str | None = None,
                        device: str = "auto") -> dict:
    """`papernets eval`: the checkpoint's accuracy on the split it was trained with, computed as training
    computed it (same normalization, precision, batch size and memory format), so that a run's best.pt
    reproduces summary.json's test accuracy."""
    path = Path(path)
    if path.is_dir():
        path = path / BEST_CHECKPOINT
    result, checkpoint, evaluated, _ = _evaluate_checkpoint(path, split, data_dir, device)
    images = len(evaluated.labels)
    return {"checkpoint": str(path), "model": checkpoint["model"], "dataset": checkpoint["dataset"],
            "split": split, "accuracy": result.accuracy, "top5_accuracy": result.top5_accuracy, "loss": result.loss,
            "images": images, "correct": round(result.accuracy * images), "epoch": checkpoint["epoch"]}


def save_test_predictions(run_dir: Path) -> Path:
    """predictions.npz for a finished run folder that lacks it (written before training saved it)."""
    path = read_run(run_dir).best_checkpoint
    result, _, test, class_names = _evaluate_checkpoint(path, "test", None, "auto", keep_probabilities=True)
    predictions = Path(run_dir) / PREDICTIONS_FILE
    Predictions.of(result.probabilities, test.labels, class_names, test.images).save(predictions)
    return predictions


def _evaluate_checkpoint(path: Path, split: str, data_dir: str | None, device: str,
                         keep_probabilities: bool = False) -> tuple[Evaluation, dict, object, list[str]]:
    """(the evaluation, the checkpoint's fields, the split evaluated (data.ArraySplit), the class names)."""
    model, checkpoint = model_for_evaluation(path)
    config = replace(config_from_dict(checkpoint["config"]), data_dir=data_dir or checkpoint["config"]["data_dir"])
    if split == "val" and config.val_size == 0:
        raise ConfigError(f"{path} was trained without a validation split (val_size 0); use --split test.")
    torch_device = resolve_device(device)
    amp_dtype = torch.bfloat16 if checkpoint["precision"] == "bf16" else None
    data = prepare_data(config, normalization=checkpoint["normalization"])
    chosen = data.test if split == "test" else data.val
    loader = evaluation_loader(chosen, data, config, torch_device)
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    model = model.to(torch_device, memory_format=memory_format)
    result = evaluate(model, loader, device=torch_device, amp_dtype=amp_dtype, tta_flip=config.eval_tta_flip,
                      keep_probabilities=keep_probabilities)
    return result, checkpoint, chosen, data.class_names


# ---------------------------------------------------------------------------------------------------------
# Signals: finish the step, save, and stop.

class StopSignals:
    """SIGTERM and SIGINT ask the loop to stop at the next step boundary (a second SIGINT stops at once)."""

    EXIT_CODES = {signal.SIGTERM: 143, signal.SIGINT: 130}

    def __init__(self):
        self.received: int | None = None
        self.previous = {}

    def _handle(self, number, frame):
        if self.received == signal.SIGINT and number == signal.SIGINT:
            raise KeyboardInterrupt
        self.received = number

    def __enter__(self):
        with contextlib.suppress(ValueError):  # only the main thread can install handlers
            for number in self.EXIT_CODES:
                self.previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exception):
        for number, handler in self.previous.items():
            signal.signal(number, handler)

    def agreed(self, distributed, device: torch.device) -> int | None:
        """The signal that stops this step, when any rank received one (all ranks stop at the same step)."""
        if not distributed.enabled:
            return self.received
        votes = distributed.sum(torch.tensor([float(self.received is not None)], dtype=torch.float64, device=device))
        return (self.received or signal.SIGTERM) if votes.item() else None


@dataclass
class StepDecision:
    save: bool                       # write last.pt now, inside the epoch
    leave_epoch: bool                # this was the epoch's last step, or a stop
    stop_message: str | None = None
    exit_code: int = 0


def after_step(state: "LoopState", *, steps_per_epoch: int, total_steps: int, checkpoint_every_steps: int,
               stop_signal: int | None) -> StepDecision:
    """The stop and checkpoint policy, after every step. A stop (signal) or every `checkpoint_every_steps`-th
    step saves last.pt inside the epoch; the epoch's last step ends the epoch's loop, whose end saves anyway."""
    end_of_epoch = state.step == steps_per_epoch or state.global_step >= total_steps
    periodic = bool(checkpoint_every_steps) and state.global_step % checkpoint_every_steps == 0
    if stop_signal is None:
        return StepDecision(save=periodic and not end_of_epoch, leave_epoch=end_of_epoch)
    return StepDecision(save=not end_of_epoch, leave_epoch=True,
                        stop_message=f"Interrupted by {signal.Signals(stop_signal).name} at step {state.global_step}",
                        exit_code=StopSignals.EXIT_CODES[stop_signal])


# ---------------------------------------------------------------------------------------------------------
# The state a checkpoint carries besides model and optimizer.

@dataclass
class LoopState:
    epoch: int = 0                 # the epoch in progress
    step: int = 0                  # steps of that epoch done
    global_step: int = 0
    epoch_sums: list | None = None  # [loss sum, correct, count] of the epoch so far, this rank
    metrics_rows: list | None = None
    best_val_accuracy: float | None = None
    best_epoch: int | None = None
    train_seconds: float = 0.0


def model_description(config: TrainConfig, data: PreparedData, amp_dtype) -> dict:
    """What rebuilds the model and reads its inputs as training did (checkpoints and model.safetensors)."""
    return {
        "model": config.model,
        "model_options": dict(config.model_options),
        "num_classes": len(data.class_names),
        "in_channels": data.input_size[0],
        "input_size": list(data.input_size),
        "dataset": config.dataset,
        "class_names": list(data.class_names),
        "normalization": {"mean": list(data.mean), "std": list(data.std)},
        "precision": "bf16" if amp_dtype else "off",
        "config": config.to_dict(),
    }


def checkpoint_payload(config: TrainConfig, data: PreparedData, model: nn.Module, optimizer, schedule,
                       state: LoopState, amp_dtype) -> dict:
    return {
        **model_description(config, data, amp_dtype),
        "model_state": {name: tensor.detach().cpu().clone() for name, tensor in model.state_dict().items()},
        "optimizer_state": optimizer.state_dict(),
        "schedule_state": schedule.state_dict(),
        "scaler_state": {},  # bf16 autocast needs no loss scaling
        "epoch": state.epoch,
        "step": state.step,
        "global_step": state.global_step,
        "rng": checkpoints.capture_rng_state(),
        "epoch_sums": list(state.epoch_sums),
        "metrics_rows": [dict(row) for row in state.metrics_rows],
        "best_val_accuracy": state.best_val_accuracy,
        "best_epoch": state.best_epoch,
        "train_seconds": state.train_seconds,
    }


# ---------------------------------------------------------------------------------------------------------
# What the loop computes after a step.

def check_finite(loss: torch.Tensor, epoch: int, state: LoopState, last_path: Path):
    if not torch.isfinite(loss):
        raise TrainingError(
            f"The training loss became {loss.item()} at epoch {epoch + 1}, step {state.step + 1} "
            f"(global step {state.global_step + 1}); training stopped and {last_path} holds the last good "
            "checkpoint: lower the learning rate (--lr) and train again or --resume.")


def batch_sums(loss: LossParts, labels: torch.Tensor) -> torch.Tensor:
    """[loss sum, correct, count] of one batch, on the device (they travel in the checkpoint, so the epoch's
    metrics resume exactly)."""
    return torch.stack([loss.total.detach().double() * len(labels),
                        (loss.logits.argmax(-1) == labels).sum().double(),
                        torch.tensor(float(len(labels)), dtype=torch.float64, device=labels.device)])


def running_means(sums: torch.Tensor) -> tuple[float, float]:
    """(mean loss, accuracy) of the epoch so far on this rank: a host sync, so only when shown or logged."""
    loss_sum, correct, count = sums.tolist()
    return loss_sum / count, correct / count


def step_row(state: LoopState, epoch: int, lr: float, loss: LossParts, sums: torch.Tensor, images_per_s: float,
             epoch_started: float) -> dict:
    """A row of steps.csv: this step's batch loss, and the epoch's running means so far."""
    train_loss, train_accuracy = running_means(sums)
    return {"step": state.global_step, "epoch": epoch + 1, "lr": lr, "batch_loss": loss.total.item(),
            "train_loss": train_loss, "train_acc": train_accuracy, "images_per_s": images_per_s,
            "seconds": time.perf_counter() - epoch_started}


# ---------------------------------------------------------------------------------------------------------
# The loop.

def train(config: TrainConfig, *, dataset=None, resume: dict | None = None, run_dir: Path | None = None) -> Path:
    """Train as `config` says and return the run folder. `resume` is a verified checkpoint to continue from
    (its run folder is `run_dir`); `dataset` replaces loading `config.dataset` (tests use generated data).
    The run folder is locked from when it is known until training ends, so a second process that would write
    into it (a concurrent `--resume`) stops with one sentence."""
    with contextlib.ExitStack() as held:
        return train_holding(config, held, dataset=dataset, resume=resume, run_dir=run_dir)


def train_holding(config: TrainConfig, held: contextlib.ExitStack, *, dataset=None, resume: dict | None = None,
                  run_dir: Path | None = None) -> Path:
    """`train`, with the run folder's lock entered into `held`."""
    validate(config)
    progress = Progress(enabled=not config.quiet)
    teacher_checkpoint = checkpoints.load_checkpoint(config.teacher) if config.teacher else None

    # 1. Device, precision, threads, processes.
    device = resolve_device(config.device)
    distributed = from_environment(device.type)
    if distributed.enabled and device.type == "cuda":
        device = torch.device("cuda", distributed.local_rank)
    if not distributed.is_main:
        progress = Progress(enabled=False)
    amp_dtype = resolve_amp(config.amp, device, progress)
    threads = config.threads or max(1, len(os.sched_getaffinity(0)) // distributed.local_world_size)
    torch.set_num_threads(threads)
    if config.deterministic:
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format

    # 2. Data on the device; batches as a pure function of (seed, epoch, step).
    from papernets.data import BatchLoader

    data = prepare_data(config, dataset, normalization=resume["normalization"] if resume else None)
    train_loader = BatchLoader(data.train.images, data.train.labels, batch_size=config.batch_size,
                               seed=config.seed, augment=augmentation_for(config, data.input_size),
                               mean=data.mean, std=data.std,
                               device=device, channels_last=config.channels_last, shuffle=True, drop_last=True)
    val_loader = evaluation_loader(data.val, data, config, device) if data.val is not None else None
    test_loader = evaluation_loader(data.test, data, config, device)
    steps_per_epoch = len(train_loader)
    if steps_per_epoch == 0:
        raise ConfigError(f"The batch size {config.batch_size} exceeds the {len(data.train.labels)} training "
                          "images; pass a smaller -b/--batch-size.")
    if config.batch_size % distributed.world_size:
        raise ConfigError(f"The batch size {config.batch_size} does not split evenly over "
                          f"{distributed.world_size} processes; pass a multiple of {distributed.world_size}.")
    total_steps = config.iterations or config.epochs * steps_per_epoch
    epochs = math.ceil(total_steps / steps_per_epoch)

    # 3. Model, teacher, optimizer, schedule: seeded here, or restored from the checkpoint below.
    random.seed(config.seed)
    np.random.seed(config.seed)
    # A resumed run takes its weights from the checkpoint, not from the --pretrained file it started from.
    model, params, macs = build_model(replace(config, pretrained="") if resume else config, data)
    model = distributed.sync_batchnorm(model, device).to(device, memory_format=memory_format)
    teacher = load_teacher(teacher_checkpoint, data, device) if teacher_checkpoint else None
    aux_loss_weights = auxiliary_loss_weights(config, model)
    optimizer = build_optimizer(model, config)
    schedule = LearningRateSchedule(config, steps_per_epoch, total_steps)
    if schedule.warmup_steps >= total_steps:
        raise ConfigError(f"The warm-up of {schedule.warmup_steps} steps covers the whole run of {total_steps} steps; "
                          "train longer or shorten the warm-up (--set warmup_steps=N or warmup_fraction=F).")
    state = LoopState(epoch_sums=[0.0, 0.0, 0.0], metrics_rows=[])
    if resume:
        checkpoints.restore_training(resume, model, optimizer, schedule)
        state = LoopState(epoch=resume["epoch"], step=resume["step"], global_step=resume["global_step"],
                          epoch_sums=list(resume["epoch_sums"]), metrics_rows=list(resume["metrics_rows"]),
                          best_val_accuracy=resume["best_val_accuracy"], best_epoch=resume["best_epoch"],
                          train_seconds=resume["train_seconds"])
    forward_model = distributed.wrap(model, device)
    if config.compile:
        forward_model = torch.compile(forward_model)

    # 4. The run folder (rank 0 writes; every rank learns its name).
    if distributed.is_main:
        if run_dir is None:
            run_dir = create_run_folder(config.output, config.run_name or
                                        default_run_name(config.model, config.dataset, config.seed),
                                        explicit=bool(config.run_name))
        held.enter_context(RunLock(run_dir))
        prepare_run_folder(run_dir)
        write_json(run_dir / CONFIG_FILE, config.to_dict())
        write_json(run_dir / ENVIRONMENT_FILE, environment(device, amp_dtype, threads, distributed.world_size))
        write_metrics(run_dir / METRICS_FILE, state.metrics_rows)
    run_dir = Path(distributed.broadcast_object(str(run_dir)))
    last_path, best_path = run_dir / LAST_CHECKPOINT, run_dir / BEST_CHECKPOINT
    tensorboard = tensorboard_writer(run_dir) if config.tensorboard and distributed.is_main else None
    step_log = StepLog(run_dir / STEPS_FILE, through_step=state.global_step) if distributed.is_main else None
    if resume:
        progress.info(f"Resuming {run_dir} at epoch {state.epoch + 1}, step {state.step} "
                      f"(global step {state.global_step} of {total_steps}).")
    else:
        progress.info(f"Training {config.model} on {config.dataset} ({len(data.train.labels):,} train images, "
                      f"{steps_per_epoch} steps per epoch, {plural(epochs, 'epoch')}) on {device} with "
                      f"{'bf16 autocast' if amp_dtype else 'fp32'}, {plural(threads, 'thread')}; run folder {run_dir}.")
        for adjustment in config.adjustments:
            progress.message(f"Adjusted for this run: {adjustment}.")
        progress.info(f"Augmentation: {train_loader.augment}.")
        progress.info(schedule.describe())

    def save(path: Path, keep_previous: bool = True):
        if distributed.is_main:
            checkpoints.save_checkpoint(
                checkpoint_payload(config, data, model, optimizer, schedule, state, amp_dtype), path,
                keep_previous=keep_previous)

    def train_step(images: torch.Tensor, labels: torch.Tensor) -> LossParts:
        """One step: the step's learning rate, forward (under bf16 autocast), loss, backward, update."""
        set_lr(optimizer, schedule.lr(state.global_step))
        with autocast(device, amp_dtype):
            outputs = forward_model(images)
            with torch.no_grad():
                teacher_logits = teacher(images) if teacher is not None else None
        loss = training_loss(outputs, labels, label_smoothing=config.label_smoothing,
                             aux_loss_weights=aux_loss_weights, teacher_logits=teacher_logits,
                             temperature=config.distill_temperature, alpha=config.distill_alpha,
                             loss=config.loss, rubbish_j=config.map_rubbish_j)
        optimizer.zero_grad(set_to_none=True)
        loss.total.backward()
        optimizer.step()
        return loss

    def show_and_log(epoch: int, loss: LossParts, sums: torch.Tensor, images_per_s: float, epoch_started: float):
        """The progress line or bar, and every `log_every_steps` steps a row of steps.csv (and TensorBoard)."""
        progress.step(state.step, lambda: running_means(sums), images_per_s)
        if step_log is not None and state.global_step % config.log_every_steps == 0:
            row = step_row(state, epoch, optimizer.param_groups[0]["lr"], loss, sums, images_per_s, epoch_started)
            log_step(row, step_log, tensorboard)

    def save_inside_epoch(sums: torch.Tensor, clock: float) -> float:
        """last.pt with the epoch's running sums; returns the new start of the training clock."""
        state.epoch_sums = sums.tolist()
        state.train_seconds += time.perf_counter() - clock
        save(last_path)
        return time.perf_counter()

    with StopSignals() as stop_signals:
        for epoch in range(state.epoch, epochs):
            if isinstance(optimizer, SDLM) and state.step == 0:  # mid-epoch, the checkpoint holds the estimate
                optimizer.set_curvature(estimate_curvature(model, curvature_images(data, config, epoch, device)))
            model.train()
            progress.start_epoch(epoch, epochs, steps_per_epoch, state.step)
            epoch_started = clock = time.perf_counter()
            images_seen = 0
            sums = torch.tensor(state.epoch_sums, dtype=torch.float64, device=device)  # loss sum, correct, count
            decision = StepDecision(save=False, leave_epoch=False)
            for images, labels in train_loader.batches(epoch, start_step=state.step, rank=distributed.rank,
                                                       world_size=distributed.world_size):
                loss = train_step(images.contiguous(memory_format=memory_format), labels)
                check_finite(loss.total, epoch, state, last_path)
                sums += batch_sums(loss, labels)
                state.step, state.global_step = state.step + 1, state.global_step + 1
                images_seen += len(labels) * distributed.world_size
                show_and_log(epoch, loss, sums, images_seen / (time.perf_counter() - epoch_started), epoch_started)
                decision = after_step(state, steps_per_epoch=steps_per_epoch, total_steps=total_steps,
                                      checkpoint_every_steps=config.checkpoint_every_steps,
                                      stop_signal=stop_signals.agreed(distributed, device))
                if decision.save:
                    clock = save_inside_epoch(sums, clock)
                if decision.leave_epoch:
                    break
            if decision.stop_message and decision.save:
                progress.close()
                raise TrainingInterrupted(f"{decision.stop_message}; checkpoint saved, resume with "
                                          f"`papernets train --resume {run_dir}`.", exit_code=decision.exit_code)

            # End of the epoch: train metrics over every rank, a validation pass, the schedule, the checkpoints.
            loss_sum, correct, count = distributed.sum(sums).tolist()
            val = (evaluate(model, val_loader, device=device, amp_dtype=amp_dtype, tta_flip=config.eval_tta_flip,
                            distributed=distributed) if val_loader is not None else None)
            val_loss, val_accuracy = (val.loss, val.accuracy) if val else (None, None)
            schedule.end_of_epoch(val_accuracy)
            seconds = time.perf_counter() - epoch_started
            row = {"epoch": epoch + 1, "step": state.global_step, "train_loss": loss_sum / count,
                   "train_acc": correct / count, "val_loss": val_loss, "val_acc": val_accuracy,
                   "lr": optimizer.param_groups[0]["lr"], "images_per_s": images_seen / max(seconds, 1e-9),
                   "seconds": seconds}
            state.metrics_rows.append(row)
            progress.end_epoch(row)
            improved = val_accuracy is not None and (state.best_val_accuracy is None
                                                      or val_accuracy > state.best_val_accuracy)
            if improved:
                state.best_val_accuracy, state.best_epoch = val_accuracy, epoch + 1
            state.epoch, state.step, state.epoch_sums = epoch + 1, 0, [0.0, 0.0, 0.0]
            state.train_seconds += time.perf_counter() - clock
            # best.pt before last.pt: a run that dies between the two resumes from the older last.pt and writes
            # best.pt again, whereas the other order would leave a last.pt that names a best epoch best.pt lacks.
            if improved:
                save(best_path)
            save(last_path)
            if distributed.is_main:
                write_metrics(run_dir / METRICS_FILE, state.metrics_rows)
                if tensorboard is not None:
                    log_tensorboard(tensorboard, row)
            if decision.stop_message and state.epoch < epochs:
                raise TrainingInterrupted(f"{decision.stop_message}; checkpoint saved at the end of epoch "
                                          f"{state.epoch}, resume with `papernets train --resume {run_dir}`.",
                                          exit_code=decision.exit_code)

    if tensorboard is not None:
        tensorboard.close()

    # 5. Final weights; test accuracy of the best-validation weights; summary.
    final_val_accuracy = state.metrics_rows[-1]["val_acc"]
    if distributed.is_main:
        save_safetensors(model, run_dir / SAFETENSORS_FILE, model_description(config, data, amp_dtype))
        if state.best_epoch is None:  # no validation split: the final weights are the ones to test
            save(best_path, keep_previous=False)
    distributed.barrier()  # best.pt is complete before any rank reads it
    if state.best_epoch is not None:
        best = checkpoints.load_best(best_path, warn=progress.message)
        if best is None:  # best.pt and its previous copy both damaged: best.pt is rebuilt from the final weights
            state.best_val_accuracy, state.best_epoch = final_val_accuracy, state.epoch
            save(best_path, keep_previous=False)
        else:
            model.load_state_dict(best["model_state"])
            state.best_val_accuracy, state.best_epoch = best["best_val_accuracy"], best["best_epoch"]
    test = evaluate(model, test_loader, device=device, amp_dtype=amp_dtype, tta_flip=config.eval_tta_flip,
                    distributed=distributed, keep_probabilities=True)
    if distributed.is_main:
        Predictions.of(test.probabilities, data.test.labels, data.class_names, data.test.images
                       ).save(run_dir / PREDICTIONS_FILE)
        images_per_s = [row["images_per_s"] for row in state.metrics_rows]
        summary = {
            "model": config.model, "dataset": config.dataset, "recipe": config.recipe, "seed": config.seed,
            "epochs": epochs, "iterations": state.global_step,
            "best_val_accuracy": state.best_val_accuracy, "best_epoch": state.best_epoch,
            "final_val_accuracy": final_val_accuracy, "test_accuracy": test.accuracy,
            "test_top5_accuracy": test.top5_accuracy, "test_loss": test.loss,
            "test_images": len(data.test.labels), "wall_seconds": state.train_seconds,
            "params": params, "macs": macs, "images_per_s": sum(images_per_s) / len(images_per_s),
            "device": str(device), "precision": "bf16" if amp_dtype else "fp32", "world_size": distributed.world_size,
        }
        write_json(run_dir / SUMMARY_FILE, summary)
        progress.result(f"Test accuracy {test.accuracy:.4f} (weights of epoch {state.best_epoch or epochs}, "
                        f"best on validation); {state.train_seconds:.0f} s of training; run folder {run_dir}.")
    distributed.close()
    return run_dir


def save_safetensors(model: nn.Module, path: Path, description: dict):
    """The final weights in the format `papernets export` writes (without folding), so that `predict` and
    `eval` take them; written whole under a temporary name and renamed, like every file of the run folder: a
    run killed mid-write leaves no half file under the final name."""
    from papernets.export.fusion import ExportInfo, export_bytes

    write_bytes(path, export_bytes(model, ExportInfo.from_checkpoint(description), fold=False), RUN_FOLDER_ADVICE)


def tensorboard_writer(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ConfigError("--tensorboard needs the tensorboard package: pip install tensorboard.") from None
    return SummaryWriter(str(run_dir / "tensorboard"))


def log_step(row: dict, step_log: StepLog, tensorboard):
    step_log.write(row)
    if tensorboard is not None:
        for name in ("lr", "batch_loss", "train_loss", "train_acc", "images_per_s"):
            tensorboard.add_scalar(f"step/{name}", row[name], row["step"])


def log_tensorboard(writer, row: dict):
    """An epoch's row of metrics.csv, at its global step (the x axis of the per-step curves too)."""
    for name in ("train_loss", "train_acc", "val_loss", "val_acc", "lr", "images_per_s"):
        if row.get(name) is not None:
            writer.add_scalar(f"epoch/{name}", row[name], row["step"])
    writer.flush()
