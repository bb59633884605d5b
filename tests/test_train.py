"""End to end: train, evaluate, bad input, kill + resume, torchrun, transfer learning."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import TINY_MODEL

from sportsfusion import evaluate, train
from sportsfusion.data.formats import load_dataset
from sportsfusion.metrics import read_confusion_csv
from sportsfusion.transfer import init_from_checkpoint


def train_args(data, out, *extra):
    return [
        "--data",
        str(data),
        "--out",
        str(out),
        "--batch-size",
        "4",
        "--workers",
        "0",
        "--no-progress",
        "--eval-clips",
        "2",
        *TINY_MODEL,
        *extra,
    ]


def step_of(path: Path) -> int:
    return torch.load(path, weights_only=True)["step"]


def test_train_then_evaluate(tiny_sports, tmp_path, capsys):
    out = tmp_path / "run"
    assert train.main(train_args(tiny_sports, out, "--model", "slow")) == 0
    printed = capsys.readouterr().out
    assert "clip hit@1" in printed and "video hit@5" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] >= 1 and 0 <= summary["video_hit@1"] <= 1
    assert list(out.glob("events.out.tfevents.*")), "TensorBoard scalars missing"
    state = torch.load(out / "last.pt", weights_only=True)
    assert state["arch"]["name"] == "slow" and state["arch"]["multires"]
    assert {"model", "optimizer", "step", "epoch", "classes", "arch"} <= set(state)

    report = tmp_path / "eval.json"
    args = [
        "--checkpoint",
        str(out / "last.pt"),
        "--data",
        str(tiny_sports),
        "--clips-per-video",
        "3",
        "--crops",
        "4",
        "--json",
        str(report),
        "--workers",
        "0",
        "--no-progress",
    ]
    assert evaluate.main(args) == 0
    m = json.loads(report.read_text())
    assert {"clip_hit@1", "video_hit@1", "video_hit@5", "videos", "skipped"} <= set(m)
    assert m["videos"] == len(load_dataset(tiny_sports).test) and m["skipped"] == 0
    correct = [c for c in m["video_correct"] if c is not None]  # what paired tests read
    assert len(correct) == m["videos"] and sum(correct) / len(correct) == m["video_hit@1"]
    assert m["video_hit@5"] == 1.0  # 3 classes: every label is in the top 5
    assert report.with_suffix(".confusion.png").stat().st_size > 0
    classes, cm = read_confusion_csv(report.with_suffix(".confusion.csv"))
    assert m["confusion_csv"] == "eval.confusion.csv" and m["classes"] == classes
    assert m["confusion"] == cm.tolist() and cm.sum() == m["videos"]  # 3 classes: in the JSON too


def test_cnn_average_of_two_checkpoints(tiny_sports, tmp_path):
    for name in ("single", "late"):
        assert (
            train.main(
                train_args(tiny_sports, tmp_path / name, "--model", name, "--eval-clips", "0")
            )
            == 0
        )
    report = tmp_path / "avg.json"
    args = [
        "--checkpoint",
        str(tmp_path / "single/last.pt"),
        str(tmp_path / "late/last.pt"),
        "--data",
        str(tiny_sports),
        "--clips-per-video",
        "2",
        "--json",
        str(report),
        "--workers",
        "0",
        "--no-progress",
    ]
    assert evaluate.main(args) == 0
    assert json.loads(report.read_text())["checkpoints"][1].endswith("late/last.pt")


def damage(root: Path) -> dict[str, str]:
    """Break one training video of each kind; returns file name -> expected reason."""
    index = load_dataset(root)
    files = [Path(e.path) for e in index.train]
    files[0].write_bytes(b"")
    files[1].write_bytes(b"this is not a video at all" * 40)
    files[2].unlink()
    data = files[3].read_bytes()
    files[3].write_bytes(data[: len(data) // 8])
    return {
        files[0].name: "empty file",
        files[1].name: "",
        files[2].name: "missing",
        files[3].name: "",
    }


def test_bad_videos_are_skipped_and_counted(sports_copy, tmp_path, capsys):
    broken = damage(sports_copy)
    out = tmp_path / "run"
    assert train.main(train_args(sports_copy, out, "--epochs", "2", "--batch-size", "2")) == 0
    err = capsys.readouterr().err
    for name, reason in broken.items():
        line = next((x for x in err.splitlines() if name in x), None)
        assert line is not None, f"no warning names {name}"
        assert reason in line
    summary = json.loads((out / "summary.json").read_text())
    assert summary["skipped_videos"] >= 2 and summary["missing_videos"] == 1


def test_strict_fails_naming_the_file(sports_copy, tmp_path, capsys):
    broken = damage(sports_copy)
    code = train.main(train_args(sports_copy, tmp_path / "run", "--strict"))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("error: ")
    assert any(name in err[-1] for name in broken)


def run_cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, **kw)


def test_sigterm_saves_and_resume_continues_at_the_saved_step(tiny_sports, tmp_path):
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "sportsfusion.train",
        *train_args(tiny_sports, out, "--epochs", "1000", "--ckpt-every", "1"),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (out / "last.pt").exists():
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "SIGTERM: stopped at step" in err
    saved = step_of(out / "last.pt")
    assert saved >= 1
    resumed = run_cli(
        "sportsfusion.train",
        *train_args(
            tiny_sports, out, "--epochs", "1000", "--resume", "--max-steps", str(saved + 3)
        ),
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"at step {saved}" in resumed.stderr
    assert step_of(out / "last.pt") == saved + 3


def test_existing_run_is_never_overwritten(tiny_sports, tmp_path, capsys):
    out = tmp_path / "run"
    assert train.main(train_args(tiny_sports, out, "--max-steps", "1", "--eval-clips", "0")) == 0
    before = (out / "last.pt").read_bytes()
    assert train.main(train_args(tiny_sports, out, "--max-steps", "1")) == 2
    assert "pass --resume" in capsys.readouterr().err
    assert (out / "last.pt").read_bytes() == before


@pytest.mark.slow
def test_torchrun_two_processes_gloo(tiny_sports, tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = run_cli(
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--master-port",
        "29517",
        "-m",
        "sportsfusion.train",
        *train_args(
            tiny_sports,
            out,
            "--batch-size",
            "2",
            "--max-steps",
            "2",
            "--epochs",
            "9",
            "--model",
            "slow",
            "--no-multires",
        ),
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "2 process(es)" in done.stderr
    assert step_of(out / "last.pt") == 2


FROZEN_BY = {
    "softmax": ["head.fc7.weight", "head.fc6.weight", "towers.fovea.conv1.0.weight"],
    "top3": ["towers.fovea.conv5.0.weight", "towers.fovea.conv1.0.weight"],
    "all": [],
}
TRAINED_BY = {
    "softmax": ["head.fc8.weight"],
    "top3": ["head.fc8.weight", "head.fc7.weight", "head.fc6.weight"],
    "all": ["head.fc8.weight", "head.fc6.weight", "towers.fovea.conv1.0.weight"],
}


@pytest.mark.parametrize("layers", list(FROZEN_BY))
def test_transfer_trains_only_the_chosen_layers(tiny_sports, tiny_ucf, tmp_path, layers):
    pre = tmp_path / "pre"
    assert train.main(train_args(tiny_sports, pre, "--max-steps", "2", "--eval-clips", "0")) == 0
    classes = len(load_dataset(tiny_ucf).classes)
    torch.manual_seed(0)  # the trainer seeds the same way, so this is its starting point
    start = init_from_checkpoint(str(pre / "last.pt"), classes, 0.5)[0].state_dict()
    out = tmp_path / layers
    assert (
        train.main(
            train_args(
                tiny_ucf,
                out,
                "--init",
                str(pre / "last.pt"),
                "--train-layers",
                layers,
                "--max-steps",
                "3",
                "--lr",
                "0.05",
            )
        )
        == 0
    )
    state = torch.load(out / "last.pt", weights_only=True)
    assert state["arch"]["num_classes"] == classes
    for key in TRAINED_BY[layers]:
        assert not torch.equal(start[key], state["model"][key]), f"{key} should train"
    for key in FROZEN_BY[layers]:
        assert torch.equal(start[key], state["model"][key]), f"{key} should stay frozen"


def test_cli_errors_are_one_line(tmp_path, tiny_sports):
    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(b"\x00garbage")
    for cmd in (
        ["sportsfusion.evaluate", "--checkpoint", str(bad), "--data", str(tiny_sports)],
        ["sportsfusion.train", "--data", str(tmp_path / "nowhere")],
        ["sportsfusion.train", "--train-layers", "top3", "--data", str(tiny_sports)],
    ):
        done = run_cli(*cmd)
        assert done.returncode == 2
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "module", ["sportsfusion.train", "sportsfusion.evaluate", "sportsfusion.data.synthetic"]
)
def test_help(module):
    done = run_cli(module, "--help")
    assert done.returncode == 0 and "usage:" in done.stdout


def test_resume_refuses_a_different_sampler_and_takes_the_new_lr(tiny_sports, tmp_path, capsys):
    out = tmp_path / "run"
    assert train.main(train_args(tiny_sports, out, "--max-steps", "1", "--eval-clips", "0")) == 0
    code = train.main(train_args(tiny_sports, out, "--resume", "--batch-size", "2"))
    assert code == 2 and "would repeat or skip clips" in capsys.readouterr().err
    args = train_args(tiny_sports, out, "--resume", "--max-steps", "2", "--lr", "0.0123")
    assert train.main([*args, "--eval-clips", "0"]) == 0
    state = torch.load(out / "last.pt", weights_only=True)
    assert state["step"] == 2
    assert state["optimizer"]["param_groups"][0]["lr"] == 0.0123


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--batch-size", "0"], "--batch-size must be at least 1"),
        (["--ckpt-every", "0"], "--ckpt-every must be at least 1"),
        (["--log-every", "0"], "--log-every must be at least 1"),
        (["--input-size", "9"], "--input-size 9 is too small"),
    ],
)
def test_bad_flags_are_one_line_errors(tiny_sports, tmp_path, capsys, flags, message):
    assert train.main([*train_args(tiny_sports, tmp_path / "run"), *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and message in err[-1]
