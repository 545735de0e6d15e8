"""What a run prints: a tqdm bar per epoch (loss, accuracy, images/s, ETA) on a terminal; otherwise (a log
file, CI) a plain line every `PLAIN_LINE_SECONDS` within an epoch and one per epoch; nothing but warnings with
--quiet. All of that goes to stderr; the run's result (test accuracy and run folder) goes to stdout, with
--quiet too, so that it can be piped or captured."""

import sys
import time
from collections.abc import Callable

from tqdm import tqdm

BAR_REFRESH_STEPS = 20    # the bar's loss and accuracy are fetched from the device every this many steps
PLAIN_LINE_SECONDS = 10.0


class Progress:
    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.interactive = enabled and sys.stderr.isatty()
        self.bar = None

    def message(self, line: str):
        """A line the user should see even with --quiet (warnings, where the run went)."""
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr, flush=True)

    def result(self, line: str):
        print(line, flush=True)

    def info(self, line: str):
        if self.enabled:
            self.message(line)

    def start_epoch(self, epoch: int, epochs: int, steps: int, start_step: int):
        self.epoch_label = f"epoch {epoch + 1}/{epochs}"
        self.steps = steps
        self.last_line = time.perf_counter()
        if self.interactive:
            self.bar = tqdm(total=steps, initial=start_step, desc=self.epoch_label, unit="step", leave=True,
                            dynamic_ncols=True, file=sys.stderr)

    def step(self, step: int, running_means: Callable[[], tuple[float, float]], images_per_s: float):
        """After each step; `running_means()` (the epoch's loss and accuracy so far, a host sync) is called
        only when they are shown."""
        if self.bar is not None:
            self.bar.update(1)
            if step % BAR_REFRESH_STEPS == 0:
                loss, accuracy = running_means()
                self.bar.set_postfix(loss=f"{loss:.4f}", acc=f"{accuracy:.4f}", img_s=f"{images_per_s:,.0f}",
                                     refresh=False)
        elif self.enabled and time.perf_counter() - self.last_line >= PLAIN_LINE_SECONDS:
            self.last_line = time.perf_counter()
            loss, accuracy = running_means()
            print(f"step {step}/{self.steps} ({self.epoch_label}): train_loss {loss:.4f} train_acc {accuracy:.4f} "
                  f"{images_per_s:,.0f} img/s", file=sys.stderr, flush=True)

    def end_epoch(self, row: dict):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if not self.enabled:
            return
        validation = (f" val_loss {row['val_loss']:.4f} val_acc {row['val_acc']:.4f}"
                      if row.get("val_acc") is not None else "")
        print(f"{self.epoch_label}: train_loss {row['train_loss']:.4f} train_acc {row['train_acc']:.4f}"
              f"{validation} lr {row['lr']:.3g} {row['images_per_s']:,.0f} img/s {row['seconds']:.1f} s",
              file=sys.stderr, flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
