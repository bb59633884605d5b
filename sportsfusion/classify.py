"""Classify videos, folders of videos or live streams with a sliding window:
`python -m sportsfusion.classify SOURCE --model FILE`.

Frames are decoded once, in order (no seeking, so live streams work the same as files), each
converted once to the model's input geometry (short side resized as in training, centre crop).
The last span = (frames_per_clip - 1) * frame_spacing + 1 frames are kept; every --stride frames
one clip is classified and the mean of the last --smooth windows' probabilities is reported.

Real time (default for live sources): a reader thread decodes, paced at the source's frame rate,
and hands windows over through a one-slot mailbox; when inference is slower, the newer window
replaces the unclaimed one (dropped, counted), so memory and delay stay bounded.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import ImageDraw, ImageFont

from sportsfusion import ops
from sportsfusion.cli import fail, setup_logging
from sportsfusion.data.decode import output_size, pyav
from sportsfusion.data.transforms import centre_crop, short_side_for
from sportsfusion.export.runtime import DEVICES, RUNTIMES, load_classifier

if TYPE_CHECKING:
    import av

log = logging.getLogger("sportsfusion.classify")
VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".ogv"}
LAG_LIMIT_S = 0.5  # a paced reader this far behind the source clock could not keep up


class SourceError(ValueError):
    """A source that cannot be opened or read (one line)."""


@dataclass(frozen=True)
class Source:
    name: str
    live: bool
    format: str | None = None


def resolve_sources(arg: str) -> list[Source]:
    if arg.startswith("/dev/video"):
        return [Source(arg, True, "v4l2")]
    if "://" in arg:
        return [Source(arg, True)]
    path = Path(arg)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
        if not files:
            raise SourceError(f"{arg}: folder holds no videos ({' '.join(VIDEO_SUFFIXES)})")
        return [Source(str(p), False) for p in files]
    if not path.is_file():
        raise SourceError(f"{arg}: no such video file, folder or stream")
    return [Source(arg, False)]


def open_source(src: Source):
    options = {"rtsp_transport": "tcp"} if src.name.startswith("rtsp://") else None
    try:
        container = pyav().open(
            src.name, format=src.format, options=options, timeout=10.0 if src.live else None
        )
    except (pyav().error.FFmpegError, OSError, UnicodeDecodeError) as e:  # strerror: no file name
        raise SourceError(f"{src.name}: cannot open ({getattr(e, 'strerror', 0) or e})") from None
    if not container.streams.video:
        container.close()
        raise SourceError(f"{src.name}: no video stream")
    stream = container.streams.video[0]
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return container, stream, Fraction(rate) if rate and rate > 0 else None


def top_k(probs: np.ndarray, classes: list[str], k: int) -> list[list]:
    order = np.argsort(-probs, kind="stable")[:k]
    return [[classes[i], round(float(probs[i]), 4)] for i in order]


class Annotator:
    """H.264 copy of the input with the current top-k drawn on every frame."""

    def __init__(self, path: str, rate: Fraction):
        self.container, self.rate = pyav().open(path, "w"), rate
        self.stream = self.font = None

    def write(self, frame: av.VideoFrame, lines: list[str]) -> None:
        img = frame.to_image()
        if self.stream is None:
            self.stream = s = self.container.add_stream("libx264", rate=self.rate)
            # yuv420p needs even sizes: drop the last row/column of odd-sized inputs.
            s.width, s.height = img.width - img.width % 2, img.height - img.height % 2
            s.pix_fmt, s.options = "yuv420p", {"crf": "20", "preset": "veryfast"}
            scale = (s.width * s.height) ** 0.5  # text grows with the frame, not its aspect
            self.font = ImageFont.load_default(size=max(12, round(scale / 24)))
        size = (self.stream.width, self.stream.height)
        if img.size != size:  # odd size, or a mid-stream resolution change: crop/pad to the first
            img = img.crop((0, 0, *size))
        draw, pad = ImageDraw.Draw(img), max(2, size[1] // 80)
        text = "\n".join(lines or ["(filling the first window)"])
        box = draw.multiline_textbbox((2 * pad, 2 * pad), text, font=self.font)
        draw.rectangle((box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad), fill=(0, 0, 0))
        draw.multiline_text((2 * pad, 2 * pad), text, fill=(255, 255, 255), font=self.font)
        self.container.mux(self.stream.encode(pyav().VideoFrame.from_image(img)))

    def close(self) -> None:
        if self.stream is not None:
            self.container.mux(self.stream.encode(None))  # flush the encoder's delayed frames
        self.container.close()


class Mailbox:
    """One-slot hand-over: a new window replaces an unclaimed one (latest wins, counted)."""

    def __init__(self):
        self.cond, self.item, self.closed, self.dropped = threading.Condition(), None, False, 0

    def put(self, item) -> None:
        """Hand over a window; None closes the mailbox (the reader has finished)."""
        with self.cond:
            if item is None:
                self.closed = True
            else:
                self.dropped += self.item is not None
                self.item = item
            self.cond.notify()

    def get(self):
        with self.cond:
            while self.item is None and not self.closed:
                self.cond.wait(0.1)  # short waits keep Ctrl-C responsive in the main thread
            item, self.item = self.item, None
            return item


class Session:
    """One source: decode, window, classify, report."""

    def __init__(self, src: Source, classifier, args, emit):
        self.src, self.clf, self.args, self.emit = src, classifier, args, emit
        self.realtime = src.live if args.realtime is None else args.realtime
        size = classifier.input_size
        self.short, self.size, self.geometry = short_side_for(size), size, {}
        self.window = deque(maxlen=classifier.span)  # bounded: only the frames one clip needs
        self.recent = deque(maxlen=args.smooth)
        self.labels, self.latencies = [], []  # labels: current smoothed top-k, for the annotator
        self.frames, self.lag, self.error = 0, 0.0, None
        self.stop, self.mailbox = threading.Event(), Mailbox()

    def convert(self, frame) -> np.ndarray:
        key = (frame.width, frame.height)
        if key not in self.geometry:
            w, h = output_size(*key, self.short)
            self.geometry[key] = (w, h, centre_crop(h, w, self.size))
        w, h, c = self.geometry[key]
        rgb = frame.to_ndarray(format="rgb24", width=w, height=h, threads=1)
        return np.ascontiguousarray(rgb[c.top : c.top + self.size, c.left : c.left + self.size])

    def read(self, container, stream, rate, writer, deliver) -> None:
        """Decode every frame once; `deliver` gets (clip, frame index, time) every stride."""
        span, spacing, stride = self.clf.span, self.clf.frame_spacing, self.args.stride
        period, t0, wall0 = 1 / float(rate or 25), None, time.perf_counter()
        for i, frame in enumerate(container.decode(stream)):
            t = frame.time if frame.time is not None else i * period
            t0 = t if t0 is None else t0
            t -= t0
            if self.stop.is_set() or t >= self.args.max_seconds:
                break
            if self.realtime:  # pace a file as if live; a live source paces itself
                ahead = t - (time.perf_counter() - wall0)
                if not self.src.live and ahead > 0:
                    time.sleep(ahead)
                self.lag = max(0.0, -ahead)
            self.window.append(self.convert(frame))
            self.frames += 1
            if len(self.window) == span and (self.frames - span) % stride == 0:
                clip = np.stack(list(self.window)[::spacing])[None]
                deliver((clip, i, t))
            if writer is not None:
                writer.write(frame, self.labels)

    def classify(self, item) -> None:
        clip, index, t = item
        start = time.perf_counter()
        probs = self.clf(clip)[0]
        latency = (time.perf_counter() - start) * 1000
        self.latencies.append(latency)
        self.recent.append(probs.astype(np.float64))
        top = top_k(np.mean(self.recent, axis=0), self.clf.classes, self.args.top)
        self.labels = [f"{label}: {p:.0%}" for label, p in top]
        record = {"video": self.src.name, "time": round(t, 3), "frame": index, "top": top}
        self.emit({**record, "latency_ms": round(latency, 2)})

    def run(self) -> dict:
        container, stream, rate = open_source(self.src)
        interrupted, start, writer, reader = False, time.perf_counter(), None, None
        try:
            if self.args.annotate:
                writer = Annotator(self.args.annotate, rate or Fraction(25))
            if self.realtime:
                reader = threading.Thread(
                    target=self._reader, args=(container, stream, rate, writer), daemon=True
                )  # daemon: a live source may block inside FFmpeg; that must not hang the exit
                reader.start()
                while (item := self.mailbox.get()) is not None:
                    self.classify(item)
            else:
                self.read(container, stream, rate, writer, self.classify)
        except KeyboardInterrupt:
            interrupted = True
        except pyav().error.FFmpegError as e:
            self.error = e
        finally:
            self.stop.set()
            if reader is not None:
                reader.join(timeout=5)
            if reader is None or not reader.is_alive():  # never close what the reader still uses
                container.close()
                if writer is not None:
                    writer.close()
        if self.error is not None and not self.frames:
            raise SourceError(f"{self.src.name}: cannot decode ({self.error})")
        if self.error is not None:
            log.warning("%s: stopped early (%s)", self.src.name, self.error)
        return self.summary(time.perf_counter() - start, rate, interrupted)

    def _reader(self, container, stream, rate, writer) -> None:
        try:
            self.read(container, stream, rate, writer, self.mailbox.put)
        except Exception as e:  # reported by the main thread, like a synchronous failure
            self.error = e
        finally:
            self.mailbox.put(None)

    def summary(self, wall: float, rate, interrupted: bool) -> dict:
        lat, stride, dropped = self.latencies, self.args.stride, self.mailbox.dropped
        mean = float(np.mean(lat)) if lat else None
        capacity = stride * 1000 / mean if mean else None  # frames/s inference alone sustains
        fps = float(rate) if rate else self.frames / max(wall, 1e-9)
        if not lat:
            short = f" (fewer than {self.clf.span} frames)" if self.frames < self.clf.span else ""
            verdict = "no window classified" + short
        elif self.realtime and dropped:
            verdict = f"fell behind: dropped {dropped} windows"
        elif self.realtime and self.lag > LAG_LIMIT_S:
            verdict = f"fell behind: decoding ended {self.lag:.1f} s behind the source"
        elif self.realtime:
            verdict = f"kept up with the {fps:.4g} fps source"
        elif capacity >= fps:
            verdict = f"would keep up with the {fps:.4g} fps source in real time"
        else:
            verdict = f"would fall behind the {fps:.4g} fps source in real time"
        return {
            "video": self.src.name, "runtime": self.clf.name, "realtime": self.realtime,
            "frames": self.frames, "wall_s": round(wall, 3),
            "decoded_fps": round(self.frames / max(wall, 1e-9), 2), "source_fps": round(fps, 3),
            "windows": len(lat), "dropped": dropped, "stride": stride,
            "latency_ms_mean": None if mean is None else round(mean, 2),
            "latency_ms_p95": round(float(np.percentile(lat, 95)), 2) if lat else None,
            "inference_fps": None if capacity is None else round(capacity, 1),
            "kept_up": bool(lat) and not verdict.startswith(("fell", "would fall")),
            "verdict": verdict, "interrupted": interrupted,
        }  # fmt: skip


def text_line(r: dict) -> str:
    if "summary" not in r:
        top = "  ".join(f"{label} {p:.3f}" for label, p in r["top"])
        return f"{r['time']:8.2f}s  frame {r['frame']:6d}  {top}  ({r['latency_ms']:.1f} ms)"
    s = r["summary"]
    speed = s["windows"] and (  # no latencies to show before the first window
        f"latency mean {s['latency_ms_mean']:.1f} ms, p95 {s['latency_ms_p95']:.1f} ms, "
        f"inference {s['inference_fps']:.1f} frames/s at stride {s['stride']}; "
    )
    return (
        f"summary {s['video']} [{s['runtime']}]: {s['frames']} frames in {s['wall_s']:.2f} s "
        f"({s['decoded_fps']:.1f} fps), {s['windows']} windows classified, {s['dropped']} "
        f"dropped; {speed or ''}{s['verdict']}"
    ) + ("; stopped by Ctrl-C" if s["interrupted"] else "")


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("source", help="video file, folder of videos, stream URL or /dev/videoN")
    p.add_argument("--model", required=True, help="model file: .onnx, .engine/.plan or .pt")
    p.add_argument("--runtime", choices=RUNTIMES, default="auto", help="default: auto (by file)")
    p.add_argument("--device", choices=DEVICES, default="auto", help="default: auto (CUDA if any)")
    p.add_argument("--stride", type=int, default=8, help="frames between windows (8)")
    p.add_argument("--smooth", type=int, default=4, help="windows averaged (4)")
    p.add_argument("--top", type=int, default=5, help="labels shown (5)")
    p.add_argument("--json", action="store_true", help="JSON lines instead of text")
    p.add_argument("--annotate", metavar="OUT.mp4", help="write the video with labels drawn on it")
    p.add_argument(
        "--realtime",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="pace at the source frame rate, dropping windows inference cannot keep up with "
        "(default: on for live sources, off for files)",
    )
    p.add_argument("--max-seconds", type=float, default=float("inf"), help="stop after N s")
    p.add_argument(
        "--ops", choices=ops.IMPLS, default=None, help="op implementation for .pt models (auto)"
    )
    return p


def main(argv=None) -> int:
    parser = get_args_parser()
    args = parser.parse_args(argv)
    if min(args.stride, args.smooth, args.top, args.max_seconds) <= 0:
        parser.error("--stride, --smooth, --top and --max-seconds must be positive")
    setup_logging()
    ops.force_impl(args.ops)

    def emit(record: dict) -> None:
        print(json.dumps(record) if args.json else text_line(record), flush=True)

    try:
        sources = resolve_sources(args.source)
        if args.annotate and len(sources) > 1:
            raise SourceError("--annotate needs a single video or stream, not a folder")
        classifier = load_classifier(args.model, args.runtime, args.device)
    except KeyboardInterrupt:
        return 130
    except (RuntimeError, ValueError, OSError) as e:  # RuntimeMissing, ModelFileError, ...
        return fail(e)
    code = 0
    for src in sources:
        try:
            summary = Session(src, classifier, args, emit).run()
        except KeyboardInterrupt:  # while a source was still opening: nothing to summarise
            return 130
        except Exception as e:  # one bad video of a folder must not hide the others' results
            log.debug("classify failed", exc_info=True)
            code = fail(e)
            continue
        emit({"summary": summary})
        if summary["interrupted"]:
            return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
