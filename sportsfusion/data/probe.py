"""One probe for both loaders (the PyAV DataLoader and `--dali`): which listed videos can give a
clip, their frame count, rate and size, opened once per file and then read from a disk cache.

- The check is `decode.probe_video`'s (header + first decoded frame), run over `workers` processes
  (forked, chunks of paths each; inline when `workers` <= 1) with a progress bar for the files
  not in the cache.
- The cache is one SQLite file, ``cache_dir()/probe.sqlite``, one row per file keyed by
  (absolute path, size, mtime_ns): a file that changed (or was replaced) is probed again, any
  other is not. Bad files are cached too (their reason); a missing file has nothing to key it
  by and is reported without being opened. The frame count is cached rather than a verdict, so
  "too short" is decided per run (`min_frames` depends on the model). DALI's codec check adds
  the codec name to the same row.
- Results are committed every few thousand files, each commit a transaction: a run killed in the
  middle of a long probe keeps what it had probed and never leaves a half-written cache. A cache
  that is not a readable SQLite file (or of another version) is replaced, with one warning.
- Processes sharing the cache (DDP ranks) take turns on a lock file beside it: the first probes
  the new files, the others wait and then read them from the cache.

This module imports neither `loader` nor `dali` (both import it), and not torch.
"""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing
import os
import signal
import sqlite3
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sportsfusion.data.decode import BadVideo, VideoInfo, probe_video

if TYPE_CHECKING:
    from sportsfusion.data.formats import VideoEntry

log = logging.getLogger("sportsfusion.data")

CACHE_NAME = "probe.sqlite"
CACHE_VERSION = 1  # PRAGMA user_version: bump when what a row means changes
FLUSH_ROWS = 2000  # commit the newly probed rows this often ...
FLUSH_SECONDS = 10.0  # ... or after this long, whichever comes first
_LOOKUP_CHUNK = 500  # paths per "WHERE path IN (...)" query
_COLUMNS = "path, size, mtime_ns, frames, fps, width, height, reason, codec"

# A row's payload: (frames, fps, width, height, reason, codec). reason is None for a usable
# video; codec is None until DALI's check asked for it.
Record = tuple[int, float, int, int, "str | None", "str | None"]


def cache_dir() -> Path:
    """$SPORTSFUSION_CACHE, else $XDG_CACHE_HOME, else ~/.cache; then /sportsfusion."""
    root = os.environ.get("SPORTSFUSION_CACHE") or os.environ.get("XDG_CACHE_HOME")
    return Path(root or Path.home() / ".cache") / "sportsfusion"


def cache_path() -> Path:
    return cache_dir() / CACHE_NAME


def codec_name(path: str) -> str:
    """FFmpeg's name of the first video stream's codec ('vp9', 'h264', ...); '' if unknown."""
    import av

    try:
        with av.open(str(path), "r", metadata_errors="ignore") as container:
            return container.streams.video[0].codec_context.name or ""
    except (av.error.FFmpegError, OSError, IndexError, UnicodeDecodeError):
        return ""


# ------------------------------------------------------------------------------ the cache


class ProbeCache:
    """The SQLite file of probe results. Never raises on a bad or unwritable file: it warns
    once and carries on without it (a lost cache costs a re-probe, nothing more)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.conn: sqlite3.Connection | None = None
        self._warned = False
        try:
            self._connect()
        except sqlite3.DatabaseError as e:
            self._reset(e)
        except OSError as e:
            self._give_up(e)

    def _connect(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # A long timeout: another process may hold the write lock for a commit (milliseconds),
        # never for the probe itself.
        conn = sqlite3.connect(self.path, timeout=120)
        try:
            # Under a shared lock (no writer mid-commit, a hot journal rolled back): a file cut
            # short reads as fewer rows without any error, so its size is checked.
            conn.execute("BEGIN")
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            _check_size(self.path)
            conn.commit()
            if conn.execute("PRAGMA user_version").fetchone()[0] != CACHE_VERSION:
                conn.execute("BEGIN IMMEDIATE")
                if conn.execute("PRAGMA user_version").fetchone()[0] != CACHE_VERSION:
                    conn.execute("DROP TABLE IF EXISTS videos")
                    conn.execute(
                        "CREATE TABLE videos (path TEXT PRIMARY KEY, size INTEGER NOT NULL, "
                        "mtime_ns INTEGER NOT NULL, frames INTEGER, fps REAL, width INTEGER, "
                        "height INTEGER, reason TEXT, codec TEXT) WITHOUT ROWID"
                    )
                    conn.execute(f"PRAGMA user_version = {CACHE_VERSION}")
                conn.commit()
            conn.execute(f"SELECT {_COLUMNS} FROM videos LIMIT 1").fetchall()  # schema check
        except BaseException:
            conn.close()
            raise
        self.conn = conn

    def _warn(self, message: str, *args) -> None:
        if not self._warned:
            log.warning(message, *args)
            self._warned = True

    def _give_up(self, error: Exception) -> None:
        self._warn("probe cache %s not usable (%s): probing without it", self.path, error)
        self.close()

    def _reset(self, error: Exception) -> None:
        """An unreadable file (not SQLite, damaged): start a new one in its place."""
        self.close()
        self._warn("probe cache %s is unreadable (%s): starting a new one", self.path, error)
        try:
            for suffix in ("", "-journal", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(f"{self.path}{suffix}")
            self._connect()
        except (OSError, sqlite3.Error) as e:
            log.warning("probe cache %s not usable (%s): probing without it", self.path, e)
            self.close()

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self.conn.close()
            self.conn = None

    def lookup(self, keys: dict[str, tuple[int, int]]) -> dict[str, Record]:
        """The cached records of `keys` (path -> (size, mtime_ns)) whose key still matches."""
        found: dict[str, Record] = {}
        if self.conn is None or not keys:
            return found
        paths = list(keys)
        try:
            for i in range(0, len(paths), _LOOKUP_CHUNK):
                chunk = paths[i : i + _LOOKUP_CHUNK]
                marks = ",".join("?" * len(chunk))
                query = f"SELECT {_COLUMNS} FROM videos WHERE path IN ({marks})"
                for path, size, mtime, *record in self.conn.execute(query, chunk):
                    if keys[path] == (size, mtime):
                        found[path] = tuple(record)
        except sqlite3.DatabaseError as e:
            self._reset(e)
            return {}
        return found

    def store(self, rows: list[tuple]) -> None:
        """(path, size, mtime_ns, *record) rows, in one transaction."""
        if self.conn is None or not rows:
            return
        try:
            with self.conn:
                self.conn.executemany(
                    "INSERT OR REPLACE INTO videos VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
                )
        except sqlite3.DatabaseError as e:  # read-only, disk full, locked for minutes
            self._give_up(e)

    @contextlib.contextmanager
    def turn(self) -> Iterator[None]:
        """Exclusive use for probing: other processes on this cache wait (a lock file beside
        it), then find what this one probed in the cache instead of probing it again."""
        try:
            import fcntl
        except ImportError:  # not POSIX: no turns, at worst files probed twice
            yield
            return
        try:
            fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            yield
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log.info("waiting for another process probing into %s", _shown(self.path))
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError:  # a file system without locks
                pass
            yield
        finally:
            os.close(fd)  # releases the lock


def _check_size(path: Path) -> None:
    """A DatabaseError when the SQLite header counts more pages than the file holds."""
    with open(path, "rb") as f:
        header, size = f.read(100), os.fstat(f.fileno()).st_size
    if len(header) < 100:
        return  # a new, empty file
    page = int.from_bytes(header[16:18], "big")
    expected = int.from_bytes(header[28:32], "big") * (65536 if page == 1 else page)
    # The header's page count holds when its "valid for" counter is the change counter.
    if header[92:96] == header[24:28] and expected > size:
        raise sqlite3.DatabaseError(f"file is cut short: {size:,} of {expected:,} bytes")


# ------------------------------------------------------------------------------ probing


def _probe_one(path: str, cached: Record | None, want_codec: bool) -> Record:
    if cached is None:
        try:
            info = probe_video(path, 0)  # the frame count decides "too short" later
        except BadVideo as e:
            return (0, 0.0, 0, 0, e.reason, None)
        cached = (info.num_frames, info.fps, info.width, info.height, None, None)
    if want_codec and cached[4] is None and cached[5] is None:
        cached = (*cached[:5], codec_name(path))
    return cached


def _probe_chunk(tasks: list[tuple[str, Record | None]], want_codec: bool) -> list[Record]:
    return [_probe_one(path, cached, want_codec) for path, cached in tasks]


def _worker_init() -> None:
    # Ctrl-C reaches the whole process group: the parent stops the pool, workers stay quiet.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run(
    tasks: list[tuple[str, Record | None]], workers: int, want_codec: bool
) -> Iterator[Record]:
    """Records for `tasks`, in order: inline, or over `workers` forked processes."""
    if workers <= 1 or len(tasks) < 4:
        for path, cached in tasks:
            yield _probe_one(path, cached, want_codec)
        return
    size = max(1, min(64, math.ceil(len(tasks) / (workers * 8))))
    methods = multiprocessing.get_all_start_methods()
    # fork: the workers only run PyAV, and start in milliseconds (spawn re-imports torch).
    context = multiprocessing.get_context("fork") if "fork" in methods else None
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_worker_init)
    try:
        futures = [
            pool.submit(_probe_chunk, tasks[i : i + size], want_codec)
            for i in range(0, len(tasks), size)
        ]
        for future in futures:
            yield from future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _stat_key(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_size, st.st_mtime_ns


def _shown(path: Path | None) -> str:
    if path is None:
        return "no cache"
    text, home = str(path), str(Path.home())
    return "~" + text[len(home) :] if home != os.sep and text.startswith(home + os.sep) else text


@dataclass
class Probed:
    entries: list[VideoEntry]  # usable videos, input order
    infos: list[VideoInfo]
    bad: list[BadVideo]  # input order
    codecs: list[str | None]  # per usable video; None unless asked for (`codec=True`)
    probed: int  # files opened for a full probe this time (cache misses)
    cached: int  # entries answered by the cache
    cache: Path | None  # the cache file, None without one

    def summary(self, what: str = "") -> str:
        videos = f"{what} videos" if what else "videos"
        if self.cache is None:
            return f"probed {self.probed:,} {videos} (no cache)"
        where = _shown(self.cache)
        return f"probed {self.probed:,} {videos}, {self.cached:,} from the cache ({where})"


def _verdict(path: str, record: Record, min_frames: int) -> BadVideo | VideoInfo:
    frames, fps, width, height, reason, _ = record
    if reason is not None:
        return BadVideo(path, reason)
    if frames < min_frames:
        return BadVideo(path, f"too short: {frames} frames, needs {min_frames}")
    return VideoInfo(path, frames, fps, width, height)


def probe_videos(
    entries: Sequence[VideoEntry],
    min_frames: int,
    *,
    workers: int = 0,
    strict: bool = False,
    progress: bool | None = None,
    cache: str | os.PathLike | bool | None = True,
    codec: bool = False,
) -> Probed:
    """Probe `entries`: usable ones with their infos, bad ones with their reasons, in input
    order, the same as `probe_video(path, min_frames)` on each.

    `cache`: True for ``cache_path()``, a path for that file, False/None for none. `workers` > 1
    probes the files not in the cache over that many processes. `strict` raises the first bad
    video (in input order) instead of collecting it; what was probed until then stays cached.
    `progress`: a bar over the uncached files (never when stderr is not a terminal). `codec`: also
    each usable video's codec name (DALI's check), cached in the same rows.
    """
    store = None
    if cache is not None and cache is not False:
        store = ProbeCache(cache_path() if cache is True else cache)
    try:
        return _probe(entries, min_frames, workers, strict, progress, store, codec)
    finally:
        if store is not None:
            store.close()


def _probe(entries, min_frames, workers, strict, progress, store, want_codec) -> Probed:
    keys: dict[str, tuple[int, int] | None] = {}
    for e in entries:
        if e.path not in keys:
            keys[e.path] = _stat_key(e.path)
    # Absolute paths key the cache (entries' paths normally are already).
    names = {p: p if os.path.isabs(p) else os.path.abspath(p) for p in keys}
    present = {names[p]: k for p, k in keys.items() if k is not None}

    def needs(record: Record | None) -> bool:
        return record is None or (want_codec and record[4] is None and record[5] is None)

    def pending(found: dict[str, Record]) -> list[tuple[str, Record | None]]:
        return [
            (p, found.get(names[p]))
            for p, k in keys.items()
            if k is not None and needs(found.get(names[p]))
        ]

    found = store.lookup(present) if store is not None else {}
    tasks = pending(found)
    with contextlib.ExitStack() as stack:
        if tasks and store is not None and store.conn is not None:
            stack.enter_context(store.turn())
            # Another process may have probed them while this one waited for its turn.
            found.update(store.lookup({names[p]: present[names[p]] for p, _ in tasks}))
            tasks = pending(found)
        opened = {p for p, cached in tasks if cached is None}
        fresh: list[tuple] = []
        flushed = [time.monotonic()]

        def flush() -> None:
            if store is not None:
                store.store(fresh)
            fresh.clear()
            flushed[0] = time.monotonic()

        stack.callback(flush)  # also when strict raises or the run is interrupted
        bar = None
        if tasks and progress is not False:
            from tqdm import tqdm

            # disable=None: tqdm shows nothing when stderr is not a terminal.
            bar = tqdm(total=len(tasks), desc="probing videos", unit="video", disable=None)
            stack.callback(bar.close)
        results = _run(tasks, workers, want_codec)
        stack.callback(results.close)  # stops the pool on an early exit
        done = 0  # tasks answered so far; results come in task (= first-seen) order

        kept: list[VideoEntry] = []
        infos: list[VideoInfo] = []
        codecs: list[str | None] = []
        bad: list[BadVideo] = []
        from_cache = 0
        for e in entries:
            path = e.path
            if keys[path] is None:
                verdict = BadVideo(path, "missing")
            else:
                name = names[path]
                if name not in found or (done < len(tasks) and needs(found[name])):
                    while done < len(tasks):
                        task_path = tasks[done][0]
                        record = next(results)
                        done += 1
                        found[names[task_path]] = record
                        fresh.append((names[task_path], *keys[task_path], *record))
                        if bar is not None:
                            bar.update()
                        if task_path == path:
                            break
                    if len(fresh) >= FLUSH_ROWS or time.monotonic() - flushed[0] > FLUSH_SECONDS:
                        flush()
                if path not in opened:
                    from_cache += 1
                verdict = _verdict(path, found[name], min_frames)
            if isinstance(verdict, BadVideo):
                if strict:
                    raise verdict
                bad.append(verdict)
            else:
                kept.append(e)
                infos.append(verdict)
                codecs.append(found[name][5])
    where = store.path if store is not None else None
    return Probed(kept, infos, bad, codecs, len(opened), from_cache, where)


def probe_and_report(
    entries: Sequence[VideoEntry],
    min_frames: int,
    workers: int,
    strict: bool,
    what: str,
    *,
    progress: bool | None = None,
    codec: bool = False,
    cache: str | os.PathLike | bool | None = True,
) -> Probed:
    """`probe_videos` with the cache, one warning line per bad video and one line saying how
    many were probed and how many came from the cache (what `probe_split` prints)."""
    result = probe_videos(
        entries,
        min_frames,
        workers=workers,
        strict=strict,
        progress=progress,
        cache=cache,
        codec=codec,
    )
    for b in result.bad:
        log.warning("skip %s video %s", what, b)
    if entries:
        log.info("%s", result.summary(what))
    return result


__all__ = [
    "CACHE_NAME",
    "ProbeCache",
    "Probed",
    "cache_dir",
    "cache_path",
    "codec_name",
    "probe_and_report",
    "probe_videos",
]
