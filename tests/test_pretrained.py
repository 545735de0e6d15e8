"""Fine-tuning from a torchvision weights file (`papernets train --pretrained FILE`): the torchvision-exact models
start from the file with the head replaced for the data set's classes; models whose layout differs from
torchvision's refuse the weights in one sentence instead of loading them into something else (item 9)."""

import numpy as np
import pytest
import torch

from papernets.errors import ConfigError, ModelError, PapernetsError
from papernets.models import create_model
from papernets.models.interop import fine_tuning_start, load_torchvision_state_dict
from papernets.config import load_config
from papernets.training.engine import train
from test_recipes_datasets import FEW_STEPS, dataset_like
from weights_reference import randomized_torchvision


@pytest.fixture(scope="module")
def resnet18_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "resnet18.pth"
    torch.save(randomized_torchvision("resnet18").state_dict(), path)
    return path


def test_the_start_is_torchvisions_weights_with_a_new_head(resnet18_file):
    state_dict = torch.load(resnet18_file, weights_only=True)
    model, replaced = fine_tuning_start("resnet18", state_dict, num_classes=10, input_size=(3, 32, 32),
                                        small_input=False)
    assert replaced == ["head.fc.weight", "head.fc.bias"] and model.head.fc.out_features == 10
    assert torch.equal(model.stem.conv.weight, state_dict["conv1.weight"])
    assert torch.equal(model.stages.conv5_x[1].bn2.running_var, state_dict["layer4.1.bn2.running_var"])
    grey, _ = fine_tuning_start("resnet18", state_dict, num_classes=10, input_size=(1, 28, 28), small_input=False)
    assert torch.allclose(grey.stem.conv.weight, state_dict["conv1.weight"].sum(dim=1, keepdim=True))


def test_train_with_pretrained_keeps_the_full_size_stem_and_trains(resnet18_file, tmp_path):
    config = load_config("fast-cifar10", {**FEW_STEPS, "model": "resnet18", "pretrained": str(resnet18_file),
                                          "output": str(tmp_path), "quiet": True})
    assert config.model_options == {"small_input": False}
    assert any("small_input off" in note for note in config.adjustments)
    run_dir = train(config, dataset=dataset_like("cifar10"))
    assert (run_dir / "summary.json").is_file()


def test_weights_for_another_layout_are_refused_in_one_sentence(tmp_path):
    resnet50 = randomized_torchvision("resnet50").state_dict()
    with pytest.raises(ModelError, match="build it with v1_5=True") as error:
        load_torchvision_state_dict(create_model("resnet50"), resnet50)  # the paper's bottleneck
    assert len(str(error.value).splitlines()) == 1
    load_torchvision_state_dict(create_model("resnet50", v1_5=True), resnet50)
    mobilenet = randomized_torchvision("mobilenet_v2").state_dict()
    with pytest.raises(ModelError, match="small_input=True"):
        load_torchvision_state_dict(create_model("mobilenet_v2", input_size=(3, 32, 32)), mobilenet)
    with pytest.raises(ModelError, match="resnet20 has no torchvision counterpart"):
        fine_tuning_start("resnet20", mobilenet, num_classes=10, input_size=(3, 32, 32))
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a state dict")
    config = load_config("fast-cifar10", {**FEW_STEPS, "model": "resnet18", "pretrained": str(garbage),
                                          "output": str(tmp_path)})
    with pytest.raises(PapernetsError, match="cannot be read as a state dict"):
        train(config, dataset=dataset_like("cifar10"))
