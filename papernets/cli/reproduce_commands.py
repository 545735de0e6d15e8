"""`papernets reproduce EXPERIMENT [--seeds N] [--quick] [--data-dir DIR] [--output DIR]`: a paper's result,
rerun and reported next to the paper's figure (papernets.training.reproduce)."""

from pathlib import Path

from papernets.analysis.reproduction_report import write_reproduction_report
from papernets.training.reproduce import EXPERIMENTS, get_experiment, reproduce


def add_commands(subparsers) -> None:
    command = subparsers.add_parser(
        "reproduce", help="rerun a paper's reported result and report paper vs ours",
        description="Train every model of the experiment for every seed (finished runs are kept, an interrupted "
                    "one resumes), then write report.md: paper vs ours, mean ± std, difference, evidence.")
    command.add_argument("experiment", help=f"one of {', '.join(EXPERIMENTS)}")
    command.add_argument("--seeds", type=int, metavar="N", help="runs per model (default: the experiment's)")
    command.add_argument("--quick", action="store_true",
                         help="a brief run-through on a few images (what CI runs); gives no figure")
    command.add_argument("--data-dir", metavar="DIR", help="folder holding the dataset's files")
    command.add_argument("--output", metavar="DIR",
                         help="folder of the reproduction (default: reproductions/EXPERIMENT[-quick])")
    command.set_defaults(run=run_reproduce)


def run_reproduce(args) -> int:
    experiment = get_experiment(args.experiment)
    output = Path(args.output or Path("reproductions", experiment.name + ("-quick" if args.quick else "")))
    report = write_reproduction_report(reproduce(experiment, output, seeds=args.seeds, quick=args.quick,
                                                 data_dir=args.data_dir))
    print(report.read_text().split("\n## Every run")[0].rstrip())
    print(f"\nReport: {report}")
    return 0
