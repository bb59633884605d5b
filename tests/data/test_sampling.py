"""Clip windows, probing a file list, and the ClipDataset end to end on real files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader
from videos import BAD_REASONS, truncate_file, write_bad_videos, write_position_video

from sportsfusion.data.decode import BadVideo, VideoInfo, probe_video
from sportsfusion.data.formats import VideoEntry
from sportsfusion.data.sampling import (
    ClipDataset,
    clip_indices,
    clip_span,
    collate_clips,
    evenly_spaced_starts,
    probe_entries,
    random_clip_start,
    worker_init,
)
from sportsfusion.data.transforms import CropFlip, evaluation_crops

FPC, SPACING, SIZE = 4, 3, 32  # clips of 4 frames, 3 apart: span 10


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """Two lossless 64x48 position videos (40 and 25 frames) and their probes."""
    d = tmp_path_factory.mktemp("sampling")
    entries = [
        VideoEntry(write_position_video(d / "a.mkv", 40), (1, 3)),
        VideoEntry(write_position_video(d / "b.mkv", 25), (2,)),
    ]
    return entries, [probe_video(e.path) for e in entries]


def dataset(videos, **kwargs) -> ClipDataset:
    entries, infos = videos
    kwargs = {"size": SIZE, "short_side": None, "seed": 3} | kwargs
    return ClipDataset(entries, infos, 5, FPC, SPACING, **kwargs)


def read_clip(clip: torch.Tensor) -> tuple[list[int], CropFlip]:
    """(frame indices, crop) spelled by a position-video clip; checks every pixel agrees."""
    c = clip.numpy().astype(int)
    indices = [int(v) // 4 for v in c[:, 0, 0, 2]]
    assert (c[..., 2] == 4 * np.array(indices)[:, None, None]).all()
    top = c[0, 0, 0, 1] // 2
    assert (c[..., 1] == 2 * (top + np.arange(SIZE))[None, :, None]).all()  # same rows: all t
    cols = c[0, 0, :, 0] // 2
    flip = bool(cols[0] > cols[-1])
    left = int(cols.min())
    expect = left + (np.arange(SIZE)[::-1] if flip else np.arange(SIZE))
    assert (c[..., 0] == 2 * expect[None, None, :]).all()  # same columns and flip: all t
    return indices, CropFlip(int(top), left, flip)


def test_clip_windows():
    assert clip_span(10, 1) == 10 and clip_span(2, 15) == 16 and clip_span(1, 7) == 1
    assert clip_indices(5, 4, 3) == [5, 8, 11, 14]
    rng = np.random.default_rng(0)
    starts = [random_clip_start(40, 10, rng) for _ in range(500)]
    assert min(starts) == 0 and max(starts) == 30
    assert random_clip_start(6, 10, rng) == 0  # shorter than a clip
    assert evenly_spaced_starts(40, 10, 1) == [15]
    assert evenly_spaced_starts(39, 9, 3) == [5, 15, 25]
    assert evenly_spaced_starts(12, 10, 5) == [0, 1, 1, 1, 2]  # more clips than positions
    assert evenly_spaced_starts(5, 10, 2) == [0, 0]


def test_probe_entries_keeps_good_files_in_order_and_reports_bad_ones(tmp_path, videos):
    good = videos[0]
    bad = write_bad_videos(tmp_path)
    entries = [VideoEntry(bad["missing"], (0,)), good[0]]
    entries += [VideoEntry(p, (0,)) for k, p in bad.items() if k != "missing"] + [good[1]]
    kept, infos, rejected = probe_entries(entries, min_frames=10)
    assert kept == good and [i.path for i in infos] == [e.path for e in good]
    assert [b.path for b in rejected] == [e.path for e in entries if e not in good]
    for b, kind in zip(rejected, bad):
        assert b.reason.startswith(BAD_REASONS[kind]), (kind, b.reason)
    threaded = probe_entries(entries, min_frames=10, workers=2, progress=True)
    assert threaded[:2] == (kept, infos)
    assert [str(b) for b in threaded[2]] == [str(b) for b in rejected]
    with pytest.raises(BadVideo, match="bad_missing.webm: missing"):
        probe_entries(entries, min_frames=10, workers=2, strict=True)


def test_train_items_are_deterministic_and_change_with_the_epoch(videos):
    ds = dataset(videos, train=True, clips_per_video=3)
    assert len(ds) == 6
    items = [ds[i] for i in range(len(ds))]
    again = dataset(videos, train=True, clips_per_video=3)
    for i, item in enumerate(items):
        assert torch.equal(item["clip"], ds[i]["clip"])
        assert torch.equal(item["clip"], again[i]["clip"])
        assert item["clip"].dtype == torch.uint8 and item["clip"].shape == (FPC, SIZE, SIZE, 3)
        assert (item["video"], item["clip_index"], item["crop_index"]) == (i % 2, i // 2, 0)
        # The decoded pixels are the planned clip, with one crop/flip on every frame.
        plan = ds.plan(i)
        indices, crop = read_clip(item["clip"])
        assert indices == clip_indices(plan.start, FPC, SPACING) and crop == plan.crop
        assert 0 <= crop.top <= 48 - SIZE and 8 <= crop.left <= 8 + 48 - SIZE  # centre square
    plans = [ds.plan(i) for i in range(len(ds))]
    ds.set_epoch(1)
    assert [ds.plan(i) for i in range(len(ds))] != plans
    assert [
        dataset(videos, train=True, clips_per_video=3, seed=4).plan(i) for i in range(6)
    ] != plans
    # Over epochs, clips start anywhere in the video and half of them are mirrored.
    seen = []
    for epoch in range(300):
        ds.set_epoch(epoch)
        seen.append(ds.plan(0))
    assert {p.start for p in seen} == set(range(31))
    assert 0.4 < np.mean([p.crop.flip for p in seen]) < 0.6


def test_eval_covers_evenly_spaced_clips_times_crops_in_order(videos):
    entries, infos = videos
    ds = dataset(videos, train=False, clips_per_video=3, crops=4)
    assert len(ds) == 2 * 3 * 4
    i = 0
    for v, info in enumerate(infos):
        starts = evenly_spaced_starts(info.num_frames, clip_span(FPC, SPACING), 3)
        for k, start in enumerate(starts):
            for c, crop in enumerate(evaluation_crops(48, 64, SIZE, 4)):
                item = ds[i]
                assert (item["video"], item["clip_index"], item["crop_index"]) == (v, k, c)
                assert read_clip(item["clip"]) == (clip_indices(start, FPC, SPACING), crop)
                i += 1
    ds.set_epoch(5)  # evaluation ignores the epoch
    assert torch.equal(
        ds[7]["clip"], dataset(videos, train=False, clips_per_video=3, crops=4)[7]["clip"]
    )


def test_targets_spread_over_labels(videos):
    entries, infos = videos
    entries = [*entries, VideoEntry(entries[1].path, (4, 4, 0, 2))]
    ds = ClipDataset(
        entries, [*infos, infos[1]], 5, FPC, SPACING, train=False, size=SIZE, short_side=None
    )
    assert ds[0]["target"].tolist() == [0, 0.5, 0, 0.5, 0]
    assert ds[1]["target"].tolist() == [0, 0, 1, 0, 0]
    assert torch.allclose(ds[2]["target"], torch.tensor([1, 0, 1, 0, 1]) / 3)
    assert ds[0]["target"].dtype == torch.float32
    with pytest.raises(ValueError, match="outside"):
        ClipDataset([VideoEntry(entries[0].path, (5,))], infos[:1], 5, FPC, SPACING, train=True)
    with pytest.raises(ValueError, match="infos"):
        ClipDataset(entries, infos, 5, FPC, SPACING, train=True)


def test_bad_files_become_skip_items_that_collate_drops(tmp_path, videos):
    cut = VideoEntry(write_position_video(tmp_path / "cut.mkv", 40), (0,))
    info = probe_video(cut.path)
    truncate_file(cut.path, 0.4)  # after probing, like a file damaged mid-training
    gone = VideoEntry(str(tmp_path / "gone.mkv"), (1,))
    entries = [videos[0][0], cut, gone]
    infos = [videos[1][0], info, VideoInfo(gone.path, 40, 25.0, 64, 48)]
    ds = ClipDataset(
        entries, infos, 5, FPC, SPACING, train=False, size=SIZE, short_side=None, clips_per_video=3
    )
    late = ds[3 + 2]  # last clip of the cut video: frames 25..34 of 40
    assert late == {"skip": cut.path, "reason": late["reason"], "video": 1}
    assert late["reason"].startswith("truncated: got ")
    assert ds[6] == {"skip": gone.path, "reason": "missing", "video": 2}
    batch = collate_clips([ds[0], late, ds[1], ds[6]])
    assert batch.clips.shape == (2, FPC, SIZE, SIZE, 3) and batch.clips.dtype == torch.uint8
    assert batch.targets.shape == (2, 5)
    assert batch.videos.tolist() == [0, 0] and batch.clip_indices.tolist() == [0, 1]
    assert batch.crop_indices.dtype == torch.long
    assert batch.skipped == [(cut.path, late["reason"]), (gone.path, "missing")]
    empty = collate_clips([late])
    assert empty.clips is None and empty.videos.numel() == 0 and len(empty.skipped) == 1
    small = ClipDataset(
        entries[:1], infos[:1], 5, FPC, SPACING, train=True, size=64, short_side=None
    )
    assert small[0]["reason"].startswith("too small: 64x48")


def test_dataloader_with_two_workers_matches_serial(tmp_path, videos):
    cut = VideoEntry(write_position_video(tmp_path / "cut.mkv", 40), (0,))
    info = probe_video(cut.path)
    truncate_file(cut.path, 0.3)
    entries, infos = [*videos[0], cut], [*videos[1], info]
    ds = ClipDataset(
        entries, infos, 5, FPC, SPACING, train=True, size=SIZE, short_side=None, clips_per_video=4
    )
    ds.set_epoch(2)
    loader = DataLoader(
        ds, batch_size=5, num_workers=2, collate_fn=collate_clips, worker_init_fn=worker_init
    )
    batches = list(loader)
    serial = collate_clips([ds[i] for i in range(len(ds))])
    assert torch.equal(torch.cat([b.clips for b in batches]), serial.clips)
    assert torch.equal(torch.cat([b.videos for b in batches]), serial.videos)
    assert sum((b.skipped for b in batches), []) == serial.skipped
    assert len(serial.skipped) >= 1  # late clips of the cut video


def test_a_batch_crosses_processes_with_one_shared_segment(videos):
    """From a worker, only the clips go through shared memory: the batch reduces to one tensor,
    the small ones travel by value, and they come back equal, dtypes included (an all-failed
    batch too) through the pickler DataLoader workers use."""
    import pickle
    from multiprocessing.reduction import ForkingPickler

    ds = ClipDataset(*videos, 5, FPC, SPACING, train=False, size=SIZE, short_side=None)
    batch = collate_clips([ds[0], ds[1]])
    _, args = batch.__reduce__()
    assert [a is batch.clips for a in args if isinstance(a, torch.Tensor)] == [True]
    back = pickle.loads(ForkingPickler.dumps(batch))
    for name in ("clips", "targets", "videos", "clip_indices", "crop_indices"):
        a, b = getattr(batch, name), getattr(back, name)
        assert a.dtype == b.dtype and torch.equal(a, b), name
    assert back.skipped == batch.skipped
    empty = pickle.loads(ForkingPickler.dumps(collate_clips([])))
    assert empty.clips is None and empty.targets is None and empty.videos.dtype == torch.long
