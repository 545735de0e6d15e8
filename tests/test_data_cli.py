"""`papernets data list` and `papernets data info`."""

import json

import pytest

from papernets.cli import main
from papernets.data import locate

@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("PAPERNETS_DATA", raising=False)


def test_info_json_describes_real_fashion_mnist(capsys, fashion_mnist_dir):
    assert main(["data", "info", "fashion-mnist", "--data-dir", str(fashion_mnist_dir), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["source"] == str(fashion_mnist_dir) and info["origin"] == "--data-dir"
    assert (info["train_size"], info["test_size"], info["image_shape"]) == (60_000, 10_000, [1, 28, 28])
    assert info["class_names"][9] == "Ankle boot"
    assert info["train_counts"] == [6000] * 10 and info["test_counts"] == [1000] * 10
    assert info["train_priors"] == pytest.approx([0.1] * 10)
    assert info["mean"] == [pytest.approx(0.2860, abs=1e-4)] and info["std"] == [pytest.approx(0.3530, abs=1e-4)]
    assert info["default_augmentation"] == {"pad": 2, "crop": True, "flip": True, "cutout": 0}


def test_info_text(capsys, monkeypatch, fashion_mnist_dir):
    monkeypatch.setattr(locate, "SYSTEM_ROOTS", (fashion_mnist_dir.parent,))
    assert main(["data", "info", "fashion-mnist"]) == 0
    out = capsys.readouterr().out
    assert f"found in      {fashion_mnist_dir} (system folder)" in out
    assert "60,000 train, 10,000 test, 1x28x28" in out and "mean (0.2860), std (0.3530)" in out
    assert "9 Ankle boot   train  6,000 (prior 0.1000)  test  1,000" in out


def test_list_shows_every_data_set_and_where_it_is(capsys, monkeypatch, fashion_mnist_dir):
    monkeypatch.setattr(locate, "SYSTEM_ROOTS", (fashion_mnist_dir.parent,))
    assert main(["data", "list", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert list(rows) == ["mnist", "fashion-mnist", "cifar10", "cifar100"]
    assert rows["fashion-mnist"]["found"] == str(fashion_mnist_dir) and rows["cifar100"]["classes"] == 100
    assert main(["data", "list"]) == 0
    assert "cifar10             10  3x32x32   50,000  10,000" in capsys.readouterr().out


def test_not_found_is_one_line_and_exit_status_2(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(locate, "SYSTEM_ROOTS", ())
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("PAPERNETS_DATA", raising=False)
    assert main(["data", "info", "mnist"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: MNIST handwritten digits was not found in") and error.count("\n") == 1
    assert "--download" in error
    # A folder the user names is used or refused, never passed over for another copy (issue 17).
    assert main(["data", "info", "mnist", "--data-dir", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"error: The data folder {tmp_path} holds no MNIST") and error.count("\n") == 1


def test_unknown_data_set_is_a_usage_error(capsys):
    assert main(["data", "info", "imagenet"]) == 2
    assert "invalid choice: 'imagenet'" in capsys.readouterr().err
