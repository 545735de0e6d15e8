"""Training: the typed config and its recipes (config.py, recipes/*.toml), the loop (engine.py), optimizers
and schedules, losses, torchrun support and progress display. It writes a run folder through papernets.runs
and never imports papernets.analysis.

The entry points are `papernets.training.engine.train(config)` and `papernets train` on the command line."""
