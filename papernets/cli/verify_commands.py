"""`papernets verify MODEL|--all [--json|--markdown] [--no-torchvision]`: each model's fidelity certificate
(papernets.analysis.certificate); exit status 1 when a row that should match the paper does not."""

import json

from papernets.analysis.certificate import certify, format_markdown, format_text
from papernets.errors import ConfigError
from papernets.models import get_model_entry, list_models

MARKDOWN_COMMAND = "papernets verify --all --markdown"


def add_commands(subparsers) -> None:
    command = subparsers.add_parser(
        "verify", help="check a model against the table its paper prints (the fidelity certificate)",
        description="Each row of the paper's table next to the layers that implement it, measured on the built "
                    "model; the totals the paper states; the model file's deviations; torchvision's logits for "
                    "the same weights where torchvision has the network. Exit status 1 on an unexplained "
                    "difference.")
    command.add_argument("model", nargs="?", help="a name from `papernets list`")
    command.add_argument("--all", action="store_true", help="every registered model")
    output = command.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print the certificates as JSON")
    output.add_argument("--markdown", action="store_true", help="print docs/FIDELITY.md")
    command.add_argument("--no-torchvision", action="store_true", help="skip the torchvision logits check")
    command.set_defaults(run=run_verify)


def run_verify(args) -> int:
    if bool(args.model) == args.all:
        raise ConfigError("Name one model or pass --all, e.g. `papernets verify googlenet`.")
    names = list_models() if args.all else [get_model_entry(args.model).name]
    certificates = [certify(name, with_torchvision=not args.no_torchvision) for name in names]
    if args.json:
        print(json.dumps([certificate.to_dict() for certificate in certificates], indent=2, ensure_ascii=False))
    elif args.markdown:
        print(format_markdown(certificates, MARKDOWN_COMMAND))
    else:
        print("\n\n".join(format_text(certificate) for certificate in certificates))
    return 0 if all(certificate.passed for certificate in certificates) else 1
