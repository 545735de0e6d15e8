"""Auxiliary classifiers (GoogLeNet Sec. 5, Inception v3 Sec. 4): heads on intermediate stages that add to the
training loss only. Shared by the models that have them, so that the contract holds the same way everywhere:
in training mode `(logits, aux_logits, ...)` in stage order, in eval mode logits alone."""

import torch
from torch import nn


def forward_with_auxiliary_heads(model: nn.Module, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
    """`model.stem`, then `model.stages` (each stage named in `model.aux_heads` feeds its head), then `model.head`."""
    x = model.stem(x)
    if not (model.training and model.aux_heads):
        return model.head(model.stages(x))
    aux_logits = []
    for name, stage in model.stages.named_children():
        x = stage(x)
        if name in model.aux_heads:
            aux_logits.append(model.aux_heads[name](x))
    return (model.head(x), *aux_logits)
