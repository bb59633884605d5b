"""NVIDIA DALI clip loading (`--dali`): the same clips as the PyAV DataLoader, decoded by DALI.

DALI decodes with FFmpeg on the CPU (VP8, VP9, MJPEG only) or with NVDEC on a GPU (also H.264,
HEVC, AV1, MPEG-4), resizes, crops and flips inside its own thread pool, and on a GPU hands the
training loop CUDA tensors that never visit host memory.

What a loader yields is decided exactly as for the PyAV path, by the `ClipDataset` (which
video, clip start, crop and flip item i is: a pure function of (seed, epoch, i)) and the
`ShardedSampler` (the per-epoch order and this process's share of it). Each epoch, this
process's items are written as a DALI `file_list`, one line per clip
(``path row start end``, frame numbers, end exclusive), and a pipeline is built over it:

    readers.video(sequence_length=frames_per_clip, stride=frame_spacing)  one clip per line
      -> resize (to the PyAV path's exact output size: short side `short_side_for(input)`)
      -> slice (the plan's crop, inside the centre square) -> flip (the plan's coin)

The per-clip resize size, crop position and flip are per-sample arguments fed by an
`external_source` in the list's order, so the one crop and flip of a clip apply to all of its
frames and a DALI run trains on the same clips as a PyAV run with the same seed (resumable
mid-epoch the same way). The reader's label is the row number, which checks that alignment.
DALI numbers frames in decode order where PyAV goes by timestamp: the same frames for constant
frame rate files (variable frame rate ones may differ by a frame or so).

Sharding happens in the sampler (each rank lists only its own, equally many, items), not in
the reader's `shard_id`/`num_shards`: DALI's video reader opens and indexes every file of
its list when it is built, so a shared list would make every rank index the whole data set
every epoch.

Probing (`probe_for_dali`) is the PyAV loader's probe (`sportsfusion.data.probe`: header + first
frame, over `workers` processes, in the one cache ``cache_dir()/probe.sqlite`` keyed by (path,
size, mtime)) plus each video's codec name in the same rows, so a large data set is probed once
for both loaders; files the chosen DALI backend cannot decode stop the run before training with
a one-line error.
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import shutil
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sportsfusion.data.decode import BadVideo, VideoInfo, output_size
from sportsfusion.data.formats import VideoEntry
from sportsfusion.data.probe import cache_dir, cache_path, codec_name, probe_and_report
from sportsfusion.data.sampling import ClipBatch, ClipDataset, clip_span

log = logging.getLogger("sportsfusion.data")

# FFmpeg codec names (PyAV's `codec_context.name`) each DALI backend decodes.
CPU_CODECS = frozenset({"vp8", "vp9", "mjpeg"})
GPU_CODECS = CPU_CODECS | {"h264", "hevc", "av1", "mpeg4"}

READER = "reader"


class DaliMissing(ImportError, ValueError):
    """`--dali` without NVIDIA DALI installed (a ValueError too, so the CLIs print one line)."""

    def __init__(self, detail: str = ""):
        super().__init__(
            "--dali needs NVIDIA DALI: pip install -e .[dali] (or drop --dali to decode with PyAV)"
            + (f" ({detail})" if detail else "")
        )


def dali_available() -> bool:
    try:
        import nvidia.dali  # noqa: F401
    except ImportError:
        return False
    return True


def require_dali() -> None:
    try:
        import nvidia.dali  # noqa: F401
    except ImportError as e:
        raise DaliMissing(str(e).splitlines()[0] if str(e) else "") from None


def backend_for(device: torch.device | str) -> str:
    """'gpu' (NVDEC decoding, CUDA outputs) on a CUDA device, else 'cpu'."""
    return "gpu" if torch.device(device).type == "cuda" else "cpu"


# ------------------------------------------------------------------------------ probing


def probe_cache_path() -> Path:
    """The probe cache both loaders share (`sportsfusion.data.probe`)."""
    return cache_path()


video_codec = codec_name  # FFmpeg's codec name of a file's first video stream, '' if unknown


@dataclass
class ProbeResult:
    entries: list[VideoEntry]  # usable videos, input order
    infos: list[VideoInfo]
    codecs: list[str]
    bad: list[BadVideo]
    probed: int  # files actually opened (cache misses)


def probe_cached(
    entries: Sequence[VideoEntry],
    min_frames: int,
    workers: int = 0,
    strict: bool = False,
    what: str = "train",
    cache: str | os.PathLike | None = None,
    progress: bool = True,
) -> ProbeResult:
    """`probe_split`'s probe (the shared cache, `cache` for another file) with a codec name per
    usable video. Only files not in the cache (or changed since) are opened; a file the PyAV
    loader probed before only has its codec read. One warning line per bad file; `strict`
    raises the first one instead."""
    result = probe_and_report(
        entries,
        min_frames,
        workers,
        strict,
        what,
        progress=progress,
        codec=True,
        cache=True if cache is None else cache,
    )
    codecs = [c or "" for c in result.codecs]
    return ProbeResult(result.entries, result.infos, codecs, result.bad, result.probed)


def check_codecs(entries: Sequence[VideoEntry], codecs: Sequence[str], backend: str, what: str):
    """A one-line ValueError when the DALI backend cannot decode some of the videos."""
    supported = CPU_CODECS if backend == "cpu" else GPU_CODECS
    unusable = [(e.path, c or "unknown") for e, c in zip(entries, codecs) if c not in supported]
    if not unusable:
        return
    kinds = ", ".join(sorted({c for _, c in unusable}))
    if backend == "cpu":
        advice = "drop --dali to decode them with PyAV, or use a GPU (NVDEC reads H.264/HEVC/AV1)"
        who = "DALI's CPU decoder (VP8/VP9/MJPEG only)"
    else:
        advice = "drop --dali to decode them with PyAV"
        who = "DALI's GPU decoder"
    raise ValueError(
        f"--dali: {len(unusable)} of {len(entries)} {what} videos are {kinds}, which {who} "
        f"cannot read (first: {unusable[0][0]}); {advice}"
    )


def probe_for_dali(
    entries: Sequence[VideoEntry],
    min_frames: int,
    workers: int,
    strict: bool,
    what: str,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> tuple[list[VideoEntry], list[VideoInfo], list[BadVideo]]:
    """`probe_split`'s contract for a DALI run: cached probe, then the codec check."""
    require_dali()
    result = probe_cached(entries, min_frames, workers, strict, what, progress=progress)
    check_codecs(result.entries, result.codecs, backend_for(device), what)
    return result.entries, result.infos, result.bad


# ----------------------------------------------------------------------------- pipeline


@dataclass(frozen=True)
class ClipRow:
    """One line of the DALI file list: which frames, and how to resize/crop/flip them."""

    video: int  # index in the dataset's entries
    clip_index: int
    crop_index: int
    path: str
    start: int
    height: int  # frame size after the short-side resize
    width: int
    top: int
    left: int
    flip: bool


def clip_rows(dataset: ClipDataset, items: Sequence[int]) -> list[ClipRow]:
    """The dataset's plans for `items` (same video, start, crop and flip as the PyAV path)."""
    rows = []
    for i in items:
        plan = dataset.plan(i)
        info = dataset.infos[plan.video]
        width, height = output_size(info.width, info.height, dataset.short_side)
        if min(width, height) < dataset.size:
            raise ValueError(
                f"{info.path}: {width}x{height} frames are smaller than the {dataset.size} crop"
            )
        crop = plan.crop
        rows.append(
            ClipRow(
                plan.video,
                plan.clip_index,
                plan.crop_index,
                dataset.entries[plan.video].path,
                plan.start,
                height,
                width,
                crop.top,
                crop.left,
                crop.flip,
            )
        )
    return rows


def _safe_path(path: str, links: Path) -> str:
    """DALI's file list splits on whitespace: such paths go through a symlink."""
    if not any(ch.isspace() for ch in path):
        return path
    links.mkdir(parents=True, exist_ok=True)
    link = links / (hashlib.sha1(path.encode()).hexdigest()[:16] + Path(path).suffix)
    if not link.is_symlink():
        try:
            link.symlink_to(os.path.abspath(path))
        except FileExistsError:  # another process made it meanwhile
            pass
    return str(link)


def write_file_list(rows: Sequence[ClipRow], span: int, path: Path, links: Path) -> None:
    """`path label start end` per clip: frame numbers, end exclusive, label = row number."""
    with open(path, "w") as f:
        for n, r in enumerate(rows):
            f.write(f"{_safe_path(r.path, links)} {n} {r.start} {r.start + span}\n")


class _RowParams:
    """external_source callback: per-sample resize size, crop anchor and flip, in list order.

    Iteration i gets rows [i*B, (i+1)*B), the last batch padded with its last row as the reader
    pads (pad_last_batch); past the end it wraps, as the reader does after padding, so
    prefetched batches beyond the epoch stay aligned (and are never returned)."""

    def __init__(self, rows: Sequence[ClipRow], batch_size: int):
        self.batch_size = batch_size
        self.batches = max(1, -(-len(rows) // batch_size))
        self.size = np.array([[r.height, r.width] for r in rows], np.float32)
        self.anchor = np.array([[r.top, r.left] for r in rows], np.int32)
        self.flip = np.array([int(r.flip) for r in rows], np.int32)

    def __call__(self, iteration: int):
        i = iteration % self.batches
        index = np.minimum(
            np.arange(i * self.batch_size, (i + 1) * self.batch_size), len(self.flip) - 1
        )
        return (
            [np.float32(y) for y in self.size[index, 0]],
            [np.float32(x) for x in self.size[index, 1]],
            [a for a in self.anchor[index]],
            [np.int32(f) for f in self.flip[index]],
        )


def build_pipeline(
    file_list: str,
    params: _RowParams,
    *,
    batch_size: int,
    frames: int,
    spacing: int,
    size: int,
    backend: str = "cpu",
    device_id: int | None = None,
    num_threads: int = 2,
    seed: int = 0,
    prefetch: int = 2,
):
    """The DALI pipeline over a clip file list: uint8 (T, size, size, 3) clips and row numbers."""
    from nvidia.dali import fn, pipeline_def, types

    span = clip_span(frames, spacing)

    @pipeline_def(
        batch_size=batch_size,
        num_threads=num_threads,
        device_id=device_id if backend == "gpu" else None,
        seed=seed,
        prefetch_queue_depth=prefetch,
    )
    def clips():
        video, row = fn.experimental.readers.video(
            device=backend,
            file_list=file_list,
            file_list_format="frames",
            file_list_include_end=False,
            sequence_length=frames,
            stride=spacing,
            step=span,  # one clip per list line
            pad_mode="edge",  # a header that overcounts by a frame repeats the last one (as PyAV)
            pad_last_batch=True,
            random_shuffle=False,  # the order is the sampler's
            seed=seed,
            image_type=types.RGB,
            name=READER,
        )
        height, width, anchor, flip = fn.external_source(
            source=params, num_outputs=4, dtype=[types.FLOAT, types.FLOAT, types.INT32, types.INT32]
        )
        video = fn.resize(video, resize_x=width, resize_y=height, antialias=True)
        video = fn.slice(video, start=anchor, shape=[size, size], axis_names="HW")
        video = fn.flip(video, horizontal=flip)
        return video, row

    return clips()


class _Producer:
    """Runs a batch generator in a thread, a few batches ahead (DALI releases the GIL)."""

    def __init__(self, batches: Iterator, depth: int = 2):
        self.queue: queue.Queue = queue.Queue(depth)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._work, args=(batches,), daemon=True)
        self.thread.start()

    def _put(self, item) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _work(self, batches: Iterator) -> None:
        try:
            for batch in batches:
                if not self._put(("batch", batch)):
                    return
            self._put(("end", None))
        except BaseException as e:  # handed to the consumer, raised there
            self._put(("error", e))
        finally:
            batches.close()

    def get(self):
        kind, value = self.queue.get()
        if kind == "error":
            raise value
        if kind == "end":
            raise RuntimeError("a DALI pipeline ended before its last batch")
        return value

    def close(self) -> None:
        self.stop.set()
        self.thread.join()


class DaliClipLoader:
    """Batches of a `ClipDataset` decoded by DALI, as `collate_clips` dicts.

    Drop-in for the PyAV DataLoader in the training and evaluation loops: `len()` batches per
    epoch, items in `sampler` order (the dataset's order without one), the dataset's epoch
    deciding clip starts and crops; `clips` are uint8 (B, T, S, S, 3), on the GPU with the GPU
    backend, `skipped` is always empty (unusable files are excluded by the probe).

    DALI's CPU video reader decodes one clip at a time whatever `num_threads` is (measured: one
    core busy), so the CPU backend runs `num_threads` pipelines, each fed every
    `num_threads`-th batch and driven by its own thread, and hands their batches back in
    order. The GPU backend (NVDEC) runs one pipeline with `num_threads` CPU threads.
    """

    def __init__(
        self,
        dataset: ClipDataset,
        batch_size: int,
        sampler=None,
        *,
        device: torch.device | str = "cpu",
        num_threads: int = 2,
        pipelines: int | None = None,
        prefetch: int = 2,
        workdir: str | os.PathLike | None = None,
    ):
        require_dali()
        if batch_size < 1:
            raise ValueError(f"batch size must be at least 1, got {batch_size}")
        self.dataset, self.batch_size, self.sampler = dataset, batch_size, sampler
        self.device = torch.device(device)
        self.backend = backend_for(self.device)
        self.num_threads, self.prefetch = max(1, num_threads), max(1, prefetch)
        if pipelines is None:
            pipelines = self.num_threads if self.backend == "cpu" else 1
        self.pipelines = max(1, pipelines)
        self.workdir = Path(workdir) if workdir is not None else None

    def items(self) -> list[int]:
        """This epoch's items for this process (the sampler's, resumed position included)."""
        if self.sampler is not None:
            return list(self.sampler)
        return list(range(len(self.dataset)))

    def __len__(self) -> int:
        n = len(self.sampler) if self.sampler is not None else len(self.dataset)
        return -(-n // self.batch_size)

    def _seed(self, part: int) -> int:
        # DALI's own seed (it draws nothing here, but any future random op follows the run).
        return (self.dataset.seed * 1_000_003 + self.dataset.epoch * 101 + part) % (2**31 - 1)

    def __iter__(self) -> Iterator[dict]:
        items = self.items()
        if not items:
            return
        rows = clip_rows(self.dataset, items)
        batches = [rows[i : i + self.batch_size] for i in range(0, len(rows), self.batch_size)]
        k = min(self.pipelines, len(batches))
        # Pipeline j decodes batches j, j + k, ...: only the epoch's last batch is partial,
        # and it is the last of its pipeline.
        parts = [[r for b in batches[j::k] for r in b] for j in range(k)]
        tmp = Path(tempfile.mkdtemp(prefix="sportsfusion-dali-", dir=self.workdir))
        streams = [self._stream(part, tmp / f"clips{j}.txt", j) for j, part in enumerate(parts)]
        try:
            if k == 1:
                for clips, got in streams[0]:
                    yield self._batch(clips, got)
                return
            producers = [_Producer(s, self.prefetch) for s in streams]
            try:
                for b in range(len(batches)):
                    yield self._batch(*producers[b % k].get())
            finally:
                for p in producers:
                    p.close()
        finally:
            for s in streams:
                s.close()
            shutil.rmtree(tmp, ignore_errors=True)

    def _stream(self, rows: list[ClipRow], file_list: Path, part: int) -> Iterator:
        """(clips, rows) per batch of one pipeline over `rows`, built on first use."""
        from nvidia.dali.plugin.pytorch import DALIGenericIterator, LastBatchPolicy

        span = clip_span(self.dataset.frames_per_clip, self.dataset.frame_spacing)
        write_file_list(rows, span, file_list, cache_dir() / "dali-links")
        device_id = None
        if self.backend == "gpu":
            device_id = (
                self.device.index if self.device.index is not None else torch.cuda.current_device()
            )
        pipe = build_pipeline(
            str(file_list),
            _RowParams(rows, self.batch_size),
            batch_size=self.batch_size,
            frames=self.dataset.frames_per_clip,
            spacing=self.dataset.frame_spacing,
            size=self.dataset.size,
            backend=self.backend,
            device_id=device_id,
            num_threads=self.num_threads if self.pipelines == 1 else 1,
            seed=self._seed(part),
            prefetch=self.prefetch,
        )
        pipe.build()
        listed = pipe.epoch_size(READER)
        if listed != len(rows):
            raise ValueError(
                f"--dali: DALI's reader dropped {len(rows) - listed} of {len(rows)} clips "
                "(files it cannot open or too short for it; see its messages above); "
                "drop --dali to decode with PyAV"
            )
        iterator = DALIGenericIterator(
            [pipe],
            ["clips", "rows"],
            reader_name=READER,
            last_batch_policy=LastBatchPolicy.PARTIAL,
            auto_reset=False,
        )

        def check(got: list[int], first: int) -> None:
            """The reader's row numbers of the batch that starts at row `first`."""
            want = list(range(first, first + len(got)))
            if got != want:
                bad = rows[next(k for k, g in zip(want, got) if k != g)]
                raise ValueError(
                    f"--dali: DALI skipped a clip of {bad.path} (it cannot read the file); "
                    "drop --dali to decode with PyAV"
                )

        # With the GPU backend the row numbers are on the GPU, and reading them at once would
        # wait for all the work queued on the stream (the training step before): instead each
        # batch's rows are copied to pinned memory behind an event, and checked when the next
        # batch arrives (the last at the end), by when that copy has long finished. So a
        # skipped clip fails one batch late; the batch's length is its shape's (no sync).
        pending = None  # (rows on the host, their copy's event, first row) of the last batch
        n = 0
        try:
            for out in iterator:
                labels = out[0]["rows"].reshape(-1)
                count = labels.shape[0]
                if labels.is_cuda:
                    host = labels.to("cpu", non_blocking=True)  # pinned: a stream-ordered copy
                    done = torch.cuda.Event()
                    done.record(torch.cuda.current_stream(labels.device))
                    if pending is not None:
                        pending[1].synchronize()
                        check(pending[0].tolist(), pending[2])
                    pending = (host, done, n)
                else:
                    check(labels.tolist(), n)
                yield out[0]["clips"], rows[n : n + count]
                n += count
            if pending is not None:
                pending[1].synchronize()
                check(pending[0].tolist(), pending[2])
        finally:
            del iterator, pipe

    def _batch(self, clips: torch.Tensor, rows: list[ClipRow]) -> ClipBatch:
        videos = [r.video for r in rows]
        targets = torch.stack([self.dataset.target(v) for v in videos])
        return ClipBatch.of(
            clips, targets, videos, [r.clip_index for r in rows], [r.crop_index for r in rows]
        )
