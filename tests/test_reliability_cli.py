"""Clear errors: every row of reliability/bad_command_lines.py (unknown names, bad numbers, bad --set, missing,
unreadable or unwritable paths, incompatible flags, corrupt checkpoints, non-images) exits non-zero with one
sentence on stderr and no traceback, in-process and as a real `papernets` process."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from papernets.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reliability"))
from bad_command_lines import bad_command_lines, verdict  # noqa: E402  (a script folder, not the package)


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    return bad_command_lines(tmp_path_factory.mktemp("bad-command-lines"))


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def test_the_table_covers_at_least_30_kinds_of_mistake(table):
    assert len(table) >= 30 and len({row.name for row in table}) == len(table)
    commands = {row.argv[0] for row in table if row.argv}
    assert {"train", "eval", "predict", "info", "list", "data", "report", "compare"} <= commands


@pytest.mark.real_data("fashion-mnist")  # some rows train (e.g. a batch larger than the data) before failing
def test_every_bad_command_line_exits_non_zero_with_one_clear_sentence(table, capsys):
    problems = []
    for row in table:
        try:
            code = main(row.argv)
        except BaseException as error:  # noqa: BLE001  (an escaping exception is a failure to report)
            code, _ = 1, capsys.readouterr()
            problems.append(f"{row.name}: raised {type(error).__name__}: {error}")
            continue
        problem = verdict(code, capsys.readouterr().err, row.expected)
        if problem:
            problems.append(f"{row.name}: {problem}")
    assert problems == []


@pytest.mark.parametrize("name", ["eval of a corrupt checkpoint", "predict on a non-image"])
def test_as_a_real_process(name, table, tmp_path):
    (row,) = [row for row in table if row.name == name]
    result = subprocess.run([sys.executable, "-m", "papernets", *row.argv], capture_output=True, text=True,
                            timeout=300, env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert result.returncode == 2
    assert verdict(result.returncode, result.stderr, row.expected) is None, result.stderr


def test_the_verdict_catches_what_it_must(table):
    """The checker itself: a traceback, a zero exit, two error lines or a missing name are all caught."""
    assert verdict(2, "error: Unknown model 'x'.\n", "Unknown model") is None
    assert verdict(0, "", "x") == "exit status 0"
    assert verdict(1, "Traceback (most recent call last):\n  ...\nKeyError: 'x'\n", "x").startswith("traceback")
    assert verdict(2, "error: one.\nerror: two.\n", "one") is not None
    assert verdict(2, "error: Unknown model 'x'.\n", "Unknown dataset") is not None
    assert verdict(2, "error: no full stop\n", "no full stop") is not None
