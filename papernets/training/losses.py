"""Training losses: the math of `papernets.stats` (docs/math.md), computed with torch's fused functions, which
do not check their inputs the way `stats` does (each check is a host sync on a GPU, once per step).
tests/test_training_config.py keeps the two equal.

- Cross-entropy H(p, q) = -sum_k p_k log q_k with q = softmax(logits), p the one-hot label or its smoothed
  form p = (1 - eps) one_hot(y) + eps / K (Szegedy et al. 2015, arXiv:1512.00567, Sec. 7).
- Auxiliary classifiers (GoogLeNet, arXiv:1409.4842, Sec. 5): their losses join the total with weight 0.3.
- The MAP criterion of LeCun et al. 1998, Sec. II.C, Eq. (9), for a model whose outputs are RBF penalties y_i
  (LeNet-5 returns -y_i as logits): E = y_D + log(e^-j + sum_i e^-y_i), D the correct class. It is
  cross-entropy over the classes plus a "rubbish class" whose logit is the constant -j.
- Distillation (Hinton, Vinyals, Dean 2015, arXiv:1503.02531, Sec. 2):
  alpha * T^2 * KL(softmax(t / T) || softmax(s / T)) + (1 - alpha) * H(y, softmax(s)); the T^2 keeps the soft
  term's gradients on the scale of the hard term's as T changes.
"""

from dataclasses import dataclass

import torch
from torch.nn import functional as F


@dataclass
class LossParts:
    total: torch.Tensor
    logits: torch.Tensor                  # the main head's logits, for accuracy
    distillation: torch.Tensor | None = None  # the batch mean of KL(teacher || student) at temperature T


def classification_loss(logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean over the batch of H(p, softmax(logits)); p one-hot, smoothed when `label_smoothing` > 0."""
    return F.cross_entropy(logits.float(), labels, label_smoothing=label_smoothing)


def map_loss(logits: torch.Tensor, labels: torch.Tensor, rubbish_j: float) -> torch.Tensor:
    """Batch mean of Eq. (9), E = y_D + log(e^-j + sum_i e^-y_i), with logits = -y."""
    rubbish_logit = logits.new_full((len(logits), 1), -rubbish_j)
    return classification_loss(torch.cat([logits, rubbish_logit], dim=-1), labels)


def distillation_divergence(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                            temperature: float) -> torch.Tensor:
    """Batch mean of KL(softmax(t / T) || softmax(s / T)); never negative."""
    student = F.log_softmax(student_logits.float() / temperature, dim=-1)
    teacher = F.log_softmax(teacher_logits.float() / temperature, dim=-1)
    return F.kl_div(student, teacher, reduction="batchmean", log_target=True)


def training_loss(outputs, labels: torch.Tensor, *, label_smoothing: float = 0.0,
                  aux_loss_weights: tuple[float, ...] = (), teacher_logits: torch.Tensor | None = None,
                  temperature: float = 1.0, alpha: float = 0.0, loss: str = "cross_entropy",
                  rubbish_j: float = 0.0) -> LossParts:
    """The loss of one batch. `outputs` is the logits, or (logits, aux_logits, ...) from a model with
    auxiliary heads in training mode; `loss` is "cross_entropy" or "map" (Eq. (9) with constant `rubbish_j`)."""
    logits, *aux_logits = outputs if isinstance(outputs, (tuple, list)) else (outputs,)
    if loss == "map":
        hard_loss = map_loss(logits.float(), labels, rubbish_j)
    else:
        hard_loss = classification_loss(logits, labels, label_smoothing)
    distillation = None
    if teacher_logits is None:
        total = hard_loss
    else:
        distillation = distillation_divergence(logits, teacher_logits, temperature)
        total = alpha * temperature ** 2 * distillation + (1 - alpha) * hard_loss
    for weight, aux in zip(aux_loss_weights, aux_logits, strict=True):
        total = total + weight * classification_loss(aux, labels, label_smoothing)
    return LossParts(total=total, logits=logits, distillation=distillation)
