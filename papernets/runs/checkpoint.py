"""Checkpoints: plain types and tensors only, a SHA-256 checksum of the payload, atomic writes, and a
previous copy kept so that a corrupt newest file never means starting from scratch.

A checkpoint is one dict (docs/ARCHITECTURE.md, "Training"): `format`, `model`, `model_options`,
`num_classes`, `in_channels`, `input_size`, `dataset`, `class_names`, `normalization`, `config`,
`model_state`, `optimizer_state`, `schedule_state`, `scaler_state`, `epoch`, `step`, `global_step`, `rng`,
`epoch_sums`, `metrics_rows`, `best_val_accuracy`, ..., and `checksum` (SHA-256 over everything else).
It is read only with `torch.load(weights_only=True)`: no pickled code ever runs.

Writing: the dict goes to a temporary file in the same folder, is flushed and fsync'ed, the current file is
renamed to `<name>.prev.pt`, and the temporary file is renamed over `<name>.pt` (os.replace is atomic).
"""

import hashlib
import os
import pickle
import random
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from papernets.errors import CheckpointError, TrainingError

FORMAT = "papernets-checkpoint-1"


def _update_digest(digest, value):
    """Feed a nested structure of dicts, lists, tensors and plain values to a hash, in a fixed order."""
    if isinstance(value, dict):
        digest.update(b"{")
        for key in sorted(value, key=str):
            digest.update(repr(key).encode())
            _update_digest(digest, value[key])
        digest.update(b"}")
    elif isinstance(value, (list, tuple)):
        digest.update(b"[")
        for item in value:
            _update_digest(digest, item)
        digest.update(b"]")
    elif isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous()
        digest.update(f"tensor {tensor.dtype} {tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    else:
        digest.update(f"{type(value).__name__}:{value!r}".encode())


def payload_checksum(checkpoint: dict) -> str:
    digest = hashlib.sha256()
    _update_digest(digest, {key: value for key, value in checkpoint.items() if key != "checksum"})
    return digest.hexdigest()


def previous_path(path: Path) -> Path:
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def save_checkpoint(checkpoint: dict, path: str | Path, keep_previous: bool = True) -> Path:
    """Write atomically; the file being replaced becomes `<name>.prev.pt` when `keep_previous`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    checkpoint = {**checkpoint, "format": FORMAT}
    checkpoint["checksum"] = payload_checksum(checkpoint)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a process killed mid-write
        stale.unlink(missing_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as file:
            torch.save(checkpoint, file)
            file.flush()
            os.fsync(file.fileno())
        if keep_previous and path.exists():
            os.replace(path, previous_path(path))
        os.replace(temporary, path)
    except OSError as error:
        raise TrainingError(f"Could not write checkpoint {path} ({error.strerror or error}); the previous "
                            f"checkpoint is intact: free disk space or choose another --output, then --resume.") from error
    finally:
        temporary.unlink(missing_ok=True)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return path


def short_reason(error: Exception) -> str:
    """The telling part of an exception's message, for a one-sentence error: from torch.load's weights-only
    refusal, the line naming the refused global (not its advice to load unsafely); else the first sentence;
    the exception's type when the message is empty (torch.load on a zero-length file)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    named = [line for line in lines if "GLOBAL" in line or "Unsupported global" in line]
    return (named or lines or [type(error).__name__])[0].split(". ")[0].rstrip(".")


def load_checkpoint(path: str | Path) -> dict:
    """A verified checkpoint, or a CheckpointError saying what is wrong with the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"Checkpoint {path} does not exist; pass a .pt file written by `papernets train`.")
    try:
        with warnings.catch_warnings():  # torch warns about odd pickle protocols; the verdict below says it all
            warnings.simplefilter("ignore")
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(f"Checkpoint {path} is refused: it is corrupt or holds objects other than tensors "
                              f"and plain values ({short_reason(error)}); use a file written by "
                              "`papernets train`.") from None
    except Exception as error:  # noqa: BLE001  (torch.load on damaged bytes raises anything from IndexError up)
        raise CheckpointError(f"Checkpoint {path} is corrupt or truncated ({short_reason(error)}); "
                              "resume from an earlier checkpoint or train again.") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a papernets checkpoint (format {FORMAT}); "
                              "use a file written by `papernets train`.")
    try:
        intact = checkpoint.get("checksum") == payload_checksum(checkpoint)
    except RecursionError:  # lists nested thousands deep: no checkpoint papernets writes looks like that
        intact = False
    if not intact:
        raise CheckpointError(f"Checkpoint {path} fails its SHA-256 checksum (the file was damaged); "
                              "resume from an earlier checkpoint or train again.")
    return checkpoint


def load_newest_valid(path: Path, warn=print) -> dict:
    """The newer of `path` and its previous copy that loads and verifies; each bad file is reported through
    `warn`, and a CheckpointError is raised when neither is valid."""
    candidates = []
    problems = []
    for candidate in (path, previous_path(path)):
        if not candidate.exists():
            continue
        try:
            candidates.append(load_checkpoint(candidate))
        except CheckpointError as error:
            warn(f"warning: {error}")
            problems.append(str(error))
    if not candidates:
        found = " ".join(problems) if problems else f"{path} does not exist."
        raise CheckpointError(f"No valid checkpoint to resume from: {found} Start a new run without --resume.")
    return max(candidates, key=lambda checkpoint: checkpoint["global_step"])


# RNG states as tensors and plain types, so that weights_only loading accepts them.

def capture_rng_state() -> dict:
    numpy_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"name": numpy_state[0], "keys": torch.from_numpy(numpy_state[1].astype(np.int64)),
                  "position": int(numpy_state[2]), "has_gauss": int(numpy_state[3]),
                  "cached_gaussian": float(numpy_state[4])},
        "python": dict(zip(("version", "internal", "gauss_next"), random.getstate())),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict):
    torch.set_rng_state(state["torch"])
    numpy_state = state["numpy"]
    np.random.set_state((numpy_state["name"], numpy_state["keys"].numpy().astype(np.uint32),
                         numpy_state["position"], numpy_state["has_gauss"], numpy_state["cached_gaussian"]))
    python_state = state["python"]
    random.setstate((python_state["version"], tuple(python_state["internal"]), python_state["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


MAX_CLASSES = 100_000   # ImageNet-21k has 21,841; a larger count would only allocate a huge head
MAX_IMAGE_SIDE = 4096   # the most channels, rows or columns an input may declare
MODEL_FIELDS = {"model": str, "model_options": dict, "num_classes": int, "input_size": list, "model_state": dict}


def check_model_fields(checkpoint: dict, source) -> None:
    """The fields a model is rebuilt from, present and of the right types. The checksum proves a file
    undamaged, not that papernets wrote it, so a forged file must fail here rather than deep in a model."""
    where = "the checkpoint" if isinstance(source, dict) else f"Checkpoint {source}"
    for name, expected in MODEL_FIELDS.items():
        if not isinstance(checkpoint.get(name), expected) or isinstance(checkpoint.get(name), bool):
            raise CheckpointError(f"{where} has no valid {name!r} field ({expected.__name__}); use a file written by "
                                  "`papernets train`.")
    size, state = checkpoint["input_size"], checkpoint["model_state"]
    if (len(size) != 3 or not all(type(value) is int and 0 < value <= MAX_IMAGE_SIDE for value in size)
            or not 1 <= checkpoint["num_classes"] <= MAX_CLASSES
            or not all(isinstance(key, str) for key in checkpoint["model_options"])
            or not all(isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in state.items())):
        raise CheckpointError(f"{where} has an invalid input size, class count, model options or weights; use a "
                              "file written by `papernets train`.")


def model_from_checkpoint(path_or_checkpoint: str | Path | dict) -> tuple[nn.Module, dict]:
    """The checkpoint's model with its weights, in eval mode on the CPU, and the checkpoint itself."""
    from papernets.models import create_model

    checkpoint = (path_or_checkpoint if isinstance(path_or_checkpoint, dict)
                  else load_checkpoint(path_or_checkpoint))
    check_model_fields(checkpoint, path_or_checkpoint)
    model = create_model(checkpoint["model"], num_classes=checkpoint["num_classes"],
                         input_size=tuple(checkpoint["input_size"]), **checkpoint["model_options"])
    try:
        model.load_state_dict(checkpoint["model_state"])
    except RuntimeError as error:
        raise CheckpointError(f"The weights in the checkpoint do not fit model {checkpoint['model']} "
                              f"({short_reason(error)}); the model's code changed since training, so "
                              "train again.") from None
    return model.eval(), checkpoint
