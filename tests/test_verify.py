"""`papernets verify`: the certificate measures the built model against what the paper prints, so it fails when
a building table is changed (mutation tests); `verify --all` passes over the registry; docs/FIDELITY.md is the
current output of `papernets verify --all --markdown`."""

import json
from pathlib import Path

import pytest
import torch

from papernets.analysis import certificate as certificates
from papernets.analysis.certificate import certify, figure_matches, parse_printed
from papernets.cli import main
from papernets.cli.verify_commands import MARKDOWN_COMMAND
from papernets.models import googlenet, interop, list_models, mobilenet_v1
from papernets.models.googlenet import InceptionRow

FIDELITY = Path(__file__).resolve().parents[1] / "docs" / "FIDELITY.md"


def run(capsys, *argv) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture(scope="module")
def all_markdown():
    """One `verify --all --markdown` run (torchvision logits included) shared by the tests that need it."""
    certificates_of_all = [certify(name) for name in list_models()]
    return certificates_of_all, certificates.format_markdown(certificates_of_all, MARKDOWN_COMMAND)


@pytest.mark.slow  # `verify --all`: every model, with torchvision's logits
def test_verify_all_passes_and_certifies_every_registered_model(all_markdown):
    certified, _ = all_markdown
    assert [certificate.model for certificate in certified] == list_models()
    assert all(certificate.passed for certificate in certified), [c.model for c in certified if not c.passed]
    papers = [certificate for certificate in certified if not certificate.model.startswith("fastnet")]
    assert all(certificate.rows and certificate.source for certificate in papers)
    with_torchvision = [certificate for certificate in certified if certificate.torchvision]
    assert len(with_torchvision) >= 15 and all(c.torchvision.status == "match" for c in with_torchvision)


@pytest.mark.slow  # `verify --all`: every model, with torchvision's logits
def test_fidelity_document_is_the_current_verify_output(all_markdown):
    _, markdown = all_markdown
    assert FIDELITY.read_text() == markdown + "\n", \
        f"docs/FIDELITY.md is stale: regenerate it with `{MARKDOWN_COMMAND} > docs/FIDELITY.md`"


def failing_rows(name: str) -> dict[str, list[str]]:
    result = certify(name, with_torchvision=False)
    return {row.cell: [check.quantity for check in row.checks if check.status == "differs"]
            for row in result.rows if row.status == "differs"}


def test_a_changed_channel_in_googlenets_4a_row_fails_on_that_row(monkeypatch):
    changed = tuple((name, InceptionRow(190, 96, 208, 16, 48, 64) if name == "inception_4a" else value)
                    for name, value in googlenet.TABLE_1)
    monkeypatch.setattr(googlenet, "TABLE_1", changed)
    failures = failing_rows("googlenet")
    row_4a = next(cell for cell in failures if cell.startswith("inception (4a)"))
    assert {"output", "layers"} <= set(failures[row_4a])  # 510 channels out, a 1x1 branch of 190
    assert not certify("googlenet", with_torchvision=False).passed


def test_a_changed_14x14x512_row_of_mobilenet_v1_fails_on_that_row(monkeypatch):
    layers = list(mobilenet_v1.DEPTHWISE_SEPARABLE_LAYERS)
    layers[7] = (1, 500)
    monkeypatch.setattr(mobilenet_v1, "DEPTHWISE_SEPARABLE_LAYERS", tuple(layers))
    failures = failing_rows("mobilenet_v1")
    assert failures["Conv / s1, 1x1x512x512, input 14x14x512 (2 of 5)"] == ["layers"]  # 1x1 to 500, not 512
    assert failures["Conv dw / s1, 3x3x512 dw, input 14x14x512 (3 of 5)"] == ["input", "layers"]  # sees 500


def test_a_known_discrepancy_excuses_only_its_own_quantity(monkeypatch):
    """googlenet's (4a) params are a known paper inconsistency; a changed layer in that row still fails."""
    assert "params" not in failing_rows("googlenet").get("inception (4a): 192 96 208 16 48 64", [])
    changed = tuple((name, InceptionRow(192, 96, 208, 16, 40, 64) if name == "inception_4a" else value)
                    for name, value in googlenet.TABLE_1)
    monkeypatch.setattr(googlenet, "TABLE_1", changed)
    assert "layers" in failing_rows("googlenet")["inception (4a): 192 96 208 16 48 64"]


def test_lenet5_connections_are_measured_from_the_layers():
    result = certify("lenet5", with_torchvision=False)
    c3 = next(row for row in result.rows if row.cell.startswith("C3"))
    assert {check.quantity: check.ours for check in c3.checks}["connections"] == "151,600"
    assert {check.quantity: check.ours for check in result.totals} == {"params": "60,000", "connections": "340,908"}


def test_torchvision_check_fails_when_one_weight_differs(monkeypatch):
    real_load = interop.load_torchvision_state_dict

    def load_then_change_one_bias(model, state_dict):
        model = real_load(model, state_dict)
        with torch.no_grad():
            model.head.fc.bias[3] += 1.0
        return model

    monkeypatch.setattr(interop, "load_torchvision_state_dict", load_then_change_one_bias)
    assert certificates.torchvision_equivalence("resnet18").status == "differs"


def test_printed_figures_match_within_one_unit_of_their_last_digit():
    assert parse_printed("2.7K") == (2700, 100) and parse_printed("1,516") == (1516, 1)
    assert figure_matches("3.8G", 3_857_973_248) and not figure_matches("3.8G", 3_900_000_000)
    assert figure_matches("0.27M", 269_722) and not figure_matches("1,516", 1_515)


def test_command_line_text_json_markdown_and_exit_status(capsys, monkeypatch):
    status, out, _ = run(capsys, "verify", "resnet20")
    assert status == 0 and "PASSED" in out and "[stages.stage1]" in out and "output map size 32x32" in out
    status, out, _ = run(capsys, "verify", "mobilenet_v1", "--json")
    (document,) = json.loads(out)
    assert status == 0 and document["passed"] and document["rows"][0]["checks"]
    status, out, _ = run(capsys, "verify", "lenet5", "--markdown", "--no-torchvision")
    assert status == 0 and out.startswith("# Fidelity certificates") and "| ✓ C3" in out

    layers = list(mobilenet_v1.DEPTHWISE_SEPARABLE_LAYERS)
    layers[7] = (1, 500)
    monkeypatch.setattr(mobilenet_v1, "DEPTHWISE_SEPARABLE_LAYERS", tuple(layers))
    status, out, _ = run(capsys, "verify", "mobilenet_v1", "--no-torchvision")
    assert status == 1 and "FAILED" in out and "✗" in out


def test_verify_needs_one_model_or_all(capsys):
    status, _, err = run(capsys, "verify")
    assert status == 2 and err.count("\n") == 1 and "--all" in err
    status, _, err = run(capsys, "verify", "lenet", "--no-torchvision")
    assert status == 2 and "lenet5" in err
