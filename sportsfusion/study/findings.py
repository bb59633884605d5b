"""The paper's findings, each checked against the study's numbers with one stated rule.

Rule: a difference d between two accuracies (percentage points) counts when |d| >= margin,
margin = max(2 points, 2 standard errors), the standard error of a difference of accuracies p1,
p2 measured on N test videos being 100 * sqrt((p1 (1 - p1) + p2 (1 - p2)) / N) (unpaired, so
conservative; clip hit@1 also uses N videos, as clips of one video are not independent). A claim
"A beats B" held when d >= margin, did not hold when d <= -margin, and is inconclusive otherwise.
"""

from __future__ import annotations

import math

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


def margin(accuracies: list[float], n: int) -> float:
    """Points a difference between these accuracies (in %) must reach on n test videos."""
    var = sum((a / 100) * (1 - a / 100) for a in accuracies)
    return max(2.0, 200 * math.sqrt(var / max(n, 1)))


def verdict(d: float, m: float) -> str:
    return HELD if d >= m else NOT_HELD if d <= -m else INCONCLUSIVE


def _finding(claim: str, paper: str, here: str, result: str) -> dict:
    return {"claim": claim, "paper": paper, "here": here, "verdict": result}


def _combine(verdicts: list[str]) -> str:
    """All parts held: held; any part refuted: did not hold; otherwise inconclusive."""
    if all(x == HELD for x in verdicts):
        return HELD
    return NOT_HELD if NOT_HELD in verdicts else INCONCLUSIVE


def _beats(rows: dict, a: str, others: list[str], n: int) -> tuple[str, str]:
    """Verdict of "a beats every one of others" on video hit@1, and the differences as text."""
    parts, texts = [], []
    for o in others:
        d = rows[a]["video_hit@1"] - rows[o]["video_hit@1"]
        m = margin([rows[a]["video_hit@1"], rows[o]["video_hit@1"]], n)
        parts.append(verdict(d, m))
        texts.append(f"{d:+.1f} vs {o} (margin {m:.1f})")
    return _combine(parts), "; ".join(texts)


def _all_beat(rows: dict, winners: list[str], loser: str, n: int) -> tuple[str, str]:
    both = [_beats(rows, w, [loser], n) for w in winners]
    return _combine([b[0] for b in both]), "; ".join(f"{w} {b[1]}" for w, b in zip(winners, both))


def table1_findings(t1: dict) -> list[dict]:
    rows, n = t1["rows"], t1["test_videos"]
    out = []

    def check(claim, paper, needs, fn):
        if all(k in rows for k in needs):
            out.append(_finding(claim, paper, *fn()))
        else:
            out.append(_finding(claim, paper, f"needs {', '.join(needs)} (preset)", NOT_RUN))

    def v(k):
        return rows[k]["video_hit@1"]

    def slow_single():
        d, m = v("slow") - v("single"), margin([v("slow"), v("single")], n)
        return f"{v('slow'):.1f} vs {v('single'):.1f} ({d:+.1f}, margin {m:.1f})", verdict(d, m)

    def early_trails():
        return _all_beat(rows, ["single", "slow"], "early", n)[::-1]

    def multires():
        d, m = v("multires") - v("single"), margin([v("multires"), v("single")], n)
        ratio = rows["multires"]["madds"] / rows["single"]["madds"]
        fwd = rows["multires"]["forward_clips_per_s"] / rows["single"]["forward_clips_per_s"]
        result = NOT_HELD if d <= -m or ratio > 0.75 else HELD if ratio <= 0.6 else INCONCLUSIVE
        text = (
            f"{v('multires'):.1f} vs {v('single'):.1f} ({d:+.1f}, margin {m:.1f}); "
            f"{ratio:.2f}x the multiply-adds, {fwd:.2f}x the forward clips/s"
        )
        return text, result

    def average():
        others = [k for k in rows if k != "average"]
        result, text = _beats(rows, "average", others, n)
        return text, result

    def streams():
        result, _ = _beats(rows, "multires", ["fovea", "context"], n)
        return ", ".join(f"{k} {v(k):.1f}" for k in ("fovea", "context", "multires")), result

    check(
        "Slow fusion beats single-frame, by a little",
        "60.9 vs 59.3 (+1.6)",
        ["slow", "single"],
        slow_single,
    )
    check(
        "Early fusion trails both single-frame and slow fusion",
        "57.7 vs 59.3 and 60.9",
        ["early", "single", "slow"],
        early_trails,
    )
    check(
        "Multires matches the full-frame network at about half the cost",
        "60.0 vs 59.3; 0.57x the multiply-adds",
        ["multires", "single"],
        multires,
    )
    check(
        "The CNN average beats every single model",
        "63.9 vs best 60.9",
        ["average", "single", "slow"],
        average,
    )
    check(
        "Fovea-only and context-only each trail the two-stream multires network",
        "49.9 and 56.0 vs 60.0",
        ["fovea", "context", "multires"],
        streams,
    )
    return out


def transfer_findings(tr: dict) -> list[dict]:
    n = tr["test_videos"]
    rows = {k: {"video_hit@1": r["mean_video_hit@1"]} for k, r in tr["rows"].items()}
    result, text = _beats(rows, "top3", ["softmax", "all", "scratch"], n)
    out = [
        _finding(
            "On UCF-101, fine-tuning the top 3 layers beats top layer, all and scratch",
            "65.4 vs 64.1, 62.2, 41.3",
            f"top3 {text}",
            result,
        )
    ]
    result, text = _all_beat(rows, ["softmax", "top3", "all"], "scratch", n)
    out.append(
        _finding(
            "Pretraining on sports beats training from scratch (every variant)",
            "62.2-65.4 vs 41.3",
            text,
            result,
        )
    )
    return out


def camera_findings(cm: dict) -> list[dict]:
    levels, n = cm["levels"], cm["test_videos"]
    claim = "Camera motion explains the small temporal gain: slow's lead over single shrinks"
    paper = "suggested (Table 2: slow loses on camera-motion classes)"
    if len(levels) < 2:
        return [_finding(claim, paper, "needs two camera levels", NOT_RUN)]
    lo, hi = levels[0], levels[-1]
    accs = [e[k]["clip_hit@1"] for e in (lo, hi) for k in ("single", "slow")]
    d, m = lo["gap_clip_hit@1"] - hi["gap_clip_hit@1"], margin(accs, n)
    gaps = ", ".join(f"x{e['multiplier']:g} {e['gap_clip_hit@1']:+.1f}" for e in levels)
    here = (
        f"slow - single clip hit@1: {gaps}; from x{lo['multiplier']:g} to x{hi['multiplier']:g} "
        f"it changes by {-d:+.1f} (margin {m:.1f})"
    )
    return [_finding(claim, paper, here, verdict(d, m))]


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
