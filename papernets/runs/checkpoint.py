"""Checkpoints: plain types and tensors only, a SHA-256 checksum of the payload, atomic writes, and a
previous copy kept so that a corrupt newest file never means starting from scratch.

A checkpoint is one dict (docs/ARCHITECTURE.md, "Training"): `format`, `model`, `model_options`,
`num_classes`, `in_channels`, `input_size`, `dataset`, `class_names`, `normalization`, `config`,
`model_state`, `optimizer_state`, `schedule_state`, `scaler_state`, `epoch`, `step`, `global_step`, `rng`,
`epoch_sums`, `metrics_rows`, `best_val_accuracy`, ..., and `checksum` (SHA-256 over everything else).
It is read only with `torch.load(weights_only=True)`: no pickled code ever runs.

Writing: through `papernets.files.atomic_write` (a new temporary file in the same folder, flushed and fsync'ed;
the current file renamed to `<name>.prev.pt`; the temporary file renamed over `<name>.pt`).

Reading: the zip members' declared sizes are checked before torch inflates anything (torch stores members
uncompressed, so a genuine file declares no more than its own size); then `torch.load(weights_only=True)`, the
checksum, and the payload's schema (`checkpoint_schema.check_checkpoint`), all in `load_checkpoint`.
"""

import hashlib
import pickle
import random
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from papernets.errors import CheckpointError
from papernets.files import atomic_write, remove_stale_temporaries, write_failure
from papernets.runs.checkpoint_schema import check_checkpoint

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
    checkpoint = {**checkpoint, "format": FORMAT}
    checkpoint["checksum"] = payload_checksum(checkpoint)
    advice = ("the previous checkpoint is intact: free disk space or choose another --output, then --resume")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise write_failure(path, error, advice) from None
    remove_stale_temporaries(path)
    with atomic_write(path, advice, keep_previous=previous_path(path) if keep_previous else None) as file:
        torch.save(checkpoint, file)
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
    check_declared_sizes(path)
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
    check_checkpoint(checkpoint, f"Checkpoint {path}")
    return checkpoint


def check_declared_sizes(path: Path) -> None:
    """Refuse a checkpoint whose zip members would inflate beyond the file: torch.save stores every member
    uncompressed, so a genuine checkpoint declares at most its own size, whereas a DEFLATE bomb of 1.6 MB
    declares a gigabyte."""
    try:
        if not zipfile.is_zipfile(path):
            return  # torch's legacy format, or not a checkpoint at all: torch.load decides below
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, RuntimeError) as error:
        raise CheckpointError(f"Checkpoint {path} is corrupt or truncated ({error}); resume from an earlier "
                              "checkpoint or train again.") from None
    declared = sum(member.file_size for member in members)
    compressed = any(member.compress_type != zipfile.ZIP_STORED for member in members)
    if compressed or declared > path.stat().st_size:
        raise CheckpointError(f"Checkpoint {path} declares {declared:,} bytes of compressed content in a "
                              f"{path.stat().st_size:,}-byte file; papernets never writes that, so it is refused "
                              "unread: use a file written by `papernets train`.")


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


def load_best(path: Path, warn=print) -> dict | None:
    """The best-validation checkpoint: `path` (best.pt), else its previous copy (an earlier best, whose own
    `best_epoch` and `best_val_accuracy` say which), else None when neither is valid, for the caller to
    rebuild it. A damaged best.pt never blocks the end of a run."""
    try:
        return load_newest_valid(path, warn=warn)
    except CheckpointError:
        warn(f"warning: neither {path} nor {previous_path(path)} is valid; best.pt is rebuilt from the final "
             "weights, which are tested instead.")
        return None


def restore_training(checkpoint: dict, model: nn.Module, optimizer: torch.optim.Optimizer, schedule) -> None:
    """Model, optimizer, schedule and RNG states from a checkpoint (schema checked by `load_checkpoint`), each
    checked against the objects built for the run: wrong shapes are one sentence here, not a traceback at the
    first step."""
    def refuse(problem: str):
        raise CheckpointError(f"The checkpoint to resume from {problem}; resume from an earlier checkpoint or start "
                              "a new run.")

    load_weights(model, checkpoint["model_state"], refuse)
    parameters = [parameter for group in optimizer.param_groups for parameter in group["params"]]
    saved = checkpoint["optimizer_state"]
    saved_indices = [index for group in saved["param_groups"] for index in group["params"]]
    if len(saved["param_groups"]) != len(optimizer.param_groups) or sorted(saved_indices) != list(
            range(len(parameters))):
        refuse("holds the optimizer state of another model or optimizer setup")
    for index, state in saved["state"].items():
        if not (type(index) is int and 0 <= index < len(parameters)) or not isinstance(state, dict) or any(
                isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape != parameters[index].shape
                for value in state.values()):
            refuse(f"holds optimizer state of the wrong shape for parameter {index}")
    try:
        optimizer.load_state_dict(saved)
        schedule.load_state_dict(checkpoint["schedule_state"])
        restore_rng_state(checkpoint["rng"])
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        refuse(f"holds an optimizer, schedule or random state papernets cannot restore ({short_reason(error)})")


def load_weights(model: nn.Module, weights: dict, refuse) -> None:
    """Every weight present with the model's shape; `refuse(problem)` raises the caller's sentence."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    wrong = [name for name in expected if name in weights and weights[name].shape != expected[name].shape]
    if missing or unexpected or wrong:
        problem = (f"lacks the weight {missing[0]}" if missing else f"holds an unknown weight {unexpected[0]}"
                   if unexpected else f"holds {wrong[0]} of shape {tuple(weights[wrong[0]].shape)}, not "
                   f"{tuple(expected[wrong[0]].shape)}")
        refuse(f"{problem} (the weights do not fit the model)")
    try:
        model.load_state_dict(weights)
    except RuntimeError as error:
        refuse(f"holds weights the model cannot take ({short_reason(error)})")


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


def model_from_checkpoint(path_or_checkpoint: str | Path | dict) -> tuple[nn.Module, dict]:
    """The checkpoint's model with its weights, in eval mode on the CPU, and the checkpoint itself."""
    from papernets.models import create_model

    checkpoint = (path_or_checkpoint if isinstance(path_or_checkpoint, dict)
                  else load_checkpoint(path_or_checkpoint))
    model = create_model(checkpoint["model"], num_classes=checkpoint["num_classes"],
                         input_size=tuple(checkpoint["input_size"]), **checkpoint["model_options"])

    def refuse(problem: str):
        raise CheckpointError(f"The checkpoint of {checkpoint['model']} {problem}; the file was not written for "
                              "this model (or the model's code changed since training), so train again.")

    load_weights(model, checkpoint["model_state"], refuse)
    return model.eval(), checkpoint
