"""Train a fusion model: `python -m sportsfusion.train [--data DIR] [--model slow --multires] ...`

With no --data it builds (once, in a cache folder) a small synthetic "sports" set, trains, and
prints the evaluation. SGD with momentum 0.9 and weight decay 5e-4 (paper-facts §4); bf16
autocast and channels-last on CUDA; DDP under torchrun (gloo on CPU). RUN_DIR/last.pt is written
atomically every epoch, every --ckpt-every steps and on SIGINT/SIGTERM; --resume continues it.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from sportsfusion import distributed as dist
from sportsfusion import ops
from sportsfusion.checkpoint import CheckpointError, read_checkpoint, save_checkpoint
from sportsfusion.cli import HelpFormatter, default_workers, fail, setup_logging, torch_device
from sportsfusion.data.decode import BadVideo
from sportsfusion.data.formats import FORMATS, DatasetIndex
from sportsfusion.data.loader import (
    SkipLog,
    clip_dataset,
    make_train_loader,
    probe_split,
    resolve_data,
)
from sportsfusion.data.sampling import ClipDataset, clip_span
from sportsfusion.models import MODELS, arch_of, create, to_channels_last
from sportsfusion.models.stem import STREAMS
from sportsfusion.ops._backends import OpsUnavailableError
from sportsfusion.transfer import TRAIN_LAYERS, freeze_for, init_from_checkpoint, set_train_mode

log = logging.getLogger("sportsfusion.train")


@dataclass
class TrainConfig:
    data: str | None = None  # None: the embedded synthetic default
    format: str = "auto"
    split: int = 1
    videos: str | None = None
    model: str = "single"
    multires: bool = True  # the paper's fastest form: a laptop default
    stream: str = "both"
    width: float = 1.0  # channel multiplier; 1.0 is the paper's network
    input_size: int = 178  # paper-facts §1: 178x178 clips (two 89x89 streams in multires)
    epochs: int = 8  # with the defaults: a few minutes on 2 CPU cores
    max_steps: int | None = None
    batch_size: int = 16  # paper-facts §4 used 32; 16 gives small data sets more steps
    lr: float = 1e-3  # paper-facts §4
    momentum: float = 0.9
    weight_decay: float = 5e-4
    dropout: float | None = None  # None: 0.5 for softmax/top3 transfer, else 0
    workers: int = 2
    device: str = "auto"
    out: str | None = None
    resume: bool = False
    seed: int = 0
    strict: bool = False
    ckpt_every: int = 200
    # Steps between loss logs: reading the loss (.item()) waits for the GPU to finish every step
    # queued so far, so the loss stays on the device in between and is read once per interval.
    log_every: int = 10
    init: str | None = None
    train_layers: str = "all"
    eval_clips: int = 5
    eval_crops: int = 1
    ops: str | None = None
    progress: bool = True
    dali: bool = False  # decode with NVIDIA DALI (CPU backend on CPU, NVDEC on CUDA)


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    d = TrainConfig()
    p = argparse.ArgumentParser(
        "sportsfusion.train",
        description=__doc__.splitlines()[0],
        add_help=add_help,
        formatter_class=HelpFormatter,
    )
    p.add_argument(
        "--data",
        default=d.data,
        help="data set root / CSV file (default: the synthetic set, built once in a cache)",
    )
    p.add_argument("--format", default=d.format, choices=FORMATS)
    p.add_argument("--split", type=int, default=d.split, help="UCF-101 split (1-3)")
    p.add_argument("--videos", default=d.videos, help="Sports-1M video folder (DATA/videos)")
    p.add_argument("--model", default=d.model, choices=list(MODELS))
    p.add_argument(
        "--multires",
        default=d.multires,
        action=argparse.BooleanOptionalAction,
        help="fovea + context streams (--no-multires: the full-frame network)",
    )
    p.add_argument("--stream", default=d.stream, choices=STREAMS, help="multires ablations")
    p.add_argument("--width", type=float, default=d.width, help="channel multiplier (1=paper)")
    p.add_argument("--input-size", type=int, default=d.input_size, help="clip frame size")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--max-steps", type=int, default=d.max_steps, help="stop after N steps total")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="clips per process")
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--momentum", type=float, default=d.momentum)
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--dropout", type=float, default=d.dropout)
    p.add_argument("--workers", type=int, default=min(d.workers, default_workers()))
    p.add_argument("--device", default=d.device, choices=("auto", "cpu", "cuda"))
    p.add_argument("--out", default=d.out, help="run folder (default runs/<model>-<time>)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument(
        "--strict",
        action="store_true",
        help="a bad video, or a listed UCF-101 / CSV video that is not there, is an error",
    )
    p.add_argument("--ckpt-every", type=int, default=d.ckpt_every, help="steps between saves")
    p.add_argument(
        "--log-every",
        type=int,
        default=d.log_every,
        help="steps between loss / clips-per-second logs (each log waits for the GPU)",
    )
    p.add_argument("--init", default=d.init, help="transfer: start from this checkpoint")
    p.add_argument("--train-layers", default=d.train_layers, choices=TRAIN_LAYERS)
    p.add_argument("--eval-clips", type=int, default=d.eval_clips, help="clips/video at the end")
    p.add_argument("--eval-crops", type=int, default=d.eval_crops, choices=(1, 4))
    p.add_argument("--ops", default=d.ops, choices=ops.IMPLS, help="force an op implementation")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.add_argument(
        "--dali",
        action="store_true",
        help="decode clips with NVIDIA DALI instead of PyAV (GPU: NVDEC; CPU: VP8/VP9/MJPEG "
        "files only); needs pip install -e .[dali]",
    )
    return p


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against a label distribution (multi-label videos spread it over labels)."""
    return -(targets * F.log_softmax(logits.float(), dim=1)).sum(1).mean()


class StopSignal:
    """SIGINT/SIGTERM ask the loop to save and stop after the current step."""

    def __init__(self):
        self.signum: int | None = None
        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, self._handle)

    def restore(self) -> None:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    def _handle(self, signum, frame):
        if self.signum is not None:  # a second signal: stop now
            raise KeyboardInterrupt
        self.signum = signum


def build(cfg: TrainConfig, num_classes: int) -> tuple[torch.nn.Module, list]:
    if cfg.init:
        dropout = (
            cfg.dropout if cfg.dropout is not None else (0.5 if cfg.train_layers != "all" else 0.0)
        )
        model, _ = init_from_checkpoint(cfg.init, num_classes, dropout)
    else:
        if cfg.train_layers != "all":
            raise ValueError("--train-layers softmax/top3 needs --init CHECKPOINT")
        model = create(
            cfg.model,
            num_classes,
            cfg.multires,
            cfg.stream,
            input_size=cfg.input_size,
            width=cfg.width,
            dropout=cfg.dropout or 0.0,
        )
    return model, freeze_for(model, cfg.train_layers)


def check_config(cfg: TrainConfig) -> None:
    for flag, value, least in (
        ("--batch-size", cfg.batch_size, 1),
        ("--epochs", cfg.epochs, 1),
        ("--ckpt-every", cfg.ckpt_every, 1),
        ("--log-every", cfg.log_every, 1),
        ("--workers", cfg.workers, 0),
        ("--max-steps", cfg.max_steps, 1),
        ("--eval-clips", cfg.eval_clips, 0),
    ):
        if value is not None and value < least:
            raise ValueError(f"{flag} must be at least {least}, got {value}")


def run_dir(cfg: TrainConfig) -> Path:
    if cfg.out:
        return Path(cfg.out)
    tag = f"{cfg.model}{'-multires' if cfg.multires else ''}"
    return Path("runs") / f"{tag}-{time.strftime('%Y%m%d-%H%M%S')}"


def sampler_record(cfg: TrainConfig, info: dist.DistInfo, clips: int) -> dict:
    """What the saved (epoch, batch) position means; a resume must agree on all of it."""
    return {
        "batch_size": cfg.batch_size,
        "world_size": info.world_size,
        "seed": cfg.seed,
        "clips_per_epoch": clips,
    }


def restore(last: Path, model, optimizer, cfg: TrainConfig, sampler: dict) -> tuple[int, int, int]:
    """Load last.pt into model and optimizer; returns (step, epoch, batch_in_epoch)."""
    state = read_checkpoint(last)
    lacking = [
        k for k in ("optimizer", "step", "epoch", "batch_in_epoch", "sampler") if k not in state
    ]
    if lacking:
        raise ValueError(
            f"--resume: {last} is not a training checkpoint (lacks {', '.join(lacking)})"
        )
    if state["arch"] != arch_of(model):
        raise ValueError(f"--resume: {last} holds {state['arch']}, the flags give {arch_of(model)}")
    if state["sampler"] != sampler:
        raise ValueError(
            f"--resume: {last} was trained with {state['sampler']}, now {sampler}: the saved "
            "position would repeat or skip clips (use the same --batch-size, --seed, processes)"
        )
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])  # moves its buffers to the parameters' device
    for group in optimizer.param_groups:  # flags win: lowering --lr by hand is the paper's schedule
        group.update(lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    torch.set_rng_state(state["torch_rng"])
    return state["step"], state["epoch"], state["batch_in_epoch"]


@dataclass
class Run:
    """One training run between its steps: what `prepare` builds and `train_one_epoch` moves."""

    cfg: TrainConfig
    device: torch.device
    info: dist.DistInfo
    index: DatasetIndex
    model: torch.nn.Module
    net: torch.nn.Module  # the model, or DDP around it
    optimizer: torch.optim.Optimizer
    dataset: ClipDataset
    sampler: dist.ShardedSampler
    loader: object
    position: dict  # sampler_record: what (epoch, batch_in_epoch) means
    out: Path
    test_probe: tuple  # probe_split's (entries, infos, bad) of the test list: evaluated at the end
    unusable: int  # videos the probe dropped, train and test
    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    writer: object = None  # TensorBoard, on rank 0
    skips: SkipLog | None = None
    losses: LossLog | None = None

    @property
    def last(self) -> Path:
        return self.out / "last.pt"

    @property
    def total_steps(self) -> int:
        total = self.sampler.batches_per_epoch * self.cfg.epochs
        return min(total, self.cfg.max_steps) if self.cfg.max_steps is not None else total

    def finished(self) -> bool:
        past_steps = self.cfg.max_steps is not None and self.step >= self.cfg.max_steps
        return self.epoch >= self.cfg.epochs or past_steps

    def checkpoint(self) -> None:
        """last.pt, atomically, on rank 0: weights, optimizer and the sampler position."""
        if self.info.is_main:
            save_checkpoint(
                self.last,
                {
                    "model": self.model.state_dict(),
                    "optimizer": self.optimizer.state_dict(),
                    "step": self.step,
                    "epoch": self.epoch,
                    "batch_in_epoch": self.batch_in_epoch,
                    "sampler": self.position,
                    "classes": self.index.classes,
                    "arch": arch_of(self.model),
                    "config": asdict(self.cfg),
                    "torch_rng": torch.get_rng_state(),
                },
            )


class LossLog:
    """The loss stays on the device, summed there each step; `log_interval` reads it (the
    loop's one host sync) with the interval's clips/s, to the progress bar and TensorBoard."""

    def __init__(self, run: Run):
        from tqdm import tqdm

        self.run = run
        self.bar = tqdm(
            total=run.total_steps,
            initial=min(run.step, run.total_steps),
            disable=not (run.cfg.progress and run.info.is_main),
            desc="train",
            unit="step",
            dynamic_ncols=True,
        )
        self.loss_sum = torch.zeros((), device=run.device)
        self.steps, self.clips, self.start = 0, 0, time.perf_counter()

    def add(self, loss: torch.Tensor, clips: int) -> None:
        self.loss_sum += loss.detach()
        self.steps += 1
        self.clips += clips
        self.bar.update(1)

    def log_interval(self) -> None:
        if self.steps == 0:
            return
        run = self.run
        if run.info.is_main:  # the other ranks show nothing, so they never read the loss
            mean = (self.loss_sum / self.steps).item()  # the loop's one host sync
            now = time.perf_counter()  # after the sync: the interval's steps have all run
            rate = self.clips / max(now - self.start, 1e-9)
            self.bar.set_postfix(loss=f"{mean:.3f}", clips_s=f"{rate:.1f}")
            run.writer.add_scalar("train/loss", mean, run.step)
            run.writer.add_scalar("train/clips_per_s", rate, run.step)
            self.start = now
        self.loss_sum.zero_()
        self.steps = self.clips = 0


def prepare_data(cfg: TrainConfig, device: torch.device):
    """The data set, the model for it, and its probed train and test videos."""
    index = resolve_data(cfg.data, cfg.format, cfg.split, cfg.videos, cfg.strict)
    model, params = build(cfg, len(index.classes))
    arch = arch_of(model)  # with --init the architecture is the checkpoint's: record the truth
    cfg.model, cfg.multires, cfg.stream = arch["name"], arch["multires"], arch["stream"]
    cfg.width, cfg.input_size = arch["width"], arch["input_size"]
    span = clip_span(model.frames_per_clip, model.frame_spacing)
    probe = {"dali": cfg.dali, "device": device, "progress": cfg.progress}
    probed = [
        probe_split(videos, span, cfg.workers, cfg.strict, split, **probe)
        for split, videos in (("train", index.train), ("test", index.test))
    ]
    if not probed[0][0]:
        raise ValueError(f"no usable training video in {index.root}")
    return index, model, params, probed


def prepare(cfg: TrainConfig) -> Run:
    """Flags checked, data probed, model built (and resumed), loader and run folder ready."""
    check_config(cfg)
    device = torch_device(cfg.device)
    info = dist.init_distributed(device.type)
    torch.manual_seed(cfg.seed + info.rank)
    ops.force_impl(cfg.ops)
    index, model, params, probed = prepare_data(cfg, device)
    out = run_dir(cfg)  # after prepare_data: with --init the default name is the checkpoint's
    last = out / "last.pt"
    if last.exists() and not cfg.resume:
        raise ValueError(f"{last} exists: pass --resume to continue it, or choose another --out")
    if cfg.resume and not last.exists():
        raise ValueError(f"--resume: {last} not found")
    (train_set, train_infos, bad_train), test_probe = probed

    model.to(device)  # before the optimizer exists, so its state lives on the same device
    if device.type == "cuda":
        to_channels_last(model)
    optimizer = torch.optim.SGD(
        params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
    )
    dataset = clip_dataset(
        train_set, train_infos, len(index.classes), model, train=True, seed=cfg.seed
    )
    sampler = dist.ShardedSampler(len(dataset), cfg.batch_size, info, cfg.seed)
    net = model
    if info.world_size > 1:
        net = DistributedDataParallel(
            model, device_ids=[info.local_rank] if device.type == "cuda" else None
        )
    loader = make_train_loader(
        dataset, cfg.batch_size, cfg.workers, sampler, dali=cfg.dali, device=device
    )
    run = Run(
        cfg, device, info, index, model, net, optimizer, dataset, sampler, loader,
        sampler_record(cfg, info, len(dataset)), out, test_probe,
        len(bad_train) + len(test_probe[2]),
    )  # fmt: skip
    if cfg.resume:
        run.step, run.epoch, run.batch_in_epoch = restore(
            run.last, model, optimizer, cfg, run.position
        )
        log.info(
            "resumed %s at step %d (epoch %d, batch %d)",
            run.last, run.step, run.epoch, run.batch_in_epoch,
        )  # fmt: skip
    run.skips = SkipLog(cfg.strict)
    if info.is_main:
        open_run_folder(run, len(train_set))
    run.losses = LossLog(run)
    return run


def open_run_folder(run: Run, train_videos: int) -> None:
    """config.json and TensorBoard in the run folder, and the run's one start line + notes."""
    from torch.utils.tensorboard import SummaryWriter

    cfg, index = run.cfg, run.index
    run.out.mkdir(parents=True, exist_ok=True)
    (run.out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
    run.writer = SummaryWriter(str(run.out))
    log.info(
        "%s: %d classes, %d train / %d test videos (%d unusable; listed but missing: "
        "%d train, %d test); %s on %s, %d process(es)",
        index.root, len(index.classes), train_videos, len(run.test_probe[0]), run.unusable,
        index.missing_train, index.missing_test, run.model.name, run.device, run.info.world_size,
    )  # fmt: skip
    for note in index.notes:  # printed once here, kept in summary.json
        log.warning("note: %s", note)


def train_one_epoch(run: Run, stop: StopSignal) -> bool:
    """Train from the run's saved position to the end of its epoch (or --max-steps); True when a
    signal stopped it (the run then saves and exits, --resume redoes the batch it was on)."""
    cfg, info = run.cfg, run.info
    run.sampler.set_epoch(run.epoch, run.batch_in_epoch)
    run.dataset.set_epoch(run.epoch)
    set_train_mode(run.model, cfg.train_layers)
    amp = torch.autocast("cuda", dtype=torch.bfloat16, enabled=run.device.type == "cuda")
    for batch in run.loader:
        # One collective per batch decides for every process alike: a signal seen by any of
        # them stops all at this batch (not yet consumed, so --resume redoes it), and a batch
        # of bad videos only on any of them is skipped by all.
        empty, stopping = dist.any_rank([batch.clips is None, stop.signum is not None])
        if stopping:
            return True
        run.batch_in_epoch += 1
        run.skips.add(batch.skipped)
        if empty:
            continue
        clips = batch.clips.to(run.device, non_blocking=True)
        targets = batch.targets.to(run.device, non_blocking=True)
        with amp:
            loss = soft_cross_entropy(run.net(clips), targets)
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        run.optimizer.step()
        run.step += 1
        run.losses.add(loss, clips.shape[0] * info.world_size)
        # Also at the run's last step, and before a save: it waits for the GPU anyway.
        saving = run.step % cfg.ckpt_every == 0
        if run.step % cfg.log_every == 0 or saving or run.step >= run.total_steps:
            run.losses.log_interval()
        if saving:
            run.checkpoint()
        if cfg.max_steps is not None and run.step >= cfg.max_steps:
            break
    if run.batch_in_epoch >= run.sampler.batches_per_epoch:  # the sampler ran out: epoch done
        run.epoch, run.batch_in_epoch = run.epoch + 1, 0
    return False


def fit(cfg: TrainConfig) -> int:
    """Train, save, and evaluate on the test split: the whole of `python -m sportsfusion.train`."""
    run = prepare(cfg)
    stop = StopSignal()
    stopped, failed = False, True
    try:
        while not run.finished() and not stopped:
            stopped = train_one_epoch(run, stop)
            run.losses.log_interval()
            run.checkpoint()
        failed = False
    finally:
        run.losses.bar.close()
        stop.restore()
        # Tear DDP down first, while the process group is still registered: DDP's reducer holds
        # the group, and if its release is the group's last one, ~ProcessGroupGloo joins gloo's
        # worker thread with the GIL held while that thread waits for the GIL to free a finished
        # collective: a deadlock at exit (torch 2.13, seen under CPU load). Then every rank
        # leaves together (not after a failure: the others may never arrive), before rank 0
        # evaluates alone, so no evaluation runs inside a collective's timeout.
        run.net = None
        if not failed:
            dist.barrier()
        dist.cleanup()
    if stopped:
        signum = stop.signum or signal.SIGTERM  # a process told by another one
        if run.info.is_main:
            run.writer.close()
            name = signal.Signals(signum).name
            print(
                f"{name}: stopped at step {run.step}, saved {run.last}; continue with --resume",
                file=sys.stderr,
            )
        return 128 + signum
    if run.info.is_main:
        finish(run)
    return 0


def finish(run: Run) -> None:
    """summary.json, and the evaluation on the test split (rank 0, after training)."""
    cfg, index = run.cfg, run.index
    summary = {
        "steps": run.step,
        "epochs_done": run.epoch,
        "skipped_videos": len(run.skips) + run.unusable,
        "missing_videos": index.missing,
        "missing_train": index.missing_train,
        "missing_test": index.missing_test,
        "notes": index.notes,
    }
    log.info(
        "trained %d steps; %d videos skipped; listed but missing: %d train, %d test",
        run.step, summary["skipped_videos"], index.missing_train, index.missing_test,
    )  # fmt: skip
    if run.test_probe[0] and cfg.eval_clips > 0:
        from sportsfusion.evaluate import evaluate_split, print_metrics

        metrics = evaluate_split(
            [run.model.eval()], index, "test", probed=run.test_probe, workers=cfg.workers,
            strict=cfg.strict,
            device=run.device, dali=cfg.dali, progress=cfg.progress,
            clips_per_video=cfg.eval_clips, crops=cfg.eval_crops, batch_size=cfg.batch_size,
        )  # fmt: skip
        # video_correct: 0/1 per test video in list order, so runs on one split pair up
        keys = ("clip_hit@1", "video_hit@1", "video_hit@5", "video_correct")
        summary.update({k: metrics[k] for k in keys})
        print_metrics(metrics, len(index.classes))
        for k in ("clip_hit@1", "video_hit@1", "video_hit@5"):
            run.writer.add_scalar(f"eval/{k}", metrics[k], run.step)
    (run.out / "summary.json").write_text(json.dumps(summary, indent=2))
    run.writer.close()


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    setup_logging()
    try:
        return fit(TrainConfig(**vars(args)))
    except (ValueError, CheckpointError, OSError, BadVideo, OpsUnavailableError) as e:
        return fail(e)


if __name__ == "__main__":
    raise SystemExit(main())
