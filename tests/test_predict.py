"""`papernets predict`: image files classified as the training data was, checked against the model evaluated
directly on the same test images; unreadable files are one-line errors with exit status 2."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from papernets.cli import main
from papernets.data import load_dataset
from papernets.runs.checkpoint import model_from_checkpoint
from papernets.runs.names import PREDICTIONS_FILE
from test_report import TEST_SIZE, short_training_run

pytestmark = pytest.mark.real_data("fashion-mnist")

IMAGES = 12


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    return short_training_run(tmp_path_factory)


@pytest.fixture(scope="module")
def first_test_images(fashion_mnist_dir):
    dataset = load_dataset("fashion-mnist", data_dir=fashion_mnist_dir)
    return dataset.test_images[:IMAGES], dataset.test_labels[:IMAGES]


@pytest.fixture
def png_files(tmp_path, first_test_images):
    images, _ = first_test_images
    paths = []
    for index, image in enumerate(images):
        path = tmp_path / f"test_{index:02d}.png"
        Image.fromarray(image[0], mode="L").save(path)  # (1, 28, 28) -> a 28x28 grey PNG
        paths.append(path)
    return paths


def direct_probabilities(checkpoint_path, images: np.ndarray) -> np.ndarray:
    """The model on the test images themselves, normalized by hand as docs/ARCHITECTURE.md states."""
    model, checkpoint = model_from_checkpoint(checkpoint_path)
    mean = torch.tensor(checkpoint["normalization"]["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(checkpoint["normalization"]["std"]).view(1, -1, 1, 1)
    inputs = (torch.from_numpy(images).float() / 255 - mean) / std
    with torch.no_grad():
        logits = model(inputs)
        if checkpoint["config"]["eval_tta_flip"]:
            logits = (logits + model(inputs.flip(-1))) / 2
    return torch.softmax(logits, dim=1).numpy()


def test_predict_on_png_files_equals_evaluating_the_test_images(trained_run, png_files, first_test_images,
                                                               capsys):
    checkpoint = trained_run / "checkpoints" / "best.pt"
    assert main(["predict", "--checkpoint", str(checkpoint), *map(str, png_files), "--top-k", "10", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert [result["image"] for result in results] == [str(path) for path in png_files]
    predicted = np.array([result["predictions"][0]["index"] for result in results])
    probabilities = np.array([[entry["probability"] for entry in sorted(result["predictions"],
                                                                         key=lambda entry: entry["index"])]
                              for result in results])
    expected = direct_probabilities(checkpoint, first_test_images[0])
    assert np.array_equal(predicted, expected.argmax(axis=1))
    assert np.allclose(probabilities, expected, atol=1e-5)
    with np.load(trained_run / PREDICTIONS_FILE) as saved:  # the report's evaluation of the same checkpoint
        assert saved["probs"].shape[0] == TEST_SIZE
        assert np.array_equal(predicted, saved["probs"][:IMAGES].argmax(axis=1))
    class_names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot"]
    assert all(result["predictions"][0]["class"] == class_names[index] for result, index in zip(results, predicted))


def test_text_output_lists_top_k_classes_with_probabilities(trained_run, png_files, capsys):
    assert main(["predict", "--checkpoint", str(trained_run), *map(str, png_files[:2]), "--top-k", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    path, ranked = lines[0].split("  ", 1)
    assert path == str(png_files[0])
    first, second = ranked.strip().split(", ")
    assert first.endswith("%") and second.endswith("%")
    assert float(first.rsplit(" ", 1)[1][:-1]) >= float(second.rsplit(" ", 1)[1][:-1])


def test_colour_jpeg_of_any_size_is_converted_to_the_training_format(trained_run, tmp_path, first_test_images,
                                                                    capsys):
    grey = first_test_images[0][0][0]
    colour = Image.fromarray(np.stack([grey] * 3, axis=-1), mode="RGB").resize((112, 112), Image.Resampling.NEAREST)
    path = tmp_path / "big_colour.jpg"
    colour.save(path, quality=95)
    assert main(["predict", "--checkpoint", str(trained_run), str(path), "--json", "--top-k", "10"]) == 0
    result = json.loads(capsys.readouterr().out)[0]
    assert len(result["predictions"]) == 10
    assert sum(entry["probability"] for entry in result["predictions"]) == pytest.approx(1, abs=1e-4)


@pytest.mark.parametrize("content, expected", [
    (b"this is not an image", "cannot be read as an image"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "cannot be read as an image"),  # a PNG signature, then garbage
])
def test_a_file_that_is_not_an_image_is_one_line_and_exit_2(trained_run, png_files, tmp_path, capsys, content,
                                                            expected):
    bad = tmp_path / "bad.png"
    bad.write_bytes(content)
    assert main(["predict", "--checkpoint", str(trained_run), str(png_files[0]), str(bad)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and expected in captured.err and str(bad) in captured.err


def test_a_missing_image_or_checkpoint_or_bad_top_k_is_one_line_and_exit_2(trained_run, png_files, tmp_path, capsys):
    for arguments in (["--checkpoint", str(trained_run), str(tmp_path / "missing.png")],
                      ["--checkpoint", str(tmp_path / "missing.pt"), str(png_files[0])],
                      ["--checkpoint", str(trained_run), str(png_files[0]), "--top-k", "0"]):
        assert main(["predict", *arguments]) == 2
        assert capsys.readouterr().err.count("\n") == 1
