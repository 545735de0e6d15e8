"""Training: the loop (engine.py), optimizers and schedules, losses and progress display. It reads its config
from papernets.config, evaluates through papernets.evaluation, writes a run folder through papernets.runs and
never imports papernets.analysis.

The entry points are `papernets.training.engine.train(config)` and `papernets train` on the command line."""
