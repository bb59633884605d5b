"""Data set readers on tiny layouts built in tmp_path; videos are empty files (never opened)."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest

from sportsfusion.data.formats import (
    FORMATS,
    MISSING_LINES,
    VIDEO_EXTENSIONS,
    DatasetFormatError,
    VideoEntry,
    detect_format,
    load_csv,
    load_dataset,
    load_sports1m,
    load_ucf101,
)


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg and msg
    return msg


# ------------------------------------------------------------------------------ UCF-101

UCF_CLASSES = ["ApplyEyeMakeup", "HandstandPushups", "YoYo"]


def make_ucf(root: Path, crlf: bool = False) -> Path:
    """3 classes x 2 groups; split N puts group N in test. The real set's case quirk:
    folder HandstandPushups, files and list lines v_HandStandPushups_..."""
    nl = "\r\n" if crlf else "\n"
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    (lists / "classInd.txt").write_bytes(
        nl.join(f"{i} {c}" for i, c in enumerate(UCF_CLASSES, 1)).encode() + nl.encode() * 2
    )
    for split in (1, 2, 3):
        train, test = [], []
        for i, c in enumerate(UCF_CLASSES, 1):
            stem = "HandStandPushups" if c == "HandstandPushups" else c
            for g in (1, 2, 3, 4):
                rel = f"{c}/v_{stem}_g{g:02d}_c01.webm"
                touch(root / rel)
                if g == split:
                    test.append(rel)
                else:
                    train.append(f"{rel} {i}")
        (lists / f"trainlist0{split}.txt").write_bytes(("" + nl + nl.join(train) + nl).encode())
        (lists / f"testlist0{split}.txt").write_bytes((nl.join(test) + nl).encode())
    return root


@pytest.mark.parametrize("split", [1, 2, 3])
def test_ucf101_splits(tmp_path, split):
    idx = load_ucf101(make_ucf(tmp_path), split=split)
    assert idx.format == "ucf101" and idx.classes == UCF_CLASSES and idx.missing == 0
    assert len(idx.train) == 9 and len(idx.test) == 3
    assert all(f"_g{split:02d}_" in e.path for e in idx.test)
    assert not any(f"_g{split:02d}_" in e.path for e in idx.train)
    # test labels come from the folder, 0-based
    assert [e.labels for e in idx.test] == [(0,), (1,), (2,)]
    assert all(Path(e.path).is_absolute() and Path(e.path).exists() for e in idx.train)


def test_ucf101_case_quirk_and_crlf(tmp_path):
    root = make_ucf(tmp_path, crlf=True)
    lists = root / "ucfTrainTestlist"
    # list lines in yet another case must still find the files
    text = (lists / "testlist01.txt").read_text().replace("HandStand", "handSTAND")
    (lists / "testlist01.txt").write_text(text)
    idx = load_ucf101(root, 1)
    hs = [e for e in idx.test if e.labels == (1,)]
    assert len(hs) == 1 and Path(hs[0].path).name == "v_HandStandPushups_g01_c01.webm"
    assert Path(hs[0].path).parent.name == "HandstandPushups"


def test_ucf101_missing_counted_and_list_label_trusted(tmp_path):
    root = make_ucf(tmp_path)
    (root / "YoYo" / "v_YoYo_g02_c01.webm").unlink()
    (root / "YoYo" / "v_YoYo_g01_c01.webm").unlink()
    lists = root / "ucfTrainTestlist"
    text = (lists / "trainlist01.txt").read_text()
    text = text.replace("v_ApplyEyeMakeup_g02_c01.webm 1", "v_ApplyEyeMakeup_g02_c01.webm 3")
    (lists / "trainlist01.txt").write_text(text)
    idx = load_ucf101(root, 1)
    assert idx.missing == 2 and len(idx.train) == 8 and len(idx.test) == 2
    assert (idx.missing_train, idx.missing_test) == (1, 1)
    assert any("2 listed videos" in n and "v_YoYo_g02_c01.webm" in n for n in idx.notes)
    # a broken copy: each missing file is named once, with its list line
    named = [n for n in idx.notes if n.startswith("missing ")]
    assert named == [
        "missing train video YoYo/v_YoYo_g02_c01.webm (trainlist01.txt:8), skipped",
        "missing test video YoYo/v_YoYo_g01_c01.webm (testlist01.txt:3), skipped",
    ]
    noisy = [e for e in idx.train if e.path.endswith("v_ApplyEyeMakeup_g02_c01.webm")]
    assert noisy[0].labels == (2,)


@pytest.mark.parametrize("split", [0, 4, True])
def test_ucf101_bad_split(tmp_path, split):
    with pytest.raises(DatasetFormatError, match="split must be 1, 2 or 3") as exc:
        load_ucf101(make_ucf(tmp_path), split=split)
    one_line(exc)


def test_ucf101_errors(tmp_path):
    root = make_ucf(tmp_path)
    lists = root / "ucfTrainTestlist"
    (lists / "trainlist02.txt").write_text("ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.webm 7\n")
    with pytest.raises(DatasetFormatError, match=r"trainlist02\.txt:1: label must be 1\.\.3"):
        load_ucf101(root, 2)
    (lists / "testlist03.txt").write_text("\n\n")
    with pytest.raises(DatasetFormatError, match=r"no videos listed in .*testlist03\.txt"):
        load_ucf101(root, 3)
    with pytest.raises(DatasetFormatError, match="not found") as exc:
        load_ucf101(tmp_path / "nope")
    one_line(exc)


# ------------------------------------------------------------------------------ Sports-1M

S1M_CLASSES = ["archery", "kyūdō", "bmx", "parkour"]


def make_s1m(root: Path, gz: bool = False, video_dir: Path | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "labels.txt").write_text("\n".join(S1M_CLASSES) + "\n", encoding="utf-8")
    train = [
        "https://www.youtube.com/watch?v=UDqivjS-lpI 1,0",  # multi-label
        "https://youtu.be/abc_DEF-123?t=10 2",
        "Zz9_aa-BBcc 3",  # bare id
        "https://www.youtube.com/watch?feature=x&v=gone0000000 0",  # no local file
    ]
    test = ["http://www.youtube.com/watch?v=tEsT1234567 1\r"]
    vids = video_dir or root / "videos"
    touch(vids / "UDqivjS-lpI.mp4")
    touch(vids / "bmx" / "abc_DEF-123.webm")  # subfolder per class
    touch(vids / "parkour" / "Zz9_aa-BBcc.mkv")
    touch(vids / "tEsT1234567.f137.mp4")
    for name, lines in (("train_partition", train), ("test_partition", test)):
        data = ("\n".join(lines) + "\n\n").encode()
        if gz:
            (root / f"{name}.txt.gz").write_bytes(gzip.compress(data))
        else:
            (root / f"{name}.txt").write_bytes(data)
    return root


@pytest.mark.parametrize("gz", [False, True])
def test_sports1m(tmp_path, gz):
    idx = load_sports1m(make_s1m(tmp_path, gz=gz))
    assert idx.format == "sports1m" and idx.classes == S1M_CLASSES
    assert idx.classes[1] == "kyūdō"
    by_name = {Path(e.path).name: e.labels for e in idx.train}
    assert by_name == {
        "UDqivjS-lpI.mp4": (1, 0),
        "abc_DEF-123.webm": (2,),
        "Zz9_aa-BBcc.mkv": (3,),
    }
    assert [Path(e.path).name for e in idx.train][0] == "UDqivjS-lpI.mp4"  # list order
    assert idx.test == [VideoEntry(str(tmp_path / "videos" / "tEsT1234567.f137.mp4"), (1,))]
    assert idx.missing == 1 and any("1 listed videos" in n and "gone" in n for n in idx.notes)
    assert (idx.missing_train, idx.missing_test) == (1, 0)


def test_sports1m_videos_override(tmp_path):
    elsewhere = tmp_path / "disk2" / "clips"
    root = make_s1m(tmp_path / "s1m", video_dir=elsewhere)
    idx = load_dataset(root, videos=elsewhere)
    assert idx.format == "sports1m" and len(idx.train) == 3
    assert all(e.path.startswith(str(elsewhere)) for e in idx.train + idx.test)
    with pytest.raises(DatasetFormatError, match="video folder not found"):
        load_sports1m(root)


@pytest.mark.parametrize(
    "line, what",
    [
        ("https://www.youtube.com/watch?v=UDqivjS-lpI 4", "labels must be 0..3"),
        ("https://www.youtube.com/watch?v=UDqivjS-lpI x", "labels must be integers"),
        ("https://www.youtube.com/watch?v=UDqivjS-lpI", "expected"),
        ("https://example.com/page 1", "no YouTube id"),
    ],
)
def test_sports1m_bad_line(tmp_path, line, what):
    root = make_s1m(tmp_path)
    (root / "train_partition.txt").write_text(f"Zz9_aa-BBcc 3\n\n{line}\n")
    with pytest.raises(DatasetFormatError, match=r"train_partition\.txt:3: " + what) as exc:
        load_sports1m(root)
    one_line(exc)


def test_sports1m_all_missing_is_error(tmp_path):
    root = make_s1m(tmp_path)
    (root / "train_partition.txt").write_text("nothere0000 1\n")
    with pytest.raises(DatasetFormatError, match="none of the 1 videos"):
        load_sports1m(root)


def test_sports1m_picks_the_video_not_the_side_files(tmp_path):
    """yt-dlp's side files sort before ID.mp4; the reader once took ID.info.json or ID.jpg."""
    root = make_s1m(tmp_path)
    vids = root / "videos"
    for side in ("info.json", "jpg", "webp", "description", "en.vtt", "mp4.part", "temp.mp4"):
        touch(vids / f"UDqivjS-lpI.{side}")
    touch(vids / "bmx" / "abc_DEF-123.f137.mp4")  # unmerged: a plain name wins over a tagged one
    touch(vids / "bmx" / "abc_DEF-123.MKV")  # extensions in any case; .webm beats .mkv
    (vids / "parkour" / "Zz9_aa-BBcc.mkv").unlink()
    for side in ("info.json", "jpg", "mp4.part", "mp4.ytdl", "part-Frag3"):  # no video at all
        touch(vids / "parkour" / f"Zz9_aa-BBcc.{side}")
    idx = load_sports1m(root)
    assert [Path(e.path).name for e in idx.train] == ["UDqivjS-lpI.mp4", "abc_DEF-123.webm"]
    assert idx.missing_train == 2 and idx.missing_test == 0
    ignored = [n for n in idx.notes if "are not videos" in n]
    assert len(ignored) == 1 and ignored[0].startswith("12 files in ")
    assert "UDqivjS-lpI.description" in ignored[0] and ".mp4 .webm .mkv" in ignored[0]
    several = [n for n in idx.notes if "several video files" in n]
    assert len(several) == 1 and several[0].startswith("1 ids")
    assert "abc_DEF-123 -> bmx/abc_DEF-123.webm" in several[0]
    assert any("2 listed videos not found" in n and "train 2, test 0" in n for n in idx.notes)


def test_sports1m_extension_preference(tmp_path):
    root = make_s1m(tmp_path)
    vids = root / "videos"
    touch(vids / "UDqivjS-lpI.avi")
    touch(vids / "a" / "UDqivjS-lpI.3gp")
    touch(vids / "tEsT1234567.f251.webm")  # unmerged pair: the .mp4 video stream is taken
    touch(vids / "Zz9_aa-BBcc.ts")
    idx = load_sports1m(root)
    names = [Path(e.path).name for e in idx.train + idx.test]
    assert names == [
        "UDqivjS-lpI.mp4",
        "abc_DEF-123.webm",
        "Zz9_aa-BBcc.mkv",
        "tEsT1234567.f137.mp4",
    ]
    assert VIDEO_EXTENSIONS[:3] == (".mp4", ".webm", ".mkv") and len(VIDEO_EXTENSIONS) == 13
    assert any(n.startswith("3 ids have several video files") for n in idx.notes)
    (vids / "UDqivjS-lpI.mp4").unlink()
    (vids / "parkour" / "Zz9_aa-BBcc.mkv").unlink()
    idx = load_sports1m(root)
    assert [Path(e.path).name for e in idx.train][::2] == ["UDqivjS-lpI.3gp", "Zz9_aa-BBcc.ts"]


def test_sports1m_duplicates_overlap_and_missing_per_split(tmp_path):
    root = make_s1m(tmp_path)
    (root / "train_partition.txt").write_text(
        "https://www.youtube.com/watch?v=UDqivjS-lpI 1,0\n"
        "abc_DEF-123 2\n"
        "https://youtu.be/UDqivjS-lpI 3\n"  # the same video again: dropped, first line kept
        "tEsT1234567 1\n"  # also in the test list: kept in test only
        "gone0000000 0\n"
        "gone0000000 0\n"
    )
    (root / "test_partition.txt").write_text("tEsT1234567 1\nlost1111111 2\nlost2222222 2\n")
    idx = load_sports1m(root)
    assert [(Path(e.path).name, e.labels) for e in idx.train] == [
        ("UDqivjS-lpI.mp4", (1, 0)),
        ("abc_DEF-123.webm", (2,)),
    ]
    assert [Path(e.path).name for e in idx.test] == ["tEsT1234567.f137.mp4"]
    assert (idx.duplicates, idx.overlap) == (2, 1)
    assert (idx.missing_train, idx.missing_test, idx.missing) == (1, 2, 3)
    dup = [n for n in idx.notes if "already listed" in n]
    assert len(dup) == 1 and dup[0].startswith("2 lines") and "UDqivjS-lpI (" in dup[0]
    assert "train_partition.txt:3)" in dup[0]
    both = [n for n in idx.notes if "both the train and the test" in n]
    assert len(both) == 1 and both[0].startswith("1 videos") and "tEsT1234567" in both[0]
    miss = [n for n in idx.notes if "listed videos not found" in n]
    assert len(miss) == 1 and "3 listed" in miss[0] and "train 1, test 2" in miss[0]
    # only test lines left in train: a one-line error that says why
    (root / "train_partition.txt").write_text("tEsT1234567 1\n")
    with pytest.raises(DatasetFormatError, match="also in the test list") as exc:
        load_sports1m(root)
    one_line(exc)


def test_sports1m_missing_is_never_an_error_and_no_test_list_says_so(tmp_path):
    root = make_s1m(tmp_path)
    idx = load_dataset(root, strict=True)  # Sports-1M: missing videos are only counted
    assert idx.missing_train == 1 and len(idx.train) == 3
    (root / "test_partition.txt").unlink()
    idx = load_sports1m(root)
    assert idx.test == [] and idx.missing_test == 0
    assert any("no test_partition.txt[.gz]" in n and "no evaluation" in n for n in idx.notes)


# ------------------------------------------------------------------------------ CSV


def make_csv(root: Path) -> Path:
    touch(root / "clips" / "a.mp4")
    touch(root / "clips" / "b, take 2.mp4")
    touch(root / "clips" / "c.webm")
    touch(root / "clips" / "d.mp4")
    (root / "train.csv").write_text(
        'path,label\nclips/a.mp4,swim\n"clips/b, take 2.mp4",run;swim\n\nclips/lost.mp4,run\n'
    )
    (root / "test.csv").write_text(f"clips/c.webm,bike\n{root / 'clips' / 'd.mp4'},run\n")
    return root


def test_csv_directory(tmp_path):
    idx = load_csv(make_csv(tmp_path))
    assert idx.format == "csv" and idx.root == str(tmp_path)
    assert idx.classes == ["bike", "run", "swim"]  # sorted, train+test
    assert idx.train == [
        VideoEntry(str(tmp_path / "clips" / "a.mp4"), (2,)),
        VideoEntry(str(tmp_path / "clips" / "b, take 2.mp4"), (1, 2)),
    ]
    assert [e.labels for e in idx.test] == [(0,), (1,)]
    assert idx.missing == 1 and any("lost.mp4" in n for n in idx.notes)
    assert (idx.missing_train, idx.missing_test) == (1, 0)


def test_csv_file_and_classes_txt(tmp_path):
    root = make_csv(tmp_path)
    (root / "train.csv").rename(root / "my_train.csv")
    (root / "test.csv").rename(root / "my_test.csv")
    (root / "classes.txt").write_text("swim\nrun\nbike\nski\n")
    idx = load_dataset(root / "my_train.csv")
    assert idx.classes == ["swim", "run", "bike", "ski"]
    assert [e.labels for e in idx.train] == [(0,), (1, 0)]
    assert [e.labels for e in idx.test] == [(2,), (1,)]
    (root / "classes.txt").write_text("swim\nrun\n")
    with pytest.raises(DatasetFormatError, match=r"my_test\.csv:1: class not in") as exc:
        load_csv(root / "my_train.csv")
    one_line(exc)


def test_csv_without_test_and_bad_row(tmp_path):
    root = make_csv(tmp_path)
    (root / "test.csv").unlink()
    idx = load_csv(root / "train.csv")
    assert idx.test == [] and any("test list empty" in n for n in idx.notes)
    (root / "train.csv").write_text("clips/a.mp4,swim\nclips/b, take 2.mp4,run\n")
    with pytest.raises(DatasetFormatError, match=r"train\.csv:2: expected"):
        load_csv(root)


def test_csv_duplicates_overlap_strict(tmp_path):
    root = make_csv(tmp_path)
    (root / "train.csv").write_text(
        "clips/a.mp4,swim\nclips/./a.mp4,run\nclips/c.webm,bike\nclips/lost.mp4,run\n"
    )
    idx = load_csv(root)
    assert idx.train == [VideoEntry(str(root / "clips" / "a.mp4"), (2,))]  # first line kept
    assert [Path(e.path).name for e in idx.test] == ["c.webm", "d.mp4"]
    assert (idx.duplicates, idx.overlap, idx.missing_train, idx.missing_test) == (1, 1, 1, 0)
    assert any("1 lines" in n and "clips/./a.mp4 (" in n for n in idx.notes)
    assert any("both the train and the test" in n and "clips/c.webm" in n for n in idx.notes)
    assert "missing train video clips/lost.mp4 (train.csv:4), skipped" in idx.notes
    with pytest.raises(DatasetFormatError, match=r"train\.csv:4: train video missing") as exc:
        load_dataset(root, strict=True)
    assert "clips/lost.mp4" in one_line(exc)


def test_ucf101_duplicates_overlap_strict_and_capped_lines(tmp_path):
    root = make_ucf(tmp_path)
    lists = root / "ucfTrainTestlist"
    train = (lists / "trainlist01.txt").read_text()
    extra = "YoYo/v_YoYo_g02_c01.webm 3\nyoyo/V_YOYO_G01_C01.webm 3\n"  # a repeat, a test video
    (lists / "trainlist01.txt").write_text(train + extra)
    idx = load_ucf101(root, 1)
    assert len(idx.train) == 9 and len(idx.test) == 3
    assert (idx.duplicates, idx.overlap, idx.missing) == (1, 1, 0)
    assert any("already listed" in n and "trainlist01.txt:11)" in n for n in idx.notes)
    assert any("kept in test only" in n and "V_YOYO_G01" in n for n in idx.notes)
    # a broken copy: strict stops on the first missing file, else each is named (capped)
    (root / "YoYo" / "v_YoYo_g03_c01.webm").unlink()
    with pytest.raises(DatasetFormatError, match="trainlist01.txt:9: train video missing") as exc:
        load_dataset(root, strict=True)
    assert "YoYo/v_YoYo_g03_c01.webm" in one_line(exc)
    lines = [f"ApplyEyeMakeup/v_gone_{i:02d}.avi 1" for i in range(MISSING_LINES + 5)]
    (lists / "trainlist01.txt").write_text(train + "\n".join(lines) + "\n")
    idx = load_ucf101(root, 1)
    named = [n for n in idx.notes if n.startswith("missing train video")]
    assert len(named) == MISSING_LINES and "v_YoYo_g03_c01.webm" in named[0]
    total = MISSING_LINES + 6
    assert any(
        n.startswith(f"{total} listed videos not found") and f"{MISSING_LINES} named above" in n
        for n in idx.notes
    )


# ------------------------------------------------------------------------------ auto


def test_auto_detection(tmp_path):
    ucf = make_ucf(tmp_path / "ucf")
    s1m = make_s1m(tmp_path / "s1m", gz=True)
    csvs = make_csv(tmp_path / "csv")
    assert detect_format(ucf) == "ucf101" and load_dataset(ucf, split=2).format == "ucf101"
    assert detect_format(s1m) == "sports1m" and load_dataset(s1m).format == "sports1m"
    assert detect_format(csvs) == "csv" and detect_format(csvs / "train.csv") == "csv"
    assert load_dataset(str(csvs), format="csv").format == "csv"
    assert FORMATS == ("auto", "ucf101", "sports1m", "csv")


def test_auto_unknown_layout(tmp_path):
    touch(tmp_path / "some" / "video.mp4")
    with pytest.raises(DatasetFormatError, match="classInd.txt.*labels.txt.*train.csv") as exc:
        load_dataset(tmp_path / "some")
    one_line(exc)
    with pytest.raises(DatasetFormatError, match="not found"):
        detect_format(tmp_path / "absent")
    with pytest.raises(DatasetFormatError, match="not a .csv file"):
        detect_format(tmp_path / "some" / "video.mp4")
    with pytest.raises(DatasetFormatError, match="unknown data set format"):
        load_dataset(tmp_path, format="kinetics")


# ------------------------------------------------------------------------------ the commands


@pytest.mark.parametrize("module", ["train", "evaluate"])
def test_help_prints_each_default_once(module):
    from sportsfusion import evaluate, train

    parser = (train if module == "train" else evaluate).get_args_parser()
    text = " ".join(parser.format_help().split())
    assert "--data DATA data set root / CSV file (default: the synthetic set" in text
    assert not re.search(r"\(default[^)]*\) \(default", text) and "(default: None)" not in text
    assert "--batch-size BATCH_SIZE" in text and "(default: 1)" in text


def test_train_and_evaluate_print_and_store_the_notes(sports_copy, tmp_path, capsys):
    """One short train and one evaluate on a UCF-101 copy with a repeated line, a test video in
    the train list, a missing train and a missing test video: every note is printed once."""
    from conftest import TINY_MODEL

    from sportsfusion import evaluate, train

    lists = sports_copy / "ucfTrainTestlist"
    with open(lists / "trainlist01.txt", "a") as f:
        f.write("SoccerPassLeft/v_SoccerPassLeft_g02_c01.webm 1\n")  # repeated
        f.write("TennisRally/v_TennisRally_g01_c02.webm 3\n")  # a test video
        f.write("TennisRally/v_TennisRally_g09_c01.webm 3\n")  # not there (line 9)
    (sports_copy / "SoccerPassLeft" / "v_SoccerPassLeft_g01_c02.webm").unlink()
    notes = load_dataset(sports_copy).notes
    assert len(notes) == 5  # repeat, overlap, 2 missing files named, the count
    common = ["--data", str(sports_copy), "--workers", "0", "--no-progress"]
    out = tmp_path / "run"
    args = [*common, "--out", str(out), "--batch-size", "4", "--max-steps", "1", *TINY_MODEL]
    assert train.main([*args, "--eval-clips", "0"]) == 0
    err = capsys.readouterr().err
    for note in notes:
        assert err.count(note) == 1, note
    assert "listed but missing: 1 train, 1 test" in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["notes"] == notes
    counts = (summary["missing_train"], summary["missing_test"], summary["missing_videos"])
    assert counts == (1, 1, 2)

    report = tmp_path / "eval.json"
    ev = [*common, "--checkpoint", str(out / "last.pt"), "--clips-per-video", "1"]
    assert evaluate.main([*ev, "--json", str(report)]) == 0
    err = capsys.readouterr().err
    assert all(err.count(note) == 1 for note in notes)
    m = json.loads(report.read_text())
    assert m["notes"] == notes and m["missing"] == 1  # the test list's missing only

    # --strict: the missing file of a broken UCF-101 copy is a one-line error naming it
    assert train.main([*args, "--out", str(tmp_path / "strict"), "--strict"]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("error: ") and "trainlist01.txt:9: train video missing" in last
    assert "v_TennisRally_g09_c01.webm" in last
