"""The top-level API a timm user reaches for: `papernets.create_model`, `list_models`, `load_dataset`, `train`;
and the README's Python snippet, run as written."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import papernets

REPO = Path(__file__).resolve().parents[1]


def readme_python_snippet() -> str:
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Python"):]
    return re.search(r"```python\n(.*?)```", section, flags=re.DOTALL).group(1)


def test_import_papernets_loads_no_torch_and_every_public_name_resolves():
    loaded = subprocess.run([sys.executable, "-c", "import sys, papernets; print('torch' in sys.modules)"],
                            capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "False"
    for name in papernets.__all__:
        assert getattr(papernets, name) is not None and (getattr(papernets, name).__doc__ or name == "__version__")
    assert papernets.models.create_model is papernets.create_model
    assert "resnet20" in papernets.list_models("resnet*")
    with pytest.raises(AttributeError, match="no attribute 'resnet'"):
        papernets.resnet


def test_train_with_keyword_fields_or_a_config(tmp_path):
    from generated_data import generated_dataset

    fields = dict(model="lenet5_modern", dataset="generated", epochs=1, batch_size=32, val_size=64, amp="off",
                  quiet=True, report=False, threads=1, output=str(tmp_path),
                  augmentation={"pad": 0, "crop": False, "flip": False, "cutout": 0})
    run_dir = papernets.train(data=generated_dataset(), **fields)
    assert json.loads((run_dir / "summary.json").read_text())["model"] == "lenet5_modern"
    config = papernets.load_config(None, {**fields, "run_name": "from-config"})
    assert papernets.train(config, data=generated_dataset()).name == "from-config"
    with pytest.raises(TypeError, match="not both"):
        papernets.train(config, epochs=2)


@pytest.mark.slow  # trains the README's run: half a minute
def test_the_readme_python_snippet_runs_as_written(tmp_path, monkeypatch, capsys, fashion_mnist_dir):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("PAPERNETS_DATA", str(fashion_mnist_dir.parent))  # where `make data` put it, cache or not
    exec(compile(readme_python_snippet(), "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert "'resnet18', 'resnet20'" in printed and "(60000, 1, 28, 28)" in printed
    (run_dir,) = (tmp_path / "runs").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["model"] == "fastnet" and summary["test_images"] == 1000
    assert summary["test_accuracy"] > 0.15  # 7 steps; chance is 0.10
