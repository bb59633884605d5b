"""The DALI loader (`--dali`): same batches as the PyAV DataLoader, on DALI's CPU backend.

Small VP9 sets generated here (DALI's CPU decoder reads VP8/VP9/MJPEG only); the GPU backend
(NVDEC, CUDA outputs) is covered by the tests marked `gpu`.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("nvidia.dali", reason="NVIDIA DALI is not installed: pip install -e .[dali]")

from conftest import TINY_MODEL  # noqa: E402
from videos import (  # noqa: E402
    BAD_REASONS,
    position_frames,
    write_bad_videos,
    write_index_video,
    write_video,
)

from sportsfusion import distributed as dist  # noqa: E402
from sportsfusion import evaluate, train  # noqa: E402
from sportsfusion.data import dali  # noqa: E402
from sportsfusion.data.formats import VideoEntry, load_dataset  # noqa: E402
from sportsfusion.data.loader import (  # noqa: E402
    clip_loader,
    make_eval_loader,
    make_train_loader,
    probe_split,
)
from sportsfusion.data.sampling import ClipDataset, probe_entries  # noqa: E402
from sportsfusion.data.transforms import short_side_for  # noqa: E402

pytestmark = pytest.mark.dali


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """The probe cache and path links of each test live in its own folder."""
    monkeypatch.setenv("SPORTSFUSION_CACHE", str(tmp_path / "cache"))


def tiny_dataset(root, *, train=True, frames=4, spacing=2, size=48, **kwargs) -> ClipDataset:
    index = load_dataset(str(root))
    entries = index.train if train else index.test
    entries, infos, _ = probe_entries(entries, (frames - 1) * spacing + 1)
    return ClipDataset(
        entries,
        infos,
        len(index.classes),
        frames,
        spacing,
        train=train,
        size=size,
        short_side=short_side_for(size),
        **kwargs,
    )


# DALI converts YUV 4:2:0 to RGB with bilinear chroma, rounded; the PyAV loader asks swscale for
# the same (decode._rgb_interpolation). The bound: under 2 grey levels of mean absolute
# difference. (swscale's default conversion was 2.6 levels away on these sets.)
PYAV_TOLERANCE = 2.0


def mad(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.float() - b.float()).abs().mean().item()


def test_batches_match_the_pyav_loader(tiny_sports):
    """Same batch dict keys, items, targets, order and (nearly) pixels as collate_clips."""
    dataset = tiny_dataset(tiny_sports, seed=3)
    sampler = dist.ShardedSampler(len(dataset), 4, dist.DistInfo(), seed=3)
    sampler.set_epoch(1)
    dataset.set_epoch(1)
    ours = make_train_loader(dataset, 4, 2, sampler, dali=True, device="cpu")
    theirs = clip_loader(dataset, 4, 0, sampler)
    got, want = list(ours), list(theirs)
    assert len(got) == len(ours) == len(want) == sampler.batches_per_epoch
    for a, b in zip(got, want):
        assert type(a) is type(b)  # one batch contract (sampling.ClipBatch) for both loaders
        assert a.clips.shape == b.clips.shape == (4, 4, 48, 48, 3)
        assert a.clips.dtype == torch.uint8 and a.clips.device.type == "cpu"
        for key in ("videos", "clip_indices", "crop_indices", "targets"):
            assert torch.equal(getattr(a, key), getattr(b, key)), key
        assert a.skipped == []
        assert mad(a.clips, b.clips) < PYAV_TOLERANCE


def test_eval_items_in_order_with_a_partial_last_batch(tiny_sports):
    dataset = tiny_dataset(tiny_sports, train=False, clips_per_video=3, crops=4)
    loader = make_eval_loader(dataset, 5, 1, dali=True, device="cpu")
    batches = list(loader)
    assert len(batches) == len(loader) == -(-len(dataset) // 5)
    keys = torch.cat([torch.stack([b.videos, b.clip_indices, b.crop_indices], 1) for b in batches])
    plans = [dataset.plan(i) for i in range(len(dataset))]
    assert keys.tolist() == [[p.video, p.clip_index, p.crop_index] for p in plans]
    assert sum(len(b.clips) for b in batches) == len(dataset)


def test_sharded_and_resumed_epochs(tiny_sports):
    """Two ranks get disjoint, equally long shares; a resumed epoch is the epoch's tail."""
    dataset = tiny_dataset(tiny_sports, frames=1, spacing=1, seed=5)
    shares = []
    for rank in range(2):
        info = dist.DistInfo(rank, 2, rank)
        sampler = dist.ShardedSampler(len(dataset), 2, info, seed=5)
        sampler.set_epoch(0)
        shares.append(list(dali.DaliClipLoader(dataset, 2, sampler)))
    assert len(shares[0]) == len(shares[1]) == len(dataset) // 2 // 2
    items = [torch.cat([b.videos for b in share]).tolist() for share in shares]
    assert not set(items[0]) & set(items[1])

    sampler = dist.ShardedSampler(len(dataset), 2, dist.DistInfo(), seed=5)
    full = list(dali.DaliClipLoader(dataset, 2, sampler))
    sampler.set_epoch(0, skip_batches=2)
    tail = list(dali.DaliClipLoader(dataset, 2, sampler))
    assert len(tail) == len(full) - 2
    for a, b in zip(tail, full[2:]):
        assert torch.equal(a.videos, b.videos) and torch.equal(a.clips, b.clips)


@pytest.fixture(scope="module")
def position_set(tmp_path_factory):
    """VP9 videos whose pixels give away (x, y, frame): R = 2x, G = 2y, B = 4 * frame."""
    d = tmp_path_factory.mktemp("position")
    paths = []
    for k in range(3):
        paths.append(write_video(d / f"pos{k}.webm", position_frames(40, 96, 72)))
    return paths


def read_position(frame: np.ndarray, size: int) -> tuple[int, int, bool, int]:
    """(top, left, flipped, frame index) of a crop of a position frame."""
    f = frame.astype(np.float64)
    centre = (size - 1) / 2
    left = round(f[..., 0].mean() / 2 - centre)
    top = round(f[..., 1].mean() / 2 - centre)
    flipped = f[:, -4:, 0].mean() < f[:, :4, 0].mean()
    return top, left, bool(flipped), round(f[..., 2].mean() / 4)


def test_one_crop_and_flip_per_clip_across_its_frames(position_set):
    entries = [VideoEntry(p, (i,)) for i, p in enumerate(position_set)]
    entries, infos, _ = probe_entries(entries, 10)
    size = 64  # short side 72 = the stored height: the crop is read off unresized frames
    dataset = ClipDataset(
        entries, infos, 3, 4, 3, train=True, size=size, short_side=short_side_for(size), seed=1
    )
    flips = set()
    for epoch in range(4):
        dataset.set_epoch(epoch)
        for batch in dali.DaliClipLoader(dataset, 3):
            for clip, video in zip(batch.clips.numpy(), batch.videos.tolist()):
                plan = dataset.plan(video)  # one clip per video: item i is video i
                seen = [read_position(f, size) for f in clip]
                assert {s[:3] for s in seen} == {(plan.crop.top, plan.crop.left, plan.crop.flip)}
                assert [s[3] for s in seen] == [plan.start + 3 * k for k in range(4)]
                flips.add(plan.crop.flip)
    assert flips == {False, True}


def texture_video(path, width, height, n=16):
    ys, xs = np.mgrid[0:height, 0:width]
    frames = [
        np.stack(
            [
                128 + 90 * np.sin(xs / 9.0 + t * 0.3),
                128 + 90 * np.cos(ys / 7.0 - t * 0.2),
                128 + 80 * np.sin((xs + ys) / 11.0 + t * 0.25),
            ],
            -1,
        ).astype(np.uint8)
        for t in range(n)
    ]
    return write_video(path, np.stack(frames))


def test_clip_equals_the_pyav_clip(tmp_path):
    """178x178 stored, 178 input (short side 200): every clip, crop and flip vs PyAV's."""
    path = texture_video(tmp_path / "texture.webm", 178, 178)
    entries, infos, _ = probe_entries([VideoEntry(path, (0,))], 7)
    dataset = ClipDataset(entries, infos, 2, 4, 2, train=False, clips_per_video=2, crops=4)
    clips = torch.cat([b.clips for b in dali.DaliClipLoader(dataset, 3)])
    assert clips.shape == (8, 4, 178, 178, 3)
    for i in range(len(dataset)):
        assert mad(clips[i], dataset[i]["clip"]) < PYAV_TOLERANCE


def test_paths_with_spaces(tmp_path):
    """DALI's file list splits on whitespace: such files are read through a link."""
    path = write_index_video(tmp_path / "a clip, take 2.webm", 12, width=64, height=48)
    entries, infos, _ = probe_entries([VideoEntry(path, (0,))], 4)
    dataset = ClipDataset(entries, infos, 1, 4, 1, train=False, size=48, short_side=54)
    (batch,) = list(dali.DaliClipLoader(dataset, 2))
    assert batch.clips.shape == (1, 4, 48, 48, 3)
    assert mad(batch.clips[0], dataset[0]["clip"]) < PYAV_TOLERANCE


def test_bad_files_are_excluded_counted_and_the_probe_is_cached(
    sports_copy, tmp_path, caplog, monkeypatch
):
    good = load_dataset(str(sports_copy)).train[:3]
    bad = write_bad_videos(tmp_path)
    entries = [*good, *(VideoEntry(p, (0,)) for p in bad.values())]
    calls = []
    real = dali.probe_and_report

    def counted(*args, **kwargs):
        calls.append(real(*args, **kwargs))
        return calls[-1]

    monkeypatch.setattr(dali, "probe_and_report", counted)

    for _ in range(2):
        caplog.clear()
        with caplog.at_level(logging.WARNING, "sportsfusion.data"):
            kept, infos, skipped = probe_split(entries, 6, 2, False, "train", dali=True)
        assert kept == good and [i.path for i in infos] == [e.path for e in good]
        reasons = {b.path: b.reason for b in skipped}
        assert len(skipped) == len(bad)
        for kind, path in bad.items():
            assert reasons[path].startswith(BAD_REASONS[kind]), (kind, reasons[path])
        warned = [r.getMessage() for r in caplog.records]
        assert len(warned) == len(bad) and all(m.startswith("skip train video") for m in warned)
    # Second call: all from the cache (the missing file, nothing to key it by, is never opened).
    assert [c.probed for c in calls] == [len(entries) - 1, 0]
    with sqlite3.connect(dali.probe_cache_path()) as db:
        query = "SELECT codec FROM videos WHERE path = ?"
        assert db.execute(query, (good[0].path,)).fetchall() == [("vp9",)]

    # A changed file (new size and mtime) is probed again; the others are not.
    write_index_video(good[0].path, 12, width=64, height=48)
    os.utime(good[0].path, ns=(1, 1))
    result = dali.probe_cached(good, 6)
    assert result.probed == 1 and result.infos[0].num_frames == 12


def test_h264_on_the_cpu_backend_is_a_one_line_error(tmp_path):
    vp9 = write_index_video(tmp_path / "a.webm", 12)
    h264 = write_index_video(tmp_path / "b.mp4", 12, codec="libx264")
    entries = [VideoEntry(vp9, (0,)), VideoEntry(h264, (1,))]
    with pytest.raises(ValueError) as e:
        probe_split(entries, 4, 0, False, "train", dali=True, device="cpu")
    message = str(e.value)
    assert "\n" not in message and "1 of 2 train videos are h264" in message
    assert h264 in message and "drop --dali" in message and "GPU" in message
    # The GPU backend (NVDEC) takes both.
    dali.check_codecs(entries, ["vp9", "h264"], "gpu", "train")


def test_h264_data_set_stops_training_before_it_starts(tmp_path, capsys):
    (tmp_path / "clips").mkdir()
    write_index_video(tmp_path / "clips" / "a.webm", 12)
    write_index_video(tmp_path / "clips" / "b.mp4", 12, codec="libx264")
    (tmp_path / "train.csv").write_text("clips/a.webm,x\nclips/b.mp4,y\n")
    args = ["--data", str(tmp_path / "train.csv"), "--out", str(tmp_path / "run"), "--dali"]
    assert train.main([*args, "--device", "cpu", "--no-progress", *TINY_MODEL]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("probed 2 train videos, 0 from the cache")  # the probe's log line
    assert len(err) == 2 and err[1].startswith("error: --dali: 1 of 2 train videos are h264")
    assert not (tmp_path / "run" / "last.pt").exists()


def test_train_and_evaluate_with_dali(tiny_sports, tmp_path, capsys):
    out = tmp_path / "run"
    common = ["--data", str(tiny_sports), "--workers", "2", "--no-progress", "--dali"]
    args = [*common, "--out", str(out), "--model", "slow", "--batch-size", "4", *TINY_MODEL]
    assert train.main([*args, "--max-steps", "2", "--eval-clips", "2", "--device", "cpu"]) == 0
    assert "video hit@5" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 2 and 0 <= summary["video_hit@1"] <= 1
    assert json.loads((out / "config.json").read_text())["dali"] is True

    report = tmp_path / "eval.json"
    ev = [*common, "--checkpoint", str(out / "last.pt"), "--clips-per-video", "2", "--crops", "4"]
    assert evaluate.main([*ev, "--json", str(report), "--device", "cpu"]) == 0
    metrics = json.loads(report.read_text())
    assert metrics["videos"] == len(load_dataset(str(tiny_sports)).test)


def test_without_dali_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "nvidia.dali", None)  # import nvidia.dali -> ImportError
    assert not dali.dali_available()
    with pytest.raises(dali.DaliMissing) as e:
        dali.require_dali()
    assert "pip install -e .[dali]" in str(e.value) and "\n" not in str(e.value)
    assert isinstance(e.value, ValueError)  # the CLIs print it as one `error:` line
    with pytest.raises(dali.DaliMissing):
        probe_split([], 1, 0, False, "train", dali=True)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_backend_gives_cuda_clips_like_the_cpu_backend(tiny_sports):
    dataset = tiny_dataset(tiny_sports, train=False, clips_per_video=2)
    cpu = list(make_eval_loader(dataset, 4, 2, dali=True, device="cpu"))
    gpu = list(make_eval_loader(dataset, 4, 2, dali=True, device="cuda"))
    assert len(cpu) == len(gpu)
    for a, b in zip(cpu, gpu):
        assert b.clips.is_cuda and b.clips.dtype == torch.uint8
        assert torch.equal(a.videos, b.videos)
        assert mad(a.clips, b.clips.cpu()) < 2.0
