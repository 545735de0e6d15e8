"""`papernets export --checkpoint PATH --output FILE`: a trained model with BatchNorm folded into its
convolutions, as one safetensors file whose metadata names the model, its options, its normalisation and its
training config (`papernets predict` and `papernets eval` take it), or as ONNX (`--output FILE.onnx`, for
onnxruntime and other runtimes; needs the onnx and onnxscript packages).

Load a .safetensors export with `papernets.export.fusion.load_exported(FILE)`, which rebuilds the model from the
registry (no pickled code runs) and optimises it for inference (channels_last, bfloat16 where the hardware has it).
"""

from pathlib import Path

from papernets.errors import CheckpointError
from papernets.export.fusion import ExportInfo, export_model, export_onnx
from papernets.runs.checkpoint import model_from_checkpoint
from papernets.runs.names import BEST_CHECKPOINT

WRITERS = {".safetensors": export_model, ".onnx": export_onnx}


def add_commands(subparsers) -> None:
    export = subparsers.add_parser("export", help="write a trained model, BatchNorm folded, as safetensors or ONNX")
    export.add_argument("--checkpoint", required=True, type=Path, metavar="PATH",
                        help="a checkpoint written by `papernets train`, or a run folder (its checkpoints/best.pt)")
    export.add_argument("--output", required=True, type=Path, metavar="FILE",
                        help="the file to write: .safetensors (for predict, eval and Python) or .onnx")
    export.set_defaults(run=run_export)


def run_export(args) -> int:
    if args.output.suffix not in WRITERS:
        raise CheckpointError(f"--output {args.output} must end in .safetensors or .onnx; name the file e.g. "
                              "model.safetensors.")
    checkpoint_path = args.checkpoint / BEST_CHECKPOINT if args.checkpoint.is_dir() else args.checkpoint
    model, checkpoint = model_from_checkpoint(checkpoint_path)
    info = ExportInfo.from_checkpoint(checkpoint)
    path = WRITERS[args.output.suffix](model, args.output, info)
    print(f"wrote {path} ({info.model}, {info.num_classes} classes, input {'x'.join(map(str, info.input_size))})")
    return 0
