"""Entries/s of the probe both loaders use (`sportsfusion.data.probe`) on 100,000 listed entries:
cold (every file opened: header + first frame, cache rows written), inline and over as many
processes as cores, and from the cache (a second start: one stat and one cache row per entry).

Making 100,000 real videos would take hours, so six real VP9 videos from the synthetic set
(160x120, 48 frames, the default set's size) are hard-linked to 100,000 names: probing a name
really opens and decodes that file. Cold rates are measured on the first 2,000 names (a fresh
cache each round); the cached probe runs over all 100,000, its cache filled with the rows the
probe writes. extra_info has `entries`, `entries_per_s` and `workers`.

Under --benchmark-disable (CI smoke) everything runs once on 200 names (cold on 100).
SPORTSFUSION_BENCH_PROBE_ENTRIES sets the number of names (and the cold subset, when smaller).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sportsfusion.data import probe
from sportsfusion.data.formats import VideoEntry, load_dataset
from sportsfusion.data.synthetic import PRESETS, generate

pytest.importorskip("av", reason="the benchmark videos are generated with PyAV")

ENTRIES, COLD = 100_000, 2_000
SMOKE_ENTRIES, SMOKE_COLD = 200, 100
CORES = os.cpu_count() or 1
PER_DIR = 1000  # names per folder, as a real data set spreads them


def counts(config) -> tuple[int, int]:
    if os.environ.get("SPORTSFUSION_BENCH_PROBE_ENTRIES"):
        n = int(os.environ["SPORTSFUSION_BENCH_PROBE_ENTRIES"])
        return n, min(n, COLD)
    if config.getoption("benchmark_disable", False):
        return SMOKE_ENTRIES, SMOKE_COLD
    return ENTRIES, COLD


@pytest.fixture(scope="module")
def listed(request, tmp_path_factory) -> tuple[list[VideoEntry], int]:
    """(entries: hard links to a few real videos, the cold subset's size)."""
    n, cold = counts(request.config)
    root = tmp_path_factory.mktemp("bench-probe")
    config = PRESETS["sports"]
    config = type(config)(**{**config.__dict__, "num_classes": 2, "videos_per_class": 3})
    index = load_dataset(str(generate(root / "sources", config, progress=False)))
    sources = [e.path for e in index.train + index.test]
    entries = []
    for i in range(n):
        folder = root / "videos" / f"{i // PER_DIR:04d}"
        if i % PER_DIR == 0:
            folder.mkdir(parents=True)
        name = str(folder / f"v{i:06d}.webm")
        os.link(sources[i % len(sources)], name)
        entries.append(VideoEntry(name, (i % len(index.classes),)))
    return entries, cold


def rate(benchmark, entries: int, workers: int) -> None:
    benchmark.extra_info.update(entries=entries, workers=workers)
    stats = getattr(benchmark, "stats", None)
    if stats is not None:  # None under --benchmark-disable: ran once, nothing timed
        benchmark.extra_info["entries_per_s"] = round(entries / stats.stats.median, 1)


@pytest.mark.parametrize("workers", [0, CORES], ids=["inline", f"{CORES}proc"])
def bench_probe_cold(benchmark, listed, tmp_path, workers):
    entries, cold = listed
    entries = entries[:cold]
    caches = iter(range(1_000_000))

    def fresh_cache():
        return (), {"cache": tmp_path / f"cold-{next(caches)}.sqlite"}

    def run(cache):
        result = probe.probe_videos(entries, 1, workers=workers, progress=False, cache=cache)
        assert result.probed == len(entries) and len(result.infos) == len(entries)

    benchmark.group = "probe-cold"
    benchmark.pedantic(run, setup=fresh_cache, rounds=2, warmup_rounds=0)
    rate(benchmark, len(entries), workers)


def bench_probe_cached(benchmark, listed, tmp_path):
    """A second start: every entry answered by the cache."""
    entries, _ = listed
    cache = tmp_path / "warm.sqlite"
    # The rows a cold probe of all the names writes (probing the few distinct files once): the
    # names are hard links, so each has its file's record under its own path and stat key.
    sources = {}
    for e in entries:
        sources.setdefault(os.stat(e.path).st_ino, e)
    records = {}
    for ino, e in sources.items():
        one = probe.probe_videos([e], 1, cache=False)
        info = one.infos[0]
        records[ino] = (info.num_frames, info.fps, info.width, info.height, None, None)
    store = probe.ProbeCache(cache)
    rows = []
    for e in entries:
        st = os.stat(e.path)
        rows.append((e.path, st.st_size, st.st_mtime_ns, *records[st.st_ino]))
    store.store(rows)
    store.close()

    def run():
        result = probe.probe_videos(entries, 1, workers=CORES, progress=False, cache=cache)
        assert result.probed == 0 and result.cached == len(entries)

    benchmark.group = "probe-cached"
    benchmark.pedantic(run, rounds=3, warmup_rounds=1)
    rate(benchmark, len(entries), CORES)
    assert Path(cache).stat().st_size > 0
