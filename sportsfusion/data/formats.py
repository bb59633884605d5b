"""Data set layouts: UCF-101, Sports-1M, a plain CSV, and `auto` detection.

Every reader returns a `DatasetIndex`: class names plus train and test lists of `VideoEntry`
(absolute video path, 0-based labels). Readers only list files; they never open a video.

UCF-101 (``--format ucf101``, pick the split with ``--split 1|2|3``)::

    ROOT/ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi    (one folder per class)
    ROOT/ucfTrainTestlist/classInd.txt                  "1 ApplyEyeMakeup" ... "101 YoYo"
    ROOT/ucfTrainTestlist/trainlist01.txt               "ApplyEyeMakeup/v_..._g08_c01.avi 1"
    ROOT/ucfTrainTestlist/testlist01.txt                "ApplyEyeMakeup/v_..._g01_c01.avi"

  List paths are matched to files case-insensitively (the real set lists
  ``v_HandStandPushups_...`` inside folder ``HandstandPushups``); the file is the one the
  list names, whatever its extension. Test lines take their label from the folder name via
  classInd.txt.

Sports-1M (``--format sports1m``, videos under ``ROOT/videos/`` or ``--videos DIR``)::

    ROOT/labels.txt                    487 UTF-8 class names, line i = label i
    ROOT/train_partition.txt[.gz]      "https://www.youtube.com/watch?v=UDqivjS-lpI 168,169"
    ROOT/test_partition.txt[.gz]       (same; labels are 0-based, several = multi-label)
    ROOT/videos/[any/subfolder/]UDqivjS-lpI.mp4   (named by YouTube id)

  URLs may be ``watch?v=ID``, ``youtu.be/ID`` or a bare id. A file is the video of id ID when
  its name is ``ID.<ext>`` or ``ID.<tag>.<ext>`` (yt-dlp's unmerged ``ID.f137.mp4``) and
  ``<ext>`` is one of `VIDEO_EXTENSIONS` (any case)::

      .mp4 .webm .mkv .3gp .avi .flv .m4v .mov .mpeg .mpg .ogv .ts .wmv

  Everything else is ignored and counted in one note: yt-dlp's side files (``ID.info.json``,
  ``ID.jpg``, ``ID.webp``, ``ID.description``, ``ID.en.vtt``) and unfinished downloads
  (``ID.mp4.part``, ``ID.mp4.ytdl``, ``ID.part-Frag3``, the merger's ``ID.temp.mp4``). An id
  with several videos takes, in this order of preference, a plain ``ID.<ext>`` over a tagged
  name, then the extension that comes first in `VIDEO_EXTENSIONS` (.mp4 > .webm > .mkv > the
  others alphabetically), then the first path in sorted order; one note counts such ids.

CSV (``--format csv``, ROOT is a folder holding train.csv [test.csv] or a train CSV file)::

    path,label                         optional header
    clips/a.mp4,archery                path relative to the CSV's folder (or absolute)
    "clips/b, take 2.mp4",archery;bmx  labels are class names, ';' for multi-label

  Class order comes from ``classes.txt`` beside the CSV if present, else sorted names.
  Given a file ``my_train.csv``, a sibling ``my_test.csv`` is the test list if it exists.

Listed videos with no local file are skipped and counted per split
(`DatasetIndex.missing_train`, `missing_test`). For Sports-1M that is normal (most of it has
left YouTube): one note gives the counts, and `strict` does not change it. For UCF-101 and CSV
it means a broken copy: one note line per missing file (the first `MISSING_LINES`, then a
count), and with ``strict=True`` the first missing file raises `DatasetFormatError`.

A video listed twice in one list is kept once (its first line); a video listed in both the
train and the test list is kept in the test list only, so training never sees a test video.
Each case gives one note with the count and the first example. Malformed lists raise
`DatasetFormatError` with a one-line message naming the file (and line). `DatasetIndex.notes`
holds one-line remarks that `train` and `evaluate` print once and store in their JSON output.
"""

from __future__ import annotations

import csv
import gzip
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

FORMATS = ("auto", "ucf101", "sports1m", "csv")

# Containers a Sports-1M video file may have, in order of preference when an id has several.
VIDEO_EXTENSIONS = (
    ".mp4",
    ".webm",
    ".mkv",
    ".3gp",
    ".avi",
    ".flv",
    ".m4v",
    ".mov",
    ".mpeg",
    ".mpg",
    ".ogv",
    ".ts",
    ".wmv",
)
_EXT_RANK = {ext: i for i, ext in enumerate(VIDEO_EXTENSIONS)}
_UNFINISHED_TAGS = {"temp", "part"}  # ID.temp.mp4: yt-dlp's merger output before its rename

MISSING_LINES = 10  # UCF-101 / CSV: missing files named one note line each, then only counted


@dataclass(frozen=True)
class VideoEntry:
    path: str  # absolute path of the video file
    labels: tuple[int, ...]  # class indices; several for Sports-1M multi-label videos


@dataclass
class DatasetIndex:
    classes: list[str]  # class names, index = label
    train: list[VideoEntry]
    test: list[VideoEntry]
    format: str  # "ucf101" | "sports1m" | "csv"
    root: str
    missing_train: int = 0  # listed train videos with no local file (skipped and counted)
    missing_test: int = 0  # the same for the test list
    duplicates: int = 0  # lines that repeat a video already in the same list (dropped)
    overlap: int = 0  # videos listed in both train and test (kept in test only)
    notes: list[str] = field(default_factory=list)  # one-line remarks for the run summary

    @property
    def missing(self) -> int:
        """Listed videos with no local file, both lists together."""
        return self.missing_train + self.missing_test


class DatasetFormatError(ValueError):
    """The data on disk does not fit the expected layout. The message is one line, naming the
    file (and line) at fault, so the command line tools print it as-is."""

    def __init__(self, message: str):
        super().__init__(message.replace("\r", " ").replace("\n", " "))


# ---------------------------------------------------------------------------- helpers


def _existing_dir(root) -> str:
    root = os.path.abspath(os.fspath(root))
    if not os.path.exists(root):
        raise DatasetFormatError(f"data set path not found: {root}")
    if not os.path.isdir(root):
        raise DatasetFormatError(f"data set path is not a directory: {root}")
    return root


def _numbered(path: str) -> Iterator[tuple[int, str]]:
    """(1-based line number, stripped line) for each non-blank line; gzip if the name ends .gz.
    Text mode translates CRLF; utf-8-sig drops a BOM that Windows editors like to add. Lines
    are read one at a time, so a 1M-line list never sits in memory twice."""
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8-sig") as f:
            for lineno, line in enumerate(f, 1):
                line = line.strip()
                if line:
                    yield lineno, line
    except FileNotFoundError:
        raise DatasetFormatError(f"file not found: {path}") from None
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise DatasetFormatError(f"cannot read {path}: {exc}") from None


def _bad(path: str, lineno: int, what: str, line: str) -> DatasetFormatError:
    shown = line if len(line) <= 80 else line[:77] + "..."
    return DatasetFormatError(f"{path}:{lineno}: {what}: {shown!r}")


def _walk(top: str, prune: tuple[str, ...] = ()) -> Iterator[tuple[str, str, str]]:
    """(relative posix dir prefix, file name, absolute path) for every file under `top`, in
    sorted order so that duplicate names resolve the same way on every machine. One os.walk
    instead of a stat per listed video keeps 1M-line lists fast."""
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in prune)
        rel = os.path.relpath(dirpath, top).replace(os.sep, "/")
        prefix = "" if rel == "." else rel + "/"
        for name in sorted(filenames):
            if not name.startswith("."):
                yield prefix, name, os.path.join(dirpath, name)


# A listed video: (key that identifies it in its list, how to name it, list file, line, labels).
_Row = tuple[str, str, str, int, tuple[int, ...]]


class _Lists:
    """What the readers share once their lists are parsed: duplicates dropped (first line kept),
    train lines that are also in the test list dropped, files looked up, missing ones counted per
    split, and a note for each of these. `named_missing`: name each missing file in a note (up to
    MISSING_LINES) and with `strict` raise on the first; else one note with the counts."""

    def __init__(self, index: DatasetIndex, where: str, named_missing: bool, strict: bool):
        self.index, self.where = index, where
        self.named_missing, self.strict = named_missing, strict
        self.first_dup: str | None = None
        self.first_overlap: str | None = None
        self.first_missing: str | None = None
        self.missing_lines: list[str] = []

    def _unique(self, rows: Iterable[_Row], seen: set[str]) -> Iterator[_Row]:
        for row in rows:
            if row[0] in seen:
                self.index.duplicates += 1
                self.first_dup = self.first_dup or f"{row[1]} ({row[2]}:{row[3]})"
                continue
            seen.add(row[0])
            yield row

    def _entries(
        self, rows: Iterable[_Row], part: str, find: Callable[[str, str], str | None]
    ) -> list[VideoEntry]:
        entries, missing = [], 0
        for key, shown, list_file, lineno, labels in rows:
            full = find(key, shown)
            if full is not None:
                entries.append(VideoEntry(full, labels))
                continue
            missing += 1
            self.first_missing = self.first_missing or shown
            if self.named_missing:
                if self.strict:
                    raise DatasetFormatError(
                        f"{list_file}:{lineno}: {part} video missing under {self.where} "
                        f"(--strict): {shown}"
                    )
                if len(self.missing_lines) < MISSING_LINES:
                    self.missing_lines.append(
                        f"missing {part} video {shown} ({os.path.basename(list_file)}:{lineno}), "
                        "skipped"
                    )
        setattr(self.index, f"missing_{part}", missing)
        return entries

    def resolve(
        self,
        train_rows: Iterable[_Row],
        test_rows: Iterable[_Row],
        find: Callable[[str, str], str | None],
    ) -> tuple[list[VideoEntry], list[VideoEntry], int]:
        """(train entries, test entries, train lines kept after duplicates and overlap). The test
        list is read first (it decides the overlap); the train list streams through."""
        test_seen: set[str] = set()
        test_kept = list(self._unique(test_rows, test_seen))
        train_kept = 0

        def not_in_test(rows: Iterable[_Row]) -> Iterator[_Row]:
            nonlocal train_kept
            for row in rows:
                if row[0] in test_seen:
                    self.index.overlap += 1
                    self.first_overlap = self.first_overlap or row[1]
                else:
                    train_kept += 1
                    yield row

        train = self._entries(not_in_test(self._unique(train_rows, set())), "train", find)
        test = self._entries(test_kept, "test", find)
        return train, test, train_kept

    def add_notes(self) -> None:
        index, notes = self.index, self.index.notes
        if index.duplicates:
            notes.append(
                f"{index.duplicates} lines list a video already listed above in the same list, "
                f"dropped (first: {self.first_dup})"
            )
        if index.overlap:
            notes.append(
                f"{index.overlap} videos are listed in both the train and the test list, kept in "
                f"test only (first: {self.first_overlap})"
            )
        notes.extend(self.missing_lines)
        if index.missing:
            named = len(self.missing_lines)
            tail = f"; {named} named above" if 0 < named < index.missing else ""
            notes.append(
                f"{index.missing} listed videos not found under {self.where} (train "
                f"{index.missing_train}, test {index.missing_test}), skipped (first: "
                f"{self.first_missing}{tail})"
            )


def _no_train(list_file: str, kept: int, overlap: int, absent: str) -> DatasetFormatError:
    if not kept and overlap:
        return DatasetFormatError(
            f"every video listed in {list_file} is also in the test list: no train video left"
        )
    return DatasetFormatError(absent)


# ---------------------------------------------------------------------------- UCF-101


def load_ucf101(root, split: int = 1, strict: bool = False) -> DatasetIndex:
    root = _existing_dir(root)
    if isinstance(split, bool) or split not in (1, 2, 3):
        raise DatasetFormatError(f"UCF-101 split must be 1, 2 or 3, got {split!r}")
    lists = os.path.join(root, "ucfTrainTestlist")
    class_file = os.path.join(lists, "classInd.txt")
    by_index: dict[int, str] = {}
    for lineno, line in _numbered(class_file):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise _bad(class_file, lineno, "expected '<index> <ClassName>'", line)
        if int(parts[0]) in by_index:
            raise _bad(class_file, lineno, "duplicate class index", line)
        by_index[int(parts[0])] = parts[1]
    if sorted(by_index) != list(range(1, len(by_index) + 1)):
        raise DatasetFormatError(f"{class_file}: class indices must be 1..N with no gaps")
    classes = [by_index[i] for i in range(1, len(by_index) + 1)]
    folder_label = {name.lower(): i for i, name in enumerate(classes)}

    # Lowercase relative path -> file: the real lists and folders disagree in case.
    files: dict[str, str] = {}
    for prefix, name, full in _walk(root, prune=("ucfTrainTestlist",)):
        files.setdefault((prefix + name).lower(), full)

    index = DatasetIndex(classes, [], [], "ucf101", root)
    mismatched = 0
    rows: dict[str, list[_Row]] = {}
    list_files = {
        part: os.path.join(lists, f"{part}list0{split}.txt") for part in ("train", "test")
    }
    for part, list_file in list_files.items():
        rows[part] = []
        for lineno, line in _numbered(list_file):
            parts = line.split()
            if len(parts) > 2:
                raise _bad(list_file, lineno, "expected '<Class>/<file> [label]'", line)
            rel = parts[0].replace("\\", "/")
            while rel.startswith("./"):
                rel = rel[2:]
            from_folder = folder_label.get(rel.split("/", 1)[0].lower()) if "/" in rel else None
            if len(parts) == 2:  # train lines carry a 1-based label; it wins over the folder
                if not parts[1].isdigit() or not 1 <= int(parts[1]) <= len(classes):
                    raise _bad(list_file, lineno, f"label must be 1..{len(classes)}", line)
                label = int(parts[1]) - 1
                mismatched += from_folder is not None and from_folder != label
            elif from_folder is None:
                raise _bad(list_file, lineno, "folder is not a class of classInd.txt", line)
            else:
                label = from_folder
            rows[part].append((rel.lower(), rel, list_file, lineno, (label,)))
        if not rows[part]:
            raise DatasetFormatError(f"no videos listed in {list_file}")
    books = _Lists(index, root, named_missing=True, strict=strict)
    index.train, index.test, kept = books.resolve(
        rows["train"], rows["test"], lambda key, _: files.get(key)
    )
    if not index.train:
        raise _no_train(
            list_files["train"],
            kept,
            index.overlap,
            f"none of the videos listed in {list_files['train']} exist in {root}",
        )
    books.add_notes()
    if mismatched:
        index.notes.append(f"{mismatched} list labels disagree with their folder; list kept")
    return index


# ---------------------------------------------------------------------------- Sports-1M

_ID = re.compile(r"[A-Za-z0-9_-]+")
_URL_MARKERS = ("?v=", "&v=", "youtu.be/", "/embed/", "/shorts/", "/v/")


def _youtube_id(url: str) -> str | None:
    for marker in _URL_MARKERS:
        i = url.find(marker)
        if i >= 0:
            m = _ID.match(url, i + len(marker))
            return m.group() if m else None
    return url if _ID.fullmatch(url) else None  # a bare id


def _partition(root: str, name: str) -> str | None:
    for candidate in (f"{name}.txt", f"{name}.txt.gz"):
        path = os.path.join(root, candidate)
        if os.path.isfile(path):
            return path
    return None


def _video_rank(path: str) -> tuple[bool, int, str]:
    """Smaller is preferred: a plain ID.ext, then the extension's place in VIDEO_EXTENSIONS."""
    name = os.path.basename(path)
    return name.count(".") > 1, _EXT_RANK[os.path.splitext(name)[1].lower()], path


def _videos_by_id(video_dir: str, notes: list[str]) -> dict[str, str]:
    """YouTube id (file name up to its first dot; ids contain no dots) -> its video file."""
    by_id: dict[str, str] = {}
    ignored, first_ignored = 0, None
    several: dict[str, None] = {}  # ids with more than one video, in the order met
    for prefix, name, full in _walk(video_dir):
        vid, _, rest = name.partition(".")
        ext = os.path.splitext(name)[1].lower()
        tags = rest.lower().split(".")[:-1]
        if not vid or ext not in _EXT_RANK or _UNFINISHED_TAGS.intersection(tags):
            ignored += 1
            first_ignored = first_ignored or prefix + name
            continue
        old = by_id.get(vid)
        if old is None:
            by_id[vid] = full
            continue
        several[vid] = None
        if _video_rank(full) < _video_rank(old):
            by_id[vid] = full
    if ignored:
        notes.append(
            f"{ignored} files in {video_dir} are not videos (side files, unfinished downloads), "
            f"ignored (first: {first_ignored}); video extensions: {' '.join(VIDEO_EXTENSIONS)}"
        )
    if several:
        vid = next(iter(several))
        notes.append(
            f"{len(several)} ids have several video files; each takes a plain ID.ext over a "
            f"tagged name, then .mp4 > .webm > .mkv > others (first: {vid} -> "
            f"{os.path.relpath(by_id[vid], video_dir)})"
        )
    return by_id


def load_sports1m(root, videos=None, strict: bool = False) -> DatasetIndex:
    """`strict` is accepted for symmetry and changes nothing: a listed video with no local file
    is normal for Sports-1M (most of it has left YouTube), so missing ones are only counted."""
    del strict
    root = _existing_dir(root)
    label_file = os.path.join(root, "labels.txt")
    classes = []
    for lineno, line in _numbered(label_file):
        if lineno != len(classes) + 1:  # a blank line would shift every later label
            raise DatasetFormatError(f"{label_file}:{len(classes) + 1}: blank class name")
        classes.append(line)
    if not classes:
        raise DatasetFormatError(f"no class names in {label_file}")
    video_dir = os.path.abspath(os.fspath(videos)) if videos else os.path.join(root, "videos")
    if not os.path.isdir(video_dir):
        raise DatasetFormatError(f"video folder not found: {video_dir}")
    train_file = _partition(root, "train_partition")
    if train_file is None:
        raise DatasetFormatError(f"no train_partition.txt[.gz] in {root}")
    test_file = _partition(root, "test_partition")

    index = DatasetIndex(classes, [], [], "sports1m", root)
    by_id = _videos_by_id(video_dir, index.notes)
    n = len(classes)
    label_sets: dict[str, tuple[int, ...]] = {}  # one tuple per distinct label field
    listed = {"train": 0, "test": 0}

    def rows(list_file: str, part: str) -> Iterator[_Row]:
        for lineno, line in _numbered(list_file):
            parts = line.split()
            if len(parts) != 2:
                raise _bad(list_file, lineno, "expected '<URL> <label>[,<label>...]'", line)
            vid = _youtube_id(parts[0])
            if vid is None:
                raise _bad(list_file, lineno, "no YouTube id in URL", line)
            labels = label_sets.get(parts[1])
            if labels is None:
                try:
                    labels = tuple(dict.fromkeys(int(x) for x in parts[1].split(",") if x))
                except ValueError:
                    raise _bad(list_file, lineno, "labels must be integers", line) from None
                if not labels or not all(0 <= x < n for x in labels):
                    raise _bad(list_file, lineno, f"labels must be 0..{n - 1}", line)
                label_sets[parts[1]] = labels
            listed[part] += 1
            yield vid, vid, list_file, lineno, labels
        if not listed[part]:
            raise DatasetFormatError(f"no videos listed in {list_file}")

    books = _Lists(index, video_dir, named_missing=False, strict=False)
    index.train, index.test, kept = books.resolve(
        rows(train_file, "train"),
        rows(test_file, "test") if test_file else (),
        lambda key, _: by_id.get(key),
    )
    if not index.train:
        raise _no_train(
            train_file,
            kept,
            index.overlap,
            f"none of the {listed['train']} videos listed in {train_file} are in {video_dir}",
        )
    if test_file is None:
        index.notes.append(
            f"no test_partition.txt[.gz] in {root}: test list empty, so no evaluation"
        )
    books.add_notes()
    return index


# ---------------------------------------------------------------------------- CSV


def _csv_rows(path: str) -> list[tuple[int, str, list[str]]]:
    rows = []
    header_allowed = True
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            for row in reader:
                while row and not row[-1].strip():  # blank lines, trailing commas
                    row.pop()
                if not row:
                    continue
                if header_allowed and row[0].strip().lower() == "path":  # header line
                    header_allowed = False
                    continue
                header_allowed = False
                if len(row) != 2:
                    raise _bad(
                        path, reader.line_num, "expected 'path,label[;label...]'", ",".join(row)
                    )
                names = [x.strip() for x in row[1].split(";") if x.strip()]
                rows.append((reader.line_num, row[0].strip(), names))
    except FileNotFoundError:
        raise DatasetFormatError(f"file not found: {path}") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetFormatError(f"cannot read {path}: {exc}") from None
    return rows


def load_csv(path, strict: bool = False) -> DatasetIndex:
    path = os.path.abspath(os.fspath(path))
    if os.path.isdir(path):
        train_file, test_file = os.path.join(path, "train.csv"), os.path.join(path, "test.csv")
        if not os.path.isfile(train_file):
            raise DatasetFormatError(f"no train.csv in {path}")
    elif os.path.isfile(path):
        folder, name = os.path.split(path)
        train_file = path
        test_file = os.path.join(folder, name.replace("train", "test")) if "train" in name else ""
    else:
        raise DatasetFormatError(f"data set path not found: {path}")
    folder = os.path.dirname(train_file)
    train_rows = _csv_rows(train_file)
    if not train_rows:
        raise DatasetFormatError(f"no videos listed in {train_file}")
    has_test = bool(test_file) and test_file != train_file and os.path.isfile(test_file)
    test_rows = _csv_rows(test_file) if has_test else []

    class_file = os.path.join(folder, "classes.txt")
    if os.path.isfile(class_file):
        classes = [line for _, line in _numbered(class_file)]
        if len(set(classes)) != len(classes):
            raise DatasetFormatError(f"{class_file}: duplicate class names")
    else:
        classes = sorted(
            {x for rows in (train_rows, test_rows) for _, _, names in rows for x in names}
        )
    label_of = {name: i for i, name in enumerate(classes)}

    # One directory listing per folder, cached, instead of a stat per line.
    listings: dict[str, set[str]] = {}

    def find(full: str, _shown: str) -> str | None:
        d, name = os.path.split(full)
        if d not in listings:
            try:
                with os.scandir(d) as it:
                    listings[d] = {e.name for e in it if e.is_file()}
            except OSError:
                listings[d] = set()
        return full if name in listings[d] else None

    def parsed(list_file: str, rows) -> Iterator[_Row]:
        for lineno, rel, names in rows:
            if not names:
                raise _bad(list_file, lineno, "no label", rel)
            unknown = [x for x in names if x not in label_of]
            if unknown:
                raise _bad(list_file, lineno, f"class not in {class_file}", unknown[0])
            full = os.path.normpath(os.path.join(folder, rel))
            labels = tuple(dict.fromkeys(label_of[x] for x in names))
            yield full, rel, list_file, lineno, labels

    index = DatasetIndex(classes, [], [], "csv", folder)
    books = _Lists(index, folder, named_missing=True, strict=strict)
    index.train, index.test, kept = books.resolve(
        list(parsed(train_file, train_rows)), parsed(test_file, test_rows), find
    )
    if not index.train:
        raise _no_train(
            train_file, kept, index.overlap, f"none of the videos listed in {train_file} exist"
        )
    if not has_test:
        index.notes.append(f"no test list next to {train_file}: test list empty")
    books.add_notes()
    return index


# ---------------------------------------------------------------------------- auto


def detect_format(root) -> str:
    root = os.path.abspath(os.fspath(root))
    if os.path.isfile(root):
        if root.lower().endswith(".csv"):
            return "csv"
        raise DatasetFormatError(f"cannot tell the data set format of {root}: not a .csv file")
    if not os.path.isdir(root):
        raise DatasetFormatError(f"data set path not found: {root}")
    if os.path.isfile(os.path.join(root, "ucfTrainTestlist", "classInd.txt")):
        return "ucf101"
    has_labels = os.path.isfile(os.path.join(root, "labels.txt"))
    if has_labels and _partition(root, "train_partition"):
        return "sports1m"
    if os.path.isfile(os.path.join(root, "train.csv")):
        return "csv"
    raise DatasetFormatError(
        f"cannot tell the data set format of {root}: looked for ucfTrainTestlist/classInd.txt "
        "(ucf101), labels.txt + train_partition.txt[.gz] (sports1m), train.csv (csv)"
    )


def load_dataset(
    root, format: str = "auto", split: int = 1, videos=None, strict: bool = False
) -> DatasetIndex:
    """Read the data set at `root` in the given layout (`auto` detects it). `strict`: a listed
    UCF-101 or CSV video with no file is an error (Sports-1M only counts them)."""
    if format not in FORMATS:
        raise DatasetFormatError(f"unknown data set format {format!r}; one of {', '.join(FORMATS)}")
    if format == "auto":
        format = detect_format(root)
    if format == "ucf101":
        index = load_ucf101(root, split, strict)
    elif format == "sports1m":
        return load_sports1m(root, videos, strict)
    else:
        index = load_csv(root, strict)
    if videos:
        index.notes.append(f"videos={videos} ignored: only the sports1m layout uses it")
    return index
