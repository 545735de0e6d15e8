"""The one evaluation loop: a model over a `data.BatchLoader`'s evaluation batches (original order, no
augmentation), under bf16 autocast when the run trained with it, averaging the logits of each image and its
mirror image with `tta_flip`. Validation, the test pass that ends training, `papernets eval` and `papernets
predict` all run it, so that one checkpoint gives one set of probabilities whoever asks.

Below both training and analysis: it knows models, loaders and torchrun ranks, nothing of run folders.
"""

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from papernets.distributed import Distributed

TOP_K = 5  # top-5 accuracy, the ImageNet papers' second figure (e.g. He et al. 2015, Table 3)


@dataclass
class Evaluation:
    loss: float                   # mean cross-entropy of the (averaged) logits
    accuracy: float               # top-1, a fraction
    top5_accuracy: float          # label among the 5 most probable classes (all classes when fewer than 5)
    probabilities: np.ndarray | None = None  # (N, K) float32 in the split's order, when asked for


def autocast(device: torch.device, amp_dtype: torch.dtype | None):
    if amp_dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=amp_dtype)


def logits_batches(model: nn.Module, loader, *, device: torch.device, amp_dtype: torch.dtype | None,
                   tta_flip: bool = False, rank: int = 0, world_size: int = 1) -> Iterator:
    """(float32 logits, labels) per evaluation batch, the model in eval mode without gradients."""
    with torch.no_grad():
        for images, labels in loader.eval_batches(rank=rank, world_size=world_size):
            with autocast(device, amp_dtype):
                logits = model(images).float()
                if tta_flip:
                    logits = (logits + model(images.flip(-1)).float()) / 2
            yield logits, labels


def evaluate(model: nn.Module, loader, *, device: torch.device, amp_dtype: torch.dtype | None,
             tta_flip: bool = False, distributed: Distributed | None = None,
             keep_probabilities: bool = False) -> Evaluation:
    """Loss, top-1 and top-5 accuracy of `model` over the loader's split (every rank's shard under torchrun);
    with `keep_probabilities` also the softmax of every example, in the split's order, on every rank."""
    distributed = distributed or Distributed()
    was_training = model.training
    model.eval()
    distributed.broadcast_buffers(model)
    sums = torch.zeros(4, dtype=torch.float64, device=device)  # loss sum, top-1 right, top-5 right, count
    kept = []
    for logits, labels in logits_batches(model, loader, device=device, amp_dtype=amp_dtype, tta_flip=tta_flip,
                                         rank=distributed.rank, world_size=distributed.world_size):
        top = logits.topk(min(TOP_K, logits.shape[-1]), dim=-1).indices  # (B, 5)
        # Top-1 is the first most probable class, as predictions.npz's readers take it (numpy's argmax): topk
        # may order tied logits otherwise, and a barely trained network in bf16 ties often.
        batch_probabilities = torch.softmax(logits, dim=-1)
        sums += torch.stack([F.cross_entropy(logits, labels, reduction="sum").double(),
                             (batch_probabilities.argmax(dim=-1) == labels).sum().double(),
                             (top == labels[:, None]).any(dim=-1).sum().double(),
                             torch.tensor(float(len(labels)), dtype=torch.float64, device=device)])
        if keep_probabilities:
            kept.append(batch_probabilities.cpu())
    loss_sum, top1, top5, count = distributed.sum(sums).tolist()
    model.train(was_training)
    probabilities = None
    if keep_probabilities:
        # A rank can hold no example when the split has fewer images than there are ranks.
        shard = torch.cat(kept).numpy() if kept else np.zeros((0, 0), np.float32)
        probabilities = distributed.gather_interleaved(shard)
    return Evaluation(loss=loss_sum / count, accuracy=top1 / count, top5_accuracy=top5 / count,
                      probabilities=probabilities)


def probabilities(model: nn.Module, loader, *, device: torch.device, amp_dtype: torch.dtype | None,
                  tta_flip: bool = False) -> np.ndarray:
    """Softmax probabilities (N, K) float32 of every example of the loader, in order (one process)."""
    model.eval()
    batches = [torch.softmax(logits, dim=-1).cpu()
               for logits, _ in logits_batches(model, loader, device=device, amp_dtype=amp_dtype, tta_flip=tta_flip)]
    return torch.cat(batches).numpy()
