"""Training: the typed config and its recipes (config.py, recipes/*.toml), the loop (engine.py), checkpoints,
the run folder, optimizers and schedules, losses, torchrun support and progress display.

The entry points are `papernets.training.engine.train(config)` and `papernets train` on the command line."""
