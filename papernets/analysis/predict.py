"""Class probabilities from a checkpoint: for image files (`papernets predict`) and for a run's whole test set
(the predictions a report is built from, saved once as `predictions.npz`).

Images go through the model exactly as the training data did: uint8 pixels with the model's channels
(grey "L" or "RGB") at the training size, scaled to [0, 1] and normalized with the checkpoint's mean and std.
"""

import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from papernets.runs.names import BEST_CHECKPOINT, PREDICTIONS_FILE
from papernets.runs.reader import Run, RunFolderError
from papernets.errors import PapernetsError

EVALUATION_BATCH_SIZE = 500
MOST_CONFIDENT_MISTAKES = 24  # images kept in predictions.npz for the report's grid
MAXIMUM_STRETCH = 1.5         # aspect ratio of an image over the training images' before predict warns
BRIGHTNESS_TOLERANCE_STDS = 1.5  # mean pixel this many training stds from the training mean: predict warns


class ImageFileError(PapernetsError):
    """An image file that is missing or that Pillow cannot read."""


@dataclass
class Classifier:
    """A model in eval mode with what it needs to read an image as its training data was read."""

    model: torch.nn.Module
    input_size: tuple[int, int, int]  # (C, H, W) the model was trained on
    mean: list[float]
    std: list[float]
    class_names: list[str]
    flip_averaging: bool = False  # average the logits of the image and its mirror, as the run evaluated
    bf16_autocast: bool = False   # the run trained and evaluated under bf16 autocast

    @classmethod
    def from_checkpoint(cls, checkpoint_path: str | Path) -> "Classifier":
        """From a checkpoint (.pt), or a papernets safetensors file (`papernets export`, a run's model.safetensors)."""
        if Path(checkpoint_path).suffix == ".safetensors":
            from papernets.export.fusion import load_exported_model

            model, info = load_exported_model(checkpoint_path)
            checkpoint = {**asdict(info), "config": info.config or {}}
        else:
            from papernets.runs.checkpoint import model_from_checkpoint

            model, checkpoint = model_from_checkpoint(checkpoint_path)
        normalization = checkpoint["normalization"]
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return cls(model=model.to(device), input_size=tuple(checkpoint["input_size"]),
                   mean=list(normalization["mean"]), std=list(normalization["std"]),
                   class_names=list(checkpoint["class_names"]),
                   flip_averaging=bool(checkpoint["config"].get("eval_tta_flip", False)),
                   bf16_autocast=checkpoint.get("precision") == "bf16")

    @torch.no_grad()
    def probabilities(self, images: np.ndarray, batch_size: int = EVALUATION_BATCH_SIZE) -> np.ndarray:
        """Softmax probabilities (N, classes) for uint8 images (N, C, H, W)."""
        device = next(self.model.parameters()).device
        shape = (1, -1, 1, 1)
        # x = (pixel / 255 - mean) / std, written as papernets.data.BatchLoader computes it, so that the same
        # pixels give the same inputs, bit for bit, as in training and `papernets eval`.
        scale = torch.tensor([1 / (255 * s) for s in self.std]).view(shape).to(device)
        shift = torch.tensor([-m / s for m, s in zip(self.mean, self.std)]).view(shape).to(device)
        batches = []
        for start in range(0, len(images), batch_size):
            pixels = torch.from_numpy(np.ascontiguousarray(images[start:start + batch_size])).to(device)
            inputs = pixels.float() * scale + shift  # (B, C, H, W)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.bf16_autocast):
                logits = self.model(inputs).float()
                if self.flip_averaging:
                    logits = (logits + self.model(inputs.flip(-1)).float()) / 2
            batches.append(torch.softmax(logits, dim=1).cpu())
        return torch.cat(batches).numpy()


def read_image(path: str | Path, input_size: tuple[int, int, int]) -> tuple[np.ndarray, tuple[int, int]]:
    """An image file as uint8 (C, H, W): converted to grey or RGB as the model takes, resized to (H, W); and its
    size (width, height) in the file."""
    channels, height, width = input_size
    try:
        with Image.open(path) as image:
            original_size = image.size
            image = image.convert("L" if channels == 1 else "RGB")
            if image.size != (width, height):
                image = image.resize((width, height), Image.Resampling.BILINEAR)
            pixels = np.asarray(image, dtype=np.uint8)
    except FileNotFoundError:
        raise ImageFileError(f"Image file {path} does not exist; check the path.") from None
    except IsADirectoryError:
        raise ImageFileError(f"{path} is a folder, not an image file; pass image files (PNG or JPEG).") from None
    except (UnidentifiedImageError, OSError, ValueError) as error:
        reason = "not an image Pillow can read" if isinstance(error, UnidentifiedImageError) else str(error)
        raise ImageFileError(f"{path} cannot be read as an image ({reason}); pass a PNG or JPEG file.") from None
    if channels == 1:
        return pixels[np.newaxis], original_size          # (H, W) -> (1, H, W)
    return pixels.transpose(2, 0, 1), original_size       # (H, W, C) -> (C, H, W)


def unlike_training(path: str | Path, pixels: np.ndarray, original_size: tuple[int, int],
                    classifier: "Classifier") -> list[str]:
    """Reasons to distrust a prediction: an image stretched or enlarged a lot to the training size, or much
    brighter or darker than the training images (e.g. dark digits on white where MNIST has white on black)."""
    warnings = []
    (width, height), (_, train_height, train_width) = original_size, classifier.input_size
    stretch = (width / height) / (train_width / train_height)
    if not 1 / MAXIMUM_STRETCH <= stretch <= MAXIMUM_STRETCH:
        warnings.append(f"{path} is {width}x{height} and was stretched to {train_width}x{train_height}, which "
                        "distorts its shapes; crop it to the object, about square, first.")
    elif min(width, height) < min(train_width, train_height) / 2:
        warnings.append(f"{path} is only {width}x{height} and was enlarged to {train_width}x{train_height}; "
                        "the prediction rests on very little detail.")
    brightness, train_brightness = pixels.mean() / 255, float(np.mean(classifier.mean))
    if abs(brightness - train_brightness) > BRIGHTNESS_TOLERANCE_STDS * float(np.mean(classifier.std)):
        warnings.append(f"{path} is much {'brighter' if brightness > train_brightness else 'darker'} than the "
                        f"training images (mean pixel {brightness:.2f} against their {train_brightness:.2f}); "
                        "if it is dark on light where they are light on dark, invert it.")
    return warnings


@dataclass
class ImagePrediction:
    image: str
    top_classes: list[tuple[str, int, float]]  # (class name, class index, probability), most probable first
    warnings: list[str]  # how the image differs from the training images, where it does a lot


def predict_images(checkpoint_path: str | Path, image_paths: list[str | Path], top_k: int = 3
                   ) -> list[ImagePrediction]:
    """The `top_k` most probable classes for each image file."""
    classifier = Classifier.from_checkpoint(checkpoint_path)
    images, original_sizes = zip(*(read_image(path, classifier.input_size) for path in image_paths))
    probabilities = classifier.probabilities(np.stack(images))
    top_k = min(top_k, probabilities.shape[1])
    predictions = []
    for path, pixels, original_size, image_probabilities in zip(image_paths, images, original_sizes, probabilities):
        ranked = np.argsort(-image_probabilities, kind="stable")[:top_k]
        predictions.append(ImagePrediction(
            image=str(path),
            top_classes=[(classifier.class_names[index], int(index), float(image_probabilities[index]))
                         for index in ranked],
            warnings=unlike_training(path, pixels, original_size, classifier)))
    return predictions


@dataclass
class Predictions:
    """The best checkpoint's predictions on a run's test set, and the images it was most confidently wrong on."""

    probs: np.ndarray            # (N, classes) float32
    labels: np.ndarray           # (N,) int64
    class_names: list[str]
    mistake_indices: np.ndarray  # test-set indices, most confident mistake first
    mistake_images: np.ndarray   # uint8 (M, C, H, W)

    def save(self, path: Path) -> None:
        temporary = path.with_name(path.name + ".partial.npz")
        np.savez_compressed(temporary, probs=self.probs, labels=self.labels,
                            class_names=np.array(self.class_names), mistake_indices=self.mistake_indices,
                            mistake_images=self.mistake_images)
        temporary.replace(path)

    @classmethod
    def load(cls, path: Path) -> "Predictions":
        try:
            with np.load(path, allow_pickle=False) as arrays:
                return cls(probs=arrays["probs"], labels=arrays["labels"],
                           class_names=[str(name) for name in arrays["class_names"]],
                           mistake_indices=arrays["mistake_indices"], mistake_images=arrays["mistake_images"])
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
            raise RunFolderError(
                f"{path} cannot be read ({error}); delete it and the report will evaluate the checkpoint again."
            ) from None


def most_confident_mistakes(probs: np.ndarray, labels: np.ndarray, count: int) -> np.ndarray:
    """Indices of wrongly classified examples, highest predicted probability first."""
    predicted = probs.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    confidence = probs[wrong, predicted[wrong]]
    return wrong[np.argsort(-confidence, kind="stable")[:count]]


def evaluate_test_set(run: Run) -> Predictions:
    """Evaluate the run's best checkpoint once on the dataset's test set."""
    from papernets.data import load_dataset

    classifier = Classifier.from_checkpoint(run.best_checkpoint)
    dataset_name = run.summary.get("dataset", run.config.get("dataset"))
    dataset = load_dataset(dataset_name, data_dir=run.config.get("data_dir"))
    test_size = run.config.get("test_size") or len(dataset.test_images)  # the run's `test_size`: the first N
    images = dataset.test_images[:test_size]
    labels = np.asarray(dataset.test_labels[:test_size], dtype=np.int64)
    probs = classifier.probabilities(images)
    mistakes = most_confident_mistakes(probs, labels, MOST_CONFIDENT_MISTAKES)
    return Predictions(probs=probs.astype(np.float32), labels=labels, class_names=list(dataset.class_names),
                       mistake_indices=mistakes, mistake_images=images[mistakes])


def run_predictions(run: Run) -> Predictions:
    """The run's saved test predictions; the best checkpoint is evaluated (and the result saved) the first time
    and whenever it is newer than the saved predictions (a resumed run that trained on). Saved predictions
    are used as they are when the checkpoints were deleted to save space."""
    path = run.path / PREDICTIONS_FILE
    best = run.path / BEST_CHECKPOINT
    if path.is_file() and not (best.is_file() and best.stat().st_mtime > path.stat().st_mtime):
        return Predictions.load(path)
    predictions = evaluate_test_set(run)
    predictions.save(path)
    return predictions
