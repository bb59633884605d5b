"""Video probing and frame-accurate clip decoding with PyAV.

Frame index `i` always means "the frame on screen at time i / fps after the stream start",
so constant and variable frame rate files are addressed the same way, and a clip in the
middle of a long video costs one seek plus the frames from the preceding keyframe, never a
decode from the start.

Every failure a data set can throw at us (missing, empty, cut-off, not a video, ...) is
reported as `BadVideo(path, reason)`, so a loader can skip the file and keep training.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import av

# Frames the header may overestimate at the very end: when the stream stops at most this
# many frames before a wanted index, the last decoded frame stands in for it. Duration based
# frame counts (WebM/MKV store no count) are routinely off by a frame or two; a file cut in
# half is off by far more and still raises.
END_TOLERANCE = 2


# YUV 4:2:0 -> RGB the way DALI (and NVDEC) do it: bilinear chroma, rounded. swscale's default
# depends on the output width, a bias of 1-3 grey levels that would make the PyAV and --dali
# loaders feed the network different pixels:
# - even widths, scaled: chroma computed at half width and repeated (nearest), truncated;
#   FULL_CHR_H_INT gives the full-chroma path, which interpolates and rounds.
# - unscaled: the special (SIMD) YUV->RGB converter, same faults, unless ACCURATE_RND is set
#   (then the general path, where FULL_CHR_H_INT again does the chroma).
# - odd widths (320x240 -> 267x200): swscale forces FULL_CHR_H_INT itself ("Forcing full
#   internal H chroma due to odd output size"), so the flags change nothing there: the default
#   is already the right conversion, not the flags ignored.
# With both flags every width lands within 0.06 levels of a numpy bilinear-chroma reference
# (tests/data/test_decode.py). swscale follows the frame's chroma siting (H.264: left).
def _rgb_interpolation():
    from av.video.reformatter import Interpolation

    return Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT


def pyav():
    """PyAV, imported on first decode: the models, kernels, benchmarks and export import this
    package's data layer without it (the GPU machine has no PyAV)."""
    try:
        import av
    except ImportError as err:
        raise ImportError(f"decoding video needs PyAV (pip install av): {err}") from None
    return av


class BadVideo(Exception):
    """A video that cannot be used; `reason` is a short lowercase phrase."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason

    def __reduce__(self):  # keep (path, reason) across process pools
        return (type(self), (self.path, self.reason))


@dataclass(frozen=True)
class VideoInfo:
    path: str
    num_frames: int
    fps: float
    width: int
    height: int


def output_size(width: int, height: int, short_side: int | None) -> tuple[int, int]:
    """(width, height) after scaling so the short side is `short_side`, aspect ratio kept."""
    if short_side is None:
        return width, height
    scale = short_side / min(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _open(path: str) -> av.container.InputContainer:
    av = pyav()
    if not os.path.exists(path):
        raise BadVideo(path, "missing")
    if os.path.getsize(path) == 0:
        raise BadVideo(path, "empty file")
    try:
        return av.open(path, "r", metadata_errors="ignore")
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as e:
        raise BadVideo(path, f"cannot open: {_message(e)}") from None


def _message(e: Exception) -> str:
    # FFmpeg errors repeat the file name in str(e); BadVideo already leads with it.
    return getattr(e, "strerror", None) or str(e) or type(e).__name__


def _video_stream(path: str, container) -> av.video.stream.VideoStream:
    if not container.streams.video:
        raise BadVideo(path, "no video stream")
    stream = container.streams.video[0]
    # One decoder per DataLoader worker: FFmpeg's own thread pool would only oversubscribe.
    stream.codec_context.thread_count = 1
    stream.codec_context.thread_type = "NONE"
    return stream


def _fps(stream) -> float:
    for rate in (stream.average_rate, stream.guessed_rate):
        if rate and rate > 0:
            return float(rate)
    return 25.0


def _frame_count(container, stream, fps: float) -> int:
    if stream.frames and stream.frames > 0:
        return int(stream.frames)
    if stream.duration and stream.time_base:
        seconds = float(stream.duration * stream.time_base)
    elif _tag_seconds(stream.metadata.get("DURATION")):
        # Matroska/WebM keep the per-stream length only in a tag; the container duration
        # would also cover a longer audio track.
        seconds = _tag_seconds(stream.metadata["DURATION"])
    elif container.duration:
        seconds = container.duration / pyav().time_base
    else:
        return 0
    return int(round(seconds * fps))


def _tag_seconds(tag: str | None) -> float | None:
    """'HH:MM:SS.fraction' (Matroska DURATION tag) in seconds, None if absent or malformed."""
    try:
        h, m, sec = (tag or "").split(":")
        return int(h) * 3600 + int(m) * 60 + float(sec)
    except ValueError:
        return None


def probe_video(path: str, min_frames: int = 1) -> VideoInfo:
    """Read the header and decode the first frame; cheap enough to run over a whole data set."""
    path = str(path)
    container = _open(path)
    try:
        stream = _video_stream(path, container)
        try:
            first = next(container.decode(stream), None)
        except pyav().error.FFmpegError:
            first = None
        if first is None:
            raise BadVideo(path, "undecodable")
        fps = _fps(stream)
        num_frames = _frame_count(container, stream, fps)
        if num_frames < min_frames:
            raise BadVideo(path, f"too short: {num_frames} frames, needs {min_frames}")
        return VideoInfo(path, num_frames, fps, first.width, first.height)
    finally:
        container.close()


def decode_frames(
    path: str,
    indices: Sequence[int],
    short_side: int | None = 200,
    info: VideoInfo | None = None,
) -> np.ndarray:
    """Decode frames `indices` (any order, repeats allowed) as (T, H', W', 3) uint8 RGB.

    The short side is scaled to `short_side` (None keeps the size); every frame gets the size
    of the first frame (or of `info`), so a mid-stream resolution change cannot break a clip.
    """
    path = str(path)
    indices = [int(i) for i in indices]
    if not indices:
        raise ValueError("decode_frames needs at least one index")
    if min(indices) < 0:
        raise ValueError(f"negative frame index in {indices}")
    container = _open(path)
    try:
        stream = _video_stream(path, container)
        return _decode(path, container, stream, indices, short_side, info)
    except pyav().error.FFmpegError as e:
        raise BadVideo(path, f"decode error: {_message(e)}") from None
    finally:
        container.close()


def _decode(path, container, stream, indices, short_side, info) -> np.ndarray:
    fps = info.fps if info is not None else _fps(stream)
    tb = float(stream.time_base)
    start = stream.start_time * tb if stream.start_time is not None else 0.0
    wanted = sorted(set(indices))
    size = [None if info is None else output_size(info.width, info.height, short_side)]
    interpolation = _rgb_interpolation()

    def convert(frame) -> np.ndarray:
        if size[0] is None:
            size[0] = output_size(frame.width, frame.height, short_side)
        w, h = size[0]
        return frame.to_ndarray(
            format="rgb24", width=w, height=h, interpolation=interpolation, threads=1
        )

    # Seek once to the keyframe before the first target, then decode forward. Should the seek
    # land after the target (containers that index by decode time can, with B-frames), fall
    # back to decoding from the start rather than return the wrong frame.
    if wanted[0] > 0:
        target = start + wanted[0] / fps
        container.seek(int(math.floor(target / tb)), backward=True, stream=stream)
        scan = _Scan(wanted, fps, start, tb, convert, after_seek=True)
        scan.run(container.decode(stream))
        if scan.overshoot:
            container.seek(stream.start_time or 0, backward=True, stream=stream)
            scan = _Scan(wanted, fps, start, tb, convert, after_seek=False)
            scan.run(container.decode(stream))
    else:
        scan = _Scan(wanted, fps, start, tb, convert, after_seek=False)
        scan.run(container.decode(stream))

    scan.finish_end_of_stream()
    if len(scan.chosen) < len(wanted):
        got = sum(1 for i in indices if i in scan.chosen)
        raise BadVideo(path, f"truncated: got {got} of {len(indices)} frames")
    return np.stack([scan.chosen[i] for i in indices])


class _Scan:
    """Walks decoded frames once, picking for each wanted index the frame on screen then."""

    def __init__(self, wanted, fps, start, tb, convert, after_seek):
        self.wanted, self.fps, self.start, self.tb = wanted, fps, start, tb
        self.convert, self.after_seek = convert, after_seek
        period = 1.0 / fps
        # Target i is answered by the latest frame shown at or before i/fps + period/2:
        # tolerant of timestamp rounding and of variable frame rate jitter.
        self.limits = [start + i * period + period / 2 for i in wanted]
        self.chosen: dict[int, np.ndarray] = {}
        self.k = 0
        self.prev = self.prev_time = self.prev_array = None
        self.overshoot = False

    def _take_prev(self):
        if self.prev_array is None:
            self.prev_array = self.convert(self.prev)
        self.chosen[self.wanted[self.k]] = self.prev_array
        self.k += 1

    def run(self, frames) -> None:
        period = 1.0 / self.fps
        for frame in frames:
            if frame.pts is not None:
                t = frame.pts * self.tb
            else:  # no timestamp: assume it follows the previous frame
                t = self.start if self.prev_time is None else self.prev_time + period
            if self.prev is None and t > self.limits[0]:
                if self.after_seek:
                    self.overshoot = True
                    return
                # The stream's first frame comes after the target: it is what is on screen.
                self.prev, self.prev_time = frame, t
            while self.k < len(self.wanted) and t > self.limits[self.k]:
                self._take_prev()
            if self.k == len(self.wanted):
                return
            self.prev, self.prev_time, self.prev_array = frame, t, None

    def finish_end_of_stream(self) -> None:
        """The last frame may stand in for up to END_TOLERANCE indices past the end."""
        if self.prev is None:
            return
        last_index = round((self.prev_time - self.start) * self.fps)
        while self.k < len(self.wanted) and self.wanted[self.k] - last_index <= END_TOLERANCE:
            self._take_prev()
