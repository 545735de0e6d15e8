"""The `papernets` command line. Each group of subcommands lives in its own module and adds itself here.

Errors a user can cause (`PapernetsError`) are printed as one line on stderr with exit status 2.
"""

import argparse
import sys

from papernets import __version__
from papernets.errors import PapernetsError


class UsageError(PapernetsError):
    """A command line argparse refuses."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse that raises one clear sentence instead of printing usage and exiting."""

    def error(self, message: str):
        raise UsageError(f"{self.prog}: {message} (see `{self.prog} --help`).")


def build_parser() -> ArgumentParser:
    from papernets.cli import data_commands
    from papernets.cli import export_commands
    from papernets.cli import models_commands
    from papernets.cli import report_commands
    from papernets.cli import reproduce_commands
    from papernets.cli import train_commands
    from papernets.cli import verify_commands

    parser = ArgumentParser(prog="papernets", description="The classic CNN papers, implemented line by line, "
                            "trained fast, verified by tests: list and inspect models, train, evaluate, report.")
    parser.add_argument("--version", action="version", version=f"papernets {__version__}")
    subcommands = parser.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)
    for module in (models_commands, report_commands, train_commands, data_commands, export_commands,
                   reproduce_commands, verify_commands):
        module.add_commands(subcommands)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        argv = sys.argv[1:] if argv is None else list(argv)
        args = build_parser().parse_args(argv)
        args.argv = argv  # `train --procs N` starts N processes of the same command line
        return args.run(args) or 0
    except PapernetsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted.", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
