import pytest
from torch import nn

from papernets.errors import ModelError
from papernets.models import create_model, get_model_entry, list_models, registry


@pytest.fixture
def scratch_registry(monkeypatch):
    """The real registry's entries in a copy, so that models registered by a test vanish after it."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    return registry


class Recorder(nn.Module):
    def __init__(self, **arguments):
        super().__init__()
        self.arguments = arguments


def register_imagenet_model(registry_module):
    @registry_module.register_model(paper="Test et al. 2024", input_size=(3, 224, 224), num_classes=1000)
    def scratch_imagenet_model(*, num_classes: int, in_channels: int, small_input: bool = False,
                               width_multiplier: float = 1.0) -> nn.Module:
        return Recorder(num_classes=num_classes, in_channels=in_channels, small_input=small_input,
                        width_multiplier=width_multiplier)


def test_list_models_matches_pattern_and_is_sorted():
    everything = list_models()
    assert len(everything) == len(set(everything))
    assert list_models("resnet*").index("resnet20") < list_models("resnet*").index("resnet110")  # natural order
    assert list_models("lenet*") == ["lenet5", "lenet5_modern"]
    assert list_models("lenet5") == ["lenet5"]
    assert list_models("no-such-model*") == []


def test_unknown_name_lists_close_names():
    with pytest.raises(ModelError, match=r"Unknown model 'lenet'.*lenet5"):
        get_model_entry("lenet")
    with pytest.raises(ModelError, match="papernets list"):
        create_model("zzzzzzzz")


def test_registering_a_name_twice_is_refused(scratch_registry):
    register_imagenet_model(scratch_registry)
    with pytest.raises(ValueError, match="registered twice"):
        register_imagenet_model(scratch_registry)


def test_create_model_fills_defaults_and_checks_options(scratch_registry):
    register_imagenet_model(scratch_registry)
    assert create_model("scratch_imagenet_model").arguments == {
        "num_classes": 1000, "in_channels": 3, "small_input": False, "width_multiplier": 1.0}
    assert create_model("scratch_imagenet_model", num_classes=10, width_multiplier=0.5).arguments[
        "width_multiplier"] == 0.5
    with pytest.raises(ModelError, match="does not take these options"):
        create_model("scratch_imagenet_model", depth=3)
    with pytest.raises(ModelError, match="num_classes >= 1"):
        create_model("scratch_imagenet_model", num_classes=0)


def test_small_input_switches_the_stem_of_large_image_models_only(scratch_registry):
    register_imagenet_model(scratch_registry)
    small = create_model("scratch_imagenet_model", input_size=(1, 28, 28)).arguments
    assert small["small_input"] is True and small["in_channels"] == 1
    assert create_model("scratch_imagenet_model", input_size=(3, 64, 64)).arguments["small_input"] is False
    # LeNet-5 was designed for 32x32: a 28x28 input must not pass small_input (its builder would refuse it).
    assert get_model_entry("lenet5").designed_for_small_input
    assert create_model("lenet5", input_size=(1, 28, 28)).features.c1.in_channels == 1


def test_entries_carry_the_paper_and_input_size():
    entry = get_model_entry("lenet5")
    assert (entry.paper, entry.input_size, entry.num_classes) == ("LeCun et al. 1998", (1, 32, 32), 10)
