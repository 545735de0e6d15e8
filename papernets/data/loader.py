"""The device-resident batch loader and its batched augmentation.

The whole split lives on the device as one uint8 tensor, as in airbench: zero-padded once for random
crops and, when flipping, followed by its mirror images (so a flip is a choice of source, at twice the
memory). A strided view of that tensor holds every crop-width run of every padded row; a batch is ONE
gather from it, indexed by (row, crop column) per output row, so the index tensors have B x C x H entries,
not one per pixel. Normalization is one multiply-add per channel, cutout one masked fill. No per-image
Python loop, no worker processes.

Every batch is a pure function of (seed, epoch, step): the epoch's order comes from a generator seeded
by (seed, epoch) and the batch's crops, flips and cutouts from one seeded by (seed, epoch, step). Resuming
at (epoch, step) therefore gives exactly the batches an uninterrupted run would have seen, on CPU or CUDA.
With `world_size > 1` the random draws are made for the whole global batch and each rank takes its
contiguous slice, so the ranks together see exactly the batch a single process would.

Augmentation defaults per data set, and why:
- CIFAR-10/100: pad 4, random 32x32 crop, horizontal flip — the ResNet paper (arXiv:1512.03385, Sec. 4.2).
- Fashion-MNIST: pad 2, random 28x28 crop, horizontal flip — clothes are left-right symmetric (a mirrored
  sneaker or shirt is still a sneaker or shirt), so flipping only adds plausible images.
- MNIST: pad 2, random 28x28 crop, NO flip — digits are not left-right symmetric (a mirrored 2, 3, 4, 7
  or 9 is not a digit, and its label would be wrong).
Cutout (DeVries & Taylor, arXiv:1708.04552) is off by default; `cutout=16` is their CIFAR-10 setting.
"""

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from papernets.errors import ConfigError


@dataclass(frozen=True)
class Augmentation:
    """Random crop after zero padding (`pad` pixels per side), horizontal flip, and cutout of a square of
    side `cutout` (0: off) whose centre may lie anywhere in the image, as in DeVries & Taylor."""

    pad: int = 4
    crop: bool = True
    flip: bool = True
    cutout: int = 0

    def __post_init__(self):
        for name in ("pad", "cutout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"Augmentation {name}={value!r} is not a whole number >= 0; pass e.g. {name}=4.")
        for name in ("crop", "flip"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"Augmentation {name}={getattr(self, name)!r} is not true or false; pass {name}=true.")

    @property
    def crop_pad(self) -> int:
        """The padding the stored images need: `pad` when cropping, else none."""
        return self.pad if self.crop else 0


NO_AUGMENTATION = Augmentation(pad=0, crop=False, flip=False, cutout=0)

DEFAULT_AUGMENTATIONS = {
    "cifar10": Augmentation(pad=4, crop=True, flip=True),  # ResNet paper, Sec. 4.2
    "cifar100": Augmentation(pad=4, crop=True, flip=True),  # same recipe as CIFAR-10
    "fashion-mnist": Augmentation(pad=2, crop=True, flip=True),  # clothes are left-right symmetric
    "mnist": Augmentation(pad=2, crop=True, flip=False),  # digits are not left-right symmetric
}


def default_augmentation(dataset_name: str) -> Augmentation:
    """The training augmentation papernets uses for a data set (reasons in this module's docstring)."""
    try:
        return DEFAULT_AUGMENTATIONS[dataset_name]
    except KeyError:
        raise ConfigError(f"No default augmentation for data set {dataset_name!r}; choose one of: "
                          f"{', '.join(DEFAULT_AUGMENTATIONS)}.") from None


def stream_seed(*parts: int | str) -> int:
    """A 63-bit seed that depends on every part (e.g. seed, epoch, step) and on nothing else."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


OUTPUT_DTYPES = (torch.float32, torch.bfloat16, torch.float16, torch.float64)


class BatchDraws(NamedTuple):
    """The random choices for one batch, one entry per image; None where that augmentation is off."""

    top: torch.Tensor | None  # crop corner in the padded image
    left: torch.Tensor | None
    flip: torch.Tensor | None  # 1: mirrored
    cutout_row: torch.Tensor | None  # centre of the erased square
    cutout_column: torch.Tensor | None

    def shard(self, part: slice) -> "BatchDraws":
        return BatchDraws(*(None if draw is None else draw[part] for draw in self))


def _check_rank(rank: int, world_size: int) -> None:
    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
        raise ConfigError(f"world_size {world_size!r} is not a whole number >= 1.")
    if not 0 <= rank < world_size:
        raise ConfigError(f"rank {rank} is not in 0..{world_size - 1} (world_size {world_size}).")


class BatchLoader:
    """Batches `(x, y)` of one split, built on `device`: x normalized `dtype` (N, C, H, W), y int64.

    `batches(epoch, start_step, rank, world_size)` is the training pass (seeded order and augmentation);
    `eval_batches(rank, world_size)` the evaluation pass (original order, no augmentation, last partial
    batch kept). `len(loader)` is the number of training steps per epoch.
    """

    def __init__(
        self,
        images,
        labels,
        *,
        batch_size: int,
        seed: int = 0,
        augment: Augmentation | None = None,
        mean: Sequence[float],
        std: Sequence[float],
        device: str | torch.device = "cpu",
        channels_last: bool = False,
        shuffle: bool = True,
        drop_last: bool = True,
        dtype: torch.dtype = torch.float32,
    ):
        images = torch.as_tensor(np.ascontiguousarray(images) if isinstance(images, np.ndarray) else images)
        labels = torch.as_tensor(np.asarray(labels) if not isinstance(labels, torch.Tensor) else labels)
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ConfigError(f"BatchLoader needs uint8 images of shape (N, C, H, W), not {images.dtype} of shape "
                              f"{tuple(images.shape)}; pass the arrays of a Dataset or ArraySplit.")
        if labels.ndim != 1 or len(labels) != len(images) or labels.is_floating_point():
            raise ConfigError(f"BatchLoader needs one integer label per image ({len(images)}), not "
                              f"{labels.dtype} of shape {tuple(labels.shape)}.")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size {batch_size!r} is not a whole number >= 1; pass e.g. batch_size=128.")
        if dtype not in OUTPUT_DTYPES:
            choices = ", ".join(map(str, OUTPUT_DTYPES))
            raise ConfigError(f"Output dtype {dtype} is not supported; choose one of {choices}.")
        channels = images.shape[1]
        mean, std = [float(m) for m in mean], [float(s) for s in std]
        if len(mean) != channels or len(std) != channels or not all(s > 0 for s in std):
            raise ConfigError(f"mean {mean} and std {std} must give one value per channel ({channels}), with every "
                              f"std > 0; take them from channel_statistics().")

        self.device = torch.device(device)
        self.batch_size = batch_size
        self.seed = seed
        self.augment = augment or NO_AUGMENTATION
        self.channels_last = channels_last
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.dtype = dtype
        self.num_examples, _, self.height, self.width = images.shape
        self.labels = labels.to(self.device, torch.int64)

        # The split, zero-padded once for random crops, in the layout of the output (NCHW or NHWC), followed
        # by its mirror images when flipping: a flip is then a choice of source image, not extra work.
        pad = self.augment.crop_pad
        images, on_device = images.to(self.device), {"dtype": torch.uint8, "device": self.device}
        padded_height, padded_width = self.height + 2 * pad, self.width + 2 * pad
        if channels_last:
            stored = torch.zeros(self.num_examples, padded_height, padded_width, channels, **on_device)
            stored[:, pad : pad + self.height, pad : pad + self.width] = images.permute(0, 2, 3, 1)
            width_dim, row_length, column_step = 2, padded_width * channels, channels
            row_pattern = torch.arange(self.height)  # output rows (H,) of one image
        else:
            stored = torch.zeros(self.num_examples, channels, padded_height, padded_width, **on_device)
            stored[:, :, pad : pad + self.height, pad : pad + self.width] = images
            width_dim, row_length, column_step = 3, padded_width, 1
            row_pattern = (torch.arange(channels)[:, None] * padded_height + torch.arange(self.height)).reshape(-1)
        if self.augment.flip:
            stored = torch.cat([stored, stored.flip(width_dim)])
        self._pixels = stored
        self._rows_per_image = stored[0].numel() // row_length
        self._row_pattern = row_pattern.to(self.device)
        # windows[r, d]: the crop-width run of pixels of padded row r that starts d columns in (a view, no copy).
        self._windows = stored.view(-1).as_strided(
            (stored.numel() // row_length, 2 * pad + 1, self.width * column_step), (row_length, column_step, 1)
        )

        # x = (pixel / 255 - mean) / std = pixel * scale + shift, per channel.
        shape = (1, 1, 1, channels) if channels_last else (1, channels, 1, 1)
        compute_dtype = torch.float64 if dtype == torch.float64 else torch.float32
        self._scale = torch.tensor([1 / (255 * s) for s in std], dtype=compute_dtype).view(shape).to(self.device)
        self._shift = torch.tensor([-m / s for m, s in zip(mean, std)], dtype=compute_dtype).view(shape).to(self.device)
        self._order_epoch, self._order = None, None

    def __len__(self) -> int:
        return self.steps_per_epoch()

    def steps_per_epoch(self, world_size: int = 1) -> int:
        full, remainder = divmod(self.num_examples, self.batch_size)
        return full + int(not self.drop_last and remainder >= world_size)

    def batches(self, epoch: int, start_step: int = 0, rank: int = 0, world_size: int = 1) -> Iterator:
        """The training batches of `epoch` from `start_step` on, as (x, y); this rank's shard of each.

        With `drop_last=False` the last, partial batch is cut to a multiple of `world_size` so that every
        rank still gets an equal shard.
        """
        self._check_shards(rank, world_size)
        return self._training_batches(epoch, start_step, rank, world_size)

    def _training_batches(self, epoch: int, start_step: int, rank: int, world_size: int) -> Iterator:
        order = self._epoch_order(epoch)
        for step in range(start_step, self.steps_per_epoch(world_size)):
            positions = order[step * self.batch_size : (step + 1) * self.batch_size]
            global_size = len(positions) - len(positions) % world_size
            shard_size = global_size // world_size
            shard = slice(rank * shard_size, (rank + 1) * shard_size)
            draws = self._random_draws(epoch, step, global_size)
            with self._cpu_single_threaded():
                batch = self._assemble(positions[shard], draws.shard(shard))
            yield batch

    def eval_batches(self, rank: int = 0, world_size: int = 1) -> Iterator:
        """Every example once, in the original order, without augmentation; the last batch may be partial.

        With `world_size > 1` rank r takes examples r, r + world_size, ...: disjoint, and together all of them.
        """
        _check_rank(rank, world_size)
        return self._evaluation_batches(torch.arange(rank, self.num_examples, world_size, device=self.device))

    def _evaluation_batches(self, indices: torch.Tensor) -> Iterator:
        for start in range(0, len(indices), self.batch_size):
            with self._cpu_single_threaded():
                batch = self._assemble(indices[start : start + self.batch_size], draws=None)
            yield batch

    @contextmanager
    def _cpu_single_threaded(self):
        """Builds a CPU batch on one thread. Its ops are small (about 0.2 M elements), so a second thread gains
        little, and on a busy machine it costs a lot. Fashion-MNIST batches of 256 (crop, flip, channels_last)
        in a 2-thread process on 2 cores, 2026-12-02 (benchmarks/threads_and_processes.py, "loader alone" and
        "engine" rows): quiet, 0.54 ms per batch with this switch against 0.36 ms without, both ~300x faster
        than the ResNet-20 step they feed (engine 1,438 vs 1,424 images/s); with 2 busy loops on the 2 cores
        1.07 ms against 1.71 ms, and the engine 328 against 246 images/s. The training step keeps its threads."""
        threads = torch.get_num_threads()
        if self.device.type != "cpu" or threads == 1:
            yield
            return
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(threads)

    def _check_shards(self, rank: int, world_size: int) -> None:
        _check_rank(rank, world_size)
        if self.batch_size % world_size:
            raise ConfigError(f"batch_size {self.batch_size} does not divide by world_size {world_size}; choose a "
                              f"global batch size that is a multiple of the number of processes.")

    def _epoch_order(self, epoch: int) -> torch.Tensor:
        """The order of the examples in `epoch`: a permutation seeded by (seed, epoch), or 0..N-1."""
        if self._order_epoch != epoch:
            if self.shuffle:
                generator = torch.Generator().manual_seed(stream_seed("order", self.seed, epoch))
                self._order = torch.randperm(self.num_examples, generator=generator).to(self.device)
            else:
                self._order = torch.arange(self.num_examples, device=self.device)
            self._order_epoch = epoch
        return self._order

    def _random_draws(self, epoch: int, step: int, size: int) -> BatchDraws:
        """Crop corners, flips and cutout centres for one global batch, seeded by (seed, epoch, step).

        Drawn on the CPU so that CPU and CUDA runs see the same batches.
        """
        generator = torch.Generator().manual_seed(stream_seed("augment", self.seed, epoch, step))
        augment = self.augment

        def draw(high: int, enabled: bool = True) -> torch.Tensor | None:
            return torch.randint(high, (size,), generator=generator).to(self.device) if enabled else None

        offsets = 2 * augment.crop_pad + 1
        top, left = draw(offsets, augment.crop), draw(offsets, augment.crop)
        flip = draw(2, augment.flip)
        cutout_row, cutout_column = draw(self.height, augment.cutout > 0), draw(self.width, augment.cutout > 0)
        return BatchDraws(top, left, flip, cutout_row, cutout_column)

    def _assemble(self, positions: torch.Tensor, draws: BatchDraws | None) -> tuple[torch.Tensor, torch.Tensor]:
        """One batch: a gather of crop-width runs of pixels, then normalization and cutout.

        Without draws (evaluation) every image is the centred, unpadded, unflipped view.
        """
        draws = draws or BatchDraws(top=None, left=None, flip=None, cutout_row=None, cutout_column=None)
        source = positions if draws.flip is None else positions + draws.flip * self.num_examples  # mirrors follow
        centred = torch.full_like(positions, self.augment.crop_pad)
        top = centred if draws.top is None else draws.top
        left = centred if draws.left is None else draws.left
        rows = (source * self._rows_per_image + top)[:, None] + self._row_pattern  # (B, R): R = C*H or H (NHWC)
        pixels = self._windows[rows, left[:, None]]  # (B, R, window): one gather for the whole batch
        if self.channels_last:
            pixels = pixels.view(len(positions), self.height, self.width, -1)  # (B, H, W, C)
        else:
            pixels = pixels.view(len(positions), -1, self.height, self.width)  # (B, C, H, W)
        x = torch.addcmul(self._shift, pixels.to(self._scale.dtype), self._scale).to(self.dtype)
        if draws.cutout_row is not None:
            x = self._cutout(x, draws.cutout_row, draws.cutout_column)
        if self.channels_last:
            x = x.permute(0, 3, 1, 2)  # (B, C, H, W) view with channels_last strides
        return x, self.labels[positions]

    def _cutout(self, x: torch.Tensor, centre_row: torch.Tensor, centre_column: torch.Tensor) -> torch.Tensor:
        """Zeroes (the channel mean, after normalization) a square of side `cutout` around each centre."""
        side = self.augment.cutout
        rows = torch.arange(self.height, device=self.device)
        columns = torch.arange(self.width, device=self.device)
        row_start = (centre_row - side // 2)[:, None]
        column_start = (centre_column - side // 2)[:, None]
        in_rows = (rows >= row_start) & (rows < row_start + side)  # (B, H)
        in_columns = (columns >= column_start) & (columns < column_start + side)  # (B, W)
        erased = in_rows[:, :, None] & in_columns[:, None, :]  # (B, H, W)
        erased = erased[..., None] if self.channels_last else erased[:, None]
        return x.masked_fill_(erased, 0.0)
