"""Inference speed of ResNet-50 at 224x224 on this machine, measured side by side in one run.

1. papernets eager vs torchvision eager, the same weights (torchvision's random init loaded into papernets'
   resnet50 v1_5 via `load_torchvision_state_dict`): batch-1 latency and batch-32 throughput, fp32 NCHW.
   The two should be within +-5% (same operations).
2. papernets optimised (`optimize_for_inference`: BN folded, channels_last, bfloat16 where native) vs
   torchvision eager fp32: target >= 2.5x throughput at batch 32. Folded fp32 + channels_last is shown too, to
   separate what folding/layout give from what bfloat16 gives.
3. Fidelity of the optimised path: on a trained Fashion-MNIST ResNet-20 (`--checkpoint`, or one trained here
   with the `fast-fashion-mnist` recipe for `--train-epochs` epochs), the share of the 10,000 test images on
   which the optimised model predicts the same class as eager fp32 (target >= 99.5%).

Timings interleave the variants round by round and report medians, so that load from other processes on a
shared machine hits every variant alike.

    .venv/bin/python benchmarks/inference.py [--checkpoint RUN/checkpoints/best.pt] [--rounds 5]
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
import torchvision

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import append_entry, hardware, markdown_table, median  # noqa: E402

from papernets.models import create_model  # noqa: E402
from papernets.export.fusion import optimize_for_inference  # noqa: E402
from papernets.models.interop import load_torchvision_state_dict  # noqa: E402


def timed_rounds(variants: dict, images: torch.Tensor, rounds: int, calls_per_round: int) -> dict[str, float]:
    """Median seconds per call of each variant on `images`, variants interleaved in every round."""
    seconds = {name: [] for name in variants}
    with torch.inference_mode():
        for function in variants.values():  # warm-up: oneDNN picks and caches its kernels on the first calls
            function(images)
            function(images)
        for _ in range(rounds):
            for name, function in variants.items():
                started = time.perf_counter()
                for _ in range(calls_per_round):
                    function(images)
                seconds[name].append((time.perf_counter() - started) / calls_per_round)
    return {name: median(values) for name, values in seconds.items()}


def resnet50_pair() -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(0)
    reference = torchvision.models.resnet50().eval()
    ours = create_model("resnet50", v1_5=True)
    load_torchvision_state_dict(ours, reference.state_dict())
    return reference, ours.eval()


def trained_checkpoint(path: str | None, epochs: int, workdir: Path) -> Path:
    if path:
        return Path(path)
    from papernets.config import load_config
    from papernets.training.engine import train

    print(f"training resnet20 on Fashion-MNIST for {epochs} epochs (fast-fashion-mnist recipe) ...", flush=True)
    config = load_config("fast-fashion-mnist", {"model": "resnet20", "epochs": epochs, "output": str(workdir),
                                               "run_name": "resnet20", "report": False, "quiet": True})
    return train(config) / "checkpoints" / "best.pt"


def prediction_agreement(checkpoint_path: Path) -> tuple[float, float, float, int, str]:
    """(agreement, eager accuracy, optimised accuracy, images, model name) on the checkpoint's test split."""
    from papernets.data import load_dataset
    from papernets.runs.checkpoint import model_from_checkpoint

    model, checkpoint = model_from_checkpoint(checkpoint_path)
    dataset = load_dataset(checkpoint["dataset"])
    mean = torch.tensor(checkpoint["normalization"]["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(checkpoint["normalization"]["std"]).view(1, -1, 1, 1)
    images = (torch.from_numpy(dataset.test_images).float() / 255 - mean) / std
    labels = torch.from_numpy(dataset.test_labels)
    optimized = optimize_for_inference(model)
    eager_predictions, fast_predictions = [], []
    with torch.inference_mode():
        for batch in images.split(500):
            eager_predictions.append(model(batch).argmax(1))
            fast_predictions.append(optimized(batch).argmax(1))
    eager, fast = torch.cat(eager_predictions), torch.cat(fast_predictions)
    return ((eager == fast).float().mean().item(), (eager == labels).float().mean().item(),
            (fast == labels).float().mean().item(), len(labels), checkpoint["model"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="a trained Fashion-MNIST checkpoint (default: train a ResNet-20 here)")
    parser.add_argument("--train-epochs", type=int, default=4, help="epochs when training one here (default 4)")
    parser.add_argument("--rounds", type=int, default=5, help="timing rounds per variant (default 5)")
    parser.add_argument("--no-append", action="store_true", help="print only; do not append to docs/BENCHMARKS.md")
    args = parser.parse_args()
    print(hardware(), flush=True)

    reference, ours = resnet50_pair()
    probe = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        max_difference = (reference(probe) - ours(probe)).abs().max().item()
    variants = {
        "torchvision eager fp32": reference,
        "papernets eager fp32": ours,
        "papernets folded fp32 channels_last": optimize_for_inference(ours, dtype="float32"),
        "papernets optimised (folded, channels_last, auto dtype)": optimize_for_inference(ours),
    }
    optimised_dtype = str(variants["papernets optimised (folded, channels_last, auto dtype)"].dtype).removeprefix("torch.")
    single = torch.randn(1, 3, 224, 224)
    batch = torch.randn(32, 3, 224, 224)
    latency = timed_rounds(variants, single, args.rounds, calls_per_round=5)
    per_batch = timed_rounds(variants, batch, args.rounds, calls_per_round=1)
    baseline_latency, baseline_batch = latency["torchvision eager fp32"], per_batch["torchvision eager fp32"]
    rows = [[name, f"{1000 * latency[name]:.1f}", f"{baseline_latency / latency[name]:.2f}x",
             f"{32 / per_batch[name]:.1f}", f"{baseline_batch / per_batch[name]:.2f}x"] for name in variants]
    table = markdown_table(["ResNet-50 @224", "batch-1 latency ms", "speed-up", "batch-32 images/s", "speed-up"], rows)
    eager_ratio = per_batch["torchvision eager fp32"] / per_batch["papernets eager fp32"]
    print(table)
    print(f"same weights: max |torchvision - papernets| logit difference {max_difference:.2e}; "
          f"papernets/torchvision eager throughput {eager_ratio:.3f} (target 0.95-1.05)")

    with tempfile.TemporaryDirectory() as workdir:
        checkpoint = trained_checkpoint(args.checkpoint, args.train_epochs, Path(workdir))
        agreement, eager_accuracy, fast_accuracy, count, model_name = prediction_agreement(checkpoint)
    fidelity = (f"Optimised ({optimised_dtype}) vs eager fp32 predictions on {count:,} Fashion-MNIST test images "
                f"({model_name}, {'checkpoint ' + args.checkpoint if args.checkpoint else 'trained here'}): "
                f"{100 * agreement:.2f}% agree (target >= 99.5%); accuracy eager {100 * eager_accuracy:.2f}%, "
                f"optimised {100 * fast_accuracy:.2f}%.")
    print(fidelity)
    speedup = baseline_batch / per_batch["papernets optimised (folded, channels_last, auto dtype)"]
    verdict = (f"Optimised vs torchvision eager fp32 at batch 32: {speedup:.2f}x (target >= 2.5x); papernets vs "
               f"torchvision eager: {eager_ratio:.3f}x (target within +-5%), max logit difference {max_difference:.1e}.")
    print(verdict)
    if not args.no_append:
        append_entry("Inference (benchmarks/inference.py)", f"{table}\n\n{verdict}\n\n{fidelity}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
