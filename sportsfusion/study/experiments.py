"""The three experiments as plans of runs, then their results from the finished runs.

table1         single, early, late, slow (full frame), multires, fovea, context, CNN average
transfer       slow fusion pretrained on "sports" (the Table 1 run), then scratch / softmax /
               top3 / all on the "ucf" set, per split (paper Table 3)
camera-motion  single and slow on the same "sports" classes at growing camera pan/zoom/shake

Runs are named by what they are, so a run two experiments need is trained once: the pretrained
network is Table 1's slow fusion, and camera motion x1 is Table 1's data and runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path

import numpy as np

from sportsfusion.cli import torch_device
from sportsfusion.data.formats import load_dataset
from sportsfusion.data.loader import synthetic_default
from sportsfusion.data.synthetic import PRESETS as SYNTHETIC
from sportsfusion.study.presets import (
    CAMERA_MODELS,
    FUSION_MODELS,
    TABLE1_ROWS,
    TRANSFER_VARIANTS,
    StudyPreset,
)
from sportsfusion.study.runner import claim, record_of, train_command, train_run, write_json
from sportsfusion.train import TrainConfig

SECTIONS = ("table1", "transfer", "camera-motion")
CAMERA_KNOBS = ("pan", "zoom", "shake")


@dataclass
class Step:
    name: str  # folder under DIR/runs
    label: str  # progress line, e.g. table1/slow
    build: Callable[[], TrainConfig] | None = None  # None: the CNN average (evaluation only)
    members: tuple[str, ...] = ()


@dataclass
class Study:
    out: Path
    preset: StudyPreset
    seed: int = 0
    data: str | None = None  # Table 1 / pretraining set (None: synthetic "sports")
    format: str = "auto"
    videos: str | None = None
    ucf_data: str | None = None  # transfer target (None: synthetic "ucf")
    device: str = "auto"
    progress: bool = True
    records: dict = field(default_factory=dict)
    commands: dict = field(default_factory=dict)
    how: dict = field(default_factory=dict)  # run -> trained / continued / reused / evaluated
    datasets: dict = field(default_factory=dict)  # name -> {"path", "config"}

    def synthetic(self, which: str, camera: float | None = None) -> str:
        """The preset's synthetic set, built once in the cache; with `camera`, the same classes
        with the preset's pan, zoom and shake multiplied by it."""
        config = replace(SYNTHETIC[which], **getattr(self.preset, which))
        if camera is not None:
            config = replace(
                config, **{k: round(getattr(config, k) * camera, 9) for k in CAMERA_KNOBS}
            )
        path = str(synthetic_default(which, **asdict(config)))
        name = which if camera is None else camera_data(camera)
        self.datasets[name] = {"path": path, "config": asdict(config)}
        return path

    def sports(self) -> str:
        if self.data is not None:
            self.datasets["sports"] = {"path": self.data, "config": "user data (--data)"}
            return self.data
        return self.synthetic("sports")

    def ucf(self) -> str:
        if self.ucf_data is not None:
            self.datasets["ucf"] = {"path": self.ucf_data, "config": "user data (--ucf-data)"}
            return self.ucf_data
        return self.synthetic("ucf")

    def config(self, data: Callable[[], str], key: str, **kw) -> TrainConfig:
        """The preset's TrainConfig for Table 1 row `key` on data() (built when first needed)."""
        p, data = self.preset, data()
        _, model, multires, stream = TABLE1_ROWS[key]
        local = data == self.data  # the user's --data: its --format and --videos apply
        base = dict(
            data=data,
            format=self.format if local else "auto",
            videos=self.videos if local else None,
            model=model,
            multires=multires,
            stream=stream,
            width=p.width,
            input_size=p.input_size,
            epochs=p.epochs,
            max_steps=p.max_steps,
            batch_size=p.batch_size,
            lr=p.lr,
            workers=p.workers,
            device=self.device,
            seed=self.seed,
            eval_clips=p.eval_clips,
            eval_crops=p.eval_crops,
            progress=self.progress,
        )
        return TrainConfig(**{**base, **kw})

    def test_videos(self, data: str, split: int = 1) -> int:
        fmt = self.format if data == self.data else "auto"
        return len(load_dataset(data, fmt, split, self.videos if data == self.data else None).test)


def plan_table1(study: Study) -> list[Step]:
    keys = study.preset.table1
    steps = []
    for key in keys:
        if key == "average":
            members = tuple(f"sports-{m}" for m in FUSION_MODELS if m in keys)
            steps.append(Step("sports-average", "table1/average", members=members))
        else:
            build = partial(study.config, study.sports, key)
            steps.append(Step(f"sports-{key}", f"table1/{key}", build))
    return steps


def plan_transfer(study: Study) -> list[Step]:
    p = study.preset
    pretrained = str(study.out / "runs" / "sports-slow" / "last.pt")
    steps = [Step("sports-slow", "transfer/pretrain", partial(study.config, study.sports, "slow"))]
    for split in p.splits:
        for variant in TRANSFER_VARIANTS:
            init = {} if variant == "scratch" else dict(init=pretrained, train_layers=variant)
            kw = dict(split=split, epochs=p.transfer_epochs, **init)
            build = partial(study.config, study.ucf, "slow", **kw)
            steps.append(Step(f"ucf-s{split}-{variant}", f"transfer/split{split}/{variant}", build))
    return steps


def camera_run(study: Study, m: float, key: str) -> str:
    """Run name of `key` at camera multiplier m; x1 on the default data is Table 1's run."""
    return f"sports-{key}" if m == 1.0 and study.data is None else f"camera-x{m:g}-{key}"


def plan_camera(study: Study) -> list[Step]:
    steps = []
    for m in study.preset.camera_levels:
        for key in CAMERA_MODELS:
            build = partial(study.config, partial(study.synthetic, "sports", m), key)
            steps.append(Step(camera_run(study, m, key), f"camera-motion/x{m:g}/{key}", build))
    return steps


PLANS = {"table1": plan_table1, "transfer": plan_transfer, "camera-motion": plan_camera}


def plan(study: Study, sections: list[str]) -> list[Step]:
    """Every run the sections need, each once, in the order they are first needed."""
    seen, steps = set(), []
    for section in sections:
        for step in PLANS[section](study):
            if step.name not in seen:
                seen.add(step.name)
                steps.append(step)
    return steps


def run_average(study: Study, step: Step, say) -> tuple[dict, str]:
    """The paper's CNN average: the members' probabilities averaged clip by clip (no training)."""
    from sportsfusion.checkpoint import load_checkpoint
    from sportsfusion.evaluate import evaluate_split

    p, run = study.preset, study.out / "runs" / step.name
    data = study.sports()
    config = dict(
        members=list(step.members),
        data=data,
        eval_clips=p.eval_clips,
        eval_crops=p.eval_crops,
        workers=p.workers,
    )
    meta = claim(run, config)
    if "record" in meta:
        return meta, "reused"
    say("evaluating ...")
    start = time.perf_counter()
    models = [load_checkpoint(study.out / "runs" / m / "last.pt")[0] for m in step.members]
    fmt = study.format if data == study.data else "auto"
    index = load_dataset(data, fmt, 1, study.videos if data == study.data else None)
    metrics = evaluate_split(
        models,
        index,
        "test",
        workers=p.workers,
        device=torch_device(study.device),
        progress=study.progress,
        clips_per_video=p.eval_clips,
        crops=p.eval_crops,
        batch_size=p.batch_size,
    )
    members = [study.records[m] for m in step.members]
    keys = ("clip_hit@1", "video_hit@1", "video_hit@5")
    meta["record"] = {
        **{k: metrics[k] for k in keys},
        "test_videos": metrics["videos"],
        **{k: sum(r[k] for r in members) for k in ("madds", "params", "paper_madds")},
        "paper_params": sum(r["paper_params"] for r in members),
        "train_clips_per_s": None,  # not trained: its members' rates are in their rows
        "forward_clips_per_s": 1 / sum(1 / r["forward_clips_per_s"] for r in members),
        "train_wall_s": round(time.perf_counter() - start, 1),  # evaluation time
        "loss": [],
    }
    write_json(run / "summary.json", {k: metrics[k] for k in (*keys, "videos", "skipped")})
    write_json(run / "study.json", meta)
    return meta, "evaluated"


def execute(study: Study, steps: list[Step], log=print) -> None:
    p = study.preset
    for i, step in enumerate(steps, 1):

        def say(message, i=i, step=step):
            log(f"[{i}/{len(steps)}] {step.label}: {message}")

        if step.build is None:
            meta, how = run_average(study, step, say)
            study.commands[step.name] = "CNN average of " + ", ".join(step.members)
        else:
            cfg, run = step.build(), study.out / "runs" / step.name
            cfg.out = str(run)
            study.commands[step.name] = train_command(cfg)
            meta, how = train_run(cfg, run, study.out, say)
            device = torch_device(study.device)
            record_of(run, meta, p.batch_size, p.timing_batches, device)
        r = study.records[step.name] = meta["record"]
        study.how[step.name] = how
        say(
            f"{how} ({r['train_wall_s']:.0f} s): clip hit@1 {100 * r['clip_hit@1']:.1f}, video "
            f"hit@1 {100 * r['video_hit@1']:.1f}, hit@5 {100 * r['video_hit@5']:.1f}"
        )


def percent(record: dict) -> dict:
    return {k: round(100 * record[k], 2) for k in ("clip_hit@1", "video_hit@1", "video_hit@5")}


def results_table1(study: Study) -> dict:
    rows = {}
    for key in study.preset.table1:
        name = f"sports-{key}"
        r = study.records[name]
        rows[key] = {
            "label": TABLE1_ROWS[key][0],
            "run": name,
            **percent(r),
            **{k: v for k, v in r.items() if k not in percent(r)},
        }
    return {"rows": rows, "test_videos": study.test_videos(study.sports())}


def results_transfer(study: Study) -> dict:
    splits = study.preset.splits
    rows = {}
    for v in TRANSFER_VARIANTS:
        per = {s: percent(study.records[f"ucf-s{s}-{v}"]) for s in splits}
        rows[v] = {
            "per_split": per,
            "mean_video_hit@1": round(float(np.mean([x["video_hit@1"] for x in per.values()])), 2),
            "mean_clip_hit@1": round(float(np.mean([x["clip_hit@1"] for x in per.values()])), 2),
            "loss": {s: study.records[f"ucf-s{s}-{v}"]["loss"] for s in splits},
        }
    tests = sum(study.test_videos(study.ucf(), s) for s in splits)
    return {"rows": rows, "splits": list(splits), "test_videos": tests, "pretrained": "sports-slow"}


def results_camera(study: Study) -> dict:
    levels = []
    for m in study.preset.camera_levels:
        data = study.synthetic("sports", m)
        entry = {"multiplier": m, "data": study.datasets[camera_data(m)]["config"]}
        for key in CAMERA_MODELS:
            record = study.records[camera_run(study, m, key)]
            entry[key] = {"run": camera_run(study, m, key), **percent(record)}
            entry[key]["loss"] = record["loss"]
        gap = entry["slow"]["clip_hit@1"] - entry["single"]["clip_hit@1"]
        entry["gap_clip_hit@1"] = round(gap, 2)
        levels.append(entry)
    return {"levels": levels, "test_videos": study.test_videos(data)}


def camera_data(m: float) -> str:
    return f"sports-camera-x{m:g}"


RESULTS = {"table1": results_table1, "transfer": results_transfer, "camera-motion": results_camera}
