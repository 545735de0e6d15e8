"""Test seams for the training loop, kept out of the user's config and out of the loop itself: a stop at a
chosen step, as if SIGTERM arrived during it, and a non-finite loss at a chosen step."""

import math
import signal
from contextlib import contextmanager

from papernets.data import BatchLoader
from papernets.training import engine


@contextmanager
def sigterm_during_step(step: int):
    """SIGTERM arrives while global step `step` (1-based, counted from the run's start) is trained: the loop
    finishes that step, saves last.pt and stops, as it does for a real signal."""
    original = BatchLoader.batches

    def batches(self, epoch: int, start_step: int = 0, rank: int = 0, world_size: int = 1):
        first = epoch * self.steps_per_epoch(world_size) + start_step + 1
        for number, batch in enumerate(original(self, epoch, start_step, rank, world_size), start=first):
            if number == step:
                signal.raise_signal(signal.SIGTERM)
            yield batch

    BatchLoader.batches = batches
    try:
        yield
    finally:
        BatchLoader.batches = original


@contextmanager
def nan_loss_at_step(step: int):
    """The training loss of the `step`-th step this process trains (1-based) becomes NaN."""
    original = engine.training_loss
    calls = 0

    def training_loss(*args, **kwargs):
        nonlocal calls
        calls += 1
        loss = original(*args, **kwargs)
        if calls == step:
            loss.total = loss.total * math.nan
        return loss

    engine.training_loss = training_loss
    try:
        yield
    finally:
        engine.training_loss = original
