"""Frame-accurate decoding: seeks, variable frame rate, pixel formats, sizes, bad files."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from videos import (
    BAD_REASONS,
    read_index,
    read_indices,
    truncate_file,
    write_bad_videos,
    write_index_video,
    write_video,
)

from sportsfusion.data import decode
from sportsfusion.data.decode import BadVideo, VideoInfo, decode_frames, probe_video

av = pytest.importorskip("av", reason="needs PyAV (decodes and encodes the test videos)")

N = 96  # frames in the seek test videos; keyframes every 12
CODECS = {"vp9": ("libvpx-vp9", "webm"), "h264": ("libx264", "mp4"), "mpeg4": ("mpeg4", "avi")}


@pytest.fixture(scope="module")
def seek_videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("seek")
    return {
        name: write_index_video(d / f"index.{ext}", N, codec=codec, gop=12)
        for name, (codec, ext) in CODECS.items()
    }


@pytest.mark.parametrize("name", list(CODECS))
def test_seek_returns_exactly_the_requested_frames(seek_videos, name):
    path = seek_videos[name]
    info = probe_video(path)
    assert (info.num_frames, info.fps, info.width, info.height) == (N, 25.0, 80, 48)
    # Starts on, just before and just after keyframes (0, 12, 24, ...) and between them.
    for start in [0, 1, 11, 12, 13, 23, 35, 47, 60, 71, 83, 89]:
        wanted = [start + 2 * k for k in range(4)]
        frames = decode_frames(path, wanted, short_side=None, info=info)
        assert frames.shape == (4, 48, 80, 3) and frames.dtype == np.uint8
        assert read_indices(frames) == wanted, f"{name} clip at {start}"
    # Output follows the requested order, repeats included.
    wanted = [50, 40, 50, 95, 41]
    assert read_indices(decode_frames(path, wanted, short_side=None)) == wanted


class _CountingContainer:
    """Wraps a PyAV container to count seeks and decoded frames."""

    def __init__(self, container):
        self._c, self.seeks, self.decoded = container, [], 0

    def __getattr__(self, name):
        return getattr(self._c, name)

    def seek(self, *args, **kwargs):
        self.seeks.append(args)
        return self._c.seek(*args, **kwargs)

    def decode(self, *args, **kwargs):
        for frame in self._c.decode(*args, **kwargs):
            self.decoded += 1
            yield frame


def _count_opens(monkeypatch, wrapper=_CountingContainer) -> list:
    """Make the decoder's av.open return wrapped containers; returns the list of them."""
    opened, real_open = [], av.open

    def counting_open(*args, **kwargs):
        opened.append(wrapper(real_open(*args, **kwargs)))
        return opened[-1]

    monkeypatch.setattr(av, "open", counting_open)  # the module decode imports on first use
    return opened


@pytest.mark.parametrize("name", list(CODECS))
def test_mid_clip_seeks_once_and_decodes_from_the_keyframe(seek_videos, name, monkeypatch):
    opened = _count_opens(monkeypatch)
    assert read_indices(decode_frames(seek_videos[name], [75, 77], short_side=None)) == [75, 77]
    (c,) = opened
    assert len(c.seeks) == 1
    # From the keyframe before 75 (GOP 12) to frame 78 (the look-ahead that ends 77), never
    # the 78 frames from the start.
    assert c.decoded <= 16


def test_seek_past_the_target_falls_back_to_the_start(seek_videos, monkeypatch):
    """Some containers seek by decode time and land after the target: never return a wrong
    frame then. Simulated by a container whose first seek goes one second too far."""

    class LateSeek(_CountingContainer):
        def seek(self, offset, **kwargs):
            one_second = int(1 / self._c.streams.video[0].time_base)
            return super().seek(offset + (0 if self.seeks else one_second), **kwargs)

    opened = _count_opens(monkeypatch, LateSeek)
    assert read_indices(decode_frames(seek_videos["vp9"], [40, 42], short_side=None)) == [40, 42]
    assert len(opened[0].seeks) == 2


def test_variable_frame_rate_maps_indices_by_time(tmp_path):
    rng = np.random.default_rng(0)
    durations = rng.choice([20, 40, 80], size=40)  # milliseconds on screen
    pts = np.concatenate([[0], np.cumsum(durations)[:-1]])
    for codec, ext in [("libx264", "mkv"), ("libvpx-vp9", "webm")]:
        path = write_index_video(tmp_path / f"vfr.{ext}", 40, codec=codec, gop=12, pts=pts)
        info = probe_video(path)
        # Index i is the frame on screen at i / fps (half a period of slack for rounding).
        expected = [
            int(np.searchsorted(pts / 1000, (i + 0.5) / info.fps, side="right")) - 1
            for i in range(info.num_frames)
        ]
        assert len(set(expected)) < info.num_frames  # some frames repeat, some are skipped
        got = read_indices(decode_frames(path, range(info.num_frames), None, info))
        assert got == expected
        mid = list(range(25, info.num_frames, 3))  # through a seek
        assert read_indices(decode_frames(path, mid, None, info)) == [expected[i] for i in mid]


def test_grey_video_gives_three_channels(tmp_path):
    ramp = np.tile(np.arange(0, 240, 5, dtype=np.uint8), (32, 1))  # (32, 48) grey ramp
    path = write_video(tmp_path / "grey.mkv", np.stack([ramp] * 6), codec="ffv1", pix_fmt="gray")
    with av.open(path) as c:
        assert c.streams.video[0].codec_context.pix_fmt == "gray"
    frames = decode_frames(path, [0, 5], short_side=None)
    assert frames.shape == (2, 32, 48, 3)
    assert np.array_equal(frames[..., 0], frames[..., 1])
    assert np.array_equal(frames[..., 1], frames[..., 2])
    assert np.abs(frames[0, :, :, 0].astype(int) - ramp).max() <= 2


@pytest.mark.parametrize("width,height", [(161, 97), (97, 161)])
def test_odd_size_resizes_short_side_keeping_aspect(tmp_path, width, height):
    frames = np.stack([np.full((height, width, 3), 40 * i, np.uint8) for i in range(4)])
    path = write_video(tmp_path / "odd.mkv", frames, codec="ffv1")
    info = probe_video(path)
    assert (info.width, info.height) == (width, height)
    long_side = round(max(width, height) * 200 / min(width, height))  # 331.96 -> 332
    out = decode_frames(path, [1, 3], short_side=200, info=info)
    assert out.shape == ((2, 200, long_side, 3) if width > height else (2, long_side, 200, 3))
    assert abs(int(out[1].mean()) - 120) <= 2
    assert decode_frames(path, [0], short_side=None).shape == (1, height, width, 3)
    assert decode_frames(path, [0], short_side=48).shape[1:3] in {(48, 80), (80, 48)}


@pytest.mark.parametrize("ext", ["mkv", "mp4", "webm"])
def test_audio_track_is_ignored(tmp_path, ext):
    # 30 frames (1.2 s) of video beside 3 s of audio: the frame count must not follow the audio.
    codec = "libvpx-vp9" if ext == "webm" else "libx264"
    path = write_index_video(tmp_path / f"av.{ext}", 30, codec=codec, gop=12, audio=3.0)
    with av.open(path) as c:
        assert len(c.streams.audio) == 1 and c.duration / av.time_base > 2.9
    assert probe_video(path).num_frames == 30
    assert read_indices(decode_frames(path, [3, 20, 29], short_side=None)) == [3, 20, 29]


def test_end_of_stream_tolerance(seek_videos):
    path = seek_videos["vp9"]
    last = read_index(decode_frames(path, [N - 1], short_side=None)[0])
    # Up to END_TOLERANCE indices past the last frame read as the last frame ...
    tail = decode_frames(path, [N - 2, N, N + 1], short_side=None)
    assert read_indices(tail) == [N - 2, last, last]
    # ... further is an error.
    with pytest.raises(BadVideo, match="truncated: got 1 of 2 frames"):
        decode_frames(path, [N - 1, N + decode.END_TOLERANCE + 1], short_side=None)


def test_cut_file_probes_but_late_frames_raise(tmp_path):
    path = write_index_video(tmp_path / "cut.webm", 100, codec="libvpx-vp9", gop=12)
    truncate_file(path, 0.4)
    info = probe_video(path)  # the header still claims the full length
    assert info.num_frames == 100
    assert read_indices(decode_frames(path, [0, 2, 4], short_side=None, info=info)) == [0, 2, 4]
    with pytest.raises(BadVideo) as e:
        decode_frames(path, [85, 90, 95], short_side=None, info=info)
    assert e.value.reason.startswith("truncated: got ") and e.value.path == path


def test_every_bad_kind_has_its_reason(tmp_path):
    paths = write_bad_videos(tmp_path)
    for kind, path in paths.items():
        with pytest.raises(BadVideo) as e:
            probe_video(path, min_frames=10)
        assert e.value.reason.startswith(BAD_REASONS[kind]), (kind, e.value.reason)
        assert e.value.path == path and str(e.value) == f"{path}: {e.value.reason}"
        assert path not in e.value.reason  # the reason stays short
    assert probe_video(paths["too_short"], min_frames=5).num_frames == 5
    for kind in ["missing", "empty", "garbage", "audio_only"]:
        with pytest.raises(BadVideo, match=BAD_REASONS[kind]):
            decode_frames(paths[kind], [0])
    with pytest.raises(BadVideo):
        decode_frames(paths["undecodable"], [0, 1])


def test_bad_video_pickles_and_video_info_is_frozen():
    e = pickle.loads(pickle.dumps(BadVideo("/x/y.mp4", "missing")))
    assert (e.path, e.reason, str(e)) == ("/x/y.mp4", "missing", "/x/y.mp4: missing")
    info = VideoInfo("/x/y.mp4", 10, 25.0, 64, 48)
    with pytest.raises(AttributeError):
        info.num_frames = 3


def test_rejects_bad_indices(seek_videos):
    with pytest.raises(ValueError):
        decode_frames(seek_videos["vp9"], [])
    with pytest.raises(ValueError):
        decode_frames(seek_videos["vp9"], [-1])


# YUV 4:2:0 -> RGB. The reference below is what DALI asks for: chroma and luma resampled
# bilinearly (a triangle filter as wide as the scale factor when shrinking, like swscale's
# BILINEAR), then BT.601 limited range -> RGB, rounded. Odd output widths matter: swscale
# forces full chroma interpolation there by itself ("Forcing full internal H chroma due to odd
# output size"), so decode._rgb_interpolation's flags change nothing at 267x200 while at even
# widths they are what replaces nearest chroma and truncation (9-17 levels away on these edges).
CONVERSION_TOLERANCE = 0.25  # grey levels of mean absolute difference from the reference


def colour_edge_frames(width: int, height: int, n: int = 2) -> np.ndarray:
    """Blocks of saturated primaries and secondaries, 7x5 pixels: chroma edges everywhere."""
    colours = np.array(
        [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0]]
        + [[0, 255, 255], [255, 0, 255], [255, 255, 255], [0, 0, 0]],
        np.uint8,
    )
    ys, xs = np.mgrid[0:height, 0:width]
    return np.stack([colours[((xs + 3 * t) // 7 + ys // 5) % 8] for t in range(n)])


def _resample(n_in: int, n_out: int, sub: int = 1, offset: float = 0.0) -> np.ndarray:
    """(n_out, n_in) bilinear resampling matrix for a plane subsampled by `sub`, whose sample
    k sits at full-resolution coordinate sub * k + offset; edge samples extend outwards."""
    n_full = n_in * sub
    centres = ((np.arange(n_out) + 0.5) * n_full / n_out - 0.5 - offset) / sub
    width = max(1.0, n_in / n_out)  # shrinking widens the triangle
    taps = np.arange(-8, n_in + 8)
    w = np.maximum(0.0, 1 - np.abs(centres[:, None] - taps[None]) / width)
    w = np.stack([w[:, :9].sum(1), *w[:, 9:-9].T, w[:, -9:].sum(1)], 1)
    return w / w.sum(1, keepdims=True)


def reference_rgb(frame, width: int, height: int) -> np.ndarray:
    """Bilinear chroma, BT.601 limited range, rounded; chroma sited at the centre of its 2x2
    luma block (untagged 4:2:0, as FFV1 writes it, is read that way)."""
    planes = [
        np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, : p.width].astype(float)
        for p in frame.planes
    ]
    y, u, v = planes
    y = _resample(y.shape[0], height) @ y @ _resample(y.shape[1], width).T
    rows, cols = _resample(u.shape[0], height, 2, 0.5), _resample(u.shape[1], width, 2, 0.5)
    u, v = (rows @ c @ cols.T - 128 for c in (u, v))
    y = (y - 16) * 255 / 219
    kr, kb, s = 0.299, 0.114, 255 / 224
    kg = 1 - kr - kb
    r = y + s * 2 * (1 - kr) * v
    g = y - s * 2 * ((1 - kb) * kb * u + (1 - kr) * kr * v) / kg
    b = y + s * 2 * (1 - kb) * u
    return np.clip(np.rint(np.stack([r, g, b], -1)), 0, 255)


@pytest.fixture(scope="module")
def edge_videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("edges")
    sizes = [(320, 240), (321, 240), (640, 360), (642, 360), (240, 240)]
    return {
        (w, h): write_video(
            d / f"e{w}x{h}.mkv", colour_edge_frames(w, h), codec="ffv1", pix_fmt="yuv420p"
        )
        for w, h in sizes
    }


def _conversion_errors(path, short_side) -> tuple[float, float, float]:
    """(MAD, mean signed error) of decode_frames' first frame and MAD of swscale's default
    conversion, both against the reference at the size decode_frames picks."""
    ours = decode_frames(path, [0], short_side=short_side)[0]
    height, width = ours.shape[:2]
    with av.open(path) as c:
        frame = next(c.decode(video=0))
        assert frame.format.name == "yuv420p"
        ref = reference_rgb(frame, width, height)
        default = frame.to_ndarray(format="rgb24", width=width, height=height, threads=1)
    diff = ours.astype(float) - ref
    return np.abs(diff).mean(), diff.mean(), np.abs(default.astype(float) - ref).mean()


# Stored size -> (short side 200 output): odd and even widths, from 4:3, 16:9 and square.
CONVERSION_CASES = {
    (320, 240): (267, 200),  # odd, the usual 4:3 case
    (321, 240): (268, 200),
    (642, 360): (357, 200),  # odd
    (640, 360): (356, 200),
    (240, 240): (200, 200),
}


@pytest.fixture(scope="module")
def conversion_errors(edge_videos):
    errors = {s: _conversion_errors(edge_videos[s], 200) for s in CONVERSION_CASES}
    errors["320x240 unscaled"] = _conversion_errors(edge_videos[(320, 240)], None)
    return errors


@pytest.mark.parametrize("stored", list(CONVERSION_CASES), ids=lambda s: f"{s[0]}x{s[1]}")
def test_rgb_conversion_is_bilinear_chroma_rounded_at_every_width(
    edge_videos, conversion_errors, stored
):
    width, height = CONVERSION_CASES[stored]
    assert decode_frames(edge_videos[stored], [0], short_side=200).shape == (1, height, width, 3)
    err, bias, _ = conversion_errors[stored]
    assert err < CONVERSION_TOLERANCE, f"{stored} -> {width}x{height}"
    assert abs(bias) < 0.1  # rounded, not truncated


def test_odd_widths_convert_as_closely_as_even_widths(conversion_errors):
    odd = {
        s: e[0]
        for s, e in conversion_errors.items()
        if s in CONVERSION_CASES and CONVERSION_CASES[s][0] % 2
    }
    even = {s: e[0] for s, e in conversion_errors.items() if s not in odd}
    assert len(odd) == 2 and len(even) == 4
    assert max(odd.values()) < max(even.values()) + 0.03, (odd, even)
    assert conversion_errors["320x240 unscaled"][0] < CONVERSION_TOLERANCE
    # The edges are a real test of the chroma path: where swscale is left to its default (even
    # widths, and the unscaled converter) it is far from the reference. At odd widths swscale
    # already interpolates chroma fully, so the default lands on the reference there too.
    for s, (_, _, default) in conversion_errors.items():
        assert (default < CONVERSION_TOLERANCE) if s in odd else (default > 1.0), (s, default)
