import json

import pytest

from papernets.cli import main


def run(capsys, *argv):
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_list_with_a_pattern_shows_both_lenets(capsys):
    status, out, err = run(capsys, "list", "lenet*")
    lines = out.splitlines()
    assert status == 0 and err == ""
    assert [line.split()[0] for line in lines] == ["Model", "lenet5", "lenet5_modern"]
    assert "60,000" in lines[1] and "417 K" in lines[1] and "LeCun et al. 1998" in lines[1]
    assert "61,706" in lines[2]
    assert len({len(line) for line in lines}) == 1, "columns must be aligned"


def test_list_without_a_match_is_one_line_error(capsys):
    status, out, err = run(capsys, "list", "no-such-model*")
    assert status == 2 and out == "" and len(err.splitlines()) == 1 and "papernets list" in err


def test_info_shows_layers_and_60000_trainable_parameters(capsys):
    status, out, _ = run(capsys, "info", "lenet5")
    assert status == 0
    assert "60,000 trainable" in out and "features.c3" in out and "16x10x10" in out
    assert "MACs: 416,520" in out


def test_info_with_small_input_and_options(capsys):
    status, out, _ = run(capsys, "info", "lenet5_modern", "--input", "3x28x28", "--num-classes", "5")
    assert status == 0 and "input 3x28x28" in out and "features.pad" in out and "3x32x32" in out
    assert f"{61_706 + 2 * 6 * 25 - 5 * 85:,} total" in out


def test_info_json_parses(capsys):
    status, out, _ = run(capsys, "info", "lenet5", "--input", "1x28x28", "--json")
    summary = json.loads(out)
    assert status == 0
    assert summary["name"] == "lenet5" and summary["trainable_params"] == 60_000
    assert summary["input_size"] == [1, 28, 28] and summary["macs"] * 2 == summary["flops"]
    assert {row["name"] for row in summary["rows"]} >= {"features", "head", "features.c1", "head.output"}


@pytest.mark.parametrize("argv, words", [
    (["info", "nosuchmodel"], ["Unknown model 'nosuchmodel'", "papernets list"]),
    (["info", "lenet"], ["Unknown model 'lenet'", "lenet5"]),
    (["info", "lenet5", "--input", "28x28"], ["--input", "1x28x28"]),
    (["info", "lenet5", "--input", "1x0x28"], ["--input", "positive integers"]),
    (["info", "lenet5", "--input", "1x64x64"], ["at most 32x32"]),
    (["info", "lenet5", "--option", "depth"], ["KEY=VALUE"]),
    (["info", "lenet5", "--option", "depth=3"], ["does not take these options"]),
    (["info", "lenet5", "--width", "0.5"], ["width_multiplier"]),
    (["info", "lenet5", "--num-classes", "0"], ["--num-classes"]),
])
def test_user_errors_exit_2_with_one_line(capsys, argv, words):
    status, out, err = run(capsys, *argv)
    assert status == 2 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith("error: ")
    assert all(word in err for word in words), err


def test_option_values_are_typed():
    from papernets.cli.models_commands import parse_option

    assert [parse_option(text) for text in ("a=3", "b=0.5", "c=True", "d=false", "e=wide")] == \
        [("a", 3), ("b", 0.5), ("c", True), ("d", False), ("e", "wide")]
