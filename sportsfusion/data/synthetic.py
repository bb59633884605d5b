"""Synthetic "sports" videos, written as real VP9/H.264 files in the UCF-101 layout.

    python -m sportsfusion.data.synthetic --out data/synth_sports --preset sports
    python -m sportsfusion.data.synthetic --out data/synth_ucf --preset ucf

Class design. Everything that moves is driven by a *phase* that starts uniformly at random and
advances by a fixed amount per frame: a position wrapping around the view, an oscillation or
bounce phase, an angle, a saw-tooth log-size. With a uniform start over a whole period, the state
seen in any single frame has the same distribution whatever the phase velocity is. Two classes that
share their look (scene, object, palettes, size ranges) and differ only in the phase velocity, in
sign (direction) or magnitude (speed), are therefore indistinguishable from one frame and obvious
from a few. These motion-only pairs are what a temporal model (early, late or slow fusion) can gain
over a single-frame one; the other classes differ in appearance (scene, object, colour) and are
solvable from one frame, like most of UCF-101. Both members of a pair even share the scene of each
group (seeded by look and group), so no background separates them either.

  sports (pretraining, 14 classes; the first 10 are motion-only pairs):
    SoccerPassLeft / SoccerPassRight             ball crossing a field leftwards vs rightwards
    TennisRally / TennisWarmup                   fast vs slow horizontal oscillation
    BatonTwirlClockwise / ...CounterClockwise    rotation sense of a spinning bar
    BasketballDribble / BasketballRoll           bouncing vs gliding at the same height spread
    PenaltyKick / GoalKick                       ball approaching (growing) vs receding
    IceHockey, Swimming, Golf, Volleyball        appearance classes
  ucf (transfer target, 8 classes; other scenes, objects and motion kinds):
    RopeClimbing / Abseiling                     climber moving up vs down
    HammerThrow / ThrowDiscus                    orbit counter-clockwise vs clockwise
    Rowing / Kayaking                            fast vs slow oar swing
    Billiards, Diving                            appearance classes

Speeds are per frame (px, degrees, cycles), so a 10-frame clip sees the same motion at any fps.
Sizes and px speeds are given for 120 px high frames and scale with `height`. The scene is
rendered on a canvas larger than the frame; a per-video camera (pan, zoom, shake, identical in
distribution for all classes) crops it, a nuisance the models must ignore. The camera adds its
apparent motion to the object, but the object's centre wraps around the view (a torus a little
larger than the frame: what leaves one side re-enters at the other), so a stronger camera moves
the object without taking it away: a wrapping motion is as often in view at any camera strength,
a resting object that the camera carries off re-enters. `test_videos_per_class` adds videos in
groups of their own to every split's test list and to no train list: a bigger test set with the
training sets unchanged.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import shutil
import sys
import time
import zlib
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
from tqdm import tqdm

# Part of the cache key of generated sets (`sportsfusion.data.loader.synthetic_default`): bump it
# whenever the same config renders different files. 2: the object wraps around the view, not
# the canvas, so the camera strength no longer decides how often it is out of view. 3: H.264
# without mbtree (byte-reproducible; VP9 files unchanged).
GENERATOR_VERSION = 3


def _knob(default, help: str):
    return field(default=default, metadata={"help": help})


@dataclass
class SyntheticConfig:
    classes: str = _knob("sports", "class set: sports (pretraining) or ucf (transfer target)")
    num_classes: int = _knob(0, "use the first N classes of the set (pairs first), 0 = all")
    videos_per_class: int = _knob(20, "videos per class (>= 3: each split tests one third)")
    test_videos_per_class: int = _knob(
        0,
        "extra videos per class listed in every split's test list and in no train list: a "
        "bigger test set, the same training sets",
    )
    frames: int = _knob(48, "frames per video")
    width: int = _knob(160, "frame width (even)")
    height: int = _knob(120, "frame height (even)")
    fps: int = _knob(25, "frame rate written in the container")
    codec: str = _knob("vp9", "vp9 (WebM) or h264 (MP4), both yuv420p")
    pan: float = _knob(1.0, "camera pan speed, px/frame, max per axis")
    zoom: float = _knob(0.003, "camera zoom, relative scale change per frame, max")
    shake: float = _knob(0.5, "camera shake, px std per frame")
    label_noise: float = _knob(0.0, "fraction of train list entries given a wrong label")
    seed: int = _knob(0, "random seed (same seed and config = byte-identical files)")


PRESETS: dict[str, SyntheticConfig] = {
    "sports": SyntheticConfig(),
    "ucf": SyntheticConfig(classes="ucf", videos_per_class=12, seed=1),
}


@dataclass(frozen=True)
class ClassSpec:
    name: str
    look: str  # key of LOOKS; both members of a pair share it, hence their scenes
    obj: str  # "ball" | "puck" | "bar" | "blob"
    color: tuple[int, int, int]
    size: tuple[float, float]  # radius / half-length range, px at 120 px height
    motion: str  # see _trajectory
    speed: tuple[float, float]  # px, cycles or degrees per frame, by motion
    sign: int = 0  # fixed direction +1/-1 (what a direction pair differs in); 0 = random
    angle: float = 0.0  # travel direction of "linear" in degrees, 0 = right, 90 = down


# fmt: off
# base colour, line colour, horizontal / vertical lines (fractions of the frame), centre-circle
# radius (fraction of height, 0 = none), number of player blobs
LOOKS = {
    "pass": ((45, 130, 50), (235, 235, 235), (0.1, 0.9), (0.5,), 0.2, 2),
    "tennis": ((190, 95, 55), (245, 245, 240), (0.12, 0.88), (0.15, 0.5, 0.85), 0.0, 2),
    "baton": ((175, 60, 50), (240, 240, 240), (0.2, 0.4, 0.6, 0.8), (), 0.0, 1),
    "dribble": ((200, 150, 95), (250, 250, 250), (0.1, 0.9), (0.5,), 0.15, 2),
    "goal": ((50, 135, 45), (240, 240, 240), (0.15, 0.9), (0.3, 0.7), 0.0, 1),
    "hockey": ((225, 235, 240), (200, 40, 40), (), (0.3, 0.5, 0.7), 0.15, 2),
    "swim": ((40, 120, 200), (240, 240, 120), (0.25, 0.5, 0.75), (), 0.0, 0),
    "golf": ((80, 165, 70), (30, 30, 30), (), (), 0.04, 1),
    "volley": ((220, 200, 140), (40, 40, 160), (0.85,), (0.5,), 0.0, 2),
    "rope": ((150, 150, 160), (120, 90, 50), (), (0.5,), 0.0, 0),
    "cage": ((120, 120, 110), (245, 245, 245), (), (), 0.3, 1),
    "water": ((30, 90, 130), (180, 210, 230), (0.3, 0.7), (), 0.0, 1),
    "felt": ((20, 110, 60), (90, 50, 25), (0.05, 0.95), (0.05, 0.95), 0.0, 0),
    "platform": ((120, 170, 230), (240, 240, 240), (0.92,), (), 0.0, 0),
}

# Pairs are adjacent and come first, so a small num_classes still holds motion-only pairs.
# Angles grow from +x towards +y and y points down, so sign +1 of spin/orbit is clockwise.
_S, _W, _Y, _O, _B = ClassSpec, (245, 245, 245), (220, 235, 60), (230, 110, 30), (210, 210, 220)
CLASS_SETS: dict[str, list[ClassSpec]] = {
    "sports": [
        _S("SoccerPassLeft", "pass", "ball", _W, (4, 6), "linear", (3, 6), -1),
        _S("SoccerPassRight", "pass", "ball", _W, (4, 6), "linear", (3, 6), +1),
        _S("TennisRally", "tennis", "ball", _Y, (3, 4), "oscillate", (0.05, 0.08)),
        _S("TennisWarmup", "tennis", "ball", _Y, (3, 4), "oscillate", (0.012, 0.02)),
        _S("BatonTwirlClockwise", "baton", "bar", _B, (12, 18), "spin", (8, 14), +1),
        _S("BatonTwirlCounterClockwise", "baton", "bar", _B, (12, 18), "spin", (8, 14), -1),
        _S("BasketballDribble", "dribble", "ball", _O, (5, 7), "bounce", (0.04, 0.06)),
        _S("BasketballRoll", "dribble", "ball", _O, (5, 7), "bounce", (0.0, 0.0)),
        _S("PenaltyKick", "goal", "ball", _W, (3, 14), "depth", (0.03, 0.05), +1),
        _S("GoalKick", "goal", "ball", _W, (3, 14), "depth", (0.03, 0.05), -1),
        _S("IceHockey", "hockey", "puck", (20, 20, 20), (4, 5), "linear", (3, 6)),
        _S("Swimming", "swim", "blob", (235, 190, 160), (6, 8), "linear", (1, 2.5)),
        _S("Golf", "golf", "ball", (250, 250, 250), (2, 3), "linear", (1, 2.5)),
        _S("Volleyball", "volley", "ball", _Y, (6, 8), "bounce", (0.015, 0.025)),
    ],
    "ucf": [
        _S("RopeClimbing", "rope", "blob", (200, 60, 60), (6, 8), "linear", (1.5, 3), +1, -90),
        _S("Abseiling", "rope", "blob", (200, 60, 60), (6, 8), "linear", (1.5, 3), -1, -90),
        _S("HammerThrow", "cage", "ball", (60, 60, 70), (3, 4), "orbit", (10, 18), -1),
        _S("ThrowDiscus", "cage", "ball", (60, 60, 70), (3, 4), "orbit", (10, 18), +1),
        _S("Rowing", "water", "bar", (150, 100, 50), (14, 20), "swing", (0.05, 0.08)),
        _S("Kayaking", "water", "bar", (150, 100, 50), (14, 20), "swing", (0.012, 0.02)),
        _S("Billiards", "felt", "ball", (250, 250, 240), (3, 4), "linear", (2, 4), 0, 35),
        _S("Diving", "platform", "blob", (230, 180, 150), (6, 8), "linear", (3, 6), +1, 90),
    ],
}

# encoder, container, extension, options. One thread and bit-exact muxing (below) make the
# bytes reproducible: threaded libvpx/libx264 and the muxers' random UIDs/dates are not.
_CODECS = {
    "vp9": ("libvpx-vp9", "webm", ".webm", {"deadline": "realtime", "cpu-used": "8",
            "crf": "32", "b:v": "0", "threads": "1", "row-mt": "0", "lag-in-frames": "0"}),
    # mbtree off: libx264's macroblock-tree rate control made the same frames encode to
    # different bytes now and then in one process (heap state; under pytest 15 of 20 runs of the
    # reproducibility test failed, none with mbtree off, nor with MALLOC_PERTURB_ set)
    "h264": ("libx264", "mp4", ".mp4", {"preset": "veryfast", "crf": "23", "threads": "1",
             "mbtree": "0"}),
}
_SKIN = (235, 190, 160)
# fmt: on


def _specs(config: SyntheticConfig) -> list[ClassSpec]:
    specs = CLASS_SETS.get(config.classes)
    for bad, message in [
        (specs is None, f"classes must be one of {sorted(CLASS_SETS)}"),
        (not 0 <= config.num_classes <= len(specs or ()), "num_classes exceeds the class set"),
        (config.videos_per_class < 3, "videos_per_class must be >= 3 (a test group per split)"),
        (config.test_videos_per_class < 0, "test_videos_per_class must be >= 0"),
        (min(config.frames, config.fps) < 1, "frames and fps must be >= 1"),
        (min(config.width, config.height) < 16, "width and height must be >= 16"),
        (config.width % 2 or config.height % 2, "width and height must be even (yuv420p)"),
        (config.codec not in _CODECS, f"codec must be one of {sorted(_CODECS)}"),
        (min(config.pan, config.zoom, config.shake) < 0, "pan, zoom and shake must be >= 0"),
        (not 0 <= config.label_noise <= 1, "label_noise must be in [0, 1]"),
        (config.seed < 0, "seed must be >= 0"),
    ]:
        if bad:
            raise ValueError(message)
    return specs[: config.num_classes or len(specs)]


def class_names(config: SyntheticConfig) -> list[str]:
    return [spec.name for spec in _specs(config)]


def _groups(n: int, thirds: bool = True) -> list[tuple[int, int]]:
    """(group, clip), both 1-based, of each of n videos: about 4 clips a group like UCF-101, and
    with `thirds` a multiple of 3 groups so that each split tests one third of them."""
    g = 3 * max(1, round(n / 12)) if thirds else max(1, round(n / 4))
    groups = [i * g // n for i in range(n)]
    return [(k + 1, groups[:i].count(k) + 1) for i, k in enumerate(groups)]


def _all_groups(config: SyntheticConfig) -> list[tuple[int, int]]:
    """(group, clip) of every video of a class, by video index: the regular videos, then the
    test-only ones in groups of their own, numbered on after the regular groups (so their scenes
    are new ones, like every test group's)."""
    regular = _groups(config.videos_per_class)
    extra = _groups(config.test_videos_per_class, thirds=False)
    return regular + [(regular[-1][0] + g, clip) for g, clip in extra]


def _margin(config: SyntheticConfig) -> tuple[int, int]:
    """Canvas border the camera never crops beyond: pan, zoom-out and shake, all centred on
    mid-video so the border is half what a start-anchored camera would need."""
    c = (config.frames - 1) / 2
    grow = math.exp(config.zoom * c) - 1
    return tuple(
        math.ceil(config.pan * c + 3 * config.shake + size / 2 * grow) + 2
        for size in (config.width, config.height)
    )


def _bilinear(img: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """img sampled on the separable grid ys x xs; an exact copy at integer coordinates."""
    y0 = np.clip(np.floor(ys).astype(np.intp), 0, img.shape[0] - 2)
    x0 = np.clip(np.floor(xs).astype(np.intp), 0, img.shape[1] - 2)
    fy = np.clip(ys - y0, 0, 1).astype(np.float32)[:, None, None]
    fx = np.clip(xs - x0, 0, 1).astype(np.float32)[None, :, None]
    rows = img[y0] * (1 - fy) + img[y0 + 1] * fy
    return rows[:, x0] * (1 - fx) + rows[:, x0 + 1] * fx


def _stamp(img, x, y, rx, ry, angle, color, capsule=False):
    """Blend an anti-aliased ellipse (semi-axes rx, ry), or a capsule (a segment of half-length
    rx thickened by ry), into img. Only its bounding box is computed: cost ~ object area."""
    h = rx + ry + 2
    y0, y1 = max(int(y - h), 0), min(int(y + h) + 2, img.shape[0])
    x0, x1 = max(int(x - h), 0), min(int(x + h) + 2, img.shape[1])
    if y0 >= y1 or x0 >= x1:
        return
    dy = np.arange(y0, y1, dtype=np.float32)[:, None] - y
    dx = np.arange(x0, x1, dtype=np.float32)[None, :] - x
    c, s = math.cos(angle), math.sin(angle)
    u, v = dx * c + dy * s, dy * c - dx * s
    if capsule:
        a = ry + 0.5 - np.hypot(np.maximum(np.abs(u) - rx, 0), v)
    else:
        a = (1 - np.hypot(u / rx, v / ry)) * min(rx, ry) + 0.5
    region = img[y0:y1, x0:x1]
    region += np.clip(a, 0, 1)[..., None] * (np.asarray(color, np.float32) - region)


def _scene(config: SyntheticConfig, look: str, group: int, shape):
    """Background of one (look, group) on the canvas, and the group's team colour. Seeded by
    look, not class, so both classes of a pair share every group's scene."""
    base, line, hlines, vlines, circle, _ = LOOKS[look]
    rng = np.random.default_rng([config.seed, zlib.crc32(look.encode()), group, 1])
    (mx, my), (hc, wc) = _margin(config), shape
    color = np.clip(np.array(base) + rng.normal(0, 12, 3), 0, 255).astype(np.float32)
    # low-frequency blotches (worn grass, wood grain) and a lighting ramp
    small = rng.normal(0, 10, (hc // 12 + 2, wc // 12 + 2, 1)).astype(np.float32)
    ys, xs = np.linspace(0, small.shape[0] - 1, hc), np.linspace(0, small.shape[1] - 1, wc)
    ramp = np.linspace(-1, 1, hc, dtype=np.float32)[:, None, None] * rng.uniform(-12, 12)
    img = np.ascontiguousarray(color + _bilinear(small, ys, xs) + ramp, dtype=np.float32)
    t = max(1, round(config.height / 120))  # line thickness
    jit = rng.uniform(-0.03, 0.03, 2)
    for f in hlines:
        y = my + round((f + jit[0]) * config.height)
        img[max(y - t // 2, 0) : y - t // 2 + t, :] = line
    for f in vlines:
        x = mx + round((f + jit[1]) * config.width)
        img[:, max(x - t // 2, 0) : x - t // 2 + t] = line
    if circle:
        yy, xx = np.ogrid[:hc, :wc]
        ring = np.hypot(xx - mx - (config.width - 1) / 2, yy - my - (config.height - 1) / 2)
        a = np.clip(t / 2 + 0.5 - np.abs(ring - circle * config.height), 0, 1)[..., None]
        img += a * (np.asarray(line, np.float32) - img)
    return img, tuple(rng.uniform(30, 230, 3))


def _trajectory(spec: ClassSpec, rng, config: SyntheticConfig) -> dict[str, np.ndarray]:
    """Per-frame centre x, y, size and angle of the object in world pixels (those of the frame
    with the camera at rest), unwrapped: `_into_view` wraps them. Every motion is a function of
    phase + velocity * t with a uniform random phase (see the module docstring). Nothing here
    depends on the camera, not even through the canvas margin."""
    n, k, w, h = config.frames, config.height / 120, config.width, config.height
    t = np.arange(n, dtype=np.float64)
    size = rng.uniform(*spec.size) * k
    sign = spec.sign or rng.choice((-1, 1))
    speed = rng.uniform(*spec.speed)
    phase = rng.uniform(0, 1, 2)
    cx, cy = rng.uniform(0.25, 0.75) * w, rng.uniform(0.3, 0.7) * h  # resting point, mid-frame
    x, y, r, ang = np.full(n, cx), np.full(n, cy), np.full(n, size), np.zeros(n)
    cyc = 2 * math.pi * (phase[0] + speed * t)  # an oscillation at `speed` cycles/frame
    if spec.motion == "linear":  # a uniform phase over the view wrap's period: uniform position
        a = math.radians(spec.angle)
        step, ang[:] = sign * speed * k * t, a  # blobs lie along the axis, whatever the sign
        span = np.array([w, h]) + 2 * size
        if abs(math.cos(a)) > 1e-6:
            x = phase[0] * span[0] + step * math.cos(a) - size
        if abs(math.sin(a)) > 1e-6:
            y = phase[1] * span[1] + step * math.sin(a) - size
    elif spec.motion == "oscillate":
        x = w * (0.5 + 0.3 * np.sin(cyc))
    elif spec.motion == "bounce":  # speed 0 glides at a height drawn like the bouncer's
        x = phase[1] * (w + 2 * size) + sign * rng.uniform(1, 2.5) * k * t - size
        y = h * (0.85 - 0.4 * np.abs(np.sin(cyc / 2)))
    elif spec.motion in ("spin", "orbit"):
        ang = 2 * math.pi * phase[0] + sign * np.radians(speed) * t
        if spec.motion == "orbit":
            radius = rng.uniform(0.15, 0.22) * h
            x, y = cx + radius * np.cos(ang), cy + radius * np.sin(ang)
    elif spec.motion == "depth":  # saw-tooth in log size; ground perspective ties y to size
        lo, hi = spec.size[0] * k, spec.size[1] * k
        r = lo * (hi / lo) ** ((phase[0] + sign * speed * t) % 1)
        y = 0.3 * h + 4.5 * r
    elif spec.motion == "swing":  # an oar: a bar pivoting at one end, +-35 degrees
        ang = rng.uniform(0, 2 * math.pi) + math.radians(35) * np.sin(cyc)
        x, y = cx + size * np.cos(ang), cy + size * np.sin(ang)
    else:
        raise ValueError(f"unknown motion {spec.motion!r}")
    return {"x": x, "y": y, "size": r, "angle": ang}


def _half(config: SyntheticConfig) -> np.ndarray:
    """The frame's centre (x, y) in its own pixels."""
    return np.array([config.width - 1, config.height - 1]) / 2


def _camera(config: SyntheticConfig, cam) -> tuple[np.ndarray, np.ndarray]:
    """Per frame, the world point (x, y) at the centre of the view, and the zoom scale: a pan,
    a zoom and a shake, all centred on mid-video (see `_margin`)."""
    t = np.arange(config.frames) - (config.frames - 1) / 2
    vel, rate = cam.uniform(-config.pan, config.pan, 2), cam.uniform(-config.zoom, config.zoom)
    jitter = np.clip(cam.normal(0, 1, (config.frames, 2)), -3, 3) * config.shake
    return _half(config) + vel * t[:, None] + jitter, np.exp(rate * t)


def _into_view(track: dict, centre: np.ndarray, scale: np.ndarray, config: SyntheticConfig):
    """(the track to draw, in world pixels; the track as seen, in view pixels). Frame by frame,
    the object's centre is mapped into the view by that frame's camera; past the torus
    [-size, W + size) x [-size, H + size) it re-enters at the other side (a period there, a
    period / scale in the world) and goes on from there with its own velocity. So the camera
    adds its apparent motion to the object but cannot take it away: a wrapping motion with a
    uniform phase stays uniform on the torus whatever the camera adds, and a resting object that
    the camera carries off re-enters (its spread over the torus still grows with the camera's
    drift, slightly: a long video under a strong pan puts it past an edge a few % more often)."""
    size, half = track["size"], _half(config)
    span = np.array([config.width, config.height]) + 2 * size[:, None]
    own = np.stack([track["x"], track["y"]], axis=1)
    drawn, seen, shift = np.empty_like(own), np.empty_like(own), np.zeros(2)
    for i in range(config.frames):
        view = (own[i] + shift - centre[i]) * scale[i] + half
        seen[i] = (view + size[i]) % span[i] - size[i]
        shift += (seen[i] - view) / scale[i]  # the re-entries so far, in world pixels
        drawn[i] = own[i] + shift
    return dict(track, x=drawn[:, 0], y=drawn[:, 1]), dict(track, x=seen[:, 0], y=seen[:, 1])


def _video(config: SyntheticConfig, label: int, video: int):
    """(spec, the object's random stream past its trajectory, camera centres and scales, track
    to draw, track as seen) of one video, before any pixel is rendered."""
    spec = _specs(config)[label]
    # separate streams: the camera knobs never change the objects, and vice versa
    seeds = np.random.SeedSequence([config.seed, label, video]).spawn(2)
    rng, cam = (np.random.default_rng(s) for s in seeds)
    centre, scale = _camera(config, cam)
    drawn, seen = _into_view(_trajectory(spec, rng, config), centre, scale, config)
    return spec, rng, (centre, scale), drawn, seen


def object_track(config: SyntheticConfig, label: int, video: int) -> dict[str, np.ndarray]:
    """The object's track as `render_video` returns it, without rendering the frames."""
    return _video(config, label, video)[-1]


def _draw(img, obj: str, color, x, y, r, a, k):
    if obj in ("ball", "puck"):
        _stamp(img, x, y, r, r if obj == "ball" else 0.5 * r, 0.0, color)
    elif obj == "bar":
        _stamp(img, x, y, r, max(1.0, 1.2 * k), a, color, capsule=True)
    else:  # a person: body along the axis, head at the axis end (the same end both ways)
        _stamp(img, x, y, r, 0.45 * r, a, color)
        hx, hy = x + 1.1 * r * math.cos(a), y + 1.1 * r * math.sin(a)
        _stamp(img, hx, hy, 0.4 * r, 0.4 * r, 0.0, _SKIN)


def render_video(config: SyntheticConfig, label: int, video: int):
    """Frames (T, H, W, 3) uint8 of video `video` of class `label` (both 0-based), and the
    object's track as seen: x, y of its centre in frame pixels after the camera and the view wrap
    (so within `size` of the frame), and its own size and angle (before the zoom)."""
    spec, rng, (centre, scale), drawn, seen = _video(config, label, video)
    (mx, my), k, n = _margin(config), config.height / 120, config.frames
    shape = (config.height + 2 * my, config.width + 2 * mx)
    background, team = _scene(config, spec.look, _all_groups(config)[video][0], shape)
    color = np.clip(np.array(spec.color) + rng.normal(0, 12, 3), 0, 255)
    # player blobs: position, sway phase and sway rate, drawn alike for every class
    players = rng.uniform((0.1, 0.3, 0, 0.01), (0.9, 0.8, 1, 0.04), (LOOKS[spec.look][5], 4))
    players[:, :2] = players[:, :2] * (config.width, config.height) + (mx, my)
    centre = centre + (mx, my)  # world -> canvas pixels
    grid_x, grid_y = (np.arange(d) - (d - 1) / 2 for d in (config.width, config.height))
    frames = np.empty((n, config.height, config.width, 3), np.uint8)
    for i in range(n):
        img = background.copy()
        for px, py, ph, f in players:  # idle sway: motion that tells no class apart
            px += 1.5 * k * math.sin(2 * math.pi * (ph + f * i))
            _stamp(img, px, py, 3 * k, 7 * k, 0.0, team)
            _stamp(img, px, py - 9 * k, 2.5 * k, 2.5 * k, 0.0, _SKIN)
        x, y, r, a = (float(drawn[q][i]) for q in ("x", "y", "size", "angle"))
        _draw(img, spec.obj, color, x + mx, y + my, r, a, k)
        cx, cy = centre[i]
        frames[i] = np.clip(
            np.rint(_bilinear(img, cy + grid_y / scale[i], cx + grid_x / scale[i])), 0, 255
        )
    return frames, seen


def _encode(path: Path, frames: np.ndarray, config: SyntheticConfig) -> None:
    from sportsfusion.data.decode import pyav

    av = pyav()
    encoder, container, _, options = _CODECS[config.codec]
    with av.open(str(path), "w", format=container, options={"fflags": "+bitexact"}) as out:
        stream = out.add_stream(encoder, rate=config.fps)
        stream.width, stream.height, stream.pix_fmt = config.width, config.height, "yuv420p"
        stream.codec_context.thread_count = 1
        stream.options = dict(options)
        for i, img in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, config.fps)
            out.mux(stream.encode(frame))
        out.mux(stream.encode())


def _video_path(name: str, group: int, clip: int, config: SyntheticConfig) -> str:
    return f"{name}/v_{name}_g{group:02d}_c{clip:02d}{_CODECS[config.codec][2]}"


def _write_lists(root: Path, config: SyntheticConfig, names: list[str]) -> None:
    (root / "ucfTrainTestlist").mkdir()
    lists, groups = root / "ucfTrainTestlist", _groups(config.videos_per_class)
    (lists / "classInd.txt").write_text("".join(f"{i + 1} {c}\n" for i, c in enumerate(names)))
    videos = [
        (label, g, _video_path(c, g, clip, config))
        for label, c in enumerate(names)
        for g, clip in groups
    ]
    # test-only videos: every split's test list, no train list, and outside the noise draws
    # below, so the train lists are byte for byte those of a set without them
    extra = [
        (label, _video_path(c, g, clip, config))
        for label, c in enumerate(names)
        for g, clip in _all_groups(config)[config.videos_per_class :]
    ]
    # Noise is a property of the video (a rank and a wrong label), so the videos mislabelled in
    # one split's train list are mostly the ones mislabelled in the others.
    rng = np.random.default_rng([config.seed, 0xB0B])
    rank = rng.uniform(size=len(videos))
    shift = rng.integers(1, max(len(names), 2), len(videos))  # never 0: always a wrong label
    wrong = [(v[0] + d) % len(names) for v, d in zip(videos, shift)]
    for split in range(1, 4):
        # split s tests the s-th third of the groups (UCF: g01-07, g08-14, g15-21)
        test = [(g - 1) * 3 // groups[-1][0] + 1 == split for _, g, _ in videos]
        train = [i for i, is_test in enumerate(test) if not is_test]
        noisy = sorted(train, key=lambda i: rank[i])[: round(config.label_noise * len(train))]
        labels = {i: videos[i][0] for i in train} | {i: wrong[i] for i in noisy}
        lines = [f"{videos[i][2]} {labels[i] + 1}\n" for i in train]
        (lists / f"trainlist0{split}.txt").write_text("".join(lines))
        tests = [(v[0], v[2]) for v, is_test in zip(videos, test) if is_test] + extra
        tests.sort(key=lambda v: v[0])  # class by class, as UCF-101 lists them (sort is stable)
        (lists / f"testlist0{split}.txt").write_text("".join(f"{v[1]}\n" for v in tests))


def generate(out_dir, config: SyntheticConfig, progress: bool = True, *, overwrite=False) -> Path:
    """Write the data set into out_dir (absent or empty, unless overwrite) and return it. Files
    go to a hidden sibling first, renamed at the end: a killed run leaves no half set in out_dir."""
    names, out = class_names(config), Path(out_dir)
    if out.exists() and not (out.is_dir() and (overwrite or not any(out.iterdir()))):
        raise FileExistsError(f"{out} is not an empty directory (--overwrite replaces it)")
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    per_class = config.videos_per_class + config.test_videos_per_class
    jobs = [(label, v) for label in range(len(names)) for v in range(per_class)]
    try:
        tmp.mkdir(parents=True)
        _write_lists(tmp, config, names)
        for label, v in tqdm(jobs, desc="synthetic", unit="video", disable=not progress):
            path = tmp / _video_path(names[label], *_all_groups(config)[v], config)
            path.parent.mkdir(exist_ok=True)
            _encode(path, render_video(config, label, v)[0], config)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)
    return out


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        "sportsfusion.data.synthetic", add_help=add_help, description=__doc__.split("\n")[0]
    )
    p.add_argument("--out", required=True, help="output directory (UCF-101 layout)")
    p.add_argument(
        "--preset", choices=sorted(PRESETS), default="sports", help="base config (sports)"
    )
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    choices = {"classes": sorted(CLASS_SETS), "codec": sorted(_CODECS)}
    for f in dataclasses.fields(SyntheticConfig):
        shown = ", ".join(f"{k}: {getattr(c, f.name)}" for k, c in PRESETS.items())
        p.add_argument(
            "--" + f.name.replace("_", "-"),
            type=type(f.default),
            default=None,
            choices=choices.get(f.name),
            help=f"{f.metadata['help']} (default {shown})",
        )
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    knobs = {f.name: getattr(args, f.name) for f in dataclasses.fields(SyntheticConfig)}
    config = dataclasses.replace(
        PRESETS[args.preset], **{k: v for k, v in knobs.items() if v is not None}
    )
    out, start = Path(args.out), time.perf_counter()
    try:
        names = class_names(config)
        generate(out, config, progress=not args.no_progress, overwrite=args.overwrite)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    n = len(names) * (config.videos_per_class + config.test_videos_per_class)
    extra = len(names) * config.test_videos_per_class
    shown = f"{n} videos ({extra} test-only, " if extra else f"{n} videos ("
    print(
        f"synthetic {config.classes}: {len(names)} classes, {shown}{config.frames} frames "
        f"{config.width}x{config.height} {config.codec}), {size / 1e6:.1f} MB, "
        f"{time.perf_counter() - start:.1f} s -> {out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
