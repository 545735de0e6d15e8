"""`papernets train` / `papernets eval`: bad flags and values give one sentence and exit 2 before any work."""

import pytest

from papernets.cli import main
from generated_data import valid_checkpoint
from papernets.runs.checkpoint import save_checkpoint

BAD_COMMANDS = [
    (["--model", "resnet2O", "--dataset", "fashion-mnist"], "Unknown model 'resnet2O'"),
    (["--model", "resnet20", "--dataset", "fashion-mnst"], "fashion-mnst"),
    (["--model", "resnet20", "--dataset", "fashion-mnist", "--lr", "-0.1"], "Learning rate must be positive"),
    (["--model", "resnet20", "--dataset", "fashion-mnist", "-b", "0"], "Batch size must be at least 1"),
    (["--model", "resnet20", "--dataset", "fashion-mnist", "--epochs", "-2"], "epochs"),
    (["--model", "resnet20", "--dataset", "fashion-mnist", "--set", "lr=fast"], "lr must be of type float"),
    (["--model", "resnet20", "--dataset", "fashion-mnist", "--set", "warmup=3"], "not a training config field"),
    (["--model", "resnet20", "--dataset", "fashion-mnist", "--set", "augmentation.rotate=5"], "augmentation.rotate"),
    (["--model", "resnet20", "--dataset", "fashion-mnist", "--recipe", "no-such-recipe"], "Unknown recipe"),
    (["--model", "resnet20", "--dataset", "fashion-mnist", "--amp", "fp8"], "invalid choice"),
    (["--dataset", "cifar10", "--recipe", "resnet-cifar-he2015", "--set", "schedule=plateau", "val_size=0"],
     "needs val_size > 0"),
    (["--model", "resnet20", "--dataset", "fashion-mnist", "--teacher", "missing.pt", "--set", "train_size=64",
      "val_size=64", "test_size=64"], "does not exist"),
    (["--model", "resnet20", "--dataset", "fashion-mnist", "--procs", "0"], "--procs 0"),
]


@pytest.mark.parametrize(("arguments", "message"), BAD_COMMANDS)
def test_bad_flags_exit_2_with_one_sentence_before_any_work(arguments, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status = main(["train", *arguments, "--output", str(tmp_path / "runs"), "--quiet"])
    error = capsys.readouterr().err
    assert status == 2
    assert error.startswith("error: ") and message in error and len(error.strip().splitlines()) == 1, error
    assert not any((tmp_path / "runs").glob("*/metrics.csv"))


def test_resume_without_a_run_and_with_only_corrupt_checkpoints_is_an_error(tmp_path, capsys):
    assert main(["train", "--resume", "--output", str(tmp_path)]) == 2
    assert "No run with a checkpoint" in capsys.readouterr().err
    run = tmp_path / "resnet20-fashion-mnist-20260101-000000"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.pt").write_bytes(b"truncated")
    assert main(["train", "--resume", "--output", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert "warning:" in error and "error: No valid checkpoint to resume from" in error


def test_a_resumed_run_refuses_a_change_of_recipe(tmp_path, capsys):
    from papernets.config import load_config

    config = load_config("fast-fashion-mnist", {"epochs": 1})
    save_checkpoint({**valid_checkpoint(3), "model": config.model, "dataset": config.dataset,
                     "config": config.to_dict()}, tmp_path / "checkpoints" / "last.pt")
    assert main(["train", "--resume", str(tmp_path), "--lr", "0.5"]) == 2
    assert "lr cannot change" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path), "--model", "vgg16"]) == 2
    assert "drop --model" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path), "--recipe", "fast-mnist"]) == 2
    assert "drop --recipe" in capsys.readouterr().err


def test_eval_of_a_missing_checkpoint(tmp_path, capsys):
    assert main(["eval", "--checkpoint", str(tmp_path / "nothing.pt")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_the_resume_policy_reads_the_config_field_kinds():
    """A resumed run may change the `resumable` fields and nothing else, whatever the field."""
    from papernets.cli.train_commands import resumed_config
    from papernets.config import FIELD_KINDS, FieldKind, TrainConfig
    from papernets.errors import ConfigError

    saved = TrainConfig(model="lenet5_modern", dataset="fashion-mnist", epochs=2).to_dict()
    changes = {"epochs": 3, "threads": 1, "output": "elsewhere", "log_every_steps": 7, "report": False}
    assert all(FIELD_KINDS[name] is FieldKind.RESUMABLE for name in changes)
    resumed = resumed_config(saved, dict(changes))
    assert (resumed.epochs, resumed.threads, resumed.output, resumed.log_every_steps) == (3, 1, "elsewhere", 7)
    for refused in ({"lr": 0.5}, {"channels_last": True}, {"seed": 1}):  # experiment, execution, experiment
        with pytest.raises(ConfigError, match=f"{next(iter(refused))} cannot change"):
            resumed_config(saved, dict(refused))


@pytest.mark.real_data("fashion-mnist")
def test_a_report_that_fails_after_training_is_an_error_naming_the_complete_run(tmp_path, capsys, monkeypatch):
    """The command line chains train -> report; the report's failure is exit 2 with one sentence, not a warning."""
    import papernets.analysis.report as report
    from papernets.runs.reader import RunFolderError
    from conftest import dataset_flags

    def failing_report(run_dir, html=False):
        raise RunFolderError(f"{run_dir}/metrics.csv lacks val_acc; train the run again.")

    monkeypatch.setattr(report, "write_report", failing_report)
    status = main(["train", "--model", "lenet5_modern", *dataset_flags("fashion-mnist"), "--epochs", "1",
                   "--output", str(tmp_path), "--quiet", "--set", "train_size=256", "val_size=64", "test_size=64",
                   "threads=1", "amp=off", "run_name=run"])
    error = capsys.readouterr().err.strip()
    assert status == 2 and len(error.splitlines()) == 1
    assert f"{tmp_path / 'run'} is complete, but its report failed" in error and "lacks val_acc" in error
    assert (tmp_path / "run" / "summary.json").is_file()


def test_procs_is_taken_out_of_the_command_line_the_ranks_run():
    from papernets.cli.train_commands import without_procs

    assert without_procs(["train", "--procs", "2", "--model", "fastnet", "--procs=3", "--set", "seed=1"]) == [
        "train", "--model", "fastnet", "--set", "seed=1"]
