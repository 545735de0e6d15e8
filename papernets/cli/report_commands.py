"""`papernets report`, `papernets predict` and `papernets compare`: what a finished run folder tells."""

import argparse
import json
import sys
from pathlib import Path

from papernets.errors import ConfigError


def run_report(args: argparse.Namespace) -> int:
    from papernets.analysis.report import write_comparison_report, write_report
    from papernets.runs.names import PREDICTIONS_FILE
    from papernets.training.engine import save_test_predictions

    if len(args.run_dirs) == 1:
        if args.output is not None:
            raise ConfigError("--output is for the comparison report of several runs; a single run's report is "
                              "always written into its run folder, so drop --output.")
        run_dir = Path(args.run_dirs[0])
        if run_dir.is_dir() and not (run_dir / PREDICTIONS_FILE).is_file():  # a run folder from before it existed
            save_test_predictions(run_dir)
        path = write_report(run_dir, html=args.html)
    else:
        path = write_comparison_report(args.run_dirs, output=args.output, html=args.html)
    print(path)
    if args.html:
        print(path.with_suffix(".html"))
    return 0


def _checkpoint_path(given: str) -> Path:
    """A checkpoint file, or a run folder standing for its best checkpoint."""
    from papernets.runs.names import BEST_CHECKPOINT

    path = Path(given)
    return path / BEST_CHECKPOINT if path.is_dir() else path


def run_predict(args: argparse.Namespace) -> int:
    from papernets.analysis.predict import predict_images

    if args.top_k < 1:
        raise ConfigError(f"--top-k is {args.top_k}; pass a whole number of classes of at least 1.")
    predictions = predict_images(_checkpoint_path(args.checkpoint), args.images, top_k=args.top_k)
    for prediction in predictions:
        for warning in prediction.warnings:
            print(f"warning: {warning}", file=sys.stderr)
    if args.json:
        print(json.dumps([{"image": prediction.image,
                           "predictions": [{"class": name, "index": index, "probability": probability}
                                           for name, index, probability in prediction.top_classes]}
                          for prediction in predictions], indent=2))
        return 0
    width = max(len(prediction.image) for prediction in predictions)
    for prediction in predictions:
        ranked = ", ".join(f"{name} {probability:.1%}" for name, _, probability in prediction.top_classes)
        print(f"{prediction.image.ljust(width)}  {ranked}")
    return 0


def run_compare(args: argparse.Namespace) -> int:
    from papernets.analysis import compare

    column = compare.column_name(args.sort)  # an unknown column fails before any folder is read
    rows = compare.sort_rows(compare.read_rows(args.run_dirs), column, reverse=args.reverse)
    headers, cells = compare.table(rows)
    if args.markdown:
        print("| " + " | ".join(headers) + " |")
        print("|" + "|".join("---" for _ in headers) + "|")
        for row in cells:
            print("| " + " | ".join(row) + " |")
    else:
        print(compare.format_text_table(headers, cells))
    return 0


def add_commands(subcommands) -> None:
    from papernets.analysis.compare import COLUMNS

    report = subcommands.add_parser(
        "report", help="write report.md (and report.html) for a run, or a comparison report for several runs",
        description="Write report.md into a run folder: learning curves, confusion matrix, per-class scores, "
                    "most confident mistakes, calibration, evidence, and the paper's figure beside the run's. "
                    "With several run folders, write comparison.md (mean ± std over seeds) instead.")
    report.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run folder(s) written by `papernets train`")
    report.add_argument("--html", action="store_true", help="also write a self-contained .html with the images")
    report.add_argument("--output", metavar="DIR",
                        help="folder for the comparison report of several runs (default: the first run's parent)")
    report.set_defaults(run=run_report)

    predict = subcommands.add_parser(
        "predict", help="classify image files with a trained checkpoint",
        description="Classify PNG or JPEG files of any size, colour or grey: each is converted to the model's "
                    "channels, resized to the training size and normalized as the training data was.")
    predict.add_argument("--checkpoint", required=True, metavar="PATH",
                         help="a checkpoint (.pt), a run folder (its checkpoints/best.pt), or a .safetensors file "
                              "(`papernets export`, a run's model.safetensors)")
    predict.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    predict.add_argument("--top-k", type=int, default=3, metavar="K", help="classes to show per image (default 3)")
    predict.add_argument("--json", action="store_true", help="print JSON instead of text")
    predict.set_defaults(run=run_predict)

    compare = subcommands.add_parser(
        "compare", help="a table of runs: model, dataset, recipe, params, MACs, accuracies, time, images/s",
        description="One row per run folder. --sort orders by a column: accuracies and images/s highest first, "
                    "everything else lowest (or alphabetically) first; --reverse flips that.")
    compare.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run folders written by `papernets train`")
    compare.add_argument("--sort", default="test", metavar="COLUMN",
                         help=f"one of {', '.join(COLUMNS)} (default: test)")
    compare.add_argument("--reverse", action="store_true", help="flip the sort order")
    compare.add_argument("--markdown", action="store_true", help="print a Markdown table")
    compare.set_defaults(run=run_compare)
