"""The fidelity certificate of a model (`papernets verify`): each row the paper prints, next to the layers of ours
that implement it, measured on the built model.

The "paper" side is `papernets.models.paper_tables` (transcribed from the papers' pages, independent of the
tables the models are built from). The "ours" side is measured: one batch-1 forward pass at the paper's input
size with hooks (`analysis.summary` for shapes, parameters and multiply-adds; hooks on every convolution for
kernel, channels, stride and groups, in the order they run), and for LeNet-5 the connections of each layer
counted as the non-zero entries of its Jacobian plus one per output unit for a bias. Then the totals the
paper states, the deviations listed in the model file's docstring, and, where torchvision has the network,
the logits of both for the same random weights.

A check is `match`, `differs` (the certificate fails), `known` (a difference that `KNOWN_DISCREPANCIES` explains:
a typo or an inconsistent column of the paper, or a deviation the model file states) or `not printed`.
"""

import fnmatch
import re
import sys
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from papernets.models.summary import summarize
from papernets.models import create_model, get_model_entry
from papernets.models.paper_tables import KNOWN_DISCREPANCIES, PAPER_TABLES, Conv, PaperTable, Row

PRINTED_SCALES = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9}
PRINTED_NUMBER = re.compile(r"([\d,]+(?:\.(\d+))?)([KMG]?)")
EXCLUDED_FROM_CONVS = ("shortcut", "downsample", "squeeze_excitation")  # not in the papers' cells
EQUIVALENCE_INPUT = {"inception_v3": (3, 96, 96)}                       # torchvision's needs >= 75 px
EQUIVALENCE_DEFAULT_INPUT = (3, 64, 64)
EQUIVALENCE_TOLERANCE = 1e-4                                            # relative to the largest logit


@dataclass
class Check:
    quantity: str        # output, input, params, ops, convs, SE
    paper: str
    ours: str
    status: str          # match, differs, known, not printed
    note: str = ""


@dataclass
class RowResult:
    cell: str
    modules: list[str]
    checks: list[Check]

    @property
    def status(self) -> str:
        statuses = {check.status for check in self.checks}
        return next((status for status in ("differs", "known") if status in statuses), "match")


@dataclass
class Certificate:
    model: str
    paper: str
    source: str
    input_size: tuple[int, int, int]
    rows: list[RowResult] = field(default_factory=list)
    totals: list[Check] = field(default_factory=list)
    deviations: list[str] = field(default_factory=list)
    torchvision: Check | None = None

    @property
    def passed(self) -> bool:
        checks = [check for row in self.rows for check in row.checks] + self.totals + [self.torchvision]
        return all(check is None or check.status != "differs" for check in checks)

    def to_dict(self) -> dict:
        return {"model": self.model, "paper": self.paper, "source": self.source,
                "input_size": list(self.input_size), "passed": self.passed,
                "rows": [{"cell": row.cell, "modules": row.modules, "status": row.status,
                          "checks": [asdict(check) for check in row.checks]} for row in self.rows],
                "totals": [asdict(check) for check in self.totals], "deviations": self.deviations,
                "torchvision": asdict(self.torchvision) if self.torchvision else None}


# ---------------------------------------------------------------------------------------------------------
# Printed figures.

def parse_printed(text: str) -> tuple[float, float]:
    """("2.7K") -> (2700, 100): the figure and one unit of its last printed digit."""
    match = PRINTED_NUMBER.fullmatch(text)
    assert match, f"unreadable printed figure {text!r}"
    number, decimals, suffix = match.groups()
    scale = PRINTED_SCALES[suffix]
    return float(number.replace(",", "")) * scale, scale / 10 ** len(decimals or "")


def figure_matches(printed: str, ours: int) -> bool:
    value, unit = parse_printed(printed)
    return abs(ours - value) < unit


def shape_text(shape) -> str:
    return "x".join(map(str, shape)) if shape is not None else "did not run"


def squeezed(shape) -> tuple[int, ...] | None:
    return None if shape is None else tuple(size for size in shape if size != 1)


def conv_text(convs) -> str:
    return ", ".join(f"{conv.kernel}x{conv.kernel}{f'/{conv.stride}' if conv.stride else ''} {conv.out_channels}"
                     f"{' dw' if conv.depthwise else ''}" for conv in convs) or "none"


# ---------------------------------------------------------------------------------------------------------
# Measuring ours.

@dataclass
class Measured:
    rows: dict             # module name -> analysis.summary.LayerRow
    convs: list            # (name, nn.Conv2d) in the order they ran
    inputs: dict           # module name -> the input tensor it received
    modules: dict          # module name -> module
    total_params: int
    macs: int


def measure(model: nn.Module, table: PaperTable) -> Measured:
    names = {module: name for name, module in model.named_modules()}
    wanted = {name for row in table.rows for name in row.modules}
    convs, inputs = [], {}

    def record(module, args, output):
        name = names[module]
        if isinstance(module, nn.Conv2d):
            convs.append((name, module))
        if name in wanted:
            inputs[name] = args[0].detach()

    handles = [module.register_forward_hook(record) for module in model.modules()]
    try:
        summary = summarize(model, table.input_size)
    finally:
        for handle in handles:
            handle.remove()
    return Measured(rows={row.name: row for row in summary.rows}, convs=convs, inputs=inputs,
                    modules=dict(model.named_modules()), total_params=summary.inference_params, macs=summary.macs)


def connections(module: nn.Module, layer_input: torch.Tensor) -> int:
    """Input-output unit pairs joined by a weight (the non-zero entries of the Jacobian, for random weights),
    plus one per output unit when the layer has a bias: LeNet-5's "connections" (Sec. II.B)."""
    jacobian = torch.autograd.functional.jacobian(module, layer_input[:1])
    outputs = module(layer_input[:1]).numel()
    has_bias = any(name == "bias" for name, _ in module.named_parameters(recurse=False))
    return int((jacobian != 0).sum()) + (outputs if has_bias else 0)


def convs_in(measured: Measured, modules: tuple[str, ...], paper: tuple[Conv, ...]) -> tuple[Conv, ...]:
    """Ours as the paper's cell would print them (stride only where the paper prints one)."""
    inside = [conv for name, conv in measured.convs
              if any(name == module or name.startswith(module + ".") for module in modules)
              and not any(part in EXCLUDED_FROM_CONVS for part in name.split("."))]
    strides = [conv.stride for conv in paper] + [None] * max(0, len(inside) - len(paper))
    return tuple(Conv(conv.kernel_size[0], conv.out_channels, conv.stride[0] if stride is not None else None,
                      depthwise=conv.groups > 1 and conv.groups == conv.in_channels)
                 for conv, stride in zip(inside, strides))


def known_reason(model: str, label: str, quantity: str) -> str | None:
    return next((reason for model_pattern, cell_pattern, known_quantity, reason in KNOWN_DISCREPANCIES
                 if fnmatch.fnmatchcase(model, model_pattern) and fnmatch.fnmatchcase(label, cell_pattern)
                 and known_quantity == quantity), None)


def compare(model: str, label: str, quantity: str, paper: str, ours: str, equal: bool) -> Check:
    if equal:
        return Check(quantity, paper, ours, "match")
    reason = known_reason(model, label, quantity)
    return Check(quantity, paper, ours, "known" if reason else "differs", reason or "")


def check_row(model: str, row: Row, measured: Measured, ops_name: str) -> RowResult:
    first, last = measured.rows.get(row.modules[0]), measured.rows.get(row.modules[-1])
    if first is None or last is None:
        missing = next(name for name in row.modules if name not in measured.rows)
        return RowResult(row.cell, list(row.modules),
                         [compare(model, row.cell, "module", "present", f"no module {missing}", False)])
    checks = []
    if row.output is not None:
        checks.append(compare(model, row.cell, "output", shape_text(row.output), shape_text(last.output_shape),
                              squeezed(row.output) == squeezed(last.output_shape)))
    if row.input is not None:
        checks.append(compare(model, row.cell, "input", shape_text(row.input), shape_text(first.input_shape),
                              squeezed(row.input) == squeezed(first.input_shape)))
    if row.params is not None:
        params = sum(measured.rows[name].params for name in row.modules)
        checks.append(compare(model, row.cell, "params", row.params, f"{params:,}", figure_matches(row.params, params)))
    if row.ops is not None:
        ops = (sum(connections(measured.modules[name], measured.inputs[name]) for name in row.modules)
               if ops_name == "connections" else sum(measured.rows[name].macs for name in row.modules))
        checks.append(compare(model, row.cell, ops_name, row.ops, f"{ops:,}", figure_matches(row.ops, ops)))
    if row.convs is not None:
        ours = convs_in(measured, row.modules, row.convs)
        checks.append(compare(model, row.cell, "layers", conv_text(row.convs), conv_text(ours), ours == row.convs))
    if row.squeeze_excitation is not None:
        has = any(name.endswith(".squeeze_excitation") and not isinstance(module, nn.Identity)
                  for name, module in measured.modules.items() if name.startswith(row.modules[0] + "."))
        checks.append(compare(model, row.cell, "SE", "yes" if row.squeeze_excitation else "no", "yes" if has else "no",
                              has == row.squeeze_excitation))
    return RowResult(row.cell, list(row.modules), checks)


def check_totals(model: str, table: PaperTable, measured: Measured) -> list[Check]:
    checks = []
    for total in table.totals:
        if total.quantity == "params":
            ours, quantity = measured.total_params, "params"
        elif table.ops_name == "connections":
            ours = sum(connections(measured.modules[name], measured.inputs[name])
                       for row in table.rows for name in row.modules)
            quantity = "connections"
        else:
            ours, quantity = measured.macs, "multiply-adds"
        check = compare(model, f"total {total.quantity}", quantity, total.printed, f"{ours:,}",
                        figure_matches(total.printed, ours))
        check.note = "; ".join(filter(None, [total.source, check.note]))
        checks.append(check)
    return checks


# ---------------------------------------------------------------------------------------------------------
# Deviations and torchvision.

def docstring_deviations(model: str) -> list[str]:
    """The "Deviations from the paper" list of the model file's docstring, one string per item."""
    text = sys.modules[get_model_entry(model).builder.__module__].__doc__ or ""
    match = re.search(r"Deviations from the paper[^:\n]*:\n(.*?)(?:\n\n|\Z)", text, flags=re.S)
    if match is None:
        return []
    items = re.split(r"\n- ", "\n" + match.group(1).strip())
    return [" ".join(item.split()) for item in items if item.strip()]


def randomize_batchnorm(model: nn.Module):
    """Non-trivial running statistics and affine parameters, so that a mismatch in BatchNorm shows."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.2, 0.6)
                module.bias.normal_(0, 0.1)


def torchvision_equivalence(model_name: str) -> Check | None:
    import torchvision

    from papernets.models.interop import load_torchvision_state_dict

    torchvision_name = get_model_entry(model_name).torchvision_name
    if torchvision_name is None:
        return None
    options = {"aux_logits": True, "init_weights": False, "transform_input": False} \
        if torchvision_name in ("googlenet", "inception_v3") else {}
    ours_options = {"v1_5": True} if model_name.startswith("resnet") else {}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        reference = getattr(torchvision.models, torchvision_name)(weights=None, **options)
        randomize_batchnorm(reference)
        ours = load_torchvision_state_dict(create_model(model_name, **ours_options), reference.state_dict())
        images = torch.randn(2, *EQUIVALENCE_INPUT.get(model_name, EQUIVALENCE_DEFAULT_INPUT))
    with torch.no_grad():
        expected, logits = reference.eval()(images), ours.eval()(images)
    difference = float((expected - logits).abs().max())
    scale = float(expected.abs().max())
    option_text = " (v1_5=True)" if ours_options else ""
    return Check("logits", f"torchvision.models.{torchvision_name}, same random weights",
                 f"max |difference| {difference:.1e} (logits up to {scale:.2g}){option_text}",
                 "match" if difference <= EQUIVALENCE_TOLERANCE * max(1.0, scale) else "differs")


# ---------------------------------------------------------------------------------------------------------
# The certificate.

def certify(model_name: str, *, with_torchvision: bool = True) -> Certificate:
    entry = get_model_entry(model_name)
    certificate = Certificate(model=model_name, paper=entry.paper, source="", input_size=entry.input_size,
                              deviations=docstring_deviations(model_name))
    table = PAPER_TABLES.get(model_name)
    if table is not None:
        certificate.source, certificate.input_size = table.source, table.input_size
        torch.manual_seed(0)
        model = create_model(model_name, num_classes=table.num_classes, **table.options)
        measured = measure(model, table)
        certificate.rows = [check_row(model_name, row, measured, table.ops_name) for row in table.rows]
        certificate.totals = check_totals(model_name, table, measured)
    if with_torchvision:
        certificate.torchvision = torchvision_equivalence(model_name)
    return certificate


STATUS_MARKS = {"match": "✓", "differs": "✗", "known": "≠", "not printed": "–"}


def check_text(check: Check) -> str:
    mark = STATUS_MARKS[check.status]
    text = f"{check.quantity} {check.paper} {mark}" if check.status == "match" else \
        f"{check.quantity} {check.paper} vs ours {check.ours} {mark}"
    return text + (f" ({check.note})" if check.note and check.status != "match" else "")


def format_text(certificate: Certificate) -> str:
    lines = [f"{certificate.model}: {certificate.paper}",
             f"  {'PASSED' if certificate.passed else 'FAILED'}; paper side: {certificate.source or 'no table'}; "
             f"input {shape_text(certificate.input_size)}"]
    for row in certificate.rows:
        lines.append(f"  {STATUS_MARKS[row.status]} {row.cell}  [{' + '.join(row.modules)}]")
        lines += [f"      {check_text(check)}" for check in row.checks]
    lines += [f"  total: {check_text(check)}" for check in certificate.totals]
    if certificate.torchvision:
        lines.append(f"  torchvision: {check_text(certificate.torchvision)}: {certificate.torchvision.ours}")
    lines += [f"  deviation: {item}" for item in certificate.deviations]
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def format_markdown(certificates: list[Certificate], command: str) -> str:
    lines = ["# Fidelity certificates", "",
             f"Generated by `{command}`; do not edit (tests/test_verify.py fails when this file is stale).", "",
             "Each row is what the paper prints (papernets/models/paper_tables.py, transcribed from the paper), "
             "next to the module of ours that implements it, measured on the built model: ✓ equal (a printed "
             "figure within one unit of its last digit), ≠ a difference explained by the paper itself or by a "
             "deviation the model file states (the reason follows), ✗ a difference nobody explained (verify "
             "fails).", ""]
    summary = [f"| {c.model} | {'passed' if c.passed else 'FAILED'} | {len(c.rows)} | "
               f"{sum(row.status == 'known' for row in c.rows)} | "
               f"{c.torchvision.status if c.torchvision else '–'} |" for c in certificates]
    lines += ["| Model | Certificate | Paper rows | Rows with a known difference | torchvision logits |",
              "|---|---|---|---|---|", *summary, ""]
    for certificate in certificates:
        lines += [f"## {certificate.model}", "", f"{certificate.paper}. Paper side: "
                  f"{certificate.source or 'none (no paper table: not a paper network)'}; input "
                  f"{shape_text(certificate.input_size)}.", ""]
        if certificate.rows:
            lines += ["| Paper's row | Ours | Checks |", "|---|---|---|"]
            lines += [f"| {STATUS_MARKS[row.status]} {_cell(row.cell)} | {' + '.join(row.modules)} | "
                      f"{_cell('; '.join(check_text(check) for check in row.checks))} |" for row in certificate.rows]
            lines.append("")
        lines += [f"- Total: {_cell(check_text(check))}: ours {check.ours}" for check in certificate.totals]
        if certificate.torchvision:
            lines.append(f"- torchvision: {check_text(certificate.torchvision)}: {certificate.torchvision.ours}")
        lines += [f"- Deviation (model file): {item}" for item in certificate.deviations]
        lines.append("")
    return "\n".join(lines)
