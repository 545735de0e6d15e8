"""Optimised inference: BN folding keeps the function, bf16 keeps the predictions, exports load back exactly."""

import json

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from papernets.cli import main
from papernets.errors import CheckpointError
from papernets.export.fusion import (ExportInfo, InferenceModel, export_model, fold_batchnorm, foldable_pairs,
                                     load_exported, optimize_for_inference)
from papernets.hardware import bf16_supported
from papernets.models import create_model

# (name, create_model keywords): small inputs keep the suite fast.
FOLD_CASES = [
    ("resnet20", {"num_classes": 10, "input_size": (1, 28, 28)}),
    ("mobilenet_v2", {"num_classes": 10, "input_size": (3, 16, 16)}),
    ("fastnet", {"num_classes": 10, "input_size": (1, 28, 28)}),
]


def randomize_batchnorm(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BN non-trivial statistics and affine parameters, as after training."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                size = module.num_features
                module.running_mean.copy_(torch.randn(size, generator=generator) * 0.1)
                module.running_var.copy_(torch.rand(size, generator=generator) + 0.5)
                module.weight.copy_(torch.rand(size, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(size, generator=generator) * 0.1)
    return model.eval()


def batch_norms(model: nn.Module) -> int:
    return sum(isinstance(module, nn.BatchNorm2d) for module in model.modules())


def build(name: str, keywords: dict) -> nn.Module:
    torch.manual_seed(0)
    return randomize_batchnorm(create_model(name, **keywords))


@pytest.mark.parametrize("name, keywords", FOLD_CASES, ids=[case[0] for case in FOLD_CASES])
def test_fold_matches_eager_float32(name, keywords):
    model = build(name, keywords)
    images = torch.randn(8, *keywords["input_size"], generator=torch.Generator().manual_seed(1))
    folded = fold_batchnorm(model)
    assert batch_norms(model) > 0 and batch_norms(folded) == 0
    with torch.no_grad():
        expected, actual = model(images), folded(images)
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-4)


def test_fold_leaves_the_input_model_unchanged():
    model = build("resnet20", {"num_classes": 10, "input_size": (1, 28, 28)})
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    fold_batchnorm(model)
    assert all(torch.equal(before[name], tensor) for name, tensor in model.state_dict().items())


class Untraceable(nn.Module):
    """Data-dependent control flow defeats torch.fx; folding falls back to adjacent pairs in Sequentials."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.norm = nn.BatchNorm2d(4)

    def forward(self, images):
        features = self.features(images)
        if features.sum() > 0:
            return self.norm(self.conv(features))
        return self.norm(features)      # the same BN on another input: folding it into `conv` would be wrong


def test_fold_without_a_graph_only_folds_sequential_pairs():
    model = randomize_batchnorm(Untraceable())
    folded = fold_batchnorm(model)
    assert isinstance(folded.features[1], nn.Identity) and isinstance(folded.norm, nn.BatchNorm2d)
    images = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(folded(images), model(images), rtol=1e-4, atol=1e-5)


class SharedOutput(nn.Module):
    """The convolution's output feeds the BN and the sum: folding would change the second use."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.norm = nn.BatchNorm2d(4)

    def forward(self, images):
        features = self.conv(images)
        return self.norm(features) + features


def test_fold_skips_a_convolution_whose_output_is_read_twice():
    model = randomize_batchnorm(SharedOutput())
    folded = fold_batchnorm(model)
    assert isinstance(folded.norm, nn.BatchNorm2d)
    images = torch.randn(2, 1, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(folded(images), model(images))


def test_fold_through_max_pool_only_when_every_scale_is_positive():
    model = build("fastnet", {"num_classes": 10, "input_size": (1, 28, 28)})
    assert ("stages.stage1.conv1", "stages.stage1.bn1") in foldable_pairs(model)
    with torch.no_grad():
        model.stages.stage1.bn1.weight[0] = -0.5     # max(s x + t) != s max(x) + t for s < 0
    assert ("stages.stage1.conv1", "stages.stage1.bn1") not in foldable_pairs(model)
    assert ("stages.stage1.conv2", "stages.stage1.bn2") in foldable_pairs(model)
    images = torch.randn(8, 1, 28, 28, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        torch.testing.assert_close(fold_batchnorm(model)(images), model(images), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name, keywords", FOLD_CASES, ids=[case[0] for case in FOLD_CASES])
def test_optimized_float32_channels_last_matches_eager(name, keywords):
    model = build(name, keywords)
    images = torch.randn(8, *keywords["input_size"], generator=torch.Generator().manual_seed(2))
    optimized = optimize_for_inference(model, dtype="float32", channels_last=True)
    with torch.no_grad():
        torch.testing.assert_close(optimized(images), model(images), rtol=1e-4, atol=1e-4)


@pytest.mark.skipif(not bf16_supported("cpu"), reason="this CPU has no native bfloat16")
def test_optimized_bfloat16_agrees_with_eager_on_argmax():
    # Random weights leave some logits nearly tied, so the bar here is lower than the >= 99.5% that
    # benchmarks/inference.py measures on a trained network.
    model = build("fastnet", {"num_classes": 10, "input_size": (1, 28, 28)})
    images = torch.randn(256, 1, 28, 28, generator=torch.Generator().manual_seed(3))
    optimized = optimize_for_inference(model, dtype="bfloat16")
    assert optimized.dtype == torch.bfloat16
    with torch.no_grad():
        eager = model(images)
    fast = optimized(images)
    assert fast.dtype == torch.float32
    agreement = (fast.argmax(1) == eager.argmax(1)).float().mean().item()
    assert agreement >= 0.9
    torch.testing.assert_close(fast, eager, rtol=0.1, atol=0.1 * eager.abs().max().item())


def test_auto_dtype_follows_the_hardware():
    model = build("resnet20", {"num_classes": 10, "input_size": (1, 28, 28)})
    expected = torch.bfloat16 if bf16_supported("cpu") else torch.float32
    assert optimize_for_inference(model).dtype == expected
    with pytest.raises(ValueError):
        optimize_for_inference(model, dtype="float16")


def test_export_round_trip(tmp_path):
    model = build("resnet20", {"num_classes": 10, "input_size": (1, 28, 28)})
    info = ExportInfo(model="resnet20", num_classes=10, in_channels=1, model_options={}, input_size=[1, 28, 28],
                      class_names=[str(index) for index in range(10)], normalization={"mean": [0.286], "std": [0.353]})
    path = export_model(model, tmp_path / "resnet20.safetensors", info)
    loaded, loaded_info = load_exported(path, dtype="float32")
    assert isinstance(loaded, InferenceModel) and loaded_info == info
    assert batch_norms(loaded) == 0
    images = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(loaded(images), model(images), rtol=1e-4, atol=1e-4)


def test_load_exported_refuses_foreign_and_mismatched_files(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_exported(tmp_path / "missing.safetensors")
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a safetensors file at all")
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        load_exported(garbage)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"weight": torch.zeros(2)}, str(foreign))
    with pytest.raises(CheckpointError, match="not a papernets export"):
        load_exported(foreign)
    mismatched = tmp_path / "mismatched.safetensors"
    info = ExportInfo(model="resnet32", num_classes=10, in_channels=1, model_options={}, input_size=[1, 28, 28])
    save_file({"weight": torch.zeros(2)}, str(mismatched),
              metadata={"format": "papernets-folded-v1", "info": json.dumps(info.__dict__), "folded": "[]"})
    with pytest.raises(CheckpointError, match="do not fit model resnet32"):
        load_exported(mismatched)


def test_export_command_writes_a_file_that_loads_back(tmp_path, capsys):
    from generated_data import valid_checkpoint
    from papernets.runs.checkpoint import save_checkpoint

    model = build("fastnet", {"num_classes": 10, "input_size": (1, 28, 28)})
    checkpoint = save_checkpoint({
        **valid_checkpoint(num_classes=10, size=28, model_name="fastnet", dataset="fashion-mnist"),
        "class_names": [f"class {index}" for index in range(10)],
        "normalization": {"mean": [0.286], "std": [0.353]}, "model_state": model.state_dict(),
    }, tmp_path / "run" / "checkpoints" / "best.pt")
    output = tmp_path / "export" / "fastnet.safetensors"
    assert main(["export", "--checkpoint", str(checkpoint), "--output", str(output)]) == 0
    assert main(["export", "--checkpoint", str(tmp_path / "run"), "--output", str(output)]) == 0  # a run folder
    assert "wrote" in capsys.readouterr().out
    loaded, info = load_exported(output, dtype="float32")
    assert info.model == "fastnet" and info.normalization == {"mean": [0.286], "std": [0.353]}
    images = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(loaded(images), model(images), rtol=1e-4, atol=1e-4)


def test_export_command_refuses_a_bad_output_name_and_a_missing_checkpoint(tmp_path, capsys):
    assert main(["export", "--checkpoint", str(tmp_path / "missing.pt"), "--output", str(tmp_path / "m.pt")]) == 2
    assert "must end in .safetensors" in capsys.readouterr().err
    assert main(["export", "--checkpoint", str(tmp_path / "missing.pt"),
                 "--output", str(tmp_path / "m.safetensors")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: Checkpoint") and "does not exist" in error and error.count("\n") == 1
