"""LeNet-5 trained the paper's way: the MAP loss of Sec. II.C, Eq. (9), and the stochastic diagonal
Levenberg-Marquardt step sizes of Appendix C (papernets.training.sdlm), through the engine with exact resume."""

import math

import pytest
import torch
from torch import nn

from papernets.errors import ConfigError
from papernets.models import create_model
from papernets.models.lenet import EuclideanRBF, ScaledTanh
from papernets.runs.checkpoint import load_checkpoint
from papernets.config import load_config
from papernets.training.engine import TrainingInterrupted, train
from papernets.training.losses import map_loss, training_loss
from papernets.training.sdlm import SDLM, estimate_curvature
from generated_data import generated_dataset
from training_seams import sigterm_during_step
from test_training_engine import generated_config, read_metrics


def test_map_loss_is_equation_nine_with_its_rubbish_class_term():
    torch.manual_seed(0)
    penalties = torch.rand(5, 10) * 50                         # y_i >= 0, as the RBF gives them
    labels = torch.tensor([0, 3, 9, 4, 4])
    j = 2.5
    expected = [penalties[n, labels[n]] + math.log(math.exp(-j) + torch.exp(-penalties[n]).sum().item())
                for n in range(5)]
    torch.testing.assert_close(map_loss(-penalties, labels, j), torch.tensor(expected).mean())
    # Without the e^-j term it would be cross-entropy; the term always adds a little.
    assert map_loss(-penalties, labels, j) > nn.functional.cross_entropy(-penalties, labels)
    parts = training_loss(-penalties, labels, loss="map", rubbish_j=j)
    torch.testing.assert_close(parts.total, map_loss(-penalties, labels, j))
    assert parts.logits.shape == (5, 10)


def test_curvature_of_one_layer_before_the_rbf_is_exact():
    """For F6 alone in front of the RBF, y_D = sum_i (sum_j w_ij x_j + b_i - c_i)^2, so the exact
    d2y_D/dw_ij^2 is 2 x_j^2 and d2y_D/db_i^2 is 2: no off-diagonal term is dropped."""
    torch.manual_seed(0)
    layer = nn.Linear(6, 4)
    model = nn.Sequential(layer, EuclideanRBF(4, 3))
    x = torch.randn(50, 6)
    curvature = estimate_curvature(model, x)
    torch.testing.assert_close(curvature[layer.weight], (2 * x.pow(2).mean(0)).expand(4, 6))
    torch.testing.assert_close(curvature[layer.bias], torch.full((4,), 2.0))


def test_curvature_through_a_squashing_unit_follows_appendix_c():
    torch.manual_seed(0)
    first, second = nn.Linear(5, 3), nn.Linear(3, 4)
    model = nn.Sequential(first, ScaledTanh(), second, EuclideanRBF(4, 2))
    x = torch.randn(20, 5)
    curvature = estimate_curvature(model, x)
    activation = first(x).detach()
    slope = 1.7159 * (2 / 3) * (1 - torch.tanh(2 / 3 * activation) ** 2)               # f'(a)
    second_at_hidden = (2 * second.weight.detach() ** 2).sum(0) * slope ** 2           # Eqs. (23), (24)
    expected = (second_at_hidden[:, :, None] * x[:, None, :] ** 2).mean(0)            # Eq. (25)
    torch.testing.assert_close(curvature[first.weight], expected)


def test_sdlm_step_is_eta_over_mu_plus_h_times_the_gradient():
    parameter = nn.Parameter(torch.tensor([1.0, 2.0]))
    optimizer = SDLM([parameter], lr=0.1, mu=0.02)
    optimizer.set_curvature({parameter: torch.tensor([0.0, 0.98])})
    parameter.grad = torch.tensor([1.0, 1.0])
    optimizer.step()
    torch.testing.assert_close(parameter.detach(), torch.tensor([1.0 - 0.1 / 0.02, 2.0 - 0.1 / 1.0]))


def test_sdlm_steps_equal_the_per_parameter_formula_as_rates_and_curvature_change():
    torch.manual_seed(0)
    parameters = [nn.Parameter(torch.randn(3, 4)), nn.Parameter(torch.randn(5))]
    expected = [parameter.detach().clone() for parameter in parameters]
    optimizer = SDLM(parameters, lr=0.1, mu=0.02)
    for step in range(6):
        if step % 3 == 0:                                      # a new estimate, as before each pass
            curvature = {parameter: torch.rand_like(parameter) for parameter in parameters}
            optimizer.set_curvature(curvature)
        if step == 4:                                          # the schedule lowers eta
            optimizer.param_groups[0]["lr"] = 0.05
        if step == 5:                                          # a resumed optimizer
            state = optimizer.state_dict()
            optimizer = SDLM(parameters, lr=0.3, mu=0.02)
            optimizer.load_state_dict(state)
        lr = optimizer.param_groups[0]["lr"]
        for parameter, value in zip(parameters, expected):
            parameter.grad = torch.randn_like(parameter)
            value -= lr / (0.02 + curvature[parameter]) * parameter.grad      # Eq. (21), one parameter at a time
        optimizer.step()
        for parameter, value in zip(parameters, expected):
            assert torch.equal(parameter.detach(), value), step


def test_every_lenet5_parameter_gets_a_positive_curvature():
    model = create_model("lenet5", input_size=(1, 28, 28))
    curvature = estimate_curvature(model, torch.randn(8, 1, 28, 28))
    assert set(curvature) == set(model.parameters())
    assert all((value >= 0).all() and value.shape == parameter.shape for parameter, value in curvature.items())
    assert model.training  # the mode is restored


def test_a_model_that_is_not_a_chain_is_refused_in_one_sentence():
    with pytest.raises(ConfigError, match="optimizer=sgd"):
        estimate_curvature(create_model("resnet20"), torch.randn(2, 3, 32, 32))


def test_lenet_recipe_is_the_paper_method_and_sdlm_refuses_momentum():
    config = load_config("lenet-lecun1998", {"dataset": "mnist"})
    assert (config.optimizer, config.loss, config.sdlm_mu, config.sdlm_samples) == ("sdlm", "map", 0.02, 500)
    with pytest.raises(ConfigError, match="momentum=0"):
        load_config("lenet-lecun1998", {"dataset": "mnist", "momentum": 0.9})


def paper_config(output, **fields):
    return generated_config(output, model="lenet5", optimizer="sdlm", loss="map", lr=0.0005, momentum=0.0,
                            weight_decay=0.0, schedule="constant", batch_size=8, sdlm_samples=64, **fields)


def test_paper_training_learns_and_resumes_exactly(tmp_path):
    data = generated_dataset(size=28)
    whole = train(paper_config(tmp_path / "whole"), dataset=data)
    rows = read_metrics(whole)
    assert float(rows[-1]["val_acc"]) > 0.5 and float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])

    with sigterm_during_step(30), pytest.raises(TrainingInterrupted):
        train(paper_config(tmp_path / "parts"), dataset=data)  # inside epoch 2
    resume = load_checkpoint(tmp_path / "parts" / "run" / "checkpoints" / "last.pt")
    resumed = train(paper_config(tmp_path / "parts"), dataset=data, resume=resume, run_dir=tmp_path / "parts" / "run")
    assert read_metrics(resumed) == rows
    final = [load_checkpoint(folder / "checkpoints" / "last.pt")["model_state"] for folder in (whole, resumed)]
    assert all(torch.equal(final[0][name], final[1][name]) for name in final[0])
