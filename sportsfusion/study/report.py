"""DIR/report.md, DIR/results.json and the PNG figures from a finished study."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import torch

from sportsfusion.study import plots
from sportsfusion.study.findings import (
    PAPER_TABLE1,
    PAPER_TABLE3,
    RULE,
    TRANSFER_LABELS,
    camera_lead,
    compare,
)
from sportsfusion.study.paired import videos_for_margin
from sportsfusion.study.presets import FULL_SIZING, QUICK_TIMING, TEST_SIZING


def machine(device: str) -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "device": torch.cuda.get_device_name() if use_cuda else "cpu",
        "python": platform.python_version(),
    }


def _pct(x) -> str:
    return "–" if x is None else f"{x:.1f}"


def _num(x, scale=1.0, fmt="{:,.1f}") -> str:
    return "–" if x is None else fmt.format(x / scale)


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def _mean_sd(r: dict, metric: str, seeds: int) -> str:
    """ "59.3 ± 1.2": the mean over seeds and its sample standard deviation."""
    if r.get(metric) is None:
        return "–"
    return f"{r[metric]:.1f} ± {r[metric + '_sd']:.1f}" if seeds > 1 else f"{r[metric]:.1f}"


def table1_section(t1: dict, figs: dict) -> list[str]:
    head = (
        "Model|clip hit@1|video hit@1|video hit@5|paper clip / video / @5|M mult-adds/clip|"
        "M mult-adds at 178|M params|train clips/s|fwd clips/s|train s"
    ).split("|")
    rows = []
    for key, r in t1["rows"].items():
        metrics = ("clip_hit@1", "video_hit@1", "video_hit@5")
        accuracy = [_mean_sd(r, m, len(t1["seeds"])) for m in metrics]
        paper = " / ".join(f"{x:.1f}" for x in PAPER_TABLE1[key])
        cost = [
            _num(r["madds"], 1e6, "{:,.2f}"),
            _num(r["paper_madds"], 1e6),
            _num(r["params"], 1e6, "{:,.2f}"),
        ]
        speed = [
            _num(r["train_clips_per_s"]),
            _num(r["forward_clips_per_s"]),
            _num(r["train_wall_s"], fmt="{:.0f}"),
        ]
        rows.append([r["label"], *accuracy, paper, *cost, *speed])
    seeds = len(t1["seeds"])
    return [
        "## Table 1: fusion models and multiresolution",
        "",
        f"Accuracies in %, on {t1['test_videos']} test videos (split 1): the mean ± the standard "
        f"deviation over {seeds} training seed{'s' if seeds > 1 else ''}; the paper's are on "
        "Sports-1M (200,000 test videos, 487 classes). *train clips/s*: measured in the run "
        "(TensorBoard `train/clips_per_s`, the average over the run, decoding included; mean "
        "over seeds); *fwd clips/s*: a short forward timing on random clips after the run "
        "(batch = the preset's); the CNN average's is that of its members in sequence. "
        "Multiply-adds per clip by `torch.utils.flop_counter.FlopCounterMode`, at this study's "
        "input size, width and class count, and at the paper's size (178x178, width 1, 487 "
        "classes) for reference. *train s*: the runs' training + evaluation wall time summed "
        "over the seeds (the CNN average: its evaluations).",
        "",
        *_table(head, rows),
        "",
        f"![accuracy per model]({figs['table1_accuracy']}) ![accuracy against cost]"
        f"({figs['table1_cost']})",
        "",
        f"![training loss]({figs['table1_loss']})",
        "",
    ]


def transfer_section(tr: dict, figs: dict) -> list[str]:
    splits = tr["splits"]
    head = ["Approach", *[f"split {s}" for s in splits], "mean video hit@1", "mean clip hit@1"]
    head.append("paper")
    rows = []
    for key, r in tr["rows"].items():
        per = [_pct(r["per_split"][s]["video_hit@1"]) for s in splits]
        means = [_mean_sd(r, "mean_video_hit@1", len(tr["seeds"]))]
        means.append(_pct(r["mean_clip_hit@1"]))
        rows.append([TRANSFER_LABELS[key], *per, *means, f"{PAPER_TABLE3[key]:.1f}"])
    return [
        "## Table 3: transfer learning (slow fusion)",
        "",
        "Slow fusion pretrained on the sports set (Table 1's slow run of the same seed, "
        "`runs/sports-slow-seed<N>`), then trained on the ucf set: from scratch, a new softmax on "
        "frozen features, FC6-FC8 retrained, or everything fine-tuned. Video hit@1 (%) per split "
        "(mean over seeds) and the mean over splits (the paper's 3-fold accuracy) ± its standard "
        f"deviation over {len(tr['seeds'])} seeds; {tr['test_videos']} test videos over all "
        "splits, which the paired comparisons pool.",
        "",
        *_table(head, rows),
        "",
        f"![transfer accuracy]({figs['transfer_accuracy']}) ![training loss]"
        f"({figs['transfer_loss']})",
        "",
    ]


def camera_section(cm: dict, figs: dict, finding: dict) -> list[str]:
    head = (
        "camera x|pan px/frame|zoom /frame|shake px|single video hit@1|slow video hit@1|"
        "slow - single (paired, 95%)|single / slow clip hit@1"
    ).split("|")
    rows = []
    for e in cm["levels"]:
        d, single, slow, lead = e["data"], e["single"], e["slow"], camera_lead(e)
        camera = [f"{e['multiplier']:g}", *(f"{d[k]:.3g}" for k in ("pan", "zoom", "shake"))]
        video = [_mean_sd(r, "video_hit@1", len(cm["seeds"])) for r in (single, slow)]
        clip = _pct(single["clip_hit@1"]) + " / " + _pct(slow["clip_hit@1"])
        rows.append([*camera, *video, f"{lead.difference:+.1f} ± {lead.margin:.1f}", clip])
    t = finding.get("trend")
    trend = (
        f"Trend test: the lead's weighted least-squares slope against the multiplier is "
        f"{t['slope']:+.2f} ± {t['margin']:.2f} points per unit (95%); levels weighted by "
        "1 / SE², taken as independent (separate data sets and trainings)."
        if t
        else ""
    )
    return [
        "## Camera motion: does slow fusion's advantage shrink as the camera moves more?",
        "",
        "The same sports classes and videos, generated with the preset's camera pan, zoom and "
        "shake multiplied together, and nothing else changed: the objects' own motion, looks "
        "and scenes are the same draws at every level, and the objects stay in view (their "
        "position wraps around the frame, not the canvas), so only the camera's apparent "
        "motion grows. Single-frame and slow fusion (full frame) trained on each level, "
        f"{len(cm['seeds'])} seeds; {cm['test_videos']} test videos per level. Slow fusion's "
        "lead is paired, video by video, per level (the findings' rule).",
        "",
        *_table(head, rows),
        "",
        trend,
        "",
        f"**Answer from this data:** {camera_answer(finding)}",
        "",
        f"![camera motion]({figs['camera_motion']}) ![training loss]({figs['camera_loss']})",
        "",
    ]


def camera_answer(finding: dict) -> str:
    meaning = {
        "held": "the lead shrinks as camera motion grows, as the paper suggests",
        "did not hold": "the lead grows with camera motion, against the paper's suggestion",
        "inconclusive": "no trend in the lead beyond its margin, so this data neither "
        "supports nor refutes the paper's suggestion",
        "not run": "too few camera levels to tell",
    }[finding["verdict"]]
    needed = f" To decide: {finding['needed']}." if finding.get("needed") else ""
    return f"{meaning}.{needed}"


def preset_section(preset: dict) -> list[str]:
    rows = [[k, f"`{v}`"] for k, v in preset.items() if k != "notes"]
    lines = ["## Preset", "", f"`{preset['name']}`: {preset['notes']}.", ""]
    lines += _table(["field", "value"], rows)
    sizing = {"quick": QUICK_TIMING, "full": FULL_SIZING}.get(preset["name"])
    if sizing:
        lines += ["", f"Test sets: {TEST_SIZING}.", "", f"Sizing: {sizing}."]
    return lines + [""]


def findings_section(findings: list[dict]) -> list[str]:
    rows = [
        [f["claim"], f["paper"], f["here"], f"**{f['verdict']}**", f.get("needed") or "–"]
        for f in findings
    ]
    return [
        "## The paper's findings on this data",
        "",
        RULE,
        "",
        *_table(["finding", "paper", "this study (d ± margin)", "verdict", "to decide"], rows),
        "",
    ]


def sample_size_section(results: dict, target: float = 4.0) -> list[str]:
    """Per paired comparison of Table 1: its margin now, and the test videos a `target`-point
    margin needs at the variance observed (the power calculation that sized the test sets)."""
    t1 = results["table1"]
    pairs = [p for f in results["findings"] if f["section"] == "table1" for p in f["paired"]]
    rows = []
    for p in pairs:
        stats = compare(t1["correct"], p["a"], p["b"])
        need = videos_for_margin(stats, target)
        rows.append([
            f"{p['a']} vs {p['b']}", f"{stats.videos:,}", f"{stats.difference:+.1f}",
            f"{stats.margin:.1f}", f"{stats.se_videos:.2f} / {stats.se_seeds:.2f}",
            "more seeds first" if need is None else f"{need:,}",
        ])  # fmt: skip
    if not rows:
        return []
    head = ["comparison", "test videos", "d", "margin now", "SE videos / seeds",
            f"videos for a ±{target:g} margin"]  # fmt: skip
    return [
        "## Sample size",
        "",
        f"The power calculation behind the test set size, per Table 1 comparison: the test "
        f"videos (at {len(t1['seeds'])} seeds) that bring the paired 95% margin to {target:g} "
        "points, from the variance observed here. The margin is 1.96 x sqrt(SE_videos² + "
        "SE_seeds²); SE_videos falls as 1/sqrt(videos), SE_seeds only with more seeds.",
        "",
        *_table(head, rows),
        "",
    ]


def runs_section(study) -> list[str]:
    rows = []
    for name, r in study.records.items():
        wall, command = _num(r["train_wall_s"], fmt="{:.0f}"), f"`{study.commands[name]}`"
        rows.append([f"`{name}`", study.how.get(name, ""), r.get("steps") or "–", wall, command])
    return [
        "## Runs",
        "",
        "Each run lives in `runs/<name>/` (TensorBoard events, `last.pt`, `summary.json`, "
        "`study.json`); the command is the equivalent `sportsfusion.train` call (the study "
        "calls `train()` in-process with that configuration).",
        "",
        *_table(["run", "this time", "steps", "wall s", "command"], rows),
        "",
    ]


def write(study, sections: list[str], results: dict, command: str, started: float) -> Path:
    """Figures, results.json and report.md in study.out; returns the report's path."""
    out, figs = study.out, {}
    if "table1" in results:
        t1 = results["table1"]
        figs["table1_accuracy"] = plots.table1_accuracy(t1, out / "table1_accuracy.png").name
        figs["table1_cost"] = plots.table1_cost(t1, out / "table1_cost.png").name
        curves = {k: r["loss"] for k, r in t1["rows"].items() if r["loss"]}
        figs["table1_loss"] = plots.losses(curves, out / "table1_loss.png", "Table 1 runs").name
    if "transfer" in results:
        tr = results["transfer"]
        figs["transfer_accuracy"] = plots.transfer_accuracy(tr, out / "transfer_accuracy.png").name
        curves = {f"{k} split {s}": c for k, r in tr["rows"].items() for s, c in r["loss"].items()}
        path = plots.losses(curves, out / "transfer_loss.png", "Table 3 runs")
        figs["transfer_loss"] = path.name
    if "camera_motion" in results:
        cm = results["camera_motion"]
        figs["camera_motion"] = plots.camera_motion(cm, out / "camera_motion.png").name
        curves = {
            f"{k} x{e['multiplier']:g}": e[k]["loss"]
            for e in cm["levels"]
            for k in ("single", "slow")
        }
        figs["camera_loss"] = plots.losses(curves, out / "camera_loss.png", "Camera runs").name
    wall = time.time() - started
    results["study"].update(wall_s=round(wall, 1), figures=figs)
    results["study"]["train_wall_s_all_runs"] = round(
        sum(r["train_wall_s"] for r in study.records.values()), 1
    )
    (out / "results.json").write_text(json.dumps(results, indent=2))

    meta, m = results["study"], results["study"]["machine"]
    lines = [
        f"# SportsFusion study: {', '.join(sections)} ({study.preset.name} preset)",
        "",
        f"- Command: `{command}`",
        f"- Seeds: {', '.join(map(str, study.seeds))} (every training run once per seed; the "
        "synthetic sets use the presets' own "
        "data seeds: sports 0, ucf 1)",
        f"- Machine: {m['cpu']}, {m['cores']} cores; torch {m['torch']} ({m['torch_threads']} "
        f"threads), Python {m['python']}; device {m['device']}",
        f"- Wall time: {wall / 60:.1f} min this invocation; "
        f"{meta['train_wall_s_all_runs'] / 60:.1f} min of training and evaluation summed over "
        "the runs (some may come from earlier invocations; a reused run keeps its numbers)",
        f"- Written {time.strftime('%Y-%m-%d %H:%M:%S')}; every number is in `results.json` "
        "(accuracies in %).",
        "- Same seed, same machine, same numbers: training is deterministic on CPU; clips/s and "
        "wall times are measurements and vary.",
        "",
    ]
    findings = results["findings"]
    if "table1" in results:
        lines += table1_section(results["table1"], figs)
    if "transfer" in results:
        lines += transfer_section(results["transfer"], figs)
    if "camera_motion" in results:
        camera = next(f for f in findings if f["section"] == "camera_motion")
        lines += camera_section(results["camera_motion"], figs, camera)
    lines += findings_section(findings)
    if "table1" in results:
        lines += sample_size_section(results)
    lines += preset_section(results["preset"])
    lines += ["## Data", ""]
    for name, d in results["datasets"].items():
        cfg = d["config"]
        text = cfg if isinstance(cfg, str) else ", ".join(f"{k}={v}" for k, v in cfg.items())
        lines.append(f"- `{name}`: `{d['path']}` ({text})")
    lines += ["", *runs_section(study)]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path
