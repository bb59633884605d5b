"""The three experiments as plans of runs, then their results from the finished runs.

table1         single, early, late, slow (full frame), multires, fovea, context, CNN average
transfer       slow fusion pretrained on "sports" (the Table 1 run), then scratch / softmax /
               top3 / all on the "ucf" set, per split (paper Table 3)
camera-motion  single and slow on the same "sports" classes at growing camera pan/zoom/shake

Every trained run is repeated for each training seed (`--seeds`), its name ending in -seed<N>.
Runs are named by what they are, so a run two experiments need is trained once: the pretrained
network is Table 1's slow fusion of the same seed, and camera motion x1 is Table 1's data and
runs. Adding a seed trains only that seed's runs.
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
    seeds: tuple[int, ...] = (0,)  # training seeds: every trained run once per seed
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

    def config(self, data: Callable[[], str], key: str, seed: int = 0, **kw) -> TrainConfig:
        """The preset's TrainConfig for Table 1 row `key` on data() (built when first needed),
        trained with `seed`."""
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
            seed=seed,
            eval_clips=p.eval_clips,
            eval_crops=p.eval_crops,
            progress=self.progress,
        )
        return TrainConfig(**{**base, **kw})

    def test_videos(self, data: str, split: int = 1) -> int:
        fmt = self.format if data == self.data else "auto"
        return len(load_dataset(data, fmt, split, self.videos if data == self.data else None).test)


def run_name(base: str, seed: int) -> str:
    return f"{base}-seed{seed}"


def plan_table1(study: Study, seed: int) -> list[Step]:
    keys = study.preset.table1
    steps = []
    for key in keys:
        name, label = run_name(f"sports-{key}", seed), f"table1/{key}/seed{seed}"
        if key == "average":
            members = tuple(run_name(f"sports-{m}", seed) for m in FUSION_MODELS if m in keys)
            steps.append(Step(name, label, members=members))
        else:
            steps.append(Step(name, label, partial(study.config, study.sports, key, seed)))
    return steps


def plan_transfer(study: Study, seed: int) -> list[Step]:
    p, pretrain = study.preset, run_name("sports-slow", seed)
    pretrained = str(study.out / "runs" / pretrain / "last.pt")
    build = partial(study.config, study.sports, "slow", seed)
    steps = [Step(pretrain, f"transfer/pretrain/seed{seed}", build)]
    for split in p.splits:
        for variant in TRANSFER_VARIANTS:
            init = {} if variant == "scratch" else dict(init=pretrained, train_layers=variant)
            kw = dict(split=split, epochs=p.transfer_epochs, **init)
            build = partial(study.config, study.ucf, "slow", seed, **kw)
            name = run_name(f"ucf-s{split}-{variant}", seed)
            steps.append(Step(name, f"transfer/split{split}/{variant}/seed{seed}", build))
    return steps


def camera_run(study: Study, m: float, key: str, seed: int) -> str:
    """Run name of `key` at camera multiplier m; x1 on the default data is Table 1's run."""
    base = f"sports-{key}" if m == 1.0 and study.data is None else f"camera-x{m:g}-{key}"
    return run_name(base, seed)


def plan_camera(study: Study, seed: int) -> list[Step]:
    steps = []
    for m in study.preset.camera_levels:
        for key in CAMERA_MODELS:
            build = partial(study.config, partial(study.synthetic, "sports", m), key, seed)
            label = f"camera-motion/x{m:g}/{key}/seed{seed}"
            steps.append(Step(camera_run(study, m, key, seed), label, build))
    return steps


PLANS = {"table1": plan_table1, "transfer": plan_transfer, "camera-motion": plan_camera}


def plan(study: Study, sections: list[str]) -> list[Step]:
    """Every run the sections need, each once, seed by seed (a study stopped after its first
    seed has every section once), in the order they are first needed."""
    seen, steps = set(), []
    for seed in study.seeds:
        for section in sections:
            for step in PLANS[section](study, seed):
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
        **{k: metrics[k] for k in (*keys, "video_correct")},
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


METRICS = ("clip_hit@1", "video_hit@1", "video_hit@5")


def percent(record: dict) -> dict:
    return {k: round(100 * record[k], 2) for k in METRICS}


def over_seeds(records: list[dict]) -> dict:
    """Each accuracy's mean over the seeds' records (%), and its spread: {metric}_sd, the
    sample standard deviation (0 with one seed)."""
    values = {k: [100 * r[k] for r in records] for k in METRICS}
    out = {k: round(float(np.mean(v)), 2) for k, v in values.items()}
    sd = {f"{k}_sd": round(float(np.std(v, ddof=1)), 2) if len(v) > 1 else 0.0
          for k, v in values.items()}  # fmt: skip
    return {**out, **sd, "per_seed": [percent(r) for r in records]}


def results_table1(study: Study) -> dict:
    rows, correct = {}, {}
    for key in study.preset.table1:
        names = [run_name(f"sports-{key}", s) for s in study.seeds]
        records = [study.records[n] for n in names]
        first = records[0]  # cost and curve: the same model at every seed; rates: the mean
        rows[key] = {
            "label": TABLE1_ROWS[key][0],
            "runs": names,
            **over_seeds(records),
            **{k: first[k] for k in ("madds", "params", "paper_madds", "paper_params")},
            **{k: _mean(records, k) for k in ("train_clips_per_s", "forward_clips_per_s")},
            "train_wall_s": round(sum(r["train_wall_s"] for r in records), 1),
            "loss": first["loss"],
        }
        correct[key] = [r["video_correct"] for r in records]
    data = study.sports()
    return {"rows": rows, "seeds": list(study.seeds), "test_videos": study.test_videos(data),
            "correct": correct}  # fmt: skip


def _mean(records: list[dict], key: str) -> float | None:
    values = [r[key] for r in records if r.get(key) is not None]
    return float(np.mean(values)) if values else None


def results_transfer(study: Study) -> dict:
    splits, seeds = study.preset.splits, study.seeds
    rows, correct = {}, {}
    for v in TRANSFER_VARIANTS:
        runs = {s: [study.records[run_name(f"ucf-s{s}-{v}", k)] for k in seeds] for s in splits}
        per = {s: over_seeds(records) for s, records in runs.items()}
        # the paper's 3-fold accuracy is the mean over splits, taken here seed by seed
        folds = [np.mean([100 * runs[s][i]["video_hit@1"] for s in splits])
                 for i in range(len(seeds))]  # fmt: skip
        rows[v] = {
            "per_split": per,
            "mean_video_hit@1": round(float(np.mean(folds)), 2),
            "mean_video_hit@1_sd": round(float(np.std(folds, ddof=1)), 2)
            if len(seeds) > 1
            else 0.0,
            "mean_clip_hit@1": round(float(np.mean([p["clip_hit@1"] for p in per.values()])), 2),
            "loss": {s: runs[s][0]["loss"] for s in splits},
        }
        # one seed's videos: every split's test videos in turn (each video once per split)
        correct[v] = [sum((runs[s][i]["video_correct"] for s in splits), [])
                      for i in range(len(seeds))]  # fmt: skip
    tests = sum(study.test_videos(study.ucf(), s) for s in splits)
    return {
        "rows": rows,
        "splits": list(splits),
        "seeds": list(seeds),
        "test_videos": tests,
        "pretrained": [run_name("sports-slow", s) for s in seeds],
        "correct": correct,
    }


def results_camera(study: Study) -> dict:
    levels = []
    for m in study.preset.camera_levels:
        data = study.synthetic("sports", m)
        entry = {"multiplier": m, "data": study.datasets[camera_data(m)]["config"], "correct": {}}
        for key in CAMERA_MODELS:
            names = [camera_run(study, m, key, s) for s in study.seeds]
            records = [study.records[n] for n in names]
            entry[key] = {"runs": names, **over_seeds(records), "loss": records[0]["loss"]}
            entry["correct"][key] = [r["video_correct"] for r in records]
        levels.append(entry)
    return {"levels": levels, "seeds": list(study.seeds), "test_videos": study.test_videos(data)}


def camera_data(m: float) -> str:
    return f"sports-camera-x{m:g}"


RESULTS = {"table1": results_table1, "transfer": results_transfer, "camera-motion": results_camera}
