"""Data-parallel training under torchrun: `torchrun --nproc-per-node N -m papernets train ...`.

Each rank takes a disjoint shard of every global batch (`BatchLoader.batches(rank=, world_size=)`), DDP
averages the gradients, and rank 0 alone writes the run folder. Backends: gloo on CPU, nccl on GPU.
SyncBatchNorm only on GPUs: it refuses CPU tensors, so on CPU each rank normalises its own shard.
"""

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch import nn


@dataclass
class Distributed:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self):
        if self.enabled:
            dist.barrier()

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """Elementwise sum of `values` over the ranks (a float64 tensor of running sums)."""
        if self.enabled:
            dist.all_reduce(values, op=dist.ReduceOp.SUM)
        return values

    def broadcast_object(self, value):
        """Rank 0's `value` on every rank (the run folder's name, a resumed checkpoint's path)."""
        if not self.enabled:
            return value
        holder = [value]
        dist.broadcast_object_list(holder, src=0)
        return holder[0]

    def gather_interleaved(self, rows: np.ndarray) -> np.ndarray:
        """Every rank's rows in the split's order, on every rank, when rank r holds examples r, r + world_size,
        ... (as `BatchLoader.eval_batches` shards them)."""
        if not self.enabled:
            return rows
        shards = [None] * self.world_size
        dist.all_gather_object(shards, rows)
        shape = next((shard.shape[1:] for shard in shards if len(shard)), rows.shape[1:])
        gathered = np.empty((sum(len(shard) for shard in shards), *shape), dtype=rows.dtype)
        for rank, shard in enumerate(shards):
            if len(shard):
                gathered[rank::self.world_size] = shard
        return gathered

    def broadcast_buffers(self, model: nn.Module):
        """Rank 0's buffers (BatchNorm running statistics) on every rank, so evaluation agrees."""
        if self.enabled:
            for buffer in model.buffers():
                dist.broadcast(buffer, src=0)

    def sync_batchnorm(self, model: nn.Module, device: torch.device) -> nn.Module:
        """BatchNorm over the global batch on GPUs (call before building the optimizer)."""
        if self.enabled and device.type == "cuda":
            return nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return model

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        if not self.enabled:
            return model
        device_ids = [device.index] if device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)

    def close(self):
        """Leave together: a rank that tears down gloo while another still talks to it aborts."""
        if self.enabled and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()


def is_main_process() -> bool:
    """Rank 0 under torchrun, or the only process: the one that writes files after training."""
    return int(os.environ.get("RANK", "0")) == 0


def from_environment(device_type: str) -> Distributed:
    """The torchrun environment (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE); one process without it."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Distributed()
    context = Distributed(rank=int(os.environ["RANK"]), world_size=world_size,
                          local_rank=int(os.environ.get("LOCAL_RANK", "0")),
                          local_world_size=int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        if device_type == "cuda":
            torch.cuda.set_device(context.local_rank)
        dist.init_process_group(backend=backend)
    return context


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_local_ranks(command: list[str], procs: int) -> int:
    """`command` in `procs` processes on this machine with torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK,
    LOCAL_WORLD_SIZE, a free MASTER_PORT on 127.0.0.1); the first non-zero exit status, else 0. Ctrl-C reaches
    the ranks from the terminal and SIGTERM is passed on, so they save and stop at a step boundary together;
    when a rank fails (its error is one line; torchrun would add a traceback of its own) the others are killed,
    as they would wait for it in the next collective."""
    shared = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()), "WORLD_SIZE": str(procs),
              "LOCAL_WORLD_SIZE": str(procs)}
    ranks = [subprocess.Popen(command, env={**os.environ, **shared, "RANK": str(rank), "LOCAL_RANK": str(rank)})
             for rank in range(procs)]

    def pass_on(number, frame):
        for process in ranks:
            if process.poll() is None:
                process.send_signal(number)

    previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, pass_on),
                signal.SIGINT: signal.signal(signal.SIGINT, signal.SIG_IGN)}  # the terminal signals every rank
    try:
        while any(process.poll() is None for process in ranks):
            if any(process.poll() not in (None, 0) for process in ranks):
                pass_on(signal.SIGKILL, None)  # the others would wait for the failed rank in a collective
            time.sleep(0.1)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    statuses = [process.returncode for process in ranks]
    status = next((status for status in statuses if status > 0), min(statuses))  # a rank's own error first
    return 128 - status if status < 0 else status  # killed by signal N: the shell's 128 + N
