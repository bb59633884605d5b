"""The paper's findings, each checked against the study's numbers with one stated rule.

Rule: comparisons are paired. Every model is evaluated on the same test videos, once per
training seed, so a claim "A beats B" is judged on the per-video results themselves: d is the
mean over seeds of A's video hit@1 minus B's on the same videos (points), and its standard error
adds the test sampling (the spread over videos of the seed-averaged paired difference) and the
training noise (the spread of the per-seed differences over the seeds), a little conservative.
The claim held when d >= 1.96 SE (the margin: a 95% interval above 0), did not hold when
d <= -1.96 SE, and is inconclusive otherwise; an inconclusive finding says how many test videos
(at the same seeds), or how many seeds (at the same videos), a two-sided 5% test needs for 80%
power at the observed d. Each seed's exact McNemar p is kept in results.json. A finding with
several parts held when all held, did not hold when one did not, and is inconclusive otherwise.
"""

from __future__ import annotations

from sportsfusion.study.paired import (
    Paired,
    paired_over_seeds,
    sample_needed,
    sample_scale,
    trend,
)

PAPER_TABLE1 = {  # paper-facts §6, Table 1: clip hit@1, video hit@1, video hit@5 (%)
    "single": (41.1, 59.3, 77.7),
    "multires": (42.4, 60.0, 78.5),
    "fovea": (30.0, 49.9, 72.8),
    "context": (38.1, 56.0, 77.2),
    "early": (38.9, 57.7, 76.8),
    "late": (40.7, 59.3, 78.7),
    "slow": (41.9, 60.9, 80.2),
    "average": (41.4, 63.9, 82.4),
}
PAPER_TABLE3 = {"scratch": 41.3, "softmax": 64.1, "top3": 65.4, "all": 62.2}  # 3-fold accuracy
TRANSFER_LABELS = {
    "scratch": "Train from scratch",
    "softmax": "Fine-tune top layer",
    "top3": "Fine-tune top 3 layers",
    "all": "Fine-tune all layers",
}
HELD, NOT_HELD, INCONCLUSIVE, NOT_RUN = "held", "did not hold", "inconclusive", "not run"
RULE = __doc__.split("\n\n", 1)[1].strip()


def verdict(d: float, margin: float) -> str:
    """HELD, NOT_HELD or INCONCLUSIVE for a difference d (A - B) and its 95% margin."""
    if d > 0 and d >= margin:
        return HELD
    return NOT_HELD if d < 0 and -d >= margin else INCONCLUSIVE


def compare(correct: dict, a: str, b: str) -> Paired:
    """A vs B from {key: [per-video 0/1 (None: not scored) per seed]}; a video counts only where
    every run scored it."""
    runs = correct[a] + correct[b]
    keep = [v for v in range(len(runs[0])) if all(r[v] is not None for r in runs)]
    pick = [[r[v] for v in keep] for r in runs]
    return paired_over_seeds(pick[: len(correct[a])], pick[len(correct[a]) :])


def needed_text(p: Paired) -> str:
    """What would decide A vs B at the observed difference (sample_needed), in words."""
    videos, seeds = sample_needed(p)
    if p.difference == 0:
        return "no difference observed: no sample size decides it"
    if videos is None and seeds is None:  # each alone is not enough: scale both
        return f"about {sample_scale(p.se, p.difference):,.0f}x both the test videos and the seeds"
    options = [f"{videos:,} test videos at {p.seeds} seeds" if videos else ""]
    options.append(f"{seeds} seeds at {p.videos:,} videos" if seeds else "")
    return " or ".join(o for o in options if o)


def _part(correct: dict, a: str, b: str, named: bool) -> dict:
    """One comparison A vs B: verdict, text, what would decide it, the statistics."""
    p = compare(correct, a, b)
    seeds = ", ".join(f"{d:+.1f}" for d in p.per_seed)
    head = f"{a} " if named else ""
    return {
        "name": f"{a} vs {b}",
        "verdict": verdict(p.difference, p.margin),
        "text": f"{head}{p.difference:+.1f} ± {p.margin:.1f} vs {b} (per seed {seeds})",
        "needed": needed_text(p),
        "paired": {"a": a, "b": b, **p.__dict__, "margin": p.margin},
    }


def _beats(correct: dict, winners: list[str], losers: list[str]) -> list[dict]:
    return [_part(correct, w, lo, len(winners) > 1) for w in winners for lo in losers]


def _finding(claim: str, paper: str, here: str, result: str, parts=()) -> dict:
    """A finding; an inconclusive one says what would decide each of its open parts."""
    open_parts = [p for p in parts if p["verdict"] == INCONCLUSIVE]
    needed = "; ".join(f"{p['name']}: {p['needed']}" for p in open_parts)
    return {
        "claim": claim,
        "paper": paper,
        "here": here,
        "verdict": result,
        "needed": needed if result == INCONCLUSIVE else "",
        "paired": [p["paired"] for p in parts],
    }


def _combined(claim: str, paper: str, parts: list[dict], prefix: str = "") -> dict:
    """All parts held: held; any part refuted: did not hold; otherwise inconclusive."""
    verdicts = [p["verdict"] for p in parts]
    if all(v == HELD for v in verdicts):
        result = HELD
    else:
        result = NOT_HELD if NOT_HELD in verdicts else INCONCLUSIVE
    return _finding(claim, paper, prefix + "; ".join(p["text"] for p in parts), result, parts)


def table1_findings(t1: dict) -> list[dict]:
    rows, correct = t1["rows"], t1["correct"]

    def missing(needs):
        return [k for k in needs if k not in rows]

    def multires(claim, paper):
        # "matches" is not "beats": it fails when multires is worse beyond the margin, or costs
        # more than 0.75x; it holds at <= 0.6x the multiply-adds (the paper's 0.57x)
        part = _part(correct, "multires", "single", False)
        ratio = rows["multires"]["madds"] / rows["single"]["madds"]
        fwd = rows["multires"]["forward_clips_per_s"] / rows["single"]["forward_clips_per_s"]
        result = (
            NOT_HELD
            if part["verdict"] == NOT_HELD or ratio > 0.75
            else (HELD if ratio <= 0.6 else INCONCLUSIVE)
        )
        text = f"{part['text']}; {ratio:.2f}x the multiply-adds, {fwd:.2f}x the forward clips/s"
        return _finding(claim, paper, text, result, [part])

    others = [k for k in rows if k != "average"]
    checks = [
        ("Slow fusion beats single-frame, by a little", "60.9 vs 59.3 (+1.6)",
         ["slow", "single"], lambda c, p: _combined(c, p, _beats(correct, ["slow"], ["single"]))),
        ("Early fusion trails both single-frame and slow fusion", "57.7 vs 59.3 and 60.9",
         ["early", "single", "slow"],
         lambda c, p: _combined(c, p, _beats(correct, ["single", "slow"], ["early"]))),
        ("Multires matches the full-frame network at about half the cost",
         "60.0 vs 59.3; 0.57x the multiply-adds", ["multires", "single"], multires),
        ("The CNN average beats every single model", "63.9 vs best 60.9",
         ["average", "single", "slow"],
         lambda c, p: _combined(c, p, _beats(correct, ["average"], others))),
        ("Fovea-only and context-only each trail the two-stream multires network",
         "49.9 and 56.0 vs 60.0", ["fovea", "context", "multires"],
         lambda c, p: _combined(c, p, _beats(correct, ["multires"], ["fovea", "context"]))),
    ]  # fmt: skip
    out = []
    for claim, paper, needs, judge in checks:
        if missing(needs):
            out.append(_finding(claim, paper, f"needs {', '.join(needs)} (preset)", NOT_RUN))
        else:
            out.append(judge(claim, paper))
    return out


def transfer_findings(tr: dict) -> list[dict]:
    correct = tr["correct"]
    top3 = _beats(correct, ["top3"], ["softmax", "all", "scratch"])
    pretrained = _beats(correct, ["softmax", "top3", "all"], ["scratch"])
    return [
        _combined(
            "On UCF-101, fine-tuning the top 3 layers beats top layer, all and scratch",
            "65.4 vs 64.1, 62.2, 41.3",
            top3,
            prefix="top3 ",
        ),
        _combined(
            "Pretraining on sports beats training from scratch (every variant)",
            "62.2-65.4 vs 41.3",
            pretrained,
        ),
    ]


def camera_lead(level: dict) -> Paired:
    """Slow fusion's paired lead over single-frame (video hit@1) at one camera level."""
    return compare(level["correct"], "slow", "single")


def camera_findings(cm: dict) -> list[dict]:
    levels = cm["levels"]
    claim = "Camera motion explains the small temporal gain: slow's lead over single shrinks"
    paper = "suggested (Table 2: slow loses on camera-motion classes)"
    if len({e["multiplier"] for e in levels}) < 2:
        return [_finding(claim, paper, "needs two camera levels", NOT_RUN)]
    leads = [camera_lead(e) for e in levels]
    t = trend([e["multiplier"] for e in levels], leads)
    per_level = ", ".join(
        f"x{e['multiplier']:g} {p.difference:+.1f} ± {p.margin:.1f}" for e, p in zip(levels, leads)
    )
    here = (
        f"slow - single video hit@1: {per_level}; trend {t.slope:+.2f} ± {t.margin:.2f} points "
        "per unit of camera multiplier"
    )
    # "shrinks" is a negative slope: held when the slope's 95% interval lies below 0
    result = verdict(-t.slope, t.margin)
    finding = _finding(claim, paper, here, result)
    if result == INCONCLUSIVE:  # the slope's SE scales as 1 / sqrt(videos and seeds per level)
        scale = sample_scale(t.se, t.slope)
        finding["needed"] = (
            f"about {scale:,.1f}x both the test videos and the seeds per level"
            if scale
            else "no trend observed: no sample size decides it"
        )
    leads_json = [{"multiplier": e["multiplier"], **p.__dict__, "margin": p.margin}
                  for e, p in zip(levels, leads)]  # fmt: skip
    return [{**finding, "trend": {**t.__dict__, "margin": t.margin}, "leads": leads_json}]


def all_findings(results: dict) -> list[dict]:
    out = []
    for key, fn in (
        ("table1", table1_findings),
        ("transfer", transfer_findings),
        ("camera_motion", camera_findings),
    ):
        if key in results:
            out.extend(dict(f, section=key) for f in fn(results[key]))
    return out
