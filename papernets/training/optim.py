"""Optimizers with their parameter groups, and the learning-rate schedule as a function of the step.

The schedule is computed afresh from the global step at every step (as nanoGPT does), so resuming needs no
replay: only the plateau schedule keeps state (best accuracy, epochs without improvement, reductions made).
"""

import math

import torch
from torch import nn

from papernets.config import TrainConfig


def is_depthwise(module: nn.Module) -> bool:
    return isinstance(module, nn.Conv2d) and module.groups > 1 and module.groups == module.in_channels


def parameter_groups(model: nn.Module, config: TrainConfig) -> list[dict]:
    """Three groups: decayed weights; BN scales and biases (no decay when the recipe says so);
    depthwise kernels (MobileNet Sec. 3.2 puts little or no weight decay on the depthwise filters)."""
    depthwise_kernels = {id(module.weight) for module in model.modules() if is_depthwise(module)}
    decayed, undecayed, depthwise = [], [], []
    for parameter in model.parameters():
        if not parameter.requires_grad:
            continue
        if id(parameter) in depthwise_kernels and config.depthwise_weight_decay is not None:
            depthwise.append(parameter)
        elif parameter.ndim <= 1 and config.no_weight_decay_on_bn_bias:
            undecayed.append(parameter)
        else:
            decayed.append(parameter)
    groups = [
        {"params": decayed, "weight_decay": config.weight_decay},
        {"params": undecayed, "weight_decay": 0.0},
        {"params": depthwise, "weight_decay": config.depthwise_weight_decay or 0.0},
    ]
    return [group for group in groups if group["params"]]


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "sdlm":
        from papernets.training.sdlm import SDLM

        return SDLM([parameter for parameter in model.parameters() if parameter.requires_grad],
                    lr=config.lr, mu=config.sdlm_mu)
    groups = parameter_groups(model, config)
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=config.lr, betas=tuple(config.adam_betas), eps=config.optimizer_eps)
    return torch.optim.RMSprop(groups, lr=config.lr, alpha=config.rmsprop_decay, eps=config.optimizer_eps,
                               momentum=config.momentum)


class LearningRateSchedule:
    """lr(step) for step = 0, 1, ..., total_steps - 1, plus `end_of_epoch(val_accuracy)` for `plateau`."""

    def __init__(self, config: TrainConfig, steps_per_epoch: int, total_steps: int):
        self.config = config
        self.steps_per_epoch = steps_per_epoch
        self.total_steps = total_steps
        self.warmup_steps = config.warmup_steps or round(config.warmup_fraction * total_steps)
        self.best_accuracy = -math.inf
        self.epochs_without_improvement = 0
        self.reductions = 0

    def units(self, step: int) -> float:
        """Schedule units (epochs or iterations) completed before `step`; a fraction of an epoch counts, so
        milestones scaled to a short run fall inside epochs."""
        return step / self.steps_per_epoch if self.config.schedule_unit == "epoch" else step

    def lr(self, step: int) -> float:
        config = self.config
        # 1. Warm-up, in iterations: constant (ResNet-110, Sec. 4.2) or linear (Goyal et al. 2017).
        if step < self.warmup_steps:
            if config.warmup_shape == "constant":
                return config.warmup_lr
            return config.warmup_lr + (config.lr - config.warmup_lr) * step / self.warmup_steps
        # 2. The schedule proper.
        units = self.units(step)
        if config.schedule == "step":
            return config.lr * config.gamma ** math.floor(units / config.step_size)
        if config.schedule == "multistep":
            return config.lr * config.gamma ** sum(units >= milestone for milestone in config.milestones)
        if config.schedule == "piecewise":
            return config.lr_values[sum(units >= milestone for milestone in config.milestones)]
        if config.schedule in ("cosine", "linear"):
            decay_steps = max(1, self.total_steps - self.warmup_steps)
            progress = min(1.0, (step - self.warmup_steps) / decay_steps)
            shape = (1 + math.cos(math.pi * progress)) / 2 if config.schedule == "cosine" else 1 - progress
            final_lr = config.lr * config.final_lr_fraction
            return final_lr + (config.lr - final_lr) * shape
        if config.schedule == "plateau":
            return config.lr * config.gamma ** self.reductions
        return config.lr

    def describe(self, listed_changes: int = 6) -> str:
        """The resolved schedule in one line: warm-up, then the lr at each change (step and epoch), or the decay."""
        config = self.config

        def at(step: int) -> str:
            return f"step {step} (epoch {step / self.steps_per_epoch:.3g})"

        parts = []
        if self.warmup_steps:
            start = f"{config.warmup_lr:.3g}" + (f" rising to {config.lr:.3g}" if config.warmup_shape == "linear" else "")
            parts.append(f"warm-up {start} for {self.warmup_steps} steps")
        if config.schedule in ("step", "multistep", "piecewise", "constant"):
            first = self.lr(self.warmup_steps) if self.warmup_steps < self.total_steps else config.lr
            changes = [step for step in range(self.warmup_steps + 1, self.total_steps)
                       if not math.isclose(self.lr(step), self.lr(step - 1))]
            shown = [f"{self.lr(step):.3g} from {at(step)}" for step in changes[:listed_changes]]
            more = f", and {len(changes) - listed_changes} more changes" if len(changes) > listed_changes else ""
            parts.append(", ".join([f"lr {first:.3g}", *shown]) + more if changes else f"lr {first:.3g} throughout")
        elif config.schedule in ("cosine", "linear"):
            parts.append(f"{config.schedule} decay from {config.lr:.3g} to {config.lr * config.final_lr_fraction:.3g} "
                         f"at {at(self.total_steps)}")
        else:
            parts.append(f"lr {config.lr:.3g}, times {config.gamma:g} after {config.plateau_patience} epochs without "
                         f"a better validation accuracy (at most {config.plateau_max_reductions} times)")
        return f"Schedule over {self.total_steps} steps ({self.steps_per_epoch} per epoch): " + "; ".join(parts) + "."

    def end_of_epoch(self, val_accuracy: float | None):
        """Plateau: divide by 1/gamma after `plateau_patience` epochs without a better val accuracy."""
        if self.config.schedule != "plateau" or val_accuracy is None:
            return
        if val_accuracy > self.best_accuracy:
            self.best_accuracy = val_accuracy
            self.epochs_without_improvement = 0
            return
        self.epochs_without_improvement += 1
        if (self.epochs_without_improvement >= self.config.plateau_patience
                and self.reductions < self.config.plateau_max_reductions):
            self.reductions += 1
            self.epochs_without_improvement = 0

    def state_dict(self) -> dict:
        return {"best_accuracy": self.best_accuracy, "epochs_without_improvement": self.epochs_without_improvement,
                "reductions": self.reductions}

    def load_state_dict(self, state: dict):
        self.best_accuracy = float(state["best_accuracy"])
        self.epochs_without_improvement = int(state["epochs_without_improvement"])
        self.reductions = int(state["reductions"])


def set_lr(optimizer: torch.optim.Optimizer, lr: float):
    for group in optimizer.param_groups:
        group["lr"] = lr
