"""torchrun support: one code path for 1 process, several GPUs, or several CPU processes (gloo).

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK; without them this is a single process and every
helper below is a no-op.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.utils.data import Sampler


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


# The group `any_rank` reduces over: a gloo one beside NCCL's, so the per-batch control flags
# travel host to host (an NCCL all-reduce needs the flags on the GPU and `.tolist()` would then
# wait for every kernel queued before it). None: the default group, already gloo on CPU runs.
_control_group: dist.ProcessGroup | None = None


def init_distributed(device_type: str) -> DistInfo:
    global _control_group
    if "WORLD_SIZE" not in os.environ or int(os.environ["WORLD_SIZE"]) <= 1:
        return DistInfo()
    info = DistInfo(
        int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"])
    )
    if device_type == "cuda":
        torch.cuda.set_device(info.local_rank)
    dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
    if device_type == "cuda":
        _control_group = dist.new_group(backend="gloo")  # collective: every rank makes it
    return info


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def any_rank(flags: list[bool]) -> list[bool]:
    """Each flag true on any process -> true on all (one small all-reduce, on the CPU).

    Host to host over gloo whatever the training device: no GPU work is waited for."""
    if not (dist.is_available() and dist.is_initialized()):
        return flags
    t = torch.tensor(flags, dtype=torch.int32)
    dist.all_reduce(t, group=_control_group)
    return [bool(x) for x in t.tolist()]


def cleanup() -> None:
    global _control_group
    if dist.is_available() and dist.is_initialized():
        if _control_group is not None:
            dist.destroy_process_group(_control_group)
        dist.destroy_process_group()
    _control_group = None


class ShardedSampler(Sampler[int]):
    """A per-epoch shuffle shared by all ranks (seeded by seed and epoch), each rank taking every
    world_size-th index, trimmed to whole batches so every rank runs the same number of steps.

    `set_epoch(epoch, skip_batches)` resumes mid-epoch: the order is a pure function of
    (seed, epoch), so skipping the batches already trained reproduces the rest of the epoch.
    """

    def __init__(self, size: int, batch_size: int, info: DistInfo, seed: int, shuffle: bool = True):
        self.size, self.batch_size, self.info = size, batch_size, info
        self.seed, self.shuffle = seed, shuffle
        self.epoch, self.skip = 0, 0
        self.batches_per_epoch = size // info.world_size // batch_size
        if self.batches_per_epoch == 0:
            raise ValueError(
                f"{size} training clips cannot fill one batch of {batch_size} on each of "
                f"{info.world_size} processes: lower --batch-size"
            )

    def set_epoch(self, epoch: int, skip_batches: int = 0) -> None:
        self.epoch, self.skip = epoch, skip_batches * self.batch_size

    def __iter__(self):
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(self.size, generator=g).tolist()
        else:
            order = list(range(self.size))
        mine = order[self.info.rank :: self.info.world_size]
        mine = mine[: self.batches_per_epoch * self.batch_size]
        return iter(mine[self.skip :])

    def __len__(self) -> int:
        return self.batches_per_epoch * self.batch_size - self.skip
