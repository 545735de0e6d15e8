"""The stochastic diagonal Levenberg-Marquardt method: LeCun, Bottou, Bengio, Haffner 1998, "Gradient-Based
Learning Applied to Document Recognition", Appendix C.

Each parameter w_k has its own step size, Eq. (21): eps_k = eta / (mu + h_kk), where h_kk estimates the
second derivative of the loss with respect to w_k and mu keeps the step bounded where h_kk is small. h_kk is
the Gauss-Newton diagonal, back-propagated like a gradient with every term squared and the off-diagonal terms
dropped (Eqs. (22)-(25)):
  d2E/da_i^2 = f'(a_i)^2 d2E/dx_i^2            (a squashing unit x_i = f(a_i))
  d2E/dx_j^2 = sum_i w_ij^2 d2E/da_i^2          (a weighted sum a_i = sum_j w_ij x_j)
  h_kk = sum over the connections (i, j) that share w_k of x_j^2 d2E/da_i^2.
It is averaged over a few hundred training patterns before each pass (the paper: 500, mu = 0.02) and held
fixed during the pass.

A layer a = L(x, W) + b that is linear in x and in W gives both sums with automatic differentiation: the
vector-Jacobian product of W -> L(x^2, W) + b at d2E/da^2 is sum g x^2 for W and sum g for b, and that of
u -> L(u, W^2) is sum w^2 g. So the method works for any chain of such layers, squashing functions and
parameter-free layers that only move or pick values (padding, flattening).
"""

import torch
from torch import nn
from torch.func import functional_call, vjp

from papernets.errors import ConfigError
from papernets.models.lenet import EuclideanRBF, PadTo32, PartiallyConnectedConv, ScaledTanh, TrainableSubsampling

AFFINE_LAYERS = (nn.Conv2d, nn.Linear, PartiallyConnectedConv, TrainableSubsampling)
SQUASHING_LAYERS = (ScaledTanh, nn.Tanh)
ROUTING_LAYERS = (PadTo32, nn.Flatten, nn.Identity)
RBF_SECOND_DERIVATIVE = 2.0     # d2/dx_j^2 of y_D = sum_j (x_j - w_Dj)^2 (Sec. II.B, Eq. (7))


class SDLM(torch.optim.Optimizer):
    """w_k <- w_k - eta / (mu + h_kk) * dE/dw_k, with h_kk set by `set_curvature` (kept in the state, so it
    travels in checkpoints)."""

    def __init__(self, params, lr: float, mu: float):
        super().__init__(params, {"lr": lr, "mu": mu})
        # group index -> ((lr, mu), the curvature tensors, their step sizes): eta changes once per pass and
        # h_kk before each pass, so the step sizes are computed then, not at every step.
        self._step_sizes: dict[int, tuple] = {}

    def set_curvature(self, curvature: dict[nn.Parameter, torch.Tensor]):
        for group in self.param_groups:
            for parameter in group["params"]:
                self.state[parameter]["curvature"] = curvature[parameter].detach().clone()

    def step_sizes(self, index: int) -> list[torch.Tensor]:
        """eta / (mu + h_kk) for each parameter of group `index`, Eq. (21)."""
        group = self.param_groups[index]
        assert all("curvature" in self.state[parameter] for parameter in group["params"]), \
            "estimate the curvature before the first step"
        curvatures = [self.state[parameter]["curvature"] for parameter in group["params"]]
        rates, cached_curvatures, sizes = self._step_sizes.get(index, (None, [], []))
        if rates != (group["lr"], group["mu"]) or any(cached is not current for cached, current
                                                      in zip(cached_curvatures, curvatures, strict=True)):
            rates, sizes = (group["lr"], group["mu"]), [group["lr"] / (group["mu"] + value) for value in curvatures]
            self._step_sizes[index] = (rates, curvatures, sizes)
        return sizes

    @torch.no_grad()
    def step(self, closure=None):
        for index, group in enumerate(self.param_groups):
            stepped = [(parameter, size) for parameter, size in zip(group["params"], self.step_sizes(index))
                       if parameter.grad is not None]
            if stepped:
                parameters, sizes = zip(*stepped)
                gradients = [parameter.grad for parameter in parameters]
                torch._foreach_sub_(parameters, torch._foreach_mul(sizes, gradients))   # w_k -= eps_k dE/dw_k


def layer_chain(model: nn.Module) -> list[nn.Module]:
    """The model's layers in forward order, its top-level `nn.Sequential`s opened."""
    return [layer for child in model.children()
            for layer in (child if isinstance(child, nn.Sequential) else [child])]


def _backward_squared(layer: nn.Module, x: torch.Tensor, second: torch.Tensor,
                      curvature: dict[nn.Parameter, torch.Tensor]) -> torch.Tensor:
    """d2E/dx^2 at the layer's input from d2E/d(output)^2; adds the layer's h_kk sums to `curvature`."""
    if isinstance(layer, AFFINE_LAYERS):
        parameters = dict(layer.named_parameters(recurse=False))
        _, pullback = vjp(lambda values: functional_call(layer, values, (x * x,)), parameters)
        for name, summed in pullback(second)[0].items():
            curvature[parameters[name]] = summed                                    # Eq. (25)
        squared = {name: torch.zeros_like(value) if name == "bias" else value * value
                   for name, value in parameters.items()}
        _, pullback = vjp(lambda u: functional_call(layer, squared, (u,)), x)
        return pullback(second)[0]                                                 # Eq. (24)
    if isinstance(layer, SQUASHING_LAYERS):
        _, pullback = vjp(layer, x)
        slope = pullback(torch.ones_like(x))[0]                                    # f'(a), elementwise
        return slope * slope * second                                              # Eq. (23)
    if isinstance(layer, ROUTING_LAYERS):
        _, pullback = vjp(layer, x)
        return pullback(second)[0]
    raise ConfigError(f"The sdlm optimizer cannot back-propagate second derivatives through a "
                      f"{type(layer).__name__} layer; train this model with --set optimizer=sgd.")


def estimate_curvature(model: nn.Module, images: torch.Tensor) -> dict[nn.Parameter, torch.Tensor]:
    """h_kk for every parameter, averaged over `images` (B, C, H, W). The loss's own second derivative is
    that of its y_D term at an RBF output (2 per input unit), else softmax's p (1 - p) at the logits."""
    layers = layer_chain(model)
    was_training = model.training
    model.eval()
    inputs, x = [], images
    with torch.no_grad():
        for layer in layers:
            inputs.append(x)
            x = layer(x)
        if not torch.allclose(x, model(images)):
            raise ConfigError(f"The sdlm optimizer needs a model that is a chain of layers; "
                              f"{type(model).__name__} is not: train it with --set optimizer=sgd.")
    if isinstance(layers[-1], EuclideanRBF):
        second = torch.full_like(inputs[-1], RBF_SECOND_DERIVATIVE)
        layers, inputs = layers[:-1], inputs[:-1]
    else:
        probabilities = torch.softmax(x, dim=-1)
        second = probabilities * (1 - probabilities)
    curvature: dict[nn.Parameter, torch.Tensor] = {}
    for layer, layer_input in reversed(list(zip(layers, inputs))):
        second = _backward_squared(layer, layer_input, second, curvature)
    model.train(was_training)
    return {parameter: summed / len(images) for parameter, summed in curvature.items()}
