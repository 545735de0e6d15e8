"""The files a trained model leaves: `papernets export` writes a .safetensors file that `predict` and `eval` take
(as they take the run folder's model.safetensors), and ONNX that onnxruntime runs with the eager model's
outputs; exported files get the mode any new file gets. `predict` warns on images unlike the training data."""

import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from papernets.cli import main
from papernets.export.fusion import load_exported_model
from papernets.runs.checkpoint import model_from_checkpoint

pytestmark = pytest.mark.real_data("fashion-mnist")
SHORT_RUN = ["train", "--model", "fastnet", "--dataset", "fashion-mnist", "--epochs", "1", "--no-report", "--quiet",
             "--set", "train_size=1024", "val_size=256", "test_size=512", "threads=1", "run_name=run"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    output = tmp_path_factory.mktemp("export")
    assert main([*SHORT_RUN, "--output", str(output)]) == 0
    return output / "run"


@pytest.fixture(scope="module")
def exported(run_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("exported") / "fastnet.safetensors"
    previous = os.umask(0o022)
    try:
        assert main(["export", "--checkpoint", str(run_dir), "--output", str(path)]) == 0
    finally:
        os.umask(previous)
    return path


def eval_json(path, capsys) -> dict:
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(path), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_exported_files_are_readable_as_the_umask_allows(run_dir, exported):
    assert exported.stat().st_mode & 0o777 == 0o644
    assert (run_dir / "model.safetensors").stat().st_mode & 0o044 == 0o044


def test_eval_takes_the_export_and_the_run_folders_weights(run_dir, exported, capsys):
    summary = json.loads((run_dir / "summary.json").read_text())
    from_checkpoint = eval_json(run_dir, capsys)
    assert from_checkpoint["accuracy"] == pytest.approx(summary["test_accuracy"])
    from_export = eval_json(exported, capsys)  # BN folded, float32 where the run evaluated in bf16
    assert from_export["images"] == 512 and from_export["epoch"] is None
    assert from_export["accuracy"] == pytest.approx(summary["test_accuracy"], abs=0.02)
    final = eval_json(run_dir / "model.safetensors", capsys)  # 1 epoch: the final weights are the best ones
    assert final["accuracy"] == pytest.approx(summary["test_accuracy"])


def test_predict_takes_the_export_and_agrees_with_the_checkpoint(run_dir, exported, tmp_path, capsys):
    image = tmp_path / "shirt.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 120, (28, 28), dtype=np.uint8)).save(image)
    top = {}
    for source in (run_dir, exported):
        capsys.readouterr()
        assert main(["predict", "--checkpoint", str(source), str(image), "--json"]) == 0
        top[source] = json.loads(capsys.readouterr().out)[0]["predictions"][0]["class"]
    assert top[run_dir] == top[exported]


def test_predict_warns_on_images_unlike_the_training_data(run_dir, tmp_path, capsys):
    white_background = tmp_path / "dark-on-white.png"
    pixels = np.full((28, 28), 255, dtype=np.uint8)
    pixels[6:22, 12:16] = 0
    Image.fromarray(pixels).save(white_background)
    strip = tmp_path / "strip.png"
    Image.fromarray(np.zeros((20, 600), dtype=np.uint8)).save(strip)
    tiny = tmp_path / "tiny.png"
    Image.fromarray(np.zeros((1, 1), dtype=np.uint8)).save(tiny)
    ordinary = tmp_path / "ordinary.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 160, (28, 28), dtype=np.uint8)).save(ordinary)
    capsys.readouterr()
    assert main(["predict", "--checkpoint", str(run_dir), str(white_background), str(strip), str(tiny),
                 str(ordinary)]) == 0
    warnings = capsys.readouterr().err.splitlines()
    assert any(str(white_background) in line and "brighter" in line and "invert" in line for line in warnings)
    assert any(str(strip) in line and "600x20" in line and "stretched" in line for line in warnings)
    assert any(str(tiny) in line and "only 1x1" in line for line in warnings)
    assert not any(str(ordinary) in line for line in warnings) and all(line.startswith("warning: ") for line in warnings)


def test_onnx_export_runs_in_onnxruntime_like_the_eager_model(run_dir, tmp_path, capsys):
    import onnx  # onnx and onnxruntime are in the test extras: pip install -e '.[test]'
    import onnxruntime

    path = tmp_path / "fastnet.onnx"
    assert main(["export", "--checkpoint", str(run_dir), "--output", str(path)]) == 0
    model, checkpoint = model_from_checkpoint(run_dir / "checkpoints" / "best.pt")
    images = torch.randn(5, 1, 28, 28)
    with torch.no_grad():
        eager = model.eval()(images).numpy()
    session = onnxruntime.InferenceSession(str(path))
    (logits,) = session.run(["logits"], {"images": images.numpy()})
    np.testing.assert_allclose(logits, eager, rtol=1e-4, atol=1e-4)
    metadata = {prop.key: prop.value for prop in onnx.load(str(path)).metadata_props}
    assert json.loads(metadata["papernets"])["class_names"] == checkpoint["class_names"]
    assert path.stat().st_mode & 0o044 == 0o044


def test_the_run_folders_weights_load_unfolded(run_dir):
    model, info = load_exported_model(run_dir / "model.safetensors")
    assert info.model == "fastnet" and info.config["epochs"] == 1 and info.precision in ("bf16", "off")
    assert any(isinstance(module, torch.nn.BatchNorm2d) for module in model.modules())
