"""Transcode a data set into a training-ready copy: small frames, frequent keyframes, no audio.

    python -m sportsfusion.data.prepare ~/UCF-101 data/ucf-200
    python -m sportsfusion.data.prepare ~/sports1m data/s1m-vp9 --videos /mnt/videos --codec vp9

Like MMAction2's ``tools/data/resize_videos.py`` for Kinetics: every video of SRC (any layout
`formats.load_dataset` reads) is decoded, scaled so its short side is ``--short-side`` (200: the
size the clip pipeline works at, aspect kept, even sizes for yuv420p), and encoded again with a
keyframe every ``--gop`` frames (one seek per clip then decodes at most gop - 1 extra frames) and
the source's timestamps; audio and other streams are dropped.

- ``--codec h264`` (MP4, libx264): what NVDEC (``--dali`` on a GPU) decodes fastest.
  ``--codec vp9`` (WebM, libvpx-vp9): the codec DALI's CPU backend reads.
- Output, a CSV layout that ``--format auto`` detects::

      OUT/classes.txt         the source's classes, in its order (labels keep their numbers)
      OUT/train.csv           "path,label" header, then "videos/<rel>.mp4,Class[;Class...]"
      OUT/test.csv            (same; header only when the source has no test list)
      OUT/videos/<rel>.mp4    <rel>: the source path relative to its root (UCF-101, CSV) or to
                              its video folder (Sports-1M), extension replaced (.mp4 / .webm)
      OUT/prepare-report.json settings, counts, the source's notes, and every bad input
      OUT/prepare-settings.json  what the videos were encoded with (checked on a rerun)

  The lists keep the source's train/test lists of the chosen ``--split`` entry for entry
  (same order; several labels stay several).
- Parallel over ``--workers`` processes (one encoder thread each), with a progress bar.
- Resumable: a video whose output exists (non-empty) is not transcoded again, so rerunning the
  same command after an interruption continues where it stopped. Each output is written to a
  hidden ``.<name>.partial.<ext>`` beside it and renamed when complete, so a killed run never
  leaves a half-written video under a listed name; leftover partials are overwritten or removed.
  A rerun with other encoding settings stops with an error instead of mixing two encodings.
- Bad inputs (empty, cut off, undecodable, no video stream) go to the report with their reason
  and are left out of the lists; the lists are written last, atomically.
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

from sportsfusion.cli import default_workers, fail, setup_logging
from sportsfusion.data.decode import END_TOLERANCE, BadVideo, pyav
from sportsfusion.data.formats import FORMATS, DatasetFormatError, load_dataset

log = logging.getLogger("sportsfusion.data")

# encoder, container, extension
CODECS = {"h264": ("libx264", "mp4", ".mp4"), "vp9": ("libvpx-vp9", "webm", ".webm")}
DEFAULT_CRF = {"h264": 23, "vp9": 32}
# --preset: encoder speed options per codec. VP9 keeps lag-in-frames 0 (no hidden alt-ref
# frames): every packet is a shown frame, as DALI's frame counting expects.
PRESETS = {
    "h264": {
        "fast": {"preset": "veryfast"},
        "medium": {"preset": "medium"},
        "slow": {"preset": "slow"},
    },
    "vp9": {
        "fast": {"deadline": "realtime", "cpu-used": "8"},
        "medium": {"deadline": "good", "cpu-used": "4"},
        "slow": {"deadline": "good", "cpu-used": "2"},
    },
}
REPORT = "prepare-report.json"
SETTINGS = "prepare-settings.json"
VIDEO_DIR = "videos"
PARTIAL = ".partial"
_OUTPUT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES}


@dataclass(frozen=True)
class Settings:
    """What decides the bytes of an output video (a rerun must use the same)."""

    codec: str = "h264"
    short_side: int = 200  # 0 = keep the source size
    gop: int = 12
    crf: int | None = None  # None = DEFAULT_CRF[codec]
    preset: str = "fast"

    def check(self) -> None:
        if self.codec not in CODECS:
            raise ValueError(f"--codec must be one of {', '.join(CODECS)}, got {self.codec!r}")
        if self.short_side < 0 or self.short_side == 1:
            raise ValueError(f"--short-side must be >= 2 (0 keeps the size), got {self.short_side}")
        if self.gop < 1:
            raise ValueError(f"--gop must be >= 1, got {self.gop}")
        top = 51 if self.codec == "h264" else 63
        if self.crf is not None and not 0 <= self.crf <= top:
            raise ValueError(f"--crf for {self.codec} must be in 0..{top}, got {self.crf}")
        if self.preset not in PRESETS[self.codec]:
            raise ValueError(f"--preset must be one of {', '.join(PRESETS[self.codec])}")

    def resolved(self) -> dict:
        return {**asdict(self), "crf": DEFAULT_CRF[self.codec] if self.crf is None else self.crf}


def even_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(width, height) with the short side `short_side` (0: unchanged), aspect kept, both even."""
    if short_side:
        scale = short_side / min(width, height)
        width, height = width * scale, height * scale
    return max(2, round(width / 2) * 2), max(2, round(height / 2) * 2)


def _encoder_options(settings: Settings) -> dict[str, str]:
    s, gop = settings.resolved(), str(settings.gop)
    options = {"crf": str(s["crf"]), "threads": "1", **PRESETS[settings.codec][settings.preset]}
    if settings.codec == "h264":  # a fixed keyframe interval: no scene-cut keyframes between
        options["x264-params"] = f"keyint={gop}:min-keyint={gop}:scenecut=0"
    else:
        options.update({"b:v": "0", "row-mt": "0", "lag-in-frames": "0", "keyint_min": gop})
    return options


def transcode(src: str, dst: str, settings: Settings) -> dict:
    """Write `src` re-encoded to `dst` (via a hidden partial file renamed at the end); return
    {"frames", "width", "height", "bytes"}. Raises BadVideo for an input that cannot be used."""
    av = pyav()
    if not os.path.exists(src):
        raise BadVideo(src, "missing")
    if os.path.getsize(src) == 0:
        raise BadVideo(src, "empty file")
    folder, name = os.path.split(dst)
    stem, ext = os.path.splitext(name)
    tmp = os.path.join(folder, f".{stem}{PARTIAL}{ext}")
    os.makedirs(folder, exist_ok=True)
    try:
        inp = av.open(src, "r", metadata_errors="ignore")
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as e:
        raise BadVideo(src, f"cannot open: {_message(e)}") from None
    try:
        if not inp.streams.video:
            raise BadVideo(src, "no video stream")
        stream = inp.streams.video[0]
        stream.codec_context.thread_count = 1  # the parallelism is one process per video
        stream.codec_context.thread_type = "NONE"
        try:
            result = _transcode(av, inp, stream, tmp, settings, src)
        except av.error.FFmpegError as e:
            if isinstance(e, OSError) and e.errno in _OUTPUT_ERRNOS:
                raise  # the output side failed (disk full, ...): not the input's fault
            raise BadVideo(src, f"decode error: {_message(e)}") from None
        os.replace(tmp, dst)
        result["bytes"] = os.path.getsize(dst)
        return result
    finally:
        inp.close()
        if os.path.exists(tmp):
            os.unlink(tmp)


def _message(e: Exception) -> str:
    return getattr(e, "strerror", None) or str(e) or type(e).__name__


def _rate(stream) -> Fraction:
    for rate in (stream.average_rate, stream.guessed_rate):
        if rate and rate > 0:
            return Fraction(rate)
    return Fraction(25)


def _listed_frames(stream, rate: Fraction) -> int:
    """The frame count the header claims (0 if it says nothing): the frame count, else the
    stream's duration or Matroska DURATION tag, never the container's (audio may be longer)."""
    if stream.frames and stream.frames > 0:
        return int(stream.frames)
    seconds = None
    if stream.duration and stream.time_base:
        seconds = float(stream.duration * stream.time_base)
    else:
        try:  # "HH:MM:SS.fraction"
            h, m, sec = (stream.metadata.get("DURATION") or "").split(":")
            seconds = int(h) * 3600 + int(m) * 60 + float(sec)
        except ValueError:
            pass
    return int(round(seconds * rate)) if seconds else 0


def _scale(frame, size: tuple[int, int]):
    """The frame at `size` in yuv420p (area averaging: a clean downscale)."""
    from av.video.frame import PictureType

    scaled = frame.reformat(*size, "yuv420p", interpolation="AREA")
    scaled.pict_type = PictureType.NONE  # else the source's keyframes would force ours
    return scaled


def _transcode(av, inp, stream, tmp: str, settings: Settings, src: str) -> dict:
    encoder, container, _ = CODECS[settings.codec]
    rate, tb = _rate(stream), stream.time_base or Fraction(1, 90000)
    step = max(1, round(1 / (rate * tb)))  # one frame period in time-base units
    first_pts = last_pts = None
    size = None
    frames = 0
    with av.open(tmp, "w", format=container) as out:
        video = None
        for frame in inp.decode(stream):
            if video is None:
                size = even_size(frame.width, frame.height, settings.short_side)
                video = out.add_stream(encoder, rate=rate)
                video.width, video.height, video.pix_fmt = *size, "yuv420p"
                video.codec_context.time_base = tb  # the source's timestamps, as they are
                video.codec_context.gop_size = settings.gop
                video.codec_context.thread_count = 1
                video.options = _encoder_options(settings)
            scaled = _scale(frame, size)
            pts = frame.pts
            if pts is not None and first_pts is None:
                first_pts = pts
            pts = None if pts is None else pts - first_pts
            if pts is None or (last_pts is not None and pts <= last_pts):
                pts = 0 if last_pts is None else last_pts + step  # missing or out of order
            scaled.pts, scaled.time_base, last_pts = pts, tb, pts
            out.mux(video.encode(scaled))
            frames += 1
        if video is None:
            raise BadVideo(src, "undecodable: no frame decoded")
        out.mux(video.encode())
    listed = _listed_frames(stream, rate)
    if listed and frames < listed - END_TOLERANCE:
        raise BadVideo(src, f"truncated: decoded {frames} of the {listed} frames its header lists")
    return {"frames": frames, "width": size[0], "height": size[1]}


def _job(args: tuple[str, str, Settings]) -> tuple[str, dict | BadVideo]:
    src, dst, settings = args
    try:
        return src, transcode(src, dst, settings)
    except BadVideo as e:
        return src, e


# ---------------------------------------------------------------------------- the data set


def _video_base(index, videos: str | None) -> str:
    """The folder output paths mirror: the Sports-1M video folder, else the data set root, else
    (files listed from elsewhere) the deepest folder holding them all."""
    paths = [e.path for e in (*index.train, *index.test)]
    candidates = []
    if index.format == "sports1m":
        candidates.append(os.path.abspath(videos) if videos else os.path.join(index.root, "videos"))
    candidates.append(index.root)
    for base in candidates:
        if all(_inside(p, base) for p in paths):
            return base
    return os.path.commonpath([os.path.dirname(p) for p in paths])


def _inside(path: str, folder: str) -> bool:
    path, folder = os.path.abspath(path), os.path.abspath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def plan_outputs(sources: list[str], base: str, ext: str) -> dict[str, str]:
    """Source path -> output path relative to OUT: videos/<rel> with `ext`. Sources that would
    meet at one name (a.avi and a.mp4) keep their old extension in it (a.avi.mp4)."""
    rel = {s: os.path.relpath(s, base).replace(os.sep, "/") for s in sources}
    new = {s: os.path.splitext(r)[0] + ext for s, r in rel.items()}
    count: dict[str, int] = {}
    for name in new.values():
        count[name.lower()] = count.get(name.lower(), 0) + 1
    for s in sources:
        if count[new[s].lower()] > 1:
            new[s] = rel[s] + ext
    return {s: f"{VIDEO_DIR}/{name}" for s, name in new.items()}


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}{PARTIAL}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _csv_text(entries, classes: list[str], outputs: dict[str, str], bad: dict) -> str:
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["path", "label"])
    for e in entries:
        if e.path not in bad:
            writer.writerow([outputs[e.path], ";".join(classes[i] for i in e.labels)])
    return buf.getvalue()


def _check_classes(classes: list[str]) -> None:
    for name in classes:
        if ";" in name or name != name.strip() or "\n" in name or "\r" in name:
            raise ValueError(f"class name {name!r} cannot be written to a CSV list")


def _check_settings(out: Path, settings: dict) -> None:
    path = out / SETTINGS
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError):
            old = None
        if old != settings:
            shown = ", ".join(f"{k}={v}" for k, v in (old or {}).items())
            raise ValueError(
                f"{out} was prepared with other settings ({shown or 'unreadable ' + SETTINGS}): "
                "rerun with those, or choose another OUT"
            )
    else:
        if out.exists() and not (out.is_dir() and not any(out.iterdir())):
            raise ValueError(f"OUT {out} is not empty and holds no {SETTINGS}: choose another")
        out.mkdir(parents=True, exist_ok=True)
        _write_atomic(path, json.dumps(settings, indent=2) + "\n")


def _remove_partials(folder: Path) -> None:
    for path in folder.rglob(f".*{PARTIAL}.*"):
        path.unlink(missing_ok=True)


def prepare(
    src,
    out,
    settings: Settings = Settings(),
    *,
    format: str = "auto",
    split: int = 1,
    videos: str | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> dict:
    """Transcode the data set at `src` into `out` (see the module docstring); returns the report."""
    from tqdm import tqdm

    start = time.perf_counter()
    settings.check()
    index = load_dataset(src, format, split=split, videos=videos)
    _check_classes(index.classes)
    out = Path(out).absolute()
    base = _video_base(index, videos)
    for folder in {index.root, base}:
        if _inside(str(out), folder):
            raise ValueError(f"OUT {out} is inside the source {folder}: choose a folder outside it")
    resolved = settings.resolved()
    _check_settings(out, resolved)

    sources = list(dict.fromkeys(e.path for e in (*index.train, *index.test)))
    outputs = plan_outputs(sources, base, CODECS[settings.codec][2])
    done = {s for s in sources if _nonempty(out / outputs[s])}
    todo = [(s, str(out / outputs[s]), settings) for s in sources if s not in done]
    bad: dict[str, str] = {}
    workers = default_workers() if workers is None else workers
    bar = tqdm(
        total=len(sources), initial=len(done), desc="prepare", unit="video", disable=not progress
    )
    try:
        if workers <= 0 or len(todo) <= 1:
            for job in todo:
                _collect(_job(job), bad, bar)
        else:
            _run_pool(todo, min(workers, len(todo)), bad, bar)
    finally:
        bar.close()
    _remove_partials(out / VIDEO_DIR)

    for part in ("train", "test"):
        text = _csv_text(getattr(index, part), index.classes, outputs, bad)
        _write_atomic(out / f"{part}.csv", text)
    _write_atomic(out / "classes.txt", "".join(f"{c}\n" for c in index.classes))
    kept = [s for s in sources if s not in bad]
    report = {
        "source": index.root,
        "format": index.format,
        "split": split if index.format == "ucf101" else None,
        "out": str(out),
        "settings": resolved,
        "videos": len(kept),
        "transcoded": len(todo) - len(bad),
        "skipped_done": len(done),
        "bad": [{"path": s, "reason": bad[s]} for s in sources if s in bad],
        "train": sum(e.path not in bad for e in index.train),
        "test": sum(e.path not in bad for e in index.test),
        "classes": len(index.classes),
        "source_notes": list(index.notes),
        "bytes": sum((out / outputs[s]).stat().st_size for s in kept),
        "seconds": round(time.perf_counter() - start, 2),
    }
    _write_atomic(out / REPORT, json.dumps(report, indent=2) + "\n")
    return report


def _nonempty(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except OSError:
        return False


def _collect(result: tuple[str, dict | BadVideo], bad: dict[str, str], bar) -> None:
    src, value = result
    if isinstance(value, BadVideo):
        bad[src] = value.reason
        log.warning("bad video %s: %s", src, value.reason)
    bar.update()


def _run_pool(todo: list, workers: int, bad: dict[str, str], bar) -> None:
    """At most 2 jobs per worker in flight, so an interruption loses little queued work and a
    1M-video list never becomes 1M futures at once."""
    jobs = iter(todo)
    with ProcessPoolExecutor(workers) as pool:
        pending: set[Future] = set()
        try:
            while True:
                while len(pending) < 2 * workers:
                    job = next(jobs, None)
                    if job is None:
                        break
                    pending.add(pool.submit(_job, job))
                if not pending:
                    return
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    _collect(future.result(), bad, bar)
        except BaseException:
            for future in pending:
                future.cancel()
            raise


# ---------------------------------------------------------------------------- command line


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        "sportsfusion.data.prepare", add_help=add_help, description=__doc__.split("\n")[0]
    )
    add = p.add_argument
    add("src", metavar="SRC", help="data set root or CSV file, any layout --format reads")
    add("out", metavar="OUT", help="output folder (a CSV layout); rerun the command to resume")
    add("--format", default="auto", choices=FORMATS, help="layout of SRC (default: %(default)s)")
    add("--split", type=int, default=1, help="UCF-101 split whose lists are written (default: 1)")
    add("--videos", default=None, help="Sports-1M video folder (default: SRC/videos)")
    add(
        "--short-side",
        type=int,
        default=Settings.short_side,
        help="short side of the output frames, 0 = keep the size (default: %(default)s)",
    )
    add(
        "--codec",
        default=Settings.codec,
        choices=list(CODECS),
        help="h264 (MP4; NVDEC decodes it fastest) or vp9 (WebM; DALI's CPU backend reads it) "
        "(default: %(default)s)",
    )
    add("--gop", type=int, default=Settings.gop, help="a keyframe every N frames (default: 12)")
    crf = ", ".join(f"{k} {v}" for k, v in DEFAULT_CRF.items())
    add("--crf", type=int, default=None, help=f"constant quality, lower = better (default: {crf})")
    add(
        "--preset",
        default=Settings.preset,
        choices=list(PRESETS["h264"]),
        help="encoder speed: x264 veryfast/medium/slow, VP9 realtime or good at cpu-used 4/2 "
        "(default: %(default)s)",
    )
    add(
        "--workers",
        type=int,
        default=default_workers(),
        help="parallel processes, 0 = all in this one (default: %(default)s, the cores up to 8)",
    )
    add(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="show a progress bar (default: %(default)s)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    setup_logging()
    settings = Settings(args.codec, args.short_side, args.gop, args.crf, args.preset)
    try:
        report = prepare(
            args.src,
            args.out,
            settings,
            format=args.format,
            split=args.split,
            videos=args.videos,
            workers=args.workers,
            progress=args.progress,
        )
    except KeyboardInterrupt:
        print("interrupted: rerun the same command to continue", file=sys.stderr)
        return 130
    except (ValueError, DatasetFormatError, OSError) as e:
        return fail(e)
    for note in report["source_notes"]:
        log.warning("source: %s", note)
    s = report["settings"]
    print(
        f"prepared {report['videos']} videos ({report['transcoded']} transcoded, "
        f"{report['skipped_done']} already done, {len(report['bad'])} bad: see {REPORT}), "
        f"{report['train']} train / {report['test']} test, {s['codec']} short side "
        f"{s['short_side']} gop {s['gop']} crf {s['crf']}, {report['bytes'] / 1e6:.1f} MB, "
        f"{report['seconds']:.1f} s -> {report['out']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
