"""From a `--data` argument to batches of uint8 clips: the seam the trainer and the evaluator
share (issue 3 adds DALI beside the PyAV DataLoader here).

- `resolve_data`: a data set on disk, or the embedded synthetic default, built once in a cache.
- `probe_split`: drops videos that cannot give a clip, one warning line each, counted; the
  probe itself (parallel, cached on disk, shared with DALI) is `sportsfusion.data.probe`.
- `clip_loader`: a PyAV DataLoader over a ClipDataset (one FFmpeg thread per worker).
- `make_train_loader` / `make_eval_loader`: that DataLoader, or with `dali=True` the DALI loader
  (`sportsfusion.data.dali`, same batch dicts; CPU backend on a CPU device, NVDEC on CUDA).
- `SkipLog`: files skipped during decoding, warned once and counted for the run summary.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Sampler

from sportsfusion.data.decode import BadVideo
from sportsfusion.data.formats import DatasetIndex, VideoEntry, load_dataset
from sportsfusion.data.probe import cache_dir, probe_and_report
from sportsfusion.data.sampling import ClipDataset, collate_clips, worker_init
from sportsfusion.data.transforms import short_side_for

log = logging.getLogger("sportsfusion.data")

DEFAULT_PRESET = "sports"


def synthetic_default(preset: str = DEFAULT_PRESET, **overrides) -> Path:
    """The synthetic preset in the cache folder, generated on first use (keyed by its config and
    the generator's version, so a set an older generator wrote is not reused)."""
    from sportsfusion.data import synthetic

    config = synthetic.PRESETS[preset]
    config = type(config)(**{**asdict(config), **overrides})
    keyed = {**asdict(config), "generator_version": synthetic.GENERATOR_VERSION}
    key = hashlib.sha1(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:10]
    out = cache_dir() / f"synthetic-{preset}-{key}"
    if not (out / "ucfTrainTestlist" / "classInd.txt").exists():
        log.warning("building the synthetic %r data set once in %s", preset, out)
        synthetic.generate(out, config)
    return out


def resolve_data(
    data: str | None, fmt: str, split: int, videos: str | None, strict: bool = False
) -> DatasetIndex:
    root = str(synthetic_default()) if data is None else data
    return load_dataset(root, fmt, split=split, videos=videos, strict=strict)


def probe_split(
    entries: list[VideoEntry],
    min_frames: int,
    workers: int,
    strict: bool,
    what: str,
    *,
    dali: bool = False,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> tuple[list[VideoEntry], list, list[BadVideo]]:
    """(usable entries, their infos, bad videos), in input order, from the probe cache
    (`sportsfusion.data.probe`: only new or changed files are opened, over `workers` processes,
    with a progress bar on a terminal). One warning line per bad video, one line saying how many
    were probed and how many came from the cache; `strict` raises the first bad video instead.

    `dali=True`: the same probe plus a check that DALI's backend for `device` can decode every
    kept file (a one-line ValueError before training otherwise)."""
    if dali:
        from sportsfusion.data.dali import probe_for_dali

        return probe_for_dali(entries, min_frames, workers, strict, what, device, progress)
    result = probe_and_report(entries, min_frames, workers, strict, what, progress=progress)
    return result.entries, result.infos, result.bad


class SkipLog:
    """Files that failed mid-decode: one warning line per file, counted once."""

    def __init__(self, strict: bool = False):
        self.strict = strict
        self.files: dict[str, str] = {}

    def add(self, skipped: list[tuple[str, str]]) -> None:
        for path, reason in skipped:
            if self.strict:
                raise BadVideo(path, reason)
            if path not in self.files:
                self.files[path] = reason
                log.warning("skip video %s: %s", path, reason)

    def __len__(self) -> int:
        return len(self.files)


def clip_dataset(
    entries: list[VideoEntry],
    infos: list,
    num_classes: int,
    model: torch.nn.Module,
    *,
    train: bool,
    seed: int = 0,
    clips_per_video: int = 1,
    crops: int = 1,
) -> ClipDataset:
    """The clips `model` needs (frames_per_clip, frame_spacing, input_size) from `entries`."""
    return ClipDataset(
        entries,
        infos,
        num_classes,
        model.frames_per_clip,
        model.frame_spacing,
        train=train,
        size=model.input_size,
        short_side=short_side_for(model.input_size),
        seed=seed,
        clips_per_video=clips_per_video,
        crops=crops,
    )


def clip_loader(
    dataset: ClipDataset,
    batch_size: int,
    workers: int,
    sampler: Sampler | None = None,
    pin_memory: bool = False,
) -> DataLoader:
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        shuffle=False,  # training order comes from the (resumable, sharded) sampler
        num_workers=workers,
        collate_fn=collate_clips,
        worker_init_fn=worker_init,
        pin_memory=pin_memory,
        persistent_workers=False,
        prefetch_factor=4 if workers > 0 else None,
    )


def make_train_loader(
    dataset: ClipDataset,
    batch_size: int,
    workers: int,
    sampler: Sampler | None,
    *,
    dali: bool = False,
    device: torch.device | str = "cpu",
):
    """The training batches: the PyAV DataLoader, or with `dali` the DALI loader (its threads
    replace the workers; outputs on `device` when it is CUDA)."""
    device = torch.device(device)
    if dali:
        from sportsfusion.data.dali import DaliClipLoader

        return DaliClipLoader(dataset, batch_size, sampler, device=device, num_threads=workers)
    return clip_loader(dataset, batch_size, workers, sampler, device.type == "cuda")


def make_eval_loader(
    dataset: ClipDataset,
    batch_size: int,
    workers: int,
    *,
    dali: bool = False,
    device: torch.device | str = "cpu",
):
    """`make_train_loader` for evaluation: every item in dataset order, the last batch partial."""
    return make_train_loader(dataset, batch_size, workers, None, dali=dali, device=device)
