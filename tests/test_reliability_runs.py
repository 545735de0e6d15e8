"""Hostile inputs, round two (issue 17), the classes that meet the run folder: 2 checkpoint payloads, 6 runs
that would overwrite runs, 7 atomic writes, 8 writes through planted symlinks, 9 damaged best.pt and odd
run-folder files (and capped downloads and IDX reads), 10 two writers of one run. One hypothesis property per
class, plus the red team's own attacks as regressions. Classes 1, 3, 4 and 5: tests/test_reliability_hostile.py.
"""

import copy
import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generated_data import generated_dataset, peak_memory, valid_checkpoint
from papernets.cli import main
from papernets.data.readers import read_idx
from papernets.errors import (CheckpointError, ModelError, PapernetsError, RunFolderBusy, TrainingError,
                              WriteError)
from papernets.files import RunLock, atomic_write, write_text
from papernets.runs import checkpoint as checkpoints
from papernets.runs.checkpoint import (load_checkpoint, model_from_checkpoint, previous_path, restore_training,
                                       save_checkpoint)
from papernets.runs.writer import create_run_folder, write_json, write_metrics
from papernets.config import config_from_dict, load_config
from papernets.training.engine import train
from training_seams import sigterm_during_step

PROPERTY = settings(max_examples=30, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
FEW = settings(PROPERTY, max_examples=6)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def one_sentence(error: Exception) -> bool:
    return isinstance(error, PapernetsError) and "\n" not in str(error) and str(error).endswith(".")


def small_config(output: Path, **changes):
    values = {"model": "lenet5_modern", "dataset": "generated", "epochs": 2, "batch_size": 64, "lr": 0.05,
              "val_size": 64, "output": str(output), "quiet": True, "report": False, "threads": 1, "amp": "off",
              "augmentation": {"pad": 0, "crop": False, "flip": False, "cutout": 0}, **changes}
    return load_config(None, values)


# ------------------------------------------------------------------------------------- 2. checkpoint payloads

VALID = valid_checkpoint()
HOSTILE_VALUES = [None, "x", -1, 2**40, 1.5, True, [], {}, [1, 12], ["band 0", "band 1", "band 2"],
                  {"mean": [0.3], "std": [0.0]}, {"mean": [0.3, 0.3], "std": [0.2, 0.2]}, {"w": torch.zeros(2)},
                  torch.zeros(3), float("nan")]


def forged(field: str, value) -> dict:
    checkpoint = copy.deepcopy(VALID)
    if value is KeyError:
        del checkpoint[field]
    else:
        checkpoint[field] = value
    return checkpoint


def nested_forgeries(checkpoint: dict) -> list[dict]:
    """The red team's field-level forgeries: each names what it changes inside the payload."""
    adam = torch.optim.AdamW(torch.nn.Linear(2, 2).parameters()).state_dict()
    forgeries = []
    for change in ("rng-shape", "weight-shape", "weight-missing", "momentum-shape", "adam-state", "config-list"):
        payload = copy.deepcopy(checkpoint)
        if change == "rng-shape":
            payload["rng"]["torch"] = torch.zeros(10, dtype=torch.uint8)
        elif change == "weight-shape":
            name = next(iter(payload["model_state"]))
            payload["model_state"][name] = torch.zeros(3, 3)
        elif change == "weight-missing":
            payload["model_state"].pop(next(iter(payload["model_state"])))
        elif change == "momentum-shape":
            payload["optimizer_state"]["state"][0]["momentum_buffer"] = torch.zeros(7)
        elif change == "adam-state":
            payload["optimizer_state"] = adam
        else:
            payload["config"] = list(payload["config"].items())
        forgeries.append(payload)
    return forgeries


def use_checkpoint(path: Path, run_dir: Path) -> None:
    """Every consumer of a checkpoint in turn: eval/predict/export's model_from_checkpoint and a resume."""
    checkpoint = load_checkpoint(path)
    model_from_checkpoint(path)
    config = config_from_dict(checkpoint["config"])
    model, _ = model_from_checkpoint(checkpoint)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    from papernets.training.optim import LearningRateSchedule

    restore_training(checkpoint, model, optimizer, LearningRateSchedule(config, 2, 2))


@PROPERTY
@given(field=st.sampled_from(sorted(VALID)), value=st.sampled_from([KeyError] + HOSTILE_VALUES),
       nested=st.integers(-1, 5))
def test_class_2_a_checkpoint_with_a_valid_checksum_is_used_or_refused_in_one_sentence(tmp_path_factory, field,
                                                                                      value, nested):
    folder = tmp_path_factory.mktemp("forged")
    payload = forged(field, value) if nested < 0 else nested_forgeries(VALID)[nested]
    path = save_checkpoint(payload, folder / "last.pt")
    try:
        use_checkpoint(path, folder)
    except (CheckpointError, ModelError) as error:
        assert one_sentence(error), error


@pytest.mark.parametrize("change", [("normalization", KeyError), ("config", [1, 2]), ("epoch", "3"),
                                    ("global_step", KeyError), ("class_names", ["a", "b", "c"]),
                                    ("normalization", {"mean": [0.3], "std": [0.0]})],
                         ids=["normalization-missing", "config-a-list", "epoch-a-string", "global-step-missing",
                              "three-names-for-four-classes", "std-zero"])
def test_class_2_the_red_teams_schema_forgeries_are_refused_where_checkpoints_are_read(tmp_path, change):
    path = save_checkpoint(forged(*change), tmp_path / "last.pt")
    with pytest.raises(CheckpointError, match=f"Checkpoint {path} (has no|has an invalid|names)") as caught:
        load_checkpoint(path)
    assert one_sentence(caught.value)


@pytest.mark.parametrize("index", range(6), ids=["rng-shape", "weight-shape", "weight-missing", "momentum-shape",
                                                 "adam-state", "config-list"])
def test_class_2_the_red_teams_shape_forgeries_are_refused_before_training(tmp_path, index):
    path = save_checkpoint(nested_forgeries(VALID)[index], tmp_path / "last.pt")
    with pytest.raises(CheckpointError) as caught:
        use_checkpoint(path, tmp_path)
    assert one_sentence(caught.value)


def test_class_2_a_deflate_bomb_is_refused_before_it_is_inflated(tmp_path):
    path = tmp_path / "bomb.pt"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("bomb/data.pkl", b"\x80\x02}q\x00.")
        with archive.open("bomb/data/0", "w", force_zip64=True) as member:
            for _ in range(64):
                member.write(bytes(2**20))
    assert path.stat().st_size < 200_000
    refusal = pytest.raises(CheckpointError, match="declares 67,108,8.. bytes of compressed content")
    with peak_memory() as memory, refusal:
        load_checkpoint(path)
    assert memory["peak"] < 8 * 2**20


def test_class_2_a_run_folder_whose_checkpoint_is_another_datasets_is_refused_before_anything_runs(tmp_path,
                                                                                                   capsys):
    run_dir = tmp_path / "fashion-run"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps({"model": "lenet5_modern", "dataset": "fashion-mnist"}))
    save_checkpoint(valid_checkpoint(num_classes=10, size=32, dataset="cifar10"), run_dir / "checkpoints" / "last.pt")
    before = sorted(run_dir.rglob("*"))
    assert main(["train", "--resume", str(run_dir)]) == 2
    error = capsys.readouterr().err
    assert "does not belong to this run folder" in error and error.count("\n") == 1
    assert sorted(run_dir.rglob("*")) == before


# ------------------------------------------------------------------------------------- 6. runs that overwrite runs

@PROPERTY
@given(launches=st.lists(st.tuples(st.sampled_from(["", "mine", "other"]), st.integers(0, 2)), min_size=1,
                         max_size=8))
def test_class_6_a_new_run_never_gets_a_folder_that_exists(tmp_path_factory, launches):
    root = tmp_path_factory.mktemp("runs")
    claimed = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("time.strftime", lambda *args: "20261202-091500")  # every launch in the same second
        from papernets.runs.writer import default_run_name

        for name, seed in launches:
            existed = sorted(root.iterdir())
            try:
                run_dir = create_run_folder(root, name or default_run_name("lenet5", "mnist", seed),
                                            explicit=bool(name))
            except TrainingError as error:
                assert name and (root / name).exists() and one_sentence(error)
                assert sorted(root.iterdir()) == existed
                continue
            assert run_dir not in existed and run_dir.parent == root and run_dir.is_dir()
            claimed.append(run_dir)
    assert len(set(claimed)) == len(claimed)


def test_class_6_runs_started_together_with_different_seeds_get_three_folders(tmp_path, monkeypatch):
    from papernets.runs.writer import default_run_name

    monkeypatch.setattr("time.strftime", lambda *args: "20261202-091500")
    folders, barrier = [], threading.Barrier(6)

    def start(seed):
        barrier.wait()
        folders.append(create_run_folder(tmp_path, default_run_name("lenet5", "mnist", seed % 3), explicit=False))

    threads = [threading.Thread(target=start, args=(seed,)) for seed in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(folders)) == 6 and {folder.name.split("-")[2] for folder in folders} == {"seed0", "seed1", "seed2"}


def test_class_6_training_into_an_existing_finished_run_is_refused_and_leaves_it_intact(tmp_path):
    run_dir = train(small_config(tmp_path, run_name="finished", epochs=1), dataset=generated_dataset())
    files = {path: path.read_bytes() for path in run_dir.rglob("*") if path.is_file()}
    with pytest.raises(TrainingError, match="already exists; pass another --set run_name, or --resume") as caught:
        train(small_config(tmp_path, run_name="finished", epochs=1, seed=1), dataset=generated_dataset())
    assert one_sentence(caught.value)
    assert {path: path.read_bytes() for path in run_dir.rglob("*") if path.is_file()} == files


# ------------------------------------------------------------------------------------- 7. atomic writes

WRITE_FAILURES = ["write", "fsync", "replace", "folder-fsync"]


@PROPERTY
@given(old=st.binary(max_size=64), new=st.binary(max_size=5000), failure=st.sampled_from(WRITE_FAILURES + [None]),
       errno=st.sampled_from([28, 30, 5]))
def test_class_7_a_file_is_the_old_one_or_the_new_one_and_a_failure_is_one_sentence(tmp_path_factory, old, new,
                                                                                   failure, errno):
    folder = tmp_path_factory.mktemp("atomic")
    path = folder / "report.md"
    path.write_bytes(old)

    def fail(*args, **kwargs):
        raise OSError(errno, os.strerror(errno))

    with pytest.MonkeyPatch.context() as patch:
        try:
            with atomic_write(path) as file:
                if failure == "write":
                    file.write(new[:len(new) // 2])
                    fail()
                file.write(new)
                if failure == "fsync":
                    patch.setattr(os, "fsync", fail)
                elif failure == "replace":
                    patch.setattr(os, "replace", fail)
                elif failure == "folder-fsync":
                    patch.setattr("papernets.files.fsync_folder", fail)
        except WriteError as error:
            assert failure is not None and one_sentence(error) and str(path) in str(error)
        else:
            assert failure is None
    assert path.read_bytes() in ((old, new) if failure == "folder-fsync" else (new,) if failure is None else (old,))
    assert [entry.name for entry in folder.iterdir()] == ["report.md"]


WRITER = textwrap.dedent("""
    import sys
    from papernets.files import write_text
    path, size = sys.argv[1], int(sys.argv[2])
    generation = 0
    while True:
        generation += 1
        write_text(path, f"generation {generation}\\n" + "x" * size + "\\nend\\n")
""")


@FEW
@given(delay=st.floats(0.05, 0.4), size=st.sampled_from([10, 100_000, 3_000_000]))
def test_class_7_sigkill_while_writing_leaves_a_whole_file(tmp_path_factory, delay, size):
    path = tmp_path_factory.mktemp("killed") / "report.md"
    write_text(path, "generation 0\n" + "x" * size + "\nend\n")
    process = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(size)])
    try:
        process.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait()
    text = path.read_text()
    assert text.startswith("generation ") and text.endswith("x" * min(size, 10) + "\nend\n")


def test_class_7_an_unwritable_report_or_export_target_is_one_sentence(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(WriteError, match=f"Could not write {blocker / 'report.md'} \\(Not a directory\\)"):
        write_text(blocker / "report.md", "text")
    checkpoint = save_checkpoint(valid_checkpoint(), tmp_path / "best.pt")
    assert main(["export", "--checkpoint", str(checkpoint), "--output", str(blocker / "x" / "m.safetensors")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


# ------------------------------------------------------------------------------------- 8. writes through symlinks

PLANTED = [".config.json.tmp", ".metrics.csv.tmp", ".write-test", "report.md", "summary.json", "config.json",
           "metrics.csv", "checkpoints/last.pt", "checkpoints/.last.pt.12345.tmp", "checkpoints/last.prev.pt"]


def write_everything(run_dir: Path) -> None:
    from papernets.runs.writer import prepare_run_folder

    prepare_run_folder(run_dir)
    write_json(run_dir / "config.json", {"model": "lenet5_modern"})
    write_json(run_dir / "summary.json", {"model": "lenet5_modern"})
    write_metrics(run_dir / "metrics.csv", [{"epoch": 1, "train_loss": 0.5}])
    write_text(run_dir / "report.md", "# report\n")
    save_checkpoint(VALID, run_dir / "checkpoints" / "last.pt")
    save_checkpoint(VALID, run_dir / "checkpoints" / "last.pt")


@PROPERTY
@given(planted=st.lists(st.sampled_from(PLANTED), min_size=1, max_size=5, unique=True))
def test_class_8_no_write_follows_a_symlink_planted_in_the_run_folder(tmp_path_factory, planted):
    root = tmp_path_factory.mktemp("planted")
    users_file = root / "users-file.txt"
    users_file.write_text("the user's own file")
    run_dir = root / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    for name in planted:
        (run_dir / name).symlink_to(users_file)
    write_everything(run_dir)
    assert users_file.read_text() == "the user's own file"
    load_checkpoint(run_dir / "checkpoints" / "last.pt")


# ------------------------------------------------------------------------------------- 9. best.pt, odd files, caps

@pytest.fixture(scope="module")
def interrupted_run(tmp_path_factory) -> Path:
    """A run of 3 epochs stopped after epoch 2: best.pt and best.prev.pt exist (two improvements) or best.pt alone."""
    output = tmp_path_factory.mktemp("interrupted")
    config = small_config(output, run_name="run", epochs=3)
    with sigterm_during_step(6), pytest.raises(Exception, match="Interrupted by SIGTERM at step 6"):
        train(config, dataset=generated_dataset())
    return output / "run"


@FEW
@given(position=st.floats(0, 1, exclude_max=True), bit=st.integers(0, 7), copies=st.sampled_from(["best", "both"]))
def test_class_9_a_damaged_best_pt_never_blocks_the_end_of_a_resumed_run(tmp_path_factory, interrupted_run,
                                                                         position, bit, copies):
    run_dir = tmp_path_factory.mktemp("resume") / "run"
    shutil.copytree(interrupted_run, run_dir)
    best = run_dir / "checkpoints" / "best.pt"
    for path in [best] + ([previous_path(best)] if copies == "both" else []):
        if path.exists():
            data = bytearray(path.read_bytes())
            data[int(position * len(data))] ^= 1 << bit
            path.write_bytes(bytes(data))
    resume = checkpoints.load_newest_valid(run_dir / "checkpoints" / "last.pt")
    config = config_from_dict(resume["config"])
    train(config, dataset=generated_dataset(), resume=resume, run_dir=run_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert 0 <= summary["test_accuracy"] <= 1
    load_checkpoint(best)  # rebuilt or intact


SUMMARY_VALUES = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(),
                                        st.text(max_size=8)),
                              lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                      st.dictionaries(st.text(max_size=5), inner, max_size=3)),
                              max_leaves=6)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("finished")
    return train(small_config(output, run_name="run", epochs=1, report=True), dataset=generated_dataset())


@PROPERTY
@given(summary=st.one_of(st.dictionaries(st.sampled_from(["model", "dataset", "test_accuracy", "wall_seconds",
                                                          "seed", "params", "macs", "best_val_accuracy"]),
                                         SUMMARY_VALUES), SUMMARY_VALUES,
                         st.integers(1, 3000).map(lambda depth: "[" * depth + "]" * depth)),
       metrics=st.lists(st.lists(st.sampled_from(["1", "0.5", "", "nan", "x", "[]", "1e400"]), min_size=1,
                                 max_size=10), max_size=3),
       command=st.sampled_from(["compare", "report"]))
def test_class_9_report_and_compare_take_any_summary_and_metrics_with_one_sentence(tmp_path_factory, finished_run,
                                                                                  summary, metrics, command):
    run_dir = tmp_path_factory.mktemp("odd") / "run"
    shutil.copytree(finished_run, run_dir)
    (run_dir / "summary.json").write_text(summary if isinstance(summary, str) else json.dumps(summary))
    if metrics:
        header = "epoch,step,train_loss,train_acc,val_loss,val_acc,lr,images_per_s,seconds\n"
        (run_dir / "metrics.csv").write_text(header + "\n".join(",".join(row) for row in metrics) + "\n")
    with pytest.MonkeyPatch.context() as patch:
        errors = []
        patch.setattr(sys, "stderr", type("Capture", (), {"write": lambda self, text: errors.append(text),
                                                          "flush": lambda self: None})())
        code = main([command, str(run_dir)])
    assert code in (0, 2)
    assert code == 0 or ("".join(errors).startswith("error: ") and "".join(errors).count("\n") == 1)


def test_class_9_run_name_cannot_leave_the_output_folder(tmp_path):
    with pytest.raises(PapernetsError, match="must be one folder name inside --output"):
        small_config(tmp_path / "runs", run_name="../..")


def test_class_9_a_genuine_idx_file_is_read_without_reserving_a_gigabyte(fashion_mnist_dir):
    path = min(fashion_mnist_dir.glob("train-images-idx3-ubyte*"))  # plain or .gz
    with peak_memory() as memory:
        images = read_idx(path)
    assert images.shape == (60000, 28, 28)
    assert memory["peak"] < 3 * images.nbytes  # the chunks, their join and the copy: never the old 1 GiB reservation


# ------------------------------------------------------------------------------------- 10. two writers, one run

@PROPERTY
@given(actions=st.lists(st.tuples(st.sampled_from(["take", "die"]), st.integers(0, 2)), min_size=1, max_size=12))
def test_class_10_at_most_one_process_holds_a_run_folder_and_a_dead_holder_releases_it(tmp_path_factory,
                                                                                      actions):
    folder = tmp_path_factory.mktemp("locked")
    holders: dict[int, RunLock] = {}
    for action, who in actions:
        if action == "take":
            if who in holders:
                continue
            try:
                holders[who] = RunLock(folder).__enter__()
            except RunFolderBusy as error:
                assert holders and one_sentence(error)
            else:
                assert len(holders) == 1
        elif who in holders:
            holders.pop(who).__exit__(None, None, None)  # the holder's descriptor closes, as when it dies
    for lock in holders.values():
        lock.__exit__(None, None, None)


def test_class_10_a_second_writer_of_a_run_stops_with_a_sentence_and_writes_nothing(tmp_path, interrupted_run):
    run_dir = tmp_path / "run"
    shutil.copytree(interrupted_run, run_dir)
    before = {path: path.read_bytes() for path in run_dir.rglob("*") if path.is_file()}
    resume = checkpoints.load_newest_valid(run_dir / "checkpoints" / "last.pt")
    with RunLock(run_dir):  # the first `train --resume`, still running
        with pytest.raises(RunFolderBusy, match="is in use by another papernets process") as caught:
            train(config_from_dict(resume["config"]), dataset=generated_dataset(), resume=resume, run_dir=run_dir)
    assert one_sentence(caught.value)
    assert {path: path.read_bytes() for path in run_dir.rglob("*") if path.is_file()} == before


def test_class_10_the_lock_is_released_when_its_holder_is_killed(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from papernets.files import RunLock
        with RunLock({str(tmp_path)!r}):
            print("held", flush=True)
            time.sleep(60)
    """)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(RunFolderBusy):
        RunLock(tmp_path).__enter__()
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with RunLock(tmp_path):
        pass
