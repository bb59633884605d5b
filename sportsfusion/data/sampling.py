"""Clip sampling and the training/evaluation Dataset.

A clip is `frames_per_clip` frames taken every `frame_spacing` frames (the paper's fusion
models see e.g. 10 contiguous frames, or 2 frames 15 apart for late fusion). Training draws
one random clip and one random crop/flip per item; evaluation takes clips evenly spaced over
each video, times a fixed set of crops, and averages the predictions per video.

All randomness comes from `np.random.default_rng([seed, epoch, item])`, so an item is the
same whatever the number of DataLoader workers or the order in which they run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import Dataset

from .decode import BadVideo, VideoInfo, decode_frames, output_size
from .formats import VideoEntry
from .probe import probe_videos
from .transforms import CropFlip, apply_crop_flip, draw_crop_flip, evaluation_crops


def clip_span(frames_per_clip: int, frame_spacing: int) -> int:
    """Number of source frames a clip covers, first to last inclusive."""
    if frames_per_clip < 1 or frame_spacing < 1:
        raise ValueError(f"bad clip shape: {frames_per_clip} frames, spacing {frame_spacing}")
    return (frames_per_clip - 1) * frame_spacing + 1


def clip_indices(start: int, frames_per_clip: int, frame_spacing: int) -> list[int]:
    return [start + k * frame_spacing for k in range(frames_per_clip)]


def random_clip_start(num_frames: int, span: int, rng: np.random.Generator) -> int:
    """Uniform start so the clip fits; 0 when the video is shorter than the clip."""
    return int(rng.integers(0, max(num_frames - span, 0) + 1))


def evenly_spaced_starts(num_frames: int, span: int, n: int) -> list[int]:
    """Starts of `n` clips whose positions sit at (k + 0.5) / n of the valid start range.

    n = 1 gives the middle clip. Asking for more clips than there are distinct positions
    repeats starts rather than failing, so every video yields exactly n clips.
    """
    if n < 1:
        raise ValueError(f"need at least one clip, got {n}")
    last = max(num_frames - span, 0)
    return [int((k + 0.5) * last / n + 0.5) for k in range(n)]  # round half up


def probe_entries(
    entries: list[VideoEntry],
    min_frames: int,
    workers: int = 0,
    strict: bool = False,
    progress: bool = False,
) -> tuple[list[VideoEntry], list[VideoInfo], list[BadVideo]]:
    """Probe every file; return (good entries, their infos, bad files), all in input order.

    `sportsfusion.data.probe.probe_videos` without its disk cache (the CLIs' `probe_split` uses
    the cache): `workers` > 1 probes over that many processes. `strict` raises the first bad
    file (in input order) instead of collecting it.
    """
    result = probe_videos(
        entries, min_frames, workers=workers, strict=strict, progress=progress, cache=False
    )
    return result.entries, result.infos, result.bad


@dataclass(frozen=True)
class ClipPlan:
    """Everything that decides one item, known before any decoding."""

    video: int
    clip_index: int
    crop_index: int
    start: int
    crop: CropFlip


class ClipDataset(Dataset):
    """Clips of (video, clip window, crop) as uint8 (T, size, size, 3) tensors.

    train: item i is video i % n with a random clip and crop/flip (new ones each epoch,
    see `set_epoch`). eval: item i enumerates, video by video, `clips_per_video` evenly
    spaced clips times `crops` evaluation crops.
    """

    def __init__(
        self,
        entries: Sequence[VideoEntry],
        infos: Sequence[VideoInfo],
        num_classes: int,
        frames_per_clip: int,
        frame_spacing: int,
        *,
        train: bool,
        size: int = 178,
        short_side: int | None = 200,
        seed: int = 0,
        clips_per_video: int = 1,
        crops: int = 1,
    ):
        if len(entries) != len(infos):
            raise ValueError(f"{len(entries)} entries but {len(infos)} infos")
        if clips_per_video < 1 or crops < 1:
            raise ValueError("clips_per_video and crops must be at least 1")
        for e in entries:
            if any(not 0 <= label < num_classes for label in e.labels):
                raise ValueError(f"{e.path}: labels {e.labels} outside 0..{num_classes - 1}")
        self.entries, self.infos = list(entries), list(infos)
        self.num_classes = num_classes
        self.frames_per_clip, self.frame_spacing = frames_per_clip, frame_spacing
        self.span = clip_span(frames_per_clip, frame_spacing)
        self.train, self.size, self.short_side = train, size, short_side
        self.seed, self.epoch = seed, 0
        self.clips_per_video = clips_per_video
        # Training crops are random, so several "crops" per item would only be more items.
        self.crops = 1 if train else crops

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.entries) * self.clips_per_video * self.crops

    def _frame_size(self, info: VideoInfo) -> tuple[int, int]:
        width, height = output_size(info.width, info.height, self.short_side)
        return height, width

    def plan(self, i: int) -> ClipPlan:
        """Which video, clip window and crop item `i` is (deterministic)."""
        if not 0 <= i < len(self):
            raise IndexError(f"item {i} out of range for {len(self)} items")
        n = len(self.entries)
        if self.train:
            video, clip = i % n, i // n
            info = self.infos[video]
            rng = np.random.default_rng([self.seed, self.epoch, i])
            start = random_clip_start(info.num_frames, self.span, rng)
            crop = draw_crop_flip(*self._frame_size(info), self.size, rng)
            return ClipPlan(video, clip, 0, start, crop)
        video, rest = divmod(i, self.clips_per_video * self.crops)
        clip, crop_index = divmod(rest, self.crops)
        info = self.infos[video]
        start = evenly_spaced_starts(info.num_frames, self.span, self.clips_per_video)[clip]
        crop = evaluation_crops(*self._frame_size(info), self.size, self.crops)[crop_index]
        return ClipPlan(video, clip, crop_index, start, crop)

    def target(self, video: int) -> torch.Tensor:
        """Probability spread evenly over the video's (distinct) labels."""
        target = torch.zeros(self.num_classes, dtype=torch.float32)
        labels = sorted(set(self.entries[video].labels))
        if labels:
            target[labels] = 1.0 / len(labels)
        return target

    def __getitem__(self, i: int) -> dict:
        n = len(self.entries)
        video = i % n if self.train else i // (self.clips_per_video * self.crops)
        entry, info = self.entries[video], self.infos[video]
        height, width = self._frame_size(info)
        if min(height, width) < self.size:
            reason = f"too small: {width}x{height} frames for a {self.size} crop"
            return {"skip": str(entry.path), "reason": reason, "video": video}
        plan = self.plan(i)
        # Videos shorter than a clip (only if probed with a smaller min_frames) repeat
        # their last frame instead of failing.
        last = max(info.num_frames - 1, 0)
        wanted = clip_indices(plan.start, self.frames_per_clip, self.frame_spacing)
        indices = [min(j, last) for j in wanted]
        try:
            frames = decode_frames(entry.path, indices, self.short_side, info)
        except BadVideo as e:
            return {"skip": str(entry.path), "reason": e.reason, "video": video}
        clip = apply_crop_flip(frames, plan.crop, self.size)
        return {
            "clip": torch.from_numpy(clip),
            "target": self.target(video),
            "video": video,
            "clip_index": plan.clip_index,
            "crop_index": plan.crop_index,
        }


@dataclass
class ClipBatch:
    """What every loader yields (the PyAV DataLoader and DALI alike): B decoded clips and where
    each came from, plus the files that failed on the way."""

    clips: torch.Tensor | None  # (B, T, H, W, 3) uint8; None when every item of the batch failed
    targets: torch.Tensor | None  # (B, classes) label distribution (multi-label: spread)
    videos: torch.Tensor  # (B,) long: index of the clip's video in the dataset's entries
    clip_indices: torch.Tensor  # (B,) long: which of the video's clips
    crop_indices: torch.Tensor  # (B,) long: which crop/flip (evaluation's 4 crops)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason) that failed

    @classmethod
    def of(cls, clips, targets, videos, clip_indices, crop_indices, skipped=()) -> ClipBatch:
        """From per-item values (lists of ints for the indices)."""

        def longs(values) -> torch.Tensor:
            return torch.tensor(list(values), dtype=torch.long)

        return cls(
            clips, targets, longs(videos), longs(clip_indices), longs(crop_indices), list(skipped)
        )

    def __reduce__(self):
        """From a DataLoader worker to the main process, every tensor travels as its own shared
        memory segment (a file descriptor sent, mapped, unmapped): the clips need that, the
        four small tensors do not, so they travel by value (pickled arrays) and the main
        process, which competes with the workers for the cores, maps one segment a batch."""
        small = [_by_value(t) for t in (self.targets, self.videos, self.clip_indices,
                                        self.crop_indices)]  # fmt: skip
        return _rebuild_batch, (self.clips, *small, self.skipped)

    def pin_memory(self) -> ClipBatch:  # DataLoader(pin_memory=True) calls this
        pinned = {
            k: v.pin_memory() if isinstance(v, torch.Tensor) else v for k, v in vars(self).items()
        }
        return ClipBatch(**pinned)


def _by_value(t: torch.Tensor | None):
    """A CPU tensor as a NumPy array (pickled by value); anything else as is."""
    return t.numpy() if isinstance(t, torch.Tensor) and t.device.type == "cpu" else t


def _rebuild_batch(clips, targets, videos, clip_indices, crop_indices, skipped) -> ClipBatch:
    small = (targets, videos, clip_indices, crop_indices)
    tensors = [torch.from_numpy(a) if isinstance(a, np.ndarray) else a for a in small]
    return ClipBatch(clips, *tensors, skipped)


def collate_clips(batch: list[dict]) -> ClipBatch:
    """Stack the decodable items; list the skipped ones as (path, reason)."""
    good = [b for b in batch if "skip" not in b]
    return ClipBatch.of(
        torch.stack([b["clip"] for b in good]) if good else None,
        torch.stack([b["target"] for b in good]) if good else None,
        [b["video"] for b in good],
        [b["clip_index"] for b in good],
        [b["crop_index"] for b in good],
        [(b["skip"], b["reason"]) for b in batch if "skip" in b],
    )


def worker_init(worker_id: int) -> None:
    """DataLoader worker start-up: one thread each, since workers already run in parallel."""
    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set in this process (e.g. a forked worker)
        pass
