"""Data set layouts: UCF-101, Sports-1M, a plain CSV, and `auto` detection.

Every reader returns a `DatasetIndex`: class names plus train and test lists of `VideoEntry`
(absolute video path, 0-based labels). Readers only list files; they never open a video.

UCF-101 (``--format ucf101``, pick the split with ``--split 1|2|3``)::

    ROOT/ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi    (one folder per class)
    ROOT/ucfTrainTestlist/classInd.txt                  "1 ApplyEyeMakeup" ... "101 YoYo"
    ROOT/ucfTrainTestlist/trainlist01.txt               "ApplyEyeMakeup/v_..._g08_c01.avi 1"
    ROOT/ucfTrainTestlist/testlist01.txt                "ApplyEyeMakeup/v_..._g01_c01.avi"

  List paths are matched to files case-insensitively (the real set lists
  ``v_HandStandPushups_...`` inside folder ``HandstandPushups``) and may have any extension.
  Test lines take their label from the folder name via classInd.txt.

Sports-1M (``--format sports1m``, videos under ``ROOT/videos/`` or ``--videos DIR``)::

    ROOT/labels.txt                    487 UTF-8 class names, line i = label i
    ROOT/train_partition.txt[.gz]      "https://www.youtube.com/watch?v=UDqivjS-lpI 168,169"
    ROOT/test_partition.txt[.gz]       (same; labels are 0-based, several = multi-label)
    ROOT/videos/[any/subfolder/]UDqivjS-lpI.mp4   (named by YouTube id, any extension)

  URLs may be ``watch?v=ID``, ``youtu.be/ID`` or a bare id.

CSV (``--format csv``, ROOT is a folder holding train.csv [test.csv] or a train CSV file)::

    path,label                         optional header
    clips/a.mp4,archery                path relative to the CSV's folder (or absolute)
    "clips/b, take 2.mp4",archery;bmx  labels are class names, ';' for multi-label

  Class order comes from ``classes.txt`` beside the CSV if present, else sorted names.
  Given a file ``my_train.csv``, a sibling ``my_test.csv`` is the test list if it exists.

In every layout, listed videos with no local file are skipped and counted in
`DatasetIndex.missing` (Sports-1M videos often left YouTube); malformed lists raise
`DatasetFormatError` with a one-line message naming the file (and line).
"""

from __future__ import annotations

import csv
import gzip
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

FORMATS = ("auto", "ucf101", "sports1m", "csv")


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
    missing: int = 0  # listed videos with no local file (skipped and counted)
    notes: list[str] = field(default_factory=list)  # one-line remarks for the run summary


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
    Text mode translates CRLF; utf-8-sig drops a BOM that Windows editors like to add."""
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8-sig") as f:
            text = f.read()
    except FileNotFoundError:
        raise DatasetFormatError(f"file not found: {path}") from None
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise DatasetFormatError(f"cannot read {path}: {exc}") from None
    for lineno, line in enumerate(text.split("\n"), 1):
        line = line.strip()
        if line:
            yield lineno, line


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


def _missing_note(index: DatasetIndex, first: str | None, where: str) -> None:
    if index.missing:
        index.notes.append(
            f"{index.missing} listed videos not found under {where}, skipped (first: {first})"
        )


# ---------------------------------------------------------------------------- UCF-101


def load_ucf101(root, split: int = 1) -> DatasetIndex:
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
    first_missing = None
    mismatched = 0
    for part in ("train", "test"):
        list_file = os.path.join(lists, f"{part}list0{split}.txt")
        entries = []
        listed = 0
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
            listed += 1
            full = files.get(rel.lower())
            if full is None:
                index.missing += 1
                first_missing = first_missing or rel
                continue
            entries.append(VideoEntry(full, (label,)))
        if not listed:
            raise DatasetFormatError(f"no videos listed in {list_file}")
        if part == "train" and not entries:
            raise DatasetFormatError(f"none of the videos listed in {list_file} exist in {root}")
        setattr(index, part, entries)
    _missing_note(index, first_missing, root)
    if mismatched:
        index.notes.append(f"{mismatched} list labels disagree with their folder; list kept")
    return index


# ---------------------------------------------------------------------------- Sports-1M

_ID = re.compile(r"[A-Za-z0-9_-]+")
_URL_MARKERS = ("?v=", "&v=", "youtu.be/", "/embed/", "/shorts/", "/v/")
_PARTIAL = (".part", ".ytdl", ".tmp")  # unfinished downloads left by youtube-dl / yt-dlp


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


def load_sports1m(root, videos=None) -> DatasetIndex:
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

    # YouTube id (file name up to its first dot) -> path; ids contain no dots.
    by_id: dict[str, str] = {}
    for _, name, full in _walk(video_dir):
        if not name.endswith(_PARTIAL):
            by_id.setdefault(name.split(".", 1)[0], full)

    index = DatasetIndex(classes, [], [], "sports1m", root)
    first_missing = None
    n = len(classes)
    for part in ("train", "test"):
        list_file = _partition(root, f"{part}_partition")
        if list_file is None:
            if part == "train":
                raise DatasetFormatError(f"no train_partition.txt[.gz] in {root}")
            index.notes.append(f"no test_partition.txt[.gz] in {root}: test list empty")
            continue
        entries = []
        listed = 0
        for lineno, line in _numbered(list_file):
            parts = line.split()
            if len(parts) != 2:
                raise _bad(list_file, lineno, "expected '<URL> <label>[,<label>...]'", line)
            vid = _youtube_id(parts[0])
            if vid is None:
                raise _bad(list_file, lineno, "no YouTube id in URL", line)
            try:
                labels = tuple(dict.fromkeys(int(x) for x in parts[1].split(",") if x))
            except ValueError:
                raise _bad(list_file, lineno, "labels must be integers", line) from None
            if not labels or not all(0 <= x < n for x in labels):
                raise _bad(list_file, lineno, f"labels must be 0..{n - 1}", line)
            listed += 1
            full = by_id.get(vid)
            if full is None:
                index.missing += 1
                first_missing = first_missing or vid
                continue
            entries.append(VideoEntry(full, labels))
        if not listed:
            raise DatasetFormatError(f"no videos listed in {list_file}")
        if part == "train" and not entries:
            raise DatasetFormatError(
                f"none of the {listed} videos listed in {list_file} are in {video_dir}"
            )
        setattr(index, part, entries)
    _missing_note(index, first_missing, video_dir)
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


def load_csv(path) -> DatasetIndex:
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

    def exists(full: str) -> bool:
        d, name = os.path.split(full)
        if d not in listings:
            try:
                with os.scandir(d) as it:
                    listings[d] = {e.name for e in it if e.is_file()}
            except OSError:
                listings[d] = set()
        return name in listings[d]

    index = DatasetIndex(classes, [], [], "csv", folder)
    first_missing = None
    for list_file, rows, part in (
        (train_file, train_rows, "train"),
        (test_file, test_rows, "test"),
    ):
        entries = []
        for lineno, rel, names in rows:
            if not names:
                raise _bad(list_file, lineno, "no label", rel)
            unknown = [x for x in names if x not in label_of]
            if unknown:
                raise _bad(list_file, lineno, f"class not in {class_file}", unknown[0])
            full = os.path.normpath(os.path.join(folder, rel))
            if not exists(full):
                index.missing += 1
                first_missing = first_missing or rel
                continue
            entries.append(VideoEntry(full, tuple(dict.fromkeys(label_of[x] for x in names))))
        if part == "train" and not entries:
            raise DatasetFormatError(f"none of the videos listed in {list_file} exist")
        setattr(index, part, entries)
    if not has_test:
        index.notes.append(f"no test list next to {train_file}: test list empty")
    _missing_note(index, first_missing, folder)
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


def load_dataset(root, format: str = "auto", split: int = 1, videos=None) -> DatasetIndex:
    """Read the data set at `root` in the given layout (`auto` detects it)."""
    if format not in FORMATS:
        raise DatasetFormatError(f"unknown data set format {format!r}; one of {', '.join(FORMATS)}")
    if format == "auto":
        format = detect_format(root)
    if format == "ucf101":
        index = load_ucf101(root, split)
    elif format == "sports1m":
        return load_sports1m(root, videos)
    else:
        index = load_csv(root)
    if videos:
        index.notes.append(f"videos={videos} ignored: only the sports1m layout uses it")
    return index
