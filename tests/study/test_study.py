"""`python -m sportsfusion.study` end to end at the smoke preset: report, figures, results.json;
finished runs reused, an interrupted run continued, same seed = same numbers, one-line errors."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from sportsfusion.study import runner
from sportsfusion.study.__main__ import main
from sportsfusion.study.experiments import Study
from sportsfusion.study.findings import (
    HELD,
    INCONCLUSIVE,
    NOT_HELD,
    NOT_RUN,
    camera_findings,
    table1_findings,
    verdict,
)
from sportsfusion.study.presets import PRESETS, TABLE1_ROWS
from sportsfusion.train import check_config

FIGURES = (
    "table1_accuracy",
    "table1_cost",
    "table1_loss",
    "transfer_accuracy",
    "transfer_loss",
    "camera_motion",
    "camera_loss",
)
METRICS = ("clip_hit@1", "video_hit@1", "video_hit@5")


def smoke(out: Path, experiment: str = "all", *extra: str) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main([experiment, "--out", str(out), "--preset", "smoke", "--no-progress", *extra])
    return code, stdout.getvalue(), stderr.getvalue()


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPORTSFUSION_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="module")
def study(cache, tmp_path_factory):
    out = tmp_path_factory.mktemp("study") / "smoke"
    code, printed, _ = smoke(out)
    assert code == 0, printed
    return out, printed


def snapshot(out: Path) -> dict:
    return {
        str(p.relative_to(out)): p.stat().st_mtime_ns
        for p in (out / "runs").rglob("*")
        if p.name in ("last.pt", "summary.json") or p.name.startswith("events.out")
    }


def table1_numbers(out: Path) -> dict:
    rows = json.loads((out / "results.json").read_text())["table1"]["rows"]
    return {k: [r[m] for m in METRICS] for k, r in rows.items()}


def test_smoke_all_writes_report_figures_and_results(study):
    out, printed = study
    n = len(list((out / "runs").iterdir()))
    # per seed (2): single, slow, average; 4 x 3 transfer; 2 x 2 camera (x1 is Table 1's)
    assert n == 2 * (2 + 1 + 12 + 4)
    assert f"[1/{n}] table1/single/seed0: training ..." in printed
    assert "table1/single/seed1: training ..." in printed
    report = (out / "report.md").read_text()
    for heading in (
        "## Table 1",
        "## Table 3",
        "## Camera motion",
        "## The paper's findings",
        "## Preset",
        "## Runs",
        "| Single-Frame |",
        "| Slow Fusion |",
        "| CNN Average |",
        "| Fine-tune top 3 layers |",
        "Machine:",
        "Seeds: 0, 1",
        "## Sample size",
        "Trend test:",
    ):
        assert heading in report, heading
    for name in FIGURES:
        assert (out / f"{name}.png").stat().st_size > 1000, name

    results = json.loads((out / "results.json").read_text())
    assert {
        "study",
        "preset",
        "table1",
        "transfer",
        "camera_motion",
        "findings",
        "runs",
        "datasets",
    } <= set(results)
    rows = results["table1"]["rows"]
    assert list(rows) == ["single", "slow", "average"]
    for r in rows.values():
        assert all(0 <= r[m] <= 100 for m in METRICS)
        assert r["madds"] > 0 and r["forward_clips_per_s"] > 0
    assert rows["single"]["train_clips_per_s"] > 0 and rows["single"]["loss"]
    # the paper-size count is the README's (1,268.1 and 4,525.8 M multiply-adds per clip)
    assert round(rows["single"]["paper_madds"] / 1e6, 1) == 1268.1
    assert round(rows["slow"]["paper_madds"] / 1e6, 1) == 4525.8
    assert rows["average"]["madds"] == rows["single"]["madds"] + rows["slow"]["madds"]
    transfer = results["transfer"]["rows"]
    assert list(transfer) == ["scratch", "softmax", "top3", "all"]
    assert all(sorted(r["per_split"]) == ["1", "2", "3"] for r in transfer.values())
    levels = results["camera_motion"]["levels"]
    assert [e["multiplier"] for e in levels] == [0.0, 1.0, 3.0]
    assert levels[0]["data"]["pan"] == 0 and levels[2]["data"]["shake"] == 3 * 0.5
    assert levels[1]["single"]["runs"] == ["sports-single-seed0", "sports-single-seed1"]
    verdicts = {f["verdict"] for f in results["findings"]}
    assert verdicts <= {HELD, NOT_HELD, INCONCLUSIVE, NOT_RUN} and len(results["findings"]) == 8
    for f in results["findings"]:  # every judged part is paired over both seeds
        assert all(p["seeds"] == 2 and len(p["mcnemar_p"]) == 2 for p in f["paired"])
        assert bool(f["needed"]) == (f["verdict"] == INCONCLUSIVE), f
    per_video = results["table1"]["correct"]["slow"]
    assert len(per_video) == 2 and len(per_video[0]) == results["table1"]["test_videos"]
    assert rows["slow"]["video_hit@1"] == pytest.approx(
        100 * sum(sum(v) / len(v) for v in per_video) / 2, abs=0.01
    )


def test_rerun_reuses_every_finished_run(study, tmp_path):
    out = shutil.copytree(study[0], tmp_path / "smoke")
    before, numbers = snapshot(out), table1_numbers(out)
    code, printed, _ = smoke(out)
    assert code == 0
    assert "training ..." not in printed and printed.count(": reused (") == 38
    assert snapshot(out) == before  # no checkpoint, summary or event file touched
    assert table1_numbers(out) == numbers


def test_interrupted_run_continues_from_its_checkpoint(study, tmp_path):
    out = shutil.copytree(study[0], tmp_path / "smoke")
    numbers = table1_numbers(out)
    run = out / "runs" / "sports-single-seed0"
    (run / "summary.json").unlink()  # as if stopped after its last save
    meta = json.loads((run / "study.json").read_text())
    del meta["record"]
    (run / "study.json").write_text(json.dumps(meta))
    code, printed, _ = smoke(out, "table1")
    assert code == 0
    assert "table1/single/seed0: continuing from last.pt ..." in printed
    assert "table1/slow/seed0: reused" in printed
    assert torch.load(run / "last.pt", weights_only=True)["step"] == PRESETS["smoke"].max_steps
    assert table1_numbers(out) == numbers


def test_same_seed_same_numbers(study, tmp_path):
    code, _, _ = smoke(tmp_path / "again", "table1")
    assert code == 0
    assert table1_numbers(tmp_path / "again") == table1_numbers(study[0])


def test_stop_signal_leaves_a_resumable_study(cache, tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "fit", lambda cfg: 130)  # train.py saved and returned on SIGINT
    code, _, stderr = smoke(tmp_path / "stopped", "table1")
    assert code == 130
    assert stderr.strip().count("\n") == 0 and "re-run the same command" in stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["table1", "--data", "MISSING"], "data set path not found"),
        (["table1", "--seed", "-1"], "--seed"),
        (["camera-motion", "--data", "MISSING"], "camera-motion makes its own"),
        (["table1", "--ucf-data", "MISSING"], "--ucf-data"),
    ],
)
def test_bad_input_is_one_line(tmp_path, capsys, args, message):
    args = [a.replace("MISSING", str(tmp_path / "missing")) for a in args]
    assert main([*args, "--out", str(tmp_path / "out"), "--preset", "smoke"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err


def test_other_configuration_in_the_same_folder_is_refused(study, tmp_path):
    out = shutil.copytree(study[0], tmp_path / "smoke")
    code, _, stderr = smoke(out, "table1", "--device", "cpu")
    assert code == 2 and "another configuration" in stderr and "device" in stderr
    assert stderr.count("\n") == 1


def test_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0 and "camera-motion" in capsys.readouterr().out


@pytest.mark.parametrize("name", list(PRESETS))
def test_presets_build_the_papers_models(name):
    """Every preset's runs are valid train configs, and every Table 1 model builds at its size
    (meta device: no memory, no data)."""
    preset = PRESETS[name]
    study = Study(Path("unused"), preset)
    for key in preset.table1:
        if key == "average":
            continue
        check_config(study.config(lambda: "data", key))
        _, model, multires, stream = TABLE1_ROWS[key]
        madds, _ = runner.multiply_adds(model, multires, stream, preset.input_size, preset.width, 8)
        assert madds > 0
    assert {"single", "slow"} <= set(preset.table1) and len(preset.splits) >= 1
    if name != "smoke":
        assert set(preset.table1) == set(TABLE1_ROWS) and preset.splits == (1, 2, 3)


def test_an_added_seed_trains_only_that_seed(study, tmp_path):
    out = shutil.copytree(study[0], tmp_path / "smoke")
    code, printed, _ = smoke(out, "table1", "--seeds", "3")
    assert code == 0
    trained = [line for line in printed.splitlines() if line.endswith("training ...")]
    assert trained and all("/seed2: " in line for line in trained)
    assert printed.count(": reused (") == 6  # single, slow, average of seeds 0 and 1
    assert "Seeds: 0, 1, 2" in (out / "report.md").read_text()


def test_verdict_rule():
    assert verdict(5, 2) == HELD and verdict(-5, 2) == NOT_HELD and verdict(1, 2) == INCONCLUSIVE
    assert verdict(2, 2) == HELD and verdict(0, 0) == INCONCLUSIVE


def _rows(keys):
    return {k: {"madds": 1.0, "forward_clips_per_s": 1.0} for k in keys}


def test_table1_findings_on_a_hand_table():
    """Slow right on 60 of 100 videos at both seeds, single on 30 (the same 30): +30 points with
    no seed spread, so held; single vs early differ by one video, so inconclusive, with the
    sample size that would decide it."""
    slow = [1] * 60 + [0] * 40
    single = [1] * 30 + [0] * 70
    early = [1] * 29 + [0] * 71
    t1 = {
        "rows": _rows(["single", "slow", "early"]),
        "correct": {"slow": [slow, slow], "single": [single, single], "early": [early, early]},
    }
    findings = {f["claim"].split(",")[0]: f for f in table1_findings(t1)}
    slow_single = findings["Slow fusion beats single-frame"]
    assert slow_single["verdict"] == HELD and slow_single["needed"] == ""
    (p,) = slow_single["paired"]
    # per video the difference is 1 on 30 videos, 0 on 70: sd 0.4606 / sqrt(100), in points
    assert p["difference"] == 30.0 and p["se_seeds"] == 0.0
    assert p["se_videos"] == pytest.approx(100 * np.std([1] * 30 + [0] * 70, ddof=1) / 10)
    early_trails = findings["Early fusion trails both single-frame and slow fusion"]
    assert early_trails["verdict"] == INCONCLUSIVE  # single +1 (inconclusive), slow +31 (held)
    assert (
        early_trails["needed"].startswith("single vs early: ")
        and "test videos" in (early_trails["needed"])
    )
    assert findings["Multires matches the full-frame network at about half the cost"][
        "verdict"
    ] == (NOT_RUN)


def test_camera_trend_on_a_hand_table():
    """Slow's lead falls 40, 20, 0 points over camera x0, x1, x2 on 100 videos: held."""

    def level(m, lead):
        slow = [1] * (50 + lead // 2) + [0] * (50 - lead // 2)
        single = [1] * (50 - lead // 2) + [0] * (50 + lead // 2)
        return {"multiplier": m, "correct": {"slow": [slow], "single": [single]}}

    (f,) = camera_findings({"levels": [level(0, 40), level(1, 20), level(2, 0)]})
    assert f["verdict"] == HELD and f["trend"]["slope"] == pytest.approx(-20.0, abs=0.5)
    assert [round(x["difference"]) for x in f["leads"]] == [40, 20, 0]
    (flat,) = camera_findings({"levels": [level(0, 2), level(1, 0), level(2, 2)]})
    assert flat["verdict"] == INCONCLUSIVE and flat["needed"]
