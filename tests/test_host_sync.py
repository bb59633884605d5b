"""The training loop reads device values (each read a host sync on CUDA) only at logging intervals.

On the CPU the reads are counted: every `.item()` / `.tolist()` / `.cpu()` / `float()` ... that
sportsfusion/train.py makes, directly or through torch, while the loop runs. On CUDA (gpu
marker) the loop runs under `torch.cuda.set_sync_debug_mode("error")`, so any synchronising call
between two logs raises.
"""

from __future__ import annotations

import functools
import os
import socket
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as tdist
import torch.multiprocessing as mp
from conftest import TINY_MODEL

from sportsfusion import distributed, train

TRAIN_PY = Path(train.__file__).resolve()
TORCH_DIR = Path(torch.__file__).resolve().parent
# The ways Python code reads a tensor's value on the host (f"{t:.3f}" goes through item).
READS = ("item", "tolist", "cpu", "numpy", "__float__", "__int__", "__bool__")


@functools.cache
def _where(filename: str) -> str:
    path = Path(filename).resolve()
    return "train" if path == TRAIN_PY else "torch" if path.is_relative_to(TORCH_DIR) else ""


def _train_caller(frame) -> str | None:
    """The function of sportsfusion/train.py that made this read (through torch or not)."""
    while frame is not None and _where(frame.f_code.co_filename) == "torch":
        frame = frame.f_back
    if frame is not None and _where(frame.f_code.co_filename) == "train":
        return frame.f_code.co_name
    return None


class WatchedLoader:
    """The training loader, telling when the loop takes a batch and when it lets the loader go
    (exhausted, or dropped by a `break`: CPython closes the generator at once)."""

    def __init__(self, loader, on_batch, on_end):
        self.loader, self.on_batch, self.on_end = loader, on_batch, on_end

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        try:
            for batch in self.loader:
                self.on_batch()
                yield batch
        finally:
            self.on_end()


def watch_loader(monkeypatch, on_batch, on_end):
    real = train.make_train_loader
    monkeypatch.setattr(
        train, "make_train_loader", lambda *a, **kw: WatchedLoader(real(*a, **kw), on_batch, on_end)
    )


def args(data, out, *extra):
    return [
        "--data",
        str(data),
        "--out",
        str(out),
        "--workers",
        "0",
        "--no-progress",
        "--eval-clips",
        "0",
        "--ckpt-every",
        "1000",
        *TINY_MODEL,
        *extra,
    ]


def logged(out: Path, tag: str) -> dict[int, float]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(out))
    events.Reload()
    return {e.step: e.value for e in events.Scalars(tag)}


def test_loop_reads_the_loss_only_at_logging_intervals(tiny_sports, tmp_path, monkeypatch):
    # 6 training clips, 1 a batch: 6 steps in one epoch, so no epoch end adds a log.
    reads: list[tuple[str, str]] = []
    looping = [False]

    def counted(name, real):
        def read(self, *a, **kw):
            if looping[0]:
                caller = _train_caller(sys._getframe(1))
                if caller is not None:
                    reads.append((name, caller))
            return real(self, *a, **kw)

        return read

    for name in READS:
        monkeypatch.setattr(torch.Tensor, name, counted(name, getattr(torch.Tensor, name)))
    losses = []
    real_loss = train.soft_cross_entropy

    def loss_fn(logits, targets):
        loss = real_loss(logits, targets)
        losses.append(loss.detach().clone())
        return loss

    monkeypatch.setattr(train, "soft_cross_entropy", loss_fn)
    watch_loader(monkeypatch, lambda: looping.__setitem__(0, True), lambda: None)

    out = tmp_path / "run"
    code = train.main(
        args(tiny_sports, out, "--batch-size", "1", "--max-steps", "6", "--log-every", "3")
    )
    monkeypatch.undo()
    assert code == 0
    assert len(losses) == 6
    # One read per log (the interval's mean loss), none per step: was 2 `.item()` a step.
    assert reads == [("item", "log_interval")] * 2, reads
    loss = logged(out, "train/loss")
    assert sorted(loss) == [3, 6]
    for step, value in loss.items():
        want = torch.stack(losses[step - 3 : step]).mean().item()
        assert value == pytest.approx(want, rel=1e-5)
    rate = logged(out, "train/clips_per_s")
    assert sorted(rate) == [3, 6] and all(v > 0 for v in rate.values())


def test_log_every_is_a_flag():
    parser = train.get_args_parser()
    assert parser.parse_args([]).log_every == train.TrainConfig().log_every == 10
    assert parser.parse_args(["--log-every", "25"]).log_every == 25
    assert "--log-every" in parser.format_help()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_loop_synchronises_only_at_logs(tiny_sports, tmp_path, monkeypatch):
    """Steps 3-6 run under sync debug mode "error"; the reads at the logs (steps 4, 6) are let
    through. Steps 1-2 are warm-up (Triton autotuning and cuDNN's first calls synchronise once)."""
    log_every, warmup = 2, 2
    with pytest.raises(RuntimeError):  # the mode does catch a read on this machine
        torch.cuda.set_sync_debug_mode("error")
        try:
            torch.ones(1, device="cuda").item()
        finally:
            torch.cuda.set_sync_debug_mode(0)

    batches, checked, allowed = [0], [0], []

    def on_batch():
        batches[0] += 1
        if batches[0] > warmup:
            torch.cuda.set_sync_debug_mode("error")
            checked[0] += 1

    def on_end():
        torch.cuda.set_sync_debug_mode(0)

    real_item = torch.Tensor.item

    def item(self):
        if _train_caller(sys._getframe(1)) != "log_interval":
            return real_item(self)  # under "error" mode this raises: a sync between logs
        mode = torch.cuda.get_sync_debug_mode()
        torch.cuda.set_sync_debug_mode(0)
        try:
            allowed.append(batches[0])
            return real_item(self)
        finally:
            torch.cuda.set_sync_debug_mode(mode)

    monkeypatch.setattr(torch.Tensor, "item", item)
    watch_loader(monkeypatch, on_batch, on_end)
    out = tmp_path / "run"
    try:
        code = train.main(
            args(
                tiny_sports,
                out,
                "--device",
                "cuda",
                "--batch-size",
                "1",
                "--max-steps",
                "6",
                "--log-every",
                str(log_every),
            )
        )
    finally:
        torch.cuda.set_sync_debug_mode(0)
        monkeypatch.undo()
    assert code == 0
    assert checked[0] == 6 - warmup
    assert allowed == [2, 4, 6]
    assert sorted(logged(out, "train/loss")) == [2, 4, 6]


def test_any_rank_without_a_process_group_returns_the_flags():
    assert not tdist.is_initialized()
    assert distributed.any_rank([True, False]) == [True, False]
    assert distributed.any_rank([]) == []


def _any_rank_worker(rank: int, port: int, results) -> None:
    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE="2",
        LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    # The CUDA set-up without a GPU: gloo stands in for NCCL as the default group.
    real_init = tdist.init_process_group
    tdist.init_process_group = lambda backend, **kw: real_init("gloo", **kw)
    torch.cuda.set_device = lambda device: None
    info = distributed.init_distributed("cuda")
    group = distributed._control_group
    backend = tdist.get_backend(group) if group is not None else None
    got = distributed.any_rank([rank == 0, False, rank == 1])
    distributed.cleanup()
    results.put((info.rank, backend, got, distributed._control_group is None))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_any_rank_reduces_over_a_gloo_group_beside_nccl():
    """init_distributed("cuda") makes a gloo group for the flags; any_rank reduces over it."""
    ctx = mp.get_context("spawn")
    results = ctx.SimpleQueue()
    mp.spawn(_any_rank_worker, args=(_free_port(), results), nprocs=2, join=True)
    got = sorted(results.get() for _ in range(2))
    assert got == [(r, "gloo", [True, False, True], True) for r in (0, 1)]


needs_cuda = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA")]


@pytest.mark.dali
@pytest.mark.parametrize("bad", [None, 1, 2], ids=["good", "skip-in-batch-1", "skip-in-last"])
@pytest.mark.parametrize("rows_on", ["cpu", pytest.param("cuda", marks=needs_cuda)])
def test_dali_row_check_waits_for_no_gpu_work(tiny_sports, tmp_path, monkeypatch, rows_on, bad):
    """DaliClipLoader checks the reader's row numbers of every batch: at once when they are on
    the CPU, one batch late (no sync) when on the GPU, as with the GPU backend; here DALI's CPU
    backend decodes and the rows are moved (and in batch `bad` shifted) on their way out."""
    pytest.importorskip("nvidia.dali", reason="NVIDIA DALI is not installed")
    from nvidia.dali.plugin import pytorch as dali_torch

    from sportsfusion.data.dali import DaliClipLoader
    from sportsfusion.data.formats import load_dataset
    from sportsfusion.data.sampling import ClipDataset, probe_entries
    from sportsfusion.data.transforms import short_side_for

    monkeypatch.setenv("SPORTSFUSION_CACHE", str(tmp_path / "cache"))
    real = dali_torch.DALIGenericIterator

    class MovedRows(real):  # DALI's own code calls the class by name: a subclass stands in
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw, prepare_first_batch=False)  # no __next__ in here
            self.batches = 0

        def __next__(self):
            out = real.__next__(self)
            rows = out[0]["rows"].to(rows_on, non_blocking=True)
            self.batches += 1
            return [
                {"clips": out[0]["clips"], "rows": rows + 1 if self.batches - 1 == bad else rows}
            ]

    monkeypatch.setattr(dali_torch, "DALIGenericIterator", MovedRows)
    index = load_dataset(str(tiny_sports))
    entries, infos, _ = probe_entries(index.test, 7)
    dataset = ClipDataset(
        entries,
        infos,
        len(index.classes),
        4,
        2,
        train=False,
        size=48,
        short_side=short_side_for(48),
    )
    assert len(dataset) == 6  # 3 batches of 2
    loader = DaliClipLoader(dataset, 2, device="cpu", num_threads=1, pipelines=1)
    got = []
    if rows_on == "cuda":
        torch.cuda.set_sync_debug_mode("error")
    try:
        if bad is None:
            got.extend(loader)
        else:
            with pytest.raises(ValueError, match="DALI skipped a clip of .* drop --dali"):
                got.extend(loader)
    finally:
        if rows_on == "cuda":
            torch.cuda.set_sync_debug_mode(0)
    if bad is None:
        assert [b.videos.tolist() for b in got] == [[0, 1], [2, 3], [4, 5]]
    else:  # the CPU check stops before the batch, the deferred one after it (at the next)
        assert len(got) == (bad if rows_on == "cpu" else bad + 1)
