"""The study's PNG figures (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from sportsfusion.study.findings import (  # noqa: E402
    PAPER_TABLE1,
    PAPER_TABLE3,
    TRANSFER_LABELS,
    camera_lead,
)

METRICS = ("clip_hit@1", "video_hit@1", "video_hit@5")
COLORS = ("tab:blue", "tab:orange", "tab:green")


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def table1_accuracy(t1: dict, path: Path) -> Path:
    """Bars: this study's clip/video hit@1 and video hit@5 per model; dots: the paper's."""
    keys = list(t1["rows"])
    x = np.arange(len(keys))
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(keys) + 2), 4.2))
    for i, (metric, color) in enumerate(zip(METRICS, COLORS)):
        ours = [t1["rows"][k][metric] for k in keys]
        spread = [t1["rows"][k][f"{metric}_sd"] for k in keys]  # over seeds
        ax.bar(x + (i - 1) * 0.27, ours, 0.27, yerr=spread, capsize=2, color=color,
               label=f"{metric} (this study, ± sd over seeds)")  # fmt: skip
        paper = [PAPER_TABLE1[k][i] for k in keys]
        ax.scatter(
            x + (i - 1) * 0.27,
            paper,
            marker="_",
            s=160,
            color="black",
            zorder=3,
            label="paper (Sports-1M)" if i == 0 else None,
        )
    ax.set_xticks(x, [t1["rows"][k]["label"].replace(" ", "\n", 1) for k in keys], fontsize=8)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"Table 1: accuracy per model ({t1['test_videos']} test videos)")
    ax.legend(fontsize=8, ncol=2)
    return _save(fig, path)


def _minor_label(x: float, _) -> str:
    """Label the 2s and 5s between powers of ten, like a log-paper axis."""
    lead = x / 10 ** np.floor(np.log10(x) + 1e-9)
    return f"{x:g}" if round(lead) in (2, 5) and abs(lead - round(lead)) < 1e-6 else ""


def table1_cost(t1: dict, path: Path) -> Path:
    """Accuracy against multiply-adds per clip (log scale), one labelled point per model."""
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for metric, color, marker in (
        ("clip_hit@1", "tab:blue", "o"),
        ("video_hit@1", "tab:orange", "s"),
    ):
        pts = [(r["madds"] / 1e6, r[metric], k) for k, r in t1["rows"].items()]
        ax.scatter(
            [p[0] for p in pts], [p[1] for p in pts], color=color, marker=marker, label=metric
        )
        if metric == "clip_hit@1":
            for mx, acc, k in pts:
                ax.annotate(k, (mx, acc), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
    ax.xaxis.set_minor_formatter(FuncFormatter(_minor_label))
    ax.set_xlabel("M multiply-adds per clip (this study's input size and width)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("Table 1: accuracy against cost")
    ax.legend(fontsize=8)
    return _save(fig, path)


def losses(curves: dict[str, list], path: Path, title: str) -> Path:
    """Training loss per step of each run (faint: raw; solid: exponential moving average). A
    label's first word picks the colour, the rest the line style ("top3 split 2", "slow x3")."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    cmap = plt.get_cmap("tab10")
    colors = list(dict.fromkeys(label.split(" ", 1)[0] for label in curves))
    styles = list(dict.fromkeys(label.partition(" ")[2] for label in curves))
    for label, curve in curves.items():
        if not curve:
            continue
        head, _, rest = label.partition(" ")
        color = cmap(colors.index(head) % cmap.N)
        style = ("-", "--", ":", "-.")[styles.index(rest) % 4]
        steps, values = np.array(curve).T
        smooth, ema = [], values[0]
        for v in values:
            ema = 0.8 * ema + 0.2 * v
            smooth.append(ema)
        ax.plot(steps, values, color=color, alpha=0.2, linewidth=0.7, linestyle=style)
        ax.plot(steps, smooth, color=color, label=label, linewidth=1.4, linestyle=style)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (cross-entropy)")
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2)
    return _save(fig, path)


def transfer_accuracy(tr: dict, path: Path) -> Path:
    """Mean video hit@1 over splits per approach (bars), each split (dots), the paper (dash)."""
    keys = list(tr["rows"])
    x = np.arange(len(keys))
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    means = [tr["rows"][k]["mean_video_hit@1"] for k in keys]
    ax.bar(x, means, 0.55, color="tab:blue", label="mean video hit@1 over splits")
    for i, k in enumerate(keys):
        per = [s["video_hit@1"] for s in tr["rows"][k]["per_split"].values()]
        ax.scatter(
            [i] * len(per),
            per,
            color="black",
            s=12,
            zorder=3,
            label="one split" if i == 0 else None,
        )
    ax.scatter(
        x,
        [PAPER_TABLE3[k] for k in keys],
        marker="_",
        s=400,
        color="tab:red",
        zorder=4,
        label="paper (UCF-101)",
    )
    ax.set_xticks(x, [TRANSFER_LABELS[k] for k in keys], fontsize=8)
    ax.set_ylim(0, 100)
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"Table 3: transfer to the ucf set, splits {tr['splits']}")
    ax.legend(fontsize=8)
    return _save(fig, path)


def camera_motion(cm: dict, path: Path) -> Path:
    """Video hit@1 of single-frame and slow fusion against camera-motion strength (± sd over
    seeds), and slow fusion's paired lead with its 95% interval."""
    levels = cm["levels"]
    xs = [e["multiplier"] for e in levels]
    fig, (ax, gap) = plt.subplots(1, 2, figsize=(10, 4))
    for key, color in (("single", "tab:blue"), ("slow", "tab:orange")):
        ys = [e[key]["video_hit@1"] for e in levels]
        sd = [e[key]["video_hit@1_sd"] for e in levels]
        ax.errorbar(xs, ys, yerr=sd, fmt="o-", capsize=3, color=color, label=key)
    ax.set_xlabel("camera motion (x the preset's pan, zoom and shake)")
    ax.set_ylabel("video hit@1 (%)")
    ax.set_ylim(0, 100)
    ax.legend()
    ax.set_title("accuracy against camera motion")
    leads = [camera_lead(e) for e in levels]
    gap.axhline(0, color="grey", linewidth=0.8)
    gap.errorbar(xs, [p.difference for p in leads], yerr=[p.margin for p in leads], fmt="o-",
                 capsize=3, color="tab:green")  # fmt: skip
    gap.set_xlabel("camera motion (x the preset's pan, zoom and shake)")
    gap.set_ylabel("slow - single, video hit@1 (points, 95%)")
    gap.set_title("slow fusion's paired lead")
    return _save(fig, path)
