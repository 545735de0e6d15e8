"""What a newcomer meets on the command line: the issue's acceptance command (a recipe on a data set it was not
written for: the schedule scales and decays, no mirrored digits), the resolved config and the fields in
--help, --version, results on stdout (also with --quiet), and a finished run that is not trained again."""

import json

import pytest

from papernets import __version__
from papernets.cli import main

SUBSET = ["--set", "train_size=512", "val_size=128", "test_size=128", "threads=1"]


@pytest.mark.real_data("mnist")
def test_resnet_recipe_on_mnist_prints_a_decaying_schedule_and_uses_no_flips(tmp_path, capsys):
    assert main(["train", "--recipe", "resnet-cifar-he2015", "--dataset", "mnist", "--epochs", "3", "--no-report",
                 "--output", str(tmp_path), *SUBSET]) == 0
    printed = capsys.readouterr()
    assert "3 epochs" in printed.err and "augmentation.flip off for mnist" in printed.err
    assert "Augmentation: Augmentation(pad=4, crop=True, flip=False, cutout=0)." in printed.err
    assert ("Schedule over 12 steps (4 per epoch): lr 0.1, 0.01 from step 6 (epoch 1.5), "
            "0.001 from step 10 (epoch 2.5).") in printed.err
    assert printed.out.startswith("Test accuracy ")  # the result on stdout, progress on stderr
    (run_dir,) = tmp_path.iterdir()
    lrs = [float(line.split(",")[6]) for line in (run_dir / "metrics.csv").read_text().splitlines()[1:]]
    assert lrs == pytest.approx([0.1, 0.01, 0.001])


def test_print_config_shows_the_resolved_config_and_help_lists_the_fields(capsys):
    assert main(["train", "--recipe", "resnet-cifar-he2015", "--dataset", "mnist", "--epochs", "3",
                 "--print-config"]) == 0
    config = json.loads(capsys.readouterr().out)
    assert config["milestones"] == [1.5, 2.2582] and config["augmentation"]["flip"] is False
    assert len(config["adjustments"]) == 2
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "warmup_fraction (float)" in capsys.readouterr().out
    assert main(["train", "--dataset", "mnist", "--set", "lerning_rate=1"]) == 2
    assert "--print-config" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_status:
        main(["--version"])
    assert exit_status.value.code == 0 and capsys.readouterr().out.strip() == f"papernets {__version__}"


@pytest.mark.real_data("fashion-mnist")
def test_quiet_prints_the_result_only_and_a_finished_run_is_not_resumed(tmp_path, capsys):
    assert main(["train", "--model", "lenet5_modern", "--dataset", "fashion-mnist", "--epochs", "1", "--quiet",
                 "--no-report", "--output", str(tmp_path), *SUBSET]) == 0
    printed = capsys.readouterr()
    assert printed.err == "" and printed.out.count("\n") == 1 and printed.out.startswith("Test accuracy")
    (run_dir,) = tmp_path.iterdir()
    summary = (run_dir / "summary.json").read_text()
    assert main(["train", "--resume", str(run_dir)]) == 0
    assert "has finished its 1 epoch (summary.json" in capsys.readouterr().out
    assert (run_dir / "summary.json").read_text() == summary


@pytest.mark.parametrize("name", ["resnet56", "mobilenet_v3_small", "googlenet_bn"])
def test_list_counts_the_same_macs_with_batch_norm_left_out(name):
    import torch

    from papernets.cli.models_commands import without_batch_norm
    from papernets.models import create_model, get_model_entry
    from papernets.models.summary import count_macs

    input_size = get_model_entry(name).input_size
    with torch.device("meta"):
        full, stripped = create_model(name), without_batch_norm(create_model(name))
    assert not any(isinstance(module, torch.nn.BatchNorm2d) for module in stripped.modules())
    assert count_macs(stripped, input_size) == count_macs(full, input_size)
