"""The one probe both loaders use (`sportsfusion.data.probe`): the same answers as `probe_video`,
parallel or inline, cached on disk by (path, size, mtime) so a second start opens only new or
changed files, bad files cached too, a broken cache replaced with one warning."""

from __future__ import annotations

import logging
import multiprocessing
import os
import sqlite3
import subprocess
import sys

import pytest

pytest.importorskip("av", reason="probing needs PyAV")

from videos import BAD_REASONS, write_bad_videos, write_index_video  # noqa: E402

from sportsfusion.data import probe  # noqa: E402
from sportsfusion.data.decode import BadVideo, probe_video  # noqa: E402
from sportsfusion.data.formats import VideoEntry, load_dataset  # noqa: E402
from sportsfusion.data.loader import probe_split  # noqa: E402

MIN_FRAMES = 7  # the "too_short" bad video has 5 frames


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SPORTSFUSION_CACHE", str(tmp_path / "cache"))


def listed(root, tmp_path) -> tuple[list[VideoEntry], dict[str, str]]:
    """The set's videos with one bad file of each kind among them (and one listed twice)."""
    index = load_dataset(str(root))
    (tmp_path / "bad").mkdir()
    bad = write_bad_videos(tmp_path / "bad")
    bad_entries = [VideoEntry(p, (0,)) for p in bad.values()]
    entries = [*index.train[:3], *bad_entries[:3], *index.train[3:], *bad_entries[3:]]
    return [*entries, *index.test, index.train[0]], bad


def expected(entries, min_frames):
    out = []
    for e in entries:
        try:
            out.append(probe_video(e.path, min_frames))
        except BadVideo as b:
            out.append(b)
    return out


def answers(result: probe.Probed) -> tuple[list, list[str]]:
    return result.infos, [str(b) for b in result.bad]


def as_answers(items) -> tuple[list, list[str]]:
    return [i for i in items if not isinstance(i, BadVideo)], [
        str(i) for i in items if isinstance(i, BadVideo)
    ]


@pytest.fixture
def opened(monkeypatch):
    """The paths the probe opens (in-process: workers 0/1)."""
    paths = []
    real = probe.probe_video

    def counted(path, min_frames=1):
        paths.append(path)
        return real(path, min_frames)

    monkeypatch.setattr(probe, "probe_video", counted)
    return paths


def test_same_answers_as_probe_video_then_all_from_the_cache(
    tiny_sports, tmp_path, caplog, monkeypatch
):
    entries, bad = listed(tiny_sports, tmp_path)
    want = as_answers(expected(entries, MIN_FRAMES))
    with caplog.at_level(logging.INFO, "sportsfusion.data"):
        kept, infos, skipped = probe_split(entries, MIN_FRAMES, 0, False, "train")
    assert (infos, [str(b) for b in skipped]) == want
    assert kept == [e for e in entries if e.path in {i.path for i in infos}]
    unique = len({e.path for e in entries})
    assert f"probed {unique - 1:,} train videos, 0 from the cache" in caplog.messages[-1]

    def fail(path, min_frames=1):
        raise AssertionError(f"{path} was probed again")

    monkeypatch.setattr(probe, "probe_video", fail)
    caplog.clear()
    with caplog.at_level(logging.INFO, "sportsfusion.data"):
        again = probe_split(entries, MIN_FRAMES, 1, False, "train")
    assert again[:2] == (kept, infos) and [str(b) for b in again[2]] == [str(b) for b in skipped]
    present = sum(1 for e in entries if e.path != bad["missing"])
    where = str(probe.cache_path())
    assert f"probed 0 train videos, {present} from the cache ({where})" in caplog.messages
    # Bad files are still reported, one line each, with the same reasons.
    warned = [m for m in caplog.messages if m.startswith("skip train video")]
    assert warned == [f"skip train video {b}" for b in skipped] and len(warned) == len(bad)
    for kind, path in bad.items():
        (reason,) = [b.reason for b in skipped if b.path == path]
        assert reason.startswith(BAD_REASONS[kind]), (kind, reason)

    # "Too short" is decided per run from the cached frame count, as probe_video would.
    assert answers(probe.probe_videos(entries, 3)) == as_answers(expected(entries, 3))
    # DALI's codec check reads the codec without probing the files again, into the same rows.
    result = probe.probe_videos(entries, MIN_FRAMES, codec=True)
    assert result.probed == 0 and set(result.codecs) == {"vp9"}
    db = sqlite3.connect(probe.cache_path())
    rows = db.execute("SELECT codec, count(*) FROM videos WHERE reason IS NULL GROUP BY codec")
    assert rows.fetchall() == [("vp9", len(result.infos))]  # the repeat is one row; too_short one
    db.close()
    assert probe.probe_videos(entries, MIN_FRAMES, codec=True).codecs == result.codecs


def test_a_changed_file_is_probed_again_and_only_it(sports_copy, opened, caplog):
    entries = load_dataset(str(sports_copy)).train
    probe.probe_videos(entries, 1)
    assert len(opened) == len(entries)
    rewritten, touched = entries[1].path, entries[4].path
    write_index_video(rewritten, 9, width=64, height=48)
    os.utime(touched, ns=(1, 1))  # same bytes, another mtime
    opened.clear()
    with caplog.at_level(logging.INFO, "sportsfusion.data"):
        _, infos, _ = probe_split(entries, 1, 0, False, "train")
    assert sorted(opened) == sorted([rewritten, touched])
    assert f"probed 2 train videos, {len(entries) - 2} from the cache" in caplog.text
    assert next(i for i in infos if i.path == rewritten).num_frames == 9
    opened.clear()
    probe.probe_videos(entries, 1)
    assert opened == []


def test_a_strict_stop_keeps_what_was_probed(sports_copy, tmp_path, opened):
    good = load_dataset(str(sports_copy)).train[:4]
    bad = write_bad_videos(tmp_path)
    entries = [*good[:2], VideoEntry(bad["garbage"], (0,)), *good[2:]]
    with pytest.raises(BadVideo, match="bad_garbage.webm: cannot open"):
        probe_split(entries, 1, 0, True, "train")
    assert opened == [e.path for e in entries[:3]]
    opened.clear()
    # Strict from the cache raises the same first bad video, in input order.
    missing_first = [VideoEntry(bad["missing"], (0,)), *entries]
    with pytest.raises(BadVideo, match="bad_missing.webm: missing"):
        probe.probe_videos(missing_first, 1, strict=True)
    with pytest.raises(BadVideo, match="bad_garbage.webm: cannot open"):
        probe.probe_videos(entries, 1, strict=True)
    assert opened == []
    kept, _, skipped = probe_split(entries, 1, 0, False, "train")
    assert opened == [e.path for e in good[2:]] and kept == good and len(skipped) == 1


@pytest.mark.parametrize("damage", ["garbage", "truncated", "other_version", "unwritable"])
def test_a_broken_cache_is_replaced_with_one_warning(
    tiny_sports, tmp_path, caplog, monkeypatch, damage
):
    entries = load_dataset(str(tiny_sports)).train
    want = answers(probe.probe_videos(entries, 1, cache=False))
    path = probe.cache_path()
    if damage == "unwritable":  # the cache folder cannot be made: probe without a cache
        (tmp_path / "file").write_text("")
        monkeypatch.setenv("SPORTSFUSION_CACHE", str(tmp_path / "file"))
    else:
        probe.probe_videos(entries, 1)
        data = path.read_bytes()
        if damage == "garbage":
            path.write_bytes(b"not a database, " * 1000)
        elif damage == "truncated":
            path.write_bytes(data[: len(data) // 2 + 100])
        else:
            with sqlite3.connect(path) as db:
                db.execute("PRAGMA user_version = 99")
    for run in range(2):
        caplog.clear()
        with caplog.at_level(logging.WARNING, "sportsfusion.data"):
            result = probe.probe_videos(entries, 1)
        assert answers(result) == want
        if damage == "unwritable":
            assert result.cache == probe.cache_path() and result.cached == 0
            assert len(caplog.messages) == 1 and "probing without it" in caplog.messages[0]
            continue
        if run == 0 and damage != "other_version":
            assert len(caplog.messages) == 1 and "unreadable" in caplog.messages[0]
            assert str(path) in caplog.messages[0]
        else:  # rebuilt: the second run reads it
            assert caplog.messages == []
        if run == 1:
            assert result.probed == 0 and result.cached == len(entries)


def test_parallel_equals_inline(tiny_sports, tmp_path):
    entries, _ = listed(tiny_sports, tmp_path)
    inline = probe.probe_videos(entries, MIN_FRAMES, workers=0, cache=False)
    parallel = probe.probe_videos(entries, MIN_FRAMES, workers=2, cache=False)
    assert answers(parallel) == answers(inline) == as_answers(expected(entries, MIN_FRAMES))
    assert parallel.entries == inline.entries
    cached = probe.probe_videos(entries, MIN_FRAMES, workers=2, codec=True)
    assert answers(cached) == answers(inline) and set(cached.codecs) == {"vp9"}
    with pytest.raises(BadVideo, match="bad_missing.webm: missing"):
        probe.probe_videos(entries, MIN_FRAMES, workers=2, strict=True, cache=False)


def _probe_count(entries, queue) -> None:
    queue.put(probe.probe_videos(entries, 1, workers=0).probed)


@pytest.mark.skipif(sys.platform == "win32", reason="turns need fcntl")
def test_processes_sharing_the_cache_probe_each_file_once(tiny_sports):
    """Two processes (DDP ranks) start on the same cold cache: one probes, one reads."""
    entries = load_dataset(str(tiny_sports)).train
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    ranks = [context.Process(target=_probe_count, args=(entries, queue)) for _ in range(2)]
    for p in ranks:
        p.start()
    counts = sorted(queue.get(timeout=60) for _ in ranks)
    for p in ranks:
        p.join(timeout=60)
    assert counts == [0, len(entries)]


def test_dali_does_not_import_the_loader():
    """probe.py ends the loader <-> dali import circle, and needs no torch."""
    code = (
        "import sys\n"
        "import sportsfusion.data.probe\n"
        "assert 'torch' not in sys.modules, 'probe imports torch'\n"
        "import sportsfusion.data.dali\n"
        "assert 'sportsfusion.data.loader' not in sys.modules, 'dali imports loader'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
