"""Small test videos written with PyAV, shared by the data tests.

`write_index_video` makes frames that carry their own index as a grid of big black/white
cells, so a test can read back *which* frame a decoder returned even after lossy
compression. `write_position_video` makes losslessly coded frames (FFV1, RGB) whose pixels
spell out their own (x, y, index), so a crop/flip can be checked pixel for pixel.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from fractions import Fraction

import numpy as np
import pytest

av = pytest.importorskip("av", reason="needs PyAV (decodes and encodes the test videos)")

# Index bits are laid out as COLS x ROWS cells covering the whole frame: 10 bits = 0..1023.
COLS, ROWS = 5, 2
NBITS = COLS * ROWS
LOW, HIGH = 24, 232  # far from the threshold (128) so codec noise cannot flip a bit


def index_frame(index: int, width: int = 80, height: int = 48) -> np.ndarray:
    """One (H, W, 3) uint8 frame whose cells spell `index` in binary (cell 0 = bit 0)."""
    if not 0 <= index < 2**NBITS:
        raise ValueError(f"index {index} does not fit in {NBITS} bits")
    frame = np.full((height, width, 3), LOW, np.uint8)
    for bit in range(NBITS):
        if index >> bit & 1:
            r, c = divmod(bit, COLS)
            ys, ye = r * height // ROWS, (r + 1) * height // ROWS
            xs, xe = c * width // COLS, (c + 1) * width // COLS
            frame[ys:ye, xs:xe] = HIGH
    return frame


def read_index(frame: np.ndarray) -> int:
    """Inverse of `index_frame` for a decoded (H, W, 3) or (H, W) frame of any size."""
    img = frame.astype(np.float32)
    if img.ndim == 3:
        img = img.mean(axis=2)
    height, width = img.shape
    index = 0
    for bit in range(NBITS):
        r, c = divmod(bit, COLS)
        # Sample only the inner half of the cell: edges blur under compression and resizing.
        ys, ye = r * height // ROWS, (r + 1) * height // ROWS
        xs, xe = c * width // COLS, (c + 1) * width // COLS
        qy, qx = (ye - ys) // 4, (xe - xs) // 4
        if img[ys + qy : ye - qy, xs + qx : xe - qx].mean() > 128:
            index |= 1 << bit
    return index


def read_indices(frames: np.ndarray) -> list[int]:
    return [read_index(f) for f in frames]


def write_video(
    path: str | os.PathLike,
    frames: np.ndarray,
    fps: float = 25,
    codec: str = "libvpx-vp9",
    pix_fmt: str | None = None,
    gop: int | None = None,
    pts: Sequence[int] | None = None,
    time_base: Fraction | None = None,
    audio: bool | float = False,
) -> str:
    """Encode (T, H, W, 3) RGB or (T, H, W) grey uint8 frames; the container follows the suffix.

    `pts` (in `time_base` units, default 1/fps) gives irregular timestamps for variable frame
    rate files. `gop` is the keyframe interval. `audio` adds a mono PCM/FLAC track (True: as
    long as the video, a number: that many seconds) so the decoder has to skip its packets.
    """
    path = str(path)
    frames = np.asarray(frames, np.uint8)
    grey = frames.ndim == 3
    defaults = {"libvpx-vp9": "yuv420p", "libx264": "yuv420p", "mpeg4": "yuv420p"}
    defaults |= {"mjpeg": "yuvj420p", "ffv1": "bgr0"}
    pix_fmt = pix_fmt or ("gray" if grey else defaults.get(codec, "yuv420p"))
    rate = Fraction(fps).limit_denominator(1000)
    audio_seconds = len(frames) / float(fps) if audio is True else float(audio)
    with av.open(path, "w") as container:
        options = {}
        if codec == "libx264" and gop:
            # Fixed keyframe spacing: x264 otherwise adds keyframes on "scene cuts".
            options["x264-params"] = f"keyint={gop}:min-keyint={gop}:scenecut=0"
        if codec == "libvpx-vp9":
            options |= {"deadline": "realtime", "cpu-used": "8", "crf": "20", "b": "0"}
        stream = container.add_stream(codec, rate=rate, options=options)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = pix_fmt
        if gop:
            stream.codec_context.gop_size = gop
        if codec == "mpeg4":
            stream.codec_context.bit_rate = 2_000_000
        if pts is not None:
            stream.codec_context.time_base = time_base or Fraction(1, 1000)
            stream.time_base = stream.codec_context.time_base
        astream = None
        if audio_seconds > 0:
            suffix = os.path.splitext(path)[1]
            acodec = {".mp4": "aac", ".m4a": "aac", ".webm": "libopus", ".ogg": "flac"}
            astream = container.add_stream(acodec.get(suffix, "pcm_s16le"), rate=48000)
            astream.layout = "mono"
        for i, img in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(img, format="gray" if grey else "rgb24")
            if pts is not None:
                frame.pts = int(pts[i])
                frame.time_base = stream.codec_context.time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        if astream is not None:
            _mux_audio(container, astream, audio_seconds)
    return path


def write_index_video(
    path: str | os.PathLike, n: int, width: int = 80, height: int = 48, **kwargs
) -> str:
    """A video of `n` frames where frame i shows index i (read back with `read_index`)."""
    frames = np.stack([index_frame(i, width, height) for i in range(n)])
    return write_video(path, frames, **kwargs)


def position_frames(n: int, width: int = 64, height: int = 48) -> np.ndarray:
    """Frames whose R channel is 2*x, G is 2*y and B is 4*index: a crop reveals where it was."""
    ys, xs = np.mgrid[0:height, 0:width]
    base = np.stack([2 * xs, 2 * ys, np.zeros_like(xs)], axis=-1).astype(np.uint8)
    frames = np.repeat(base[None], n, axis=0)
    frames[..., 2] = (4 * np.arange(n, dtype=np.uint8))[:, None, None]
    return frames


def write_position_video(path: str | os.PathLike, n: int, width: int = 64, height: int = 48):
    """Lossless (FFV1 in RGB) version of `position_frames`, so decoded pixels are exact."""
    if width > 128 or height > 128 or n > 64:
        raise ValueError("position video codes values as 2*x, 2*y, 4*index in uint8")
    return write_video(path, position_frames(n, width, height), codec="ffv1", pix_fmt="bgr0")


def _mux_audio(container, stream, seconds: float) -> None:
    """A 440 Hz tone; PyAV converts format and frame size to what the encoder wants."""
    rate = stream.codec_context.sample_rate
    t = np.arange(int(rate * seconds)) / rate
    samples = (3000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)[None]
    for s in range(0, samples.shape[1], 1024):
        frame = av.AudioFrame.from_ndarray(samples[:, s : s + 1024], format="s16", layout="mono")
        frame.sample_rate, frame.pts = rate, s
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)


def write_audio(path: str | os.PathLike, seconds: float = 1.0, codec: str = "pcm_s16le") -> str:
    """An audio-only file (e.g. .wav with pcm_s16le, .flac, .m4a with aac)."""
    path = str(path)
    with av.open(path, "w") as container:
        stream = container.add_stream(codec, rate=8000)
        stream.layout = "mono"
        _mux_audio(container, stream, seconds)
    return path


def truncate_file(path: str | os.PathLike, fraction: float) -> str:
    """Cut a file to `fraction` of its bytes, like an interrupted download."""
    path = str(path)
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(int(size * fraction))
    return path


def write_garbage(path: str | os.PathLike, nbytes: int = 4096, seed: int = 0) -> str:
    path = str(path)
    with open(path, "wb") as f:
        f.write(np.random.default_rng(seed).integers(0, 256, nbytes, np.uint8).tobytes())
    return path


def write_undecodable(path: str | os.PathLike, n: int = 10, seed: int = 0) -> str:
    """A well-formed container (MKV/AVI) whose MJPEG packets are random bytes."""
    path = str(path)
    rng = np.random.default_rng(seed)
    with av.open(path, "w") as container:
        stream = container.add_stream("mjpeg", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuvj420p"
        for i in range(n):
            packet = av.Packet(rng.integers(0, 256, 2000, np.uint8).tobytes())
            packet.stream, packet.pts, packet.dts = stream, i, i
            packet.time_base, packet.is_keyframe = Fraction(1, 25), True
            container.mux(packet)
    return path


# Expected probe reasons (prefixes) for the files written by `write_bad_videos`.
BAD_REASONS = {
    "missing": "missing",
    "empty": "empty file",
    "audio_only": "no video stream",
    "garbage": "cannot open: ",
    "undecodable": "undecodable",
    "too_short": "too short: 5 frames, needs ",
}


def write_bad_videos(directory: str | os.PathLike) -> dict[str, str]:
    """One file of each kind `probe_video` rejects (too_short needs min_frames > 5)."""
    d = str(directory)
    paths = {kind: os.path.join(d, f"bad_{kind}") for kind in BAD_REASONS}
    paths = {
        k: p + {"audio_only": ".wav", "undecodable": ".mkv"}.get(k, ".webm")
        for k, p in paths.items()
    }
    open(paths["empty"], "wb").close()
    write_audio(paths["audio_only"], 0.5)
    write_garbage(paths["garbage"])
    write_undecodable(paths["undecodable"])
    write_index_video(paths["too_short"], 5, width=32, height=32)
    return paths
