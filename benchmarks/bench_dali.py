"""Clips/s delivered by the DALI loader against the PyAV DataLoader (workers = cores), per frame
size and clip length, decode + resize + crop/flip included (and each epoch's start-up: worker
processes for PyAV, the pipeline build for DALI).

Without a GPU: DALI's CPU backend on generated VP9 sets (320x240 and 640x360). On CUDA: H.264
sets, DALI's GPU backend (NVDEC, clips left on the GPU), and slow-fusion training throughput
fed by DALI against clips already in GPU memory (the ceiling a loader can reach).
"""

from __future__ import annotations

import itertools
import os

import pytest
import torch
import torch.nn.functional as F
from conftest import record, sync

from sportsfusion.data.formats import load_dataset
from sportsfusion.data.loader import clip_loader
from sportsfusion.data.sampling import ClipDataset, clip_span, probe_entries
from sportsfusion.data.synthetic import PRESETS, generate
from sportsfusion.data.transforms import short_side_for
from sportsfusion.models import create, to_channels_last

pytest.importorskip("nvidia.dali", reason="NVIDIA DALI is not installed: pip install -e .[dali]")
pytest.importorskip("av", reason="the benchmark videos are generated with PyAV")

from sportsfusion.data.dali import DaliClipLoader  # noqa: E402

CUDA = torch.cuda.is_available()
BATCH = 16 if CUDA else 8
BATCHES = 16 if CUDA else 12
SIZES = {"320x240": (320, 240), "640x360": (640, 360)}
CORES = os.cpu_count() or 1


@pytest.fixture(scope="module", params=list(SIZES))
def video_set(request, tmp_path_factory):
    width, height = SIZES[request.param]
    config = PRESETS["sports"]
    knobs = dict(num_classes=3, videos_per_class=3, frames=48, width=width, height=height)
    config = type(config)(**{**config.__dict__, **knobs, "codec": "h264" if CUDA else "vp9"})
    out = tmp_path_factory.mktemp("bench-dali") / request.param
    return request.param, load_dataset(str(generate(out, config, progress=False)))


def train_dataset(index, frames: int, spacing: int = 1) -> ClipDataset:
    entries, infos, _ = probe_entries(index.train + index.test, clip_span(frames, spacing))
    # Many items per video: item i is video i % n with its own random clip and crop/flip.
    return ClipDataset(
        entries,
        infos,
        len(index.classes),
        frames,
        spacing,
        train=True,
        size=178,
        short_side=short_side_for(178),
        clips_per_video=64,
    )


def drain(loader, device: torch.device) -> None:
    for batch in itertools.islice(loader, BATCHES):
        batch.clips.to(device, non_blocking=True)
    sync(device)


@pytest.mark.parametrize("loader", ["pyav", "dali"])
@pytest.mark.parametrize("frames", [1, 10])
def bench_loader(benchmark, device, video_set, frames, loader):
    name, index = video_set
    dataset = train_dataset(index, frames)
    items = list(range(BATCH * BATCHES))
    if loader == "pyav":
        variant = f"pyav-{CORES}w"

        def make():
            return clip_loader(dataset, BATCH, CORES, items, pin_memory=device.type == "cuda")
    else:
        variant = f"dali-{'gpu' if device.type == 'cuda' else 'cpu'}"

        def make():
            return DaliClipLoader(dataset, BATCH, items, device=device, num_threads=CORES)

    group = f"loader-{name}-{frames}f"
    benchmark.group = group
    benchmark.pedantic(lambda: drain(make(), device), rounds=2, warmup_rounds=1)
    record(
        benchmark,
        group,
        variant,
        BATCH * BATCHES,
        frames=frames,
        size=name,
        codec="h264" if CUDA else "vp9",
        threads=CORES,
    )


@pytest.mark.skipif(not CUDA, reason="training throughput fed by DALI needs a CUDA device")
@pytest.mark.parametrize("feed", ["dali", "in-memory"])
def bench_slow_fusion_training(benchmark, device, video_set, feed):
    name, index = video_set
    model = to_channels_last(create("slow", len(index.classes), multires=True).to(device))
    dataset = train_dataset(index, model.frames_per_clip, model.frame_spacing)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    amp = torch.autocast("cuda", dtype=torch.bfloat16)
    items = list(range(BATCH * BATCHES))
    shape = (BATCH, model.frames_per_clip, 178, 178, 3)
    resident = torch.randint(0, 256, shape, dtype=torch.uint8, device=device)
    targets = torch.randint(0, len(index.classes), (BATCH,), device=device)

    def step(clips):
        with amp:
            loss = F.cross_entropy(model(clips).float(), targets[: len(clips)])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def run():
        if feed == "dali":
            for batch in DaliClipLoader(dataset, BATCH, items, device=device, num_threads=CORES):
                step(batch.clips)
        else:
            for _ in range(BATCHES):
                step(resident)
        sync(device)

    group = f"slow-train-{name}"
    benchmark.group = group
    benchmark.pedantic(run, rounds=2, warmup_rounds=1)
    record(benchmark, group, feed, BATCH * BATCHES, batch=BATCH, size=name)
