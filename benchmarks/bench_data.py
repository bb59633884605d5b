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
WARMUP_BATCHES = 4  # worker start-up, first opens: excluded from the timing
TIMED_BATCHES = 12  # per round
ROUNDS = 5
RATES: dict[tuple[int, str], float] = {}  # (frames, "inline" | "Nw") -> clips/s, this run


@pytest.fixture(scope="module")
def video_set(tmp_path_factory):
    config = PRESETS["sports"]
    config = type(config)(**{**config.__dict__, "num_classes": 4, "videos_per_class": 4})
    root = generate(tmp_path_factory.mktemp("bench") / "sports", config, progress=False)
    return load_dataset(root)


@pytest.mark.parametrize("workers", ["inline", "cores"])
@pytest.mark.parametrize("frames", [1, 10])
def bench_pyav_loader(benchmark, video_set, frames, workers):
    """Steady state: one loader whose workers persist, warmed up, then timed over whole batches;
    `inline` decodes in the benchmark's own thread (workers=0), `cores` uses a worker per core.
    The closing ratio (extra_info x_inline) is the parallel speed-up on this machine."""
    n = 0 if workers == "inline" else os.cpu_count() or 1
    entries, infos, _ = probe_entries(video_set.train, clip_span(frames, 1))
    dataset = ClipDataset(
        entries, infos, len(video_set.classes), frames, 1, train=True, clips_per_video=64
    )
    batches = iter(clip_loader(dataset, BATCH, n))
    for _ in itertools.islice(batches, WARMUP_BATCHES):
        pass

    def take():
        for _ in itertools.islice(batches, TIMED_BATCHES):
            pass

    variant = "inline" if n == 0 else f"{n}w"
    benchmark.group = f"pyav-loader-{frames}f"
    benchmark.pedantic(take, rounds=ROUNDS, warmup_rounds=0)
    record(
        benchmark,
        f"pyav-loader-{frames}f",
        variant,
        BATCH * TIMED_BATCHES,
        workers=n,
        frames=frames,
        span=clip_span(frames, 1),
    )
    if benchmark.stats is not None:
        RATES[(frames, variant)] = BATCH * TIMED_BATCHES / benchmark.stats.stats.median
        if n and (frames, "inline") in RATES:
            ratio = RATES[(frames, variant)] / RATES[(frames, "inline")]
            benchmark.extra_info["x_inline"] = round(ratio, 2)
            print(f"\npyav loader, {frames} frame(s): {variant} {ratio:.2f}x inline")
