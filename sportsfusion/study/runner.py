"""One study run = one `fit(cfg)` in DIR/runs/<name>/, reused, resumed or started.

A run folder holds what train.py writes (config.json, TensorBoard events, last.pt, summary.json)
plus study.json: the configuration the study asked for and, once finished, its record (metrics,
loss curve, clips/s, multiply-adds). summary.json present = finished, reused as is; last.pt
without it = interrupted, continued with --resume; a folder made with another configuration is
an error (the study never overwrites a run).
"""

from __future__ import annotations

import json
import os
import shlex
import time
from dataclasses import asdict, fields
from pathlib import Path

import torch

from sportsfusion.train import TrainConfig, fit, get_args_parser

# Fields that do not change a run's numbers, left out of the comparison.
VOLATILE = ("out", "resume", "progress")
PAPER_SIZE = dict(input_size=178, width=1.0, num_classes=487)  # Sports-1M, paper-facts §1


class StudyError(ValueError):
    """A one-line reason the study cannot go on (printed as `error: ...`, exit 2)."""


class Interrupted(Exception):
    """A run stopped on SIGINT/SIGTERM with its state saved; the study stops too."""

    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


def comparable(cfg: TrainConfig, study_dir: Path) -> dict:
    d = {k: v for k, v in asdict(cfg).items() if k not in VOLATILE}
    if d.get("init"):  # the pretrained checkpoint, relative to the study: the folder may move
        d["init"] = os.path.relpath(d["init"], study_dir)
    return d


def train_command(cfg: TrainConfig) -> str:
    """The `python -m sportsfusion.train` line equivalent to `cfg` (non-default flags only)."""
    default, parts = TrainConfig(), ["python -m sportsfusion.train"]
    flags = {a.dest: a.option_strings[0] for a in get_args_parser()._actions if a.option_strings}
    for f in fields(TrainConfig):
        value = getattr(cfg, f.name)
        if f.name == "resume" or value == getattr(default, f.name):
            continue
        if f.name == "multires":
            parts.append("--multires" if value else "--no-multires")
        elif f.name == "progress":
            parts.append("--no-progress")
        elif f.name == "strict":
            parts.append("--strict")
        else:
            parts.append(f"{flags[f.name]} {shlex.quote(str(value))}")
    return " ".join(parts)


def loss_curve(run: Path, tag: str = "train/loss", points: int = 400) -> list[list[float]]:
    """[step, value] pairs of a TensorBoard scalar, the last write of a step winning (a resumed
    run logs again from its checkpoint), thinned to at most `points`."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    by_step: dict[int, float] = {}
    for events in sorted(run.glob("events.out.tfevents.*"), key=lambda p: p.stat().st_mtime):
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        if tag in acc.Tags().get("scalars", []):
            by_step.update({e.step: e.value for e in acc.Scalars(tag)})
    steps = sorted(by_step)
    stride = max(1, -(-len(steps) // points))
    kept = steps[::stride] + ([steps[-1]] if steps and (len(steps) - 1) % stride else [])
    return [[s, round(float(by_step[s]), 5)] for s in kept]


def multiply_adds(
    model: str, multires: bool, stream: str, input_size: int, width: float, num_classes: int
) -> tuple[float, int]:
    """(multiply-adds per clip, parameters) counted by FlopCounterMode on a meta-device model."""
    from torch.utils.flop_counter import FlopCounterMode

    from sportsfusion.models import create

    with torch.device("meta"):
        net = create(model, num_classes, multires, stream, input_size=input_size, width=width)
    frames = getattr(net, "frames_per_clip", 1)
    clip = torch.zeros(1, frames, input_size, input_size, 3, dtype=torch.uint8, device="meta")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(clip)
    return counter.get_total_flops() / 2, sum(p.numel() for p in net.parameters())


@torch.no_grad()
def forward_rate(checkpoint: Path, batch: int, batches: int, device: torch.device) -> float:
    """Forward clips/s of a trained model on random uint8 clips (one warm-up pass, untimed)."""
    from sportsfusion.checkpoint import load_checkpoint

    net = load_checkpoint(checkpoint)[0].to(device)
    size = net.input_size
    shape = (batch, net.frames_per_clip, size, size, 3)  # (B, T, H, W, C)
    noise = torch.Generator().manual_seed(0)  # its own generator: training RNG untouched
    clips = torch.randint(0, 256, shape, dtype=torch.uint8, generator=noise).to(device)
    amp = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    with amp:
        net(clips)
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(batches):
            net(clips)
        if device.type == "cuda":
            torch.cuda.synchronize()
    return batch * batches / (time.perf_counter() - start)


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def write_json(path: Path, value) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(value, indent=2))
    os.replace(tmp, path)


def claim(run: Path, config: dict) -> dict:
    """The run's study.json, checked against (or started with) the configuration asked for."""
    meta = read_json(run / "study.json")
    if meta is not None and meta.get("config") != config:
        old = meta.get("config") or {}
        diff = sorted(k for k in set(old) | set(config) if old.get(k) != config.get(k))
        raise StudyError(
            f"{run} was made with another configuration (differs in {', '.join(diff)}): "
            "use another --out, or delete that run folder to redo it"
        )
    if meta is None:
        if (run / "last.pt").exists() or (run / "summary.json").exists():
            raise StudyError(f"{run} holds a run this study did not start: use another --out")
        run.mkdir(parents=True, exist_ok=True)
        meta = {"config": config, "train_wall_s": 0.0}
        write_json(run / "study.json", meta)
    return meta


def train_run(cfg: TrainConfig, run: Path, study_dir: Path, say) -> tuple[dict, str]:
    """Train (or reuse, or continue) the run in `run`; returns (study.json dict, what happened)."""
    meta = claim(run, comparable(cfg, study_dir))
    if (run / "summary.json").exists():
        return meta, "reused"
    cfg.out, cfg.resume = str(run), (run / "last.pt").exists()
    how = "continued" if cfg.resume else "trained"
    say("continuing from last.pt ..." if cfg.resume else "training ...")
    start = time.perf_counter()
    try:
        code = fit(cfg)
    finally:
        meta["train_wall_s"] += time.perf_counter() - start
        write_json(run / "study.json", meta)
    if code != 0:
        raise Interrupted(code)
    return meta, how


def record_of(run: Path, meta: dict, batch: int, batches: int, device: torch.device) -> dict:
    """The finished run's numbers, computed once and kept in study.json (a reused run keeps the
    clips/s measured when it was made)."""
    if "record" in meta:
        return meta["record"]
    from sportsfusion.checkpoint import read_checkpoint

    summary = read_json(run / "summary.json") or {}
    arch = read_checkpoint(run / "last.pt")["arch"]
    kind = (arch["name"], arch["multires"], arch["stream"])
    madds, params = multiply_adds(*kind, arch["input_size"], arch["width"], arch["num_classes"])
    paper_madds, paper_params = multiply_adds(*kind, **PAPER_SIZE)
    rate = loss_curve(run, "train/clips_per_s", points=1)
    meta["record"] = {
        **{k: summary.get(k) for k in ("clip_hit@1", "video_hit@1", "video_hit@5", "steps")},
        "video_correct": summary.get("video_correct"),  # per test video: what findings pair up
        "madds": madds,
        "params": params,
        "paper_madds": paper_madds,
        "paper_params": paper_params,
        "train_clips_per_s": rate[-1][1] if rate else None,
        "forward_clips_per_s": forward_rate(run / "last.pt", batch, batches, device),
        "train_wall_s": round(meta["train_wall_s"], 1),
        "loss": loss_curve(run),
    }
    write_json(run / "study.json", meta)
    return meta["record"]
