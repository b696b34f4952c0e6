"""Multi-process training through torch.distributed; the only module that imports it.

`torchrun --nproc_per_node N -m bench train ...` sets RANK / WORLD_SIZE / LOCAL_RANK; the
same command without torchrun runs as one process with no process group at all. Under a
launcher, even one process joins a process group (`torchrun --nproc_per_node 1` runs DDP and
NCCL collectives on one GPU: what `make gpu-check` tests when a machine has a single GPU).
NCCL on GPUs, gloo on CPU (so the multi-process path runs on a laptop and in the tests).

The process group has a timeout (PROCESS_GROUP_TIMEOUT, `DAA_BENCH_PG_TIMEOUT` seconds): a rank that
never reaches a collective ends the others after it instead of leaving them waiting until the
launcher kills them. A rank that fails with an error tells the others at the next agreement point
(`check_all_ranks`), and every rank then ends with one line naming it.
"""

import datetime
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel


@dataclass(frozen=True)
class WorldInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    launched: bool = False  # started by torchrun (or another launcher that sets WORLD_SIZE)

    @property
    def distributed(self) -> bool:
        return self.world_size > 1 or self.launched


def world_info_from_env() -> WorldInfo:
    """Rank, local rank and world size as torchrun exports them; one process otherwise."""
    env = os.environ
    return WorldInfo(int(env.get("RANK", 0)), int(env.get("LOCAL_RANK", 0)), int(env.get("WORLD_SIZE", 1)),
                     launched="WORLD_SIZE" in env)


def is_master(world: WorldInfo) -> bool:
    return world.rank == 0


def process_device(world: WorldInfo, requested: torch.device) -> torch.device:
    """Under torchrun each process takes the GPU of its local rank."""
    if requested.type == "cuda" and world.distributed:
        return torch.device("cuda", world.local_rank)
    return requested


_STATISTICS_GROUP = []  # the process group of batch-norm statistics, once joined
PROCESS_GROUP_TIMEOUT = datetime.timedelta(seconds=float(os.environ.get("DAA_BENCH_PG_TIMEOUT", 600)))


class RankFailed(Exception):
    """Another rank (or this one) failed: every rank raises this with the same words."""


def init_distributed(world: WorldInfo, device: torch.device) -> None:
    """Join the process group (NCCL for CUDA, gloo otherwise); nothing without a launcher.

    A second group carries SAF's batch-norm statistics (sum_across_processes), so that those
    collectives, issued inside forward and backward, never interleave with DDP's gradient buckets.
    """
    if not world.distributed or dist.is_initialized():
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=world.rank,
                            world_size=world.world_size, timeout=PROCESS_GROUP_TIMEOUT)
    _STATISTICS_GROUP.append(dist.new_group())


def cleanup_distributed() -> None:
    _STATISTICS_GROUP.clear()
    if dist.is_initialized():
        dist.destroy_process_group()


def _all_reduced(tensor: torch.Tensor) -> torch.Tensor:
    """A summed copy of `tensor`, over the statistics group (the input is left as it is)."""
    total = tensor.clone()
    dist.all_reduce(total, group=_STATISTICS_GROUP[0])
    return total


class _SumAcrossProcesses(torch.autograd.Function):
    """All-reduce (sum) whose gradient is the all-reduced gradient: what SyncBatchNorm does for its
    statistics, so each process's inputs receive the gradient of every process's loss."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        return _all_reduced(tensor)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return _all_reduced(grad)


def sum_across_processes(tensor: torch.Tensor) -> torch.Tensor:
    """The element-wise sum of `tensor` over all processes, differentiable; `tensor` itself for one."""
    if not _STATISTICS_GROUP:
        return tensor
    return _SumAcrossProcesses.apply(tensor)


def wrap_model(module: torch.nn.Module, world: WorldInfo, device: torch.device) -> torch.nn.Module:
    """DistributedDataParallel with synchronised batch norms; the module itself without a launcher.

    PyTorch's SyncBatchNorm only runs on GPUs: on CPU (gloo) each process normalises VisualSA's
    batch norms with its own batch statistics, a named deviation that only affects multi-process
    CPU runs. SAF's one-channel node batch norm, normalised per caption by bench.model.engine, is
    synchronised on CPU and GPU alike (sum_across_processes), as the original's SyncBatchNorm was.
    No `device_ids`: the batch is already on the process's GPU, and with them DDP would also move
    the caption lengths there, which the GRU's packing and the length groups need on the host.
    """
    if not world.distributed:
        return module
    if device.type == "cuda":
        module = torch.nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return DistributedDataParallel(module)


def all_gather_objects(obj) -> list:
    """Every process's `obj`, in rank order (a one-element list for one process)."""
    if not dist.is_initialized():
        return [obj]
    gathered = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def gather_objects(obj) -> list | None:
    """Every process's `obj` in rank order on rank 0; None on the other ranks (nothing is sent to them)."""
    if not dist.is_initialized():
        return [obj]
    gathered = [None] * dist.get_world_size() if dist.get_rank() == 0 else None
    dist.gather_object(obj, gathered, dst=0)
    return gathered


def check_all_ranks(error: BaseException | None) -> None:
    """Every rank says whether its part succeeded; when one failed, every rank raises RankFailed
    naming the first that did (one process: `error` itself is raised)."""
    if not dist.is_initialized():
        if error is not None:
            raise error
        return
    text = None if error is None else f"{type(error).__name__}: {error}"
    reports = all_gather_objects(None if text is None else " ".join(text.split())[:300])
    failed = [(rank, report) for rank, report in enumerate(reports) if report is not None]
    if failed:
        rank, report = failed[0]
        raise RankFailed(f"rank {rank} of {len(reports)} failed: {report}")


def gather_rows(rows: np.ndarray, n_rows: int) -> np.ndarray | None:
    """Every rank's float32 rows (rank r holds its rank_slice of `n_rows`) stacked in rank order on
    rank 0, sent as tensors (no pickling); None on the other ranks."""
    if not dist.is_initialized():
        return rows
    size, rank = dist.get_world_size(), dist.get_rank()
    shares = [rank_slice(n_rows, WorldInfo(r, 0, size)) for r in range(size)]
    counts = [share.stop - share.start for share in shares]
    if rows.shape[0] != counts[rank]:
        raise ValueError(f"rank {rank} scored {rows.shape[0]} rows for its {counts[rank]} images")
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    padded = torch.zeros((max(counts), *rows.shape[1:]), dtype=torch.float32, device=device)
    padded[:counts[rank]] = torch.from_numpy(np.ascontiguousarray(rows, dtype=np.float32))
    received = [torch.empty_like(padded) for _ in range(size)] if rank == 0 else None
    dist.gather(padded, received, dst=0)
    if rank != 0:
        return None
    return np.concatenate([block[:count].cpu().numpy() for block, count in zip(received, counts)])


def broadcast_object(obj):
    """The master's `obj` on every process."""
    if not dist.is_initialized():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def rank_slice(n_items: int, world: WorldInfo) -> slice:
    """This rank's contiguous, even share of `n_items` (sizes differ by at most one; rank order).

    Every rank computes the same bounds from (n_items, world size) alone, so the shares tile the
    items exactly whatever else differs between ranks (free memory, shard sizes).
    """
    return slice(world.rank * n_items // world.world_size, (world.rank + 1) * n_items // world.world_size)


def active_world() -> WorldInfo:
    """The initialised process group's rank and size; one process when there is none."""
    if not dist.is_initialized():
        return WorldInfo()
    env = world_info_from_env()
    return WorldInfo(dist.get_rank(), env.local_rank, dist.get_world_size(), launched=True)
