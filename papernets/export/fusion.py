"""Optimised inference: fold BatchNorm into the convolution before it, channels_last, bfloat16 where the CPU
or GPU computes it natively; and a safe file format for the folded model.

Folding (Ioffe & Szegedy, "Batch Normalization", arXiv:1502.03167, Sec. 3.1: at inference BN is a fixed
affine map per channel). With s = gamma / sqrt(running_var + eps), a convolution followed by BN,
    BN(W * x + b) = s * (W * x + b - running_mean) + beta,
is one convolution with W' = s W (per output channel) and b' = s (b - running_mean) + beta.

Which convolutions feed which BatchNorms is read from the model's dataflow graph (torch.fx), not guessed from
attribute names: a pair is folded only when the BN's input is the convolution's output and nothing else reads
that output. A model that torch.fx cannot trace is folded only inside `nn.Sequential`s, where an adjacent
(Conv2d, BatchNorm2d) pair has exactly that dataflow.

A BN that follows its convolution through a max-pool is folded too when every BN scale is positive, since then
max(s x + t) = s max(x) + t (airbench-style blocks, `fastnet`, pool between the convolution and its BN).

The fold changes the module tree only by naming pairs (each folded BN becomes `nn.Identity`, each folded
convolution gains a bias), so an exported file holds the folded weights, the registry name and options, and the
list of folded pairs: `load_exported` rebuilds the model, folds the same pairs and loads the weights strictly.
Nothing is unpickled.
"""

import copy
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save
from torch import fx, nn

from papernets.errors import CheckpointError, ConfigError
from papernets.files import write_bytes, write_failure
from papernets.hardware import bf16_supported
from papernets.models.registry import create_model

EXPORT_FORMAT = "papernets-folded-v1"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def _bn_scale_shift(norm: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    # Sec. 3.1 of arXiv:1502.03167: BN at inference is y = s x + t, s = gamma / sqrt(var + eps), t = beta - s mean.
    scale = torch.rsqrt(norm.running_var.double() + norm.eps)
    if norm.weight is not None:
        scale = scale * norm.weight.double()
    shift = -norm.running_mean.double() * scale
    if norm.bias is not None:
        shift = shift + norm.bias.double()
    return scale, shift


def _folded_weights(conv: nn.Conv2d, norm: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    scale, shift = _bn_scale_shift(norm)
    conv_bias = conv.bias.double() if conv.bias is not None else torch.zeros_like(shift)
    weight = conv.weight.double() * scale.reshape(-1, *([1] * (conv.weight.dim() - 1)))
    bias = conv_bias * scale + shift
    return weight.to(conv.weight.dtype), bias.to(conv.weight.dtype)


def _foldable(conv: nn.Module, norm: nn.Module, *, through_max_pool: bool = False) -> bool:
    """A Conv2d -> BatchNorm2d pair with running statistics; across a max-pool only when every BN scale is
    positive (max(s x + t) = s max(x) + t needs s > 0)."""
    if not (isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d) and norm.track_running_stats
            and norm.running_mean is not None and norm.num_features == conv.out_channels):
        return False
    return not through_max_pool or bool((_bn_scale_shift(norm)[0] > 0).all())


def _single_module_input(node: fx.Node, calls: dict) -> fx.Node | None:
    """The node feeding `node`, when `node` is a module called once on exactly that node, which nothing else reads."""
    if node.op != "call_module" or calls[node.target] != 1 or len(node.args) != 1 or node.kwargs:
        return None
    source = node.args[0]
    if not isinstance(source, fx.Node) or len(source.users) != 1:
        return None
    return source


def _pairs_from_graph(model: nn.Module) -> list[tuple[str, str]] | None:
    """(conv name, BN name) pairs where the BN reads only the conv's output (or only a max-pool of it, when
    that commutes); None if fx cannot trace the model."""
    try:
        graph = fx.Tracer().trace(model)
    except Exception:  # fx fails in many ways on dynamic code (TraceError, TypeError, ...): use Sequentials
        return None
    modules = dict(model.named_modules())
    calls: dict[str, int] = {}
    for node in graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    pairs = []
    for node in graph.nodes:
        source = _single_module_input(node, calls)
        if source is None or not isinstance(modules[node.target], nn.BatchNorm2d):
            continue
        through_max_pool = source.op == "call_module" and isinstance(modules.get(source.target), nn.MaxPool2d)
        if through_max_pool:
            source = _single_module_input(source, calls)
        if source is None or source.op != "call_module" or calls[source.target] != 1:
            continue
        if _foldable(modules[source.target], modules[node.target], through_max_pool=through_max_pool):
            pairs.append((source.target, node.target))
    return pairs


def _pairs_in_sequentials(model: nn.Module) -> list[tuple[str, str]]:
    pairs = []
    for prefix, module in model.named_modules():
        if isinstance(module, nn.Sequential):
            children = list(module.named_children())
            for (conv_name, conv), (norm_name, norm) in zip(children, children[1:]):
                if _foldable(conv, norm):
                    pairs.append((f"{prefix}.{conv_name}".lstrip("."), f"{prefix}.{norm_name}".lstrip(".")))
    return pairs


def _replace_submodule(model: nn.Module, name: str, replacement: nn.Module) -> None:
    parent_name, _, child_name = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child_name, replacement)


def foldable_pairs(model: nn.Module) -> list[tuple[str, str]]:
    """The (conv name, BN name) pairs `fold_batchnorm` folds: from the dataflow graph, else from Sequentials."""
    pairs = _pairs_from_graph(model)
    return _pairs_in_sequentials(model) if pairs is None else pairs


def fold_batchnorm(model: nn.Module, pairs: list[tuple[str, str]] | None = None) -> nn.Module:
    """A copy of `model` in eval mode with each BatchNorm2d that directly follows a Conv2d (or follows it
    through a max-pool, when that commutes) folded into the convolution; `pairs` overrides the search."""
    folded = copy.deepcopy(model).eval()
    for conv_name, norm_name in foldable_pairs(folded) if pairs is None else pairs:
        conv, norm = folded.get_submodule(conv_name), folded.get_submodule(norm_name)
        weight, bias = _folded_weights(conv, norm)
        with torch.no_grad():
            conv.weight.copy_(weight)
            conv.bias = nn.Parameter(bias)
        _replace_submodule(folded, norm_name, nn.Identity())
    return folded


class InferenceModel(nn.Module):
    """Runs a folded model in its dtype and memory format; takes and returns float32 like the eager model."""

    def __init__(self, model: nn.Module, dtype: torch.dtype, channels_last: bool):
        super().__init__()
        self.model = model
        self.dtype = dtype
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    @torch.inference_mode()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        images = images.to(dtype=self.dtype).contiguous(memory_format=self.memory_format)
        return self.model(images).float()


def _resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    if dtype == "auto":
        return torch.bfloat16 if bf16_supported(device) else torch.float32
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be 'auto', 'float32' or 'bfloat16', got {dtype!r}")
    return DTYPES[dtype]


def optimize_for_inference(model: nn.Module, *, dtype: str = "auto", channels_last: bool = True) -> InferenceModel:
    """Fold BN into convolutions, then cast to `dtype` ("auto": bfloat16 where native) and channels_last.

    The input model is left unchanged; the result lives on the model's device and runs under inference_mode.
    """
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    resolved = _resolve_dtype(dtype, device)
    folded = fold_batchnorm(model).to(dtype=resolved)
    if channels_last:
        folded = folded.to(memory_format=torch.channels_last)
    return InferenceModel(folded, resolved, channels_last)


@dataclass(frozen=True)
class ExportInfo:
    """What an exported file says about its model, beside the folded weights."""
    model: str
    num_classes: int
    in_channels: int
    model_options: dict
    input_size: list[int] | None = None
    class_names: list[str] | None = None
    normalization: dict | None = None   # {"mean": [...], "std": [...]} the model expects its input normalised by
    dataset: str | None = None
    config: dict | None = None          # the run's resolved config: `papernets eval` rebuilds its test split
    precision: str | None = None        # "bf16" or "off": how the run trained and evaluated

    @classmethod
    def from_checkpoint(cls, checkpoint: dict) -> "ExportInfo":
        """From a training checkpoint (or any dict with its model fields)."""
        return cls(**{field.name: checkpoint[field.name] for field in dataclasses.fields(cls) if field.name in checkpoint})


def export_bytes(model: nn.Module, info: ExportInfo, *, fold: bool = True) -> bytes:
    """`model` float32, with BN folded (`fold`), as safetensors bytes carrying `info` as JSON metadata."""
    pairs = foldable_pairs(copy.deepcopy(model).eval()) if fold else []
    folded = fold_batchnorm(model, pairs).float()
    state = {name: tensor.detach().cpu().contiguous() for name, tensor in folded.state_dict().items()}
    metadata = {"format": EXPORT_FORMAT, "info": json.dumps(dataclasses.asdict(info)), "folded": json.dumps(pairs)}
    return save(state, metadata=metadata)


EXPORT_ADVICE = "choose a writable --output path"


def _output_path(path: str | Path) -> Path:
    """`path` with its folders created."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise write_failure(path, error, EXPORT_ADVICE) from None
    return path


def export_model(model: nn.Module, path: str | Path, info: ExportInfo, *, fold: bool = True) -> Path:
    """Write `export_bytes(model, info, fold=fold)` to `path` (atomically, folders created)."""
    return write_bytes(_output_path(path), export_bytes(model, info, fold=fold), EXPORT_ADVICE)


def export_onnx(model: nn.Module, path: str | Path, info: ExportInfo) -> Path:
    """The model with BN folded, float32, as ONNX (input "images" (B, C, H, W) normalised as `info` says, any
    batch size; output "logits"), with `info` as JSON in the model's metadata under "papernets". Needs the
    onnx and onnxscript packages (torch's ONNX exporter)."""
    try:
        import onnxscript  # noqa: F401  (torch.onnx.export needs it; imported here to give one clear error)
    except ImportError:
        raise ConfigError("ONNX export needs the onnx and onnxscript packages: pip install onnx onnxscript.") from None
    folded = fold_batchnorm(model).float()
    example = torch.zeros(2, *(info.input_size or [info.in_channels, 224, 224]))
    program = torch.onnx.export(folded, (example,), input_names=["images"], output_names=["logits"],
                                dynamic_shapes=({0: torch.export.Dim("batch")},), dynamo=True, verbose=False)
    program.model.metadata_props["papernets"] = json.dumps(dataclasses.asdict(info))
    path = _output_path(path)
    try:
        program.save(str(path))
    except OSError as error:
        raise write_failure(path, error, EXPORT_ADVICE) from None
    return path


def load_exported(path: str | Path, *, dtype: str = "auto", channels_last: bool = True,
                  device: str = "cpu") -> tuple[InferenceModel, ExportInfo]:
    """Rebuild an exported model from the registry, load its folded weights strictly, optimise it for `device`."""
    model, info = load_exported_model(path)
    return optimize_for_inference(model.to(device), dtype=dtype, channels_last=channels_last), info


def load_exported_model(path: str | Path) -> tuple[nn.Module, ExportInfo]:
    """The model of an exported file (or a run's model.safetensors), rebuilt from the registry with the file's
    weights loaded strictly, in eval mode on the CPU, as it was exported (folded or not)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"Exported model {path} does not exist; write one with `papernets export`.")
    try:
        state = load_file(str(path))
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError) as error:
        raise CheckpointError(f"{path} is not a readable safetensors file ({error}); export the model again.") from None
    if metadata.get("format") != EXPORT_FORMAT:
        raise CheckpointError(f"{path} is not a papernets export (format {metadata.get('format')!r}, "
                              f"expected {EXPORT_FORMAT!r}); write it with `papernets export`.")
    try:
        info = ExportInfo(**json.loads(metadata["info"]))
        pairs = [(str(conv_name), str(norm_name)) for conv_name, norm_name in json.loads(metadata["folded"])]
    except (KeyError, TypeError, ValueError):
        raise CheckpointError(f"{path} has damaged model metadata; export the model again.") from None
    # The input size, when known, is passed as training passed it: it selects `small_input` for ImageNet models.
    shape = {"input_size": tuple(info.input_size)} if info.input_size else {"in_channels": info.in_channels}
    model = create_model(info.model, num_classes=info.num_classes, **shape, **info.model_options)
    try:
        # Folding the freshly built model at the recorded pairs gives the exported module tree; its weights are
        # then replaced by the file's.
        model = fold_batchnorm(model, pairs)
        model.load_state_dict(state, strict=True)
    except (AttributeError, RuntimeError):
        raise CheckpointError(f"The weights in {path} do not fit model {info.model} with options "
                              f"{info.model_options}; export the model again with this papernets version.") from None
    return model.eval(), info
