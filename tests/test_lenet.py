"""LeNet-5 against LeCun et al. 1998, Sec. II.B, Table I and docs/REFERENCE.md."""

import pytest
import torch
import torch.nn.functional as F

from papernets.errors import ModelError
from papernets.models import create_model
from papernets.models.lenet import C3_CONNECTIONS, PartiallyConnectedConv, ScaledTanh

# docs/REFERENCE.md, LeNet-5 table: layer -> (output shape, trainable params, connections).
PAPER_LAYERS = {
    "c1": ((6, 28, 28), 156, 122_304),
    "s2": ((6, 14, 14), 12, 5_880),
    "c3": ((16, 10, 10), 1_516, 151_600),
    "s4": ((16, 5, 5), 32, 2_000),
    "c5": ((120, 1, 1), 48_120, 48_120),
    "f6": ((84,), 10_164, 10_164),
    "output": ((10,), 0, 840),
}

# Table I of the paper as printed: row = S2 map, column = C3 map, X = connected.
TABLE_I = [
    "X   XXX  XXXX XX",
    "XX   XXX  XXXX X",
    "XXX   XXX  X XXX",
    " XXX  XXXX  X XX",
    "  XXX  XXXX XX X",
    "   XXX  XXXX XXX",
]


def layers_of(model):
    return {name: module for name, module in model.named_modules() if name.split(".")[-1] in PAPER_LAYERS}


def output_shapes(model, input_size):
    shapes = {}

    def record(name):
        def hook(module, inputs, output):
            shapes[name] = tuple(output.shape[1:])
        return hook

    hooks = [module.register_forward_hook(record(name.split(".")[-1])) for name, module in layers_of(model).items()]
    model(torch.zeros(1, *input_size))
    for hook in hooks:
        hook.remove()
    return shapes


def paper_connections(layer_name, module, output_shape):
    """Connections as the paper counts them: every input of every unit, the bias counted as one input."""
    units_per_map = output_shape[1] * output_shape[2] if len(output_shape) == 3 else 1
    if layer_name == "c3":
        kernel_area = module.weight.shape[-1] * module.weight.shape[-2]
        return sum(units_per_map * (len(sources) * kernel_area + 1) for sources in C3_CONNECTIONS)
    if layer_name in ("s2", "s4"):
        return output_shape[0] * units_per_map * (module.window**2 + 1)
    if layer_name == "output":
        return module.codes.numel()   # Eq. (7): one (x_j - w_ij) term per input and class, no bias
    fan_in = module.weight[0].numel()
    return output_shape[0] * units_per_map * (fan_in + 1)


@pytest.mark.parametrize("input_size", [(1, 28, 28), (1, 32, 32)])
def test_per_layer_shapes_params_and_connections_match_the_paper(input_size):
    model = create_model("lenet5")
    shapes = output_shapes(model, input_size)
    connections = {}
    for path, module in layers_of(model).items():
        name = path.split(".")[-1]
        expected_shape, expected_params, expected_connections = PAPER_LAYERS[name]
        assert shapes[name] == expected_shape, name
        assert sum(parameter.numel() for parameter in module.parameters() if parameter.requires_grad) == \
            expected_params, name
        connections[name] = paper_connections(name, module, shapes[name])
        assert connections[name] == expected_connections, name
    assert sum(connections.values()) == 340_908
    assert sum(parameter.numel() for parameter in model.parameters() if parameter.requires_grad) == 60_000


def test_c3_connection_table_is_table_one():
    from_table = [tuple(row for row in range(6) if TABLE_I[row][column] == "X") for column in range(16)]
    assert [tuple(sorted(sources)) for sources in C3_CONNECTIONS] == from_table

    def contiguous(sources):  # a run of neighbours on the ring of six S2 maps
        return any(set(sources) == {(start + step) % 6 for step in range(len(sources))} for start in range(6))

    sizes_and_runs = [(len(sources), contiguous(sources)) for sources in C3_CONNECTIONS]
    assert sizes_and_runs[:6] == [(3, True)] * 6
    assert sizes_and_runs[6:12] == [(4, True)] * 6
    assert sizes_and_runs[12:15] == [(4, False)] * 3
    assert sizes_and_runs[15] == (6, True)


def test_partial_connections_equal_a_masked_full_convolution():
    torch.manual_seed(0)
    layer = PartiallyConnectedConv(C3_CONNECTIONS, kernel_size=5)
    full_weight = torch.zeros(16, 6, 5, 5)
    for index, (source, target) in enumerate(zip(layer.source_maps.tolist(), layer.target_maps.tolist())):
        full_weight[target, source] = layer.weight[index, 0].detach()
    x = torch.randn(2, 6, 14, 14)
    torch.testing.assert_close(layer(x), F.conv2d(x, full_weight, layer.bias.detach()))


def reference_lenet5(model, images):
    """LeNet-5's forward pass written out from Sec. II.B with plain convolutions: the padding to 32x32, C3 as a
    full convolution with Table I's missing kernels zero, C5 as a 5x5 convolution, the RBF as explicit squared
    distances. The model computes some of these differently for speed; the results must not change."""
    state = dict(model.named_parameters())
    squash = ScaledTanh()

    def subsample(x, name):
        window_sum = x.unfold(2, 2, 2).unfold(3, 2, 2).sum(dim=(-1, -2))
        return window_sum * state[f"{name}.coefficient"].view(1, -1, 1, 1) + state[f"{name}.bias"].view(1, -1, 1, 1)

    background = images.amin(dim=(-2, -1), keepdim=True)
    x = F.pad(images - background, (2, 2, 2, 2)) + background
    x = squash(F.conv2d(x, state["features.c1.weight"], state["features.c1.bias"]))
    x = squash(subsample(x, "features.s2"))
    c3 = model.features.c3
    c3_weight = torch.zeros(16, 6, 5, 5)
    for index, (source, target) in enumerate(zip(c3.source_maps.tolist(), c3.target_maps.tolist())):
        c3_weight[target, source] = state["features.c3.weight"][index, 0]
    x = squash(F.conv2d(x, c3_weight, state["features.c3.bias"]))
    x = squash(subsample(x, "features.s4"))
    x = squash(F.conv2d(x, state["features.c5.weight"], state["features.c5.bias"])).flatten(1)
    x = squash(F.linear(x, state["head.f6.weight"], state["head.f6.bias"]))
    return -((x[:, None, :] - model.head.output.codes[None]) ** 2).sum(dim=-1)


@pytest.mark.parametrize("batch", [1, 16])
def test_lenet5_outputs_and_gradients_equal_the_reference_computation(batch):
    torch.manual_seed(0)
    model = create_model("lenet5", input_size=(1, 28, 28))
    images, labels = torch.randn(batch, 1, 28, 28), torch.randint(0, 10, (batch,))
    logits = model(images)
    F.cross_entropy(logits, labels).backward()
    gradients = {name: parameter.grad.clone() for name, parameter in model.named_parameters()}
    model.zero_grad()
    expected = reference_lenet5(model, images)
    F.cross_entropy(expected, labels).backward()
    torch.testing.assert_close(logits, expected)
    for name, parameter in model.named_parameters():
        torch.testing.assert_close(gradients[name], parameter.grad, msg=name)


def test_lenet5_runs_in_onnxruntime_like_the_eager_model(tmp_path):
    # Guards the computations chosen for speed: ONNX's AveragePool, for one, drops avg_pool2d's divisor_override.
    import onnxruntime  # in the test extras, with onnx and onnxscript

    from papernets.export.fusion import ExportInfo, export_onnx

    torch.manual_seed(0)
    model = create_model("lenet5", input_size=(1, 28, 28)).eval()
    path = export_onnx(model, tmp_path / "lenet5.onnx", ExportInfo("lenet5", 10, 1, {}, input_size=[1, 28, 28]))
    images = torch.randn(3, 1, 28, 28)
    (logits,) = onnxruntime.InferenceSession(str(path)).run(["logits"], {"images": images.numpy()})
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(logits), model(images), rtol=1e-4, atol=1e-4)


def test_rbf_codes_are_fixed_plus_minus_one_and_outputs_are_negative_squared_distances():
    model = create_model("lenet5")
    codes = model.head.output.codes
    assert codes.shape == (10, 84) and not codes.requires_grad
    assert all(parameter is not codes for parameter in model.parameters())
    assert set(codes.unique().tolist()) == {-1.0, 1.0}
    assert len({tuple(row) for row in codes.tolist()}) == 10
    torch.testing.assert_close(create_model("lenet5").head.output.codes, codes)   # deterministic
    assert "head.output.codes" in model.state_dict()

    f6_outputs = []
    model.head.f6_squash.register_forward_hook(lambda module, inputs, output: f6_outputs.append(output))
    torch.manual_seed(0)
    logits = model(torch.randn(3, 1, 28, 28))
    expected = -((f6_outputs[0][:, None, :] - codes[None]) ** 2).sum(dim=-1)
    torch.testing.assert_close(logits, expected)
    assert (logits <= 0).all()


def test_subsampling_is_window_sum_times_coefficient_plus_bias():
    model = create_model("lenet5")
    s2 = model.features.s2
    x = torch.randn(1, 6, 28, 28)
    window_sum = x.unfold(2, 2, 2).unfold(3, 2, 2).sum(dim=(-1, -2))
    torch.testing.assert_close(s2(x), window_sum * s2.coefficient.view(1, 6, 1, 1) + s2.bias.view(1, 6, 1, 1))


def test_squashing_function_is_scaled_tanh():
    squash = ScaledTanh()
    values = torch.tensor([-1.0, 0.0, 1.0, 50.0])
    torch.testing.assert_close(squash(values), 1.7159 * torch.tanh(2 * values / 3))
    torch.testing.assert_close(squash(torch.tensor([1.0])), torch.tensor([1.0]), atol=1e-3, rtol=0)


@pytest.mark.parametrize("name", ["lenet5", "lenet5_modern"])
@pytest.mark.parametrize("side", [28, 32])
def test_forward_backward_gives_finite_gradients_for_every_parameter(name, side):
    torch.manual_seed(0)
    model = create_model(name, in_channels=3, num_classes=7)
    logits = model(torch.randn(4, 3, side, side))
    assert logits.shape == (4, 7)
    F.cross_entropy(logits, torch.tensor([0, 1, 2, 6])).backward()
    for parameter_name, parameter in model.named_parameters():
        assert parameter.grad is not None, parameter_name
        assert torch.isfinite(parameter.grad).all() and parameter.grad.abs().sum() > 0, parameter_name


def test_modern_lenet_has_61706_parameters():
    model = create_model("lenet5_modern")
    assert sum(parameter.numel() for parameter in model.parameters()) == 61_706
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_paper_counts_are_for_one_channel_and_ten_classes():
    assert sum(parameter.numel() for parameter in create_model("lenet5", in_channels=3).parameters()) == \
        60_000 + 2 * 6 * 25
    assert create_model("lenet5", num_classes=100).head.output.codes.shape == (100, 84)


def test_images_larger_than_32_pixels_are_refused():
    with pytest.raises(ModelError, match="at most 32x32"):
        create_model("lenet5")(torch.zeros(1, 1, 33, 32))


@pytest.mark.parametrize("name", ["lenet5", "lenet5_modern"])
def test_small_images_are_centred_in_a_field_of_their_background_not_the_data_mean(name):
    # Fashion-MNIST-like normalisation: pixel 0 becomes -0.81 (mean 0.286, std 0.353), the background.
    torch.manual_seed(0)
    raw = torch.zeros(2, 1, 28, 28)
    raw[:, :, 6:22, 8:20] = torch.rand(2, 1, 16, 12)
    normalized = (raw - 0.286) / 0.353
    padded = create_model(name).features.pad(normalized)
    assert padded.shape == (2, 1, 32, 32)
    border = torch.cat([padded[..., :2, :].flatten(), padded[..., -2:, :].flatten(),
                        padded[..., :, :2].flatten(), padded[..., :, -2:].flatten()])
    assert torch.allclose(border, torch.tensor(-0.286 / 0.353))
    assert torch.allclose(padded[..., 2:30, 2:30], normalized, atol=1e-6)
    model = create_model(name).eval()
    explicit = F.pad(raw, (2, 2, 2, 2))  # the 32x32 field of background, normalised like the image
    assert torch.allclose(model(normalized), model((explicit - 0.286) / 0.353), atol=1e-5)
