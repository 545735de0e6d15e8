"""`predictions.npz` in a run folder: the test-set probabilities of the weights that summary.json's test
accuracy comes from, written by training's test pass; reports (confusion matrix, calibration, the most
confident mistakes) read them and never evaluate a model themselves."""

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from papernets.files import atomic_write
from papernets.runs.reader import RunFolderError

MOST_CONFIDENT_MISTAKES = 24  # images kept in predictions.npz for the report's grid
# The most predictions.npz may inflate to: 50,000 test images x 1,000 classes of float32 are 200 MB, so a file
# declaring more is not papernets' and is refused before anything is inflated.
LARGEST_INFLATED_BYTES = 256 << 20


def most_confident_mistakes(probs: np.ndarray, labels: np.ndarray, count: int) -> np.ndarray:
    """Indices of wrongly classified examples, highest predicted probability first."""
    predicted = probs.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    confidence = probs[wrong, predicted[wrong]]
    return wrong[np.argsort(-confidence, kind="stable")[:count]]


@dataclass
class Predictions:
    """A run's test-set predictions, and the images it was most confidently wrong on."""

    probs: np.ndarray            # (N, classes) float32
    labels: np.ndarray           # (N,) int64
    class_names: list[str]
    mistake_indices: np.ndarray  # test-set indices, most confident mistake first
    mistake_images: np.ndarray   # uint8 (M, C, H, W)

    @classmethod
    def of(cls, probs: np.ndarray, labels: np.ndarray, class_names: list[str], images: np.ndarray) -> "Predictions":
        """From the probabilities of the test images `images` (uint8 (N, C, H, W)) with their labels."""
        labels = np.asarray(labels, dtype=np.int64)
        mistakes = most_confident_mistakes(probs, labels, MOST_CONFIDENT_MISTAKES)
        return cls(probs=probs.astype(np.float32), labels=labels, class_names=list(class_names),
                   mistake_indices=mistakes, mistake_images=np.asarray(images)[mistakes])

    def save(self, path: Path) -> None:
        with atomic_write(path, "free disk space or make the run folder writable") as file:
            np.savez_compressed(file, probs=self.probs, labels=self.labels,
                                class_names=np.array(self.class_names), mistake_indices=self.mistake_indices,
                                mistake_images=self.mistake_images)

    @classmethod
    def load(cls, path: Path) -> "Predictions":
        if not path.is_file():
            raise RunFolderError(f"{path} is missing; `papernets report {path.parent}` evaluates the run's best "
                                 "checkpoint again and writes it.")
        try:
            with zipfile.ZipFile(path) as archive:
                declared = sum(member.file_size for member in archive.infolist())
            if declared > LARGEST_INFLATED_BYTES:
                raise ValueError(f"its members would inflate to {declared:,} bytes, more than any run's predictions")
            with np.load(path, allow_pickle=False) as arrays:
                return cls(probs=arrays["probs"], labels=arrays["labels"],
                           class_names=[str(name) for name in arrays["class_names"]],
                           mistake_indices=arrays["mistake_indices"], mistake_images=arrays["mistake_images"])
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
            raise RunFolderError(
                f"{path} cannot be read ({error}); delete it and `papernets report {path.parent}` evaluates the "
                "run's best checkpoint again.") from None
