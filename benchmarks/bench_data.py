"""The PyAV DataLoader's clips/s (decode + resize + crop/flip) on a generated VP9 set, with as
many workers as cores, for 1-frame and 10-frame clips."""

from __future__ import annotations

import itertools
import os

import pytest
from conftest import record

from sportsfusion.data.formats import load_dataset
from sportsfusion.data.loader import clip_loader
from sportsfusion.data.sampling import ClipDataset, clip_span, probe_entries
from sportsfusion.data.synthetic import PRESETS, generate

pytest.importorskip("av", reason="the benchmark videos are generated with PyAV")

BATCH = 8
BATCHES = 6


@pytest.fixture(scope="module")
def video_set(tmp_path_factory):
    config = PRESETS["sports"]
    config = type(config)(**{**config.__dict__, "num_classes": 4, "videos_per_class": 4})
    root = generate(tmp_path_factory.mktemp("bench") / "sports", config, progress=False)
    return load_dataset(root)


@pytest.mark.parametrize("frames", [1, 10])
def bench_pyav_loader(benchmark, video_set, frames):
    workers = os.cpu_count() or 1
    entries, infos, _ = probe_entries(video_set.train, clip_span(frames, 1))
    dataset = ClipDataset(
        entries, infos, len(video_set.classes), frames, 1, train=True, clips_per_video=64
    )

    def load():
        loader = clip_loader(dataset, BATCH, workers)
        for _ in itertools.islice(loader, BATCHES):
            pass

    benchmark.group = f"pyav-loader-{frames}f"
    benchmark.pedantic(load, rounds=2, warmup_rounds=0)
    record(
        benchmark,
        f"pyav-loader-{frames}f",
        f"{workers}w",
        BATCH * BATCHES,
        workers=workers,
        frames=frames,
        span=clip_span(frames, 1),
    )
