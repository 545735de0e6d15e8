"""`papernets predict`: class probabilities for image files from a checkpoint.

Images go through the model exactly as the test data did at the end of training: uint8 pixels with the
model's channels (grey "L" or "RGB") at the training size, normalised by `data.BatchLoader` with the
checkpoint's mean and std, and run through `papernets.evaluation` with the run's precision, memory format,
batch size and flip averaging.
"""

import os
import stat
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from papernets import evaluation
from papernets.data import BatchLoader
from papernets.errors import PapernetsError
from papernets.runs.checkpoint import model_from_checkpoint

# Formats `predict` decodes: the common photo and graphics formats; the rarer decoders (DDS, BLP, ...) are where
# a fuzzer found most crashes, and nobody classifies those files with papernets.
IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP", "PPM")
MAX_IMAGE_PIXELS = 8192 * 8192  # a 67-megapixel photo decodes to 200 MB of RGB; larger is refused undecoded
MAXIMUM_STRETCH = 1.5            # aspect ratio of an image over the training images' before predict warns
BRIGHTNESS_TOLERANCE_STDS = 1.5  # mean pixel this many training stds from the training mean: predict warns


class ImageFileError(PapernetsError):
    """An image file that is missing or that Pillow cannot read."""


@dataclass
class Classifier:
    """A model in eval mode with what it needs to read an image as its training data was read."""

    model: torch.nn.Module
    device: torch.device
    input_size: tuple[int, int, int]  # (C, H, W) the model was trained on
    mean: list[float]
    std: list[float]
    class_names: list[str]
    batch_size: int
    channels_last: bool = False
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
            model, checkpoint = model_from_checkpoint(checkpoint_path)
        config, normalization = checkpoint["config"], checkpoint["normalization"]
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        channels_last = bool(config.get("channels_last", False))
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        return cls(model=model.to(device, memory_format=memory_format), device=device,
                   input_size=tuple(checkpoint["input_size"]),
                   mean=list(normalization["mean"]), std=list(normalization["std"]),
                   class_names=list(checkpoint["class_names"]), batch_size=int(config.get("batch_size", 128)),
                   channels_last=channels_last, flip_averaging=bool(config.get("eval_tta_flip", False)),
                   bf16_autocast=checkpoint.get("precision") == "bf16")

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """Softmax probabilities (N, classes) for uint8 images (N, C, H, W)."""
        loader = BatchLoader(images, np.zeros(len(images), np.int64), batch_size=self.batch_size, mean=self.mean,
                             std=self.std, device=self.device, channels_last=self.channels_last, shuffle=False,
                             drop_last=False)
        return evaluation.probabilities(self.model, loader, device=self.device,
                                        amp_dtype=torch.bfloat16 if self.bf16_autocast else None,
                                        tta_flip=self.flip_averaging)


def read_image(path: str | Path, input_size: tuple[int, int, int]) -> np.ndarray:
    """An image file as uint8 (C, H, W): converted to grey or RGB as the model takes, resized to (H, W)."""
    return read_image_and_size(path, input_size)[0]


def read_image_and_size(path: str | Path, input_size: tuple[int, int, int]) -> tuple[np.ndarray, tuple[int, int]]:
    """`read_image`'s pixels, and the image's size (width, height) in the file.

    Only regular files are opened (a FIFO would block forever), only the formats in IMAGE_FORMATS are decoded,
    and the size the header declares is checked before any pixel is decoded: more than MAX_IMAGE_PIXELS is
    refused (Pillow's decompression-bomb warning is an error here). Any failure of a decoder is one sentence.
    """
    channels, height, width = input_size
    try:
        with open_image_file(path) as file, warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(file, formats=IMAGE_FORMATS) as image:
                if image.width * image.height > MAX_IMAGE_PIXELS:
                    raise ImageFileError(f"{path} declares {image.width} x {image.height} pixels, more than the "
                                         f"{MAX_IMAGE_PIXELS:,} papernets decodes; pass a smaller image.")
                original_size = image.size
                image = image.convert("L" if channels == 1 else "RGB")
                if image.size != (width, height):
                    image = image.resize((width, height), Image.Resampling.BILINEAR)
                pixels = np.asarray(image, dtype=np.uint8)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageFileError(f"{path} declares more pixels than the {MAX_IMAGE_PIXELS:,} papernets decodes; pass a "
                             "smaller image.") from None
    except UnidentifiedImageError:
        raise ImageFileError(f"{path} cannot be read as an image (not a {', '.join(IMAGE_FORMATS)} file Pillow can "
                             "read); pass a PNG or JPEG file.") from None
    except ImageFileError:
        raise
    except Exception as error:  # noqa: BLE001  (Pillow's decoders raise anything on damaged data: SyntaxError, ...)
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ImageFileError(f"{path} cannot be read as an image ({reason}); pass a PNG or JPEG file.") from None
    if channels == 1:
        return pixels[np.newaxis], original_size          # (H, W) -> (1, H, W)
    return pixels.transpose(2, 0, 1), original_size       # (H, W, C) -> (C, H, W)


def unlike_training(path: str | Path, pixels: np.ndarray, original_size: tuple[int, int],
                    classifier: Classifier) -> list[str]:
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


def open_image_file(path: str | Path):
    """`path` opened for reading if it is a regular file; a FIFO, device or folder is refused before a byte is
    read (the open is non-blocking, so a FIFO with no writer cannot hang `predict`)."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise ImageFileError(f"Image file {path} does not exist; check the path.") from None
    except OSError as error:
        raise ImageFileError(f"Image file {path} cannot be opened ({error.strerror or error}); check the path.") \
            from None
    mode = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(mode):
        os.close(descriptor)
        kind = "a folder" if stat.S_ISDIR(mode) else "a pipe (FIFO)" if stat.S_ISFIFO(mode) else "a device"
        raise ImageFileError(f"{path} is {kind}, not an image file; pass image files (PNG or JPEG).")
    return os.fdopen(descriptor, "rb")


@dataclass
class ImagePrediction:
    image: str
    top_classes: list[tuple[str, int, float]]  # (class name, class index, probability), most probable first
    warnings: list[str]  # how the image differs from the training images, where it does a lot


def predict_images(checkpoint_path: str | Path, image_paths: list[str | Path], top_k: int = 3
                   ) -> list[ImagePrediction]:
    """The `top_k` most probable classes for each image file."""
    classifier = Classifier.from_checkpoint(checkpoint_path)
    images, original_sizes = zip(*(read_image_and_size(path, classifier.input_size) for path in image_paths))
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
