"""The readers on the real index files in ../shared/real-lists/ (see its README), at real scale.

UCF-101: the official three splits over a 13,320-name tree of hard links to one small file.
Sports-1M: the real labels.txt and 188,714 real test ids as test_partition.txt (URL form), a
train_partition.txt padded past 1M lines with synthetic ids, and a videos/ folder holding a few
(empty) videos among yt-dlp's side files. Readers never open a video, so no file needs content.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from sportsfusion.data.formats import load_dataset, load_ucf101

REAL = Path(__file__).resolve().parents[3] / "shared" / "real-lists"
UCF_LISTS = REAL / "ucfTrainTestlist"
S1M = REAL / "sports1m"

needs_ucf = pytest.mark.skipif(
    not (UCF_LISTS / "classInd.txt").is_file(), reason=f"no real UCF-101 lists in {UCF_LISTS}"
)
needs_s1m = pytest.mark.skipif(
    not (S1M / "antran89_test_vid.txt").is_file(), reason=f"no real Sports-1M lists in {S1M}"
)


def list_names(path: Path) -> list[str]:
    return [line.split()[0] for line in path.read_text().splitlines() if line.strip()]


# ------------------------------------------------------------------------------ UCF-101


@pytest.fixture(scope="module")
def ucf_tree(tmp_path_factory) -> Path:
    """The real lists and every name they list, each a hard link to one small file."""
    root = tmp_path_factory.mktemp("ucf101")
    shutil.copytree(UCF_LISTS, root / "ucfTrainTestlist")
    names = {n for part in ("train", "test") for n in list_names(UCF_LISTS / f"{part}list01.txt")}
    assert len(names) == 13320
    source = root / "one.avi"
    source.write_bytes(b"\x1a\x45\xdf\xa3" * 64)
    for folder in {name.split("/")[0] for name in names}:
        (root / folder).mkdir()
    try:
        for name in names:
            os.link(source, root / name)
    except OSError as exc:  # a file system without hard links
        pytest.skip(f"cannot hard-link in {root}: {exc}")
    source.unlink()
    return root


@needs_ucf
@pytest.mark.parametrize("split", [1, 2, 3])
def test_official_ucf101_splits_find_every_entry(ucf_tree, split):
    idx = load_ucf101(ucf_tree, split)
    train = list_names(UCF_LISTS / f"trainlist0{split}.txt")
    test = list_names(UCF_LISTS / f"testlist0{split}.txt")
    assert len(idx.classes) == 101 and idx.classes[36] == "HandstandPushups"
    assert (idx.missing_train, idx.missing_test, idx.duplicates, idx.overlap) == (0, 0, 0, 0)
    assert len(idx.train) == len(train) and len(idx.test) == len(test)
    assert len(idx.train) + len(idx.test) == 13320
    assert idx.notes == []  # every list label agrees with its folder
    # the case quirk: folder HandstandPushups, file names v_HandStandPushups_...
    quirk = [e for e in idx.train + idx.test if "v_HandStandPushups_" in e.path]
    assert quirk and all(Path(e.path).parent.name == "HandstandPushups" for e in quirk)
    assert all(e.labels == (36,) for e in quirk)
    # test labels come from the folder: the class of classInd.txt
    assert all(idx.classes[e.labels[0]] == Path(e.path).parent.name for e in idx.test)


# ------------------------------------------------------------------------------ Sports-1M

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
TRAIN_LINES = 1_000_010


def synthetic_id(i: int) -> str:
    """A deterministic, random-looking 11-character YouTube id (66 bits from a bijection)."""
    x = (i * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) & ((1 << 66) - 1)
    return "".join(ALPHABET[(x >> (6 * k)) & 63] for k in range(11))


@needs_s1m
@pytest.mark.slow
def test_sports1m_over_a_million_lines_with_side_files(tmp_path):
    root = tmp_path / "s1m"
    root.mkdir()
    shutil.copy(S1M / "labels.txt", root / "labels.txt")
    real = [line.split() for line in (S1M / "antran89_test_vid.txt").read_text().splitlines()]
    test_ids = [vid for vid, _ in real]
    (root / "test_partition.txt").write_text(
        "".join(f"https://www.youtube.com/watch?v={vid} {labels}\n" for vid, labels in real)
    )
    test_set = set(test_ids)
    train_ids = [v for v in map(synthetic_id, range(TRAIN_LINES)) if v not in test_set]
    lines = [
        f"https://www.youtube.com/watch?v={v} {i % 487}" if i % 50 else f"{v} {i % 487},{i % 7}"
        for i, v in enumerate(train_ids)
    ]
    lines += [f"https://youtu.be/{train_ids[5]} 3", f"{train_ids[9]} 4"]  # 2 repeated lines
    lines += [f"{vid} 0" for vid in test_ids[:3]]  # 3 test videos in the train list
    (root / "train_partition.txt").write_text("\n".join(lines) + "\n")
    assert len(lines) > 1_000_000 and len(lines) + len(real) > 1_130_000

    # A few local videos, each among yt-dlp's side files; one id has side files only.
    vids = root / "videos"
    local = {
        train_ids[0]: "archery/{}.mp4",
        train_ids[1]: "{}.webm",
        train_ids[2]: "bmx/{}.mkv",
        test_ids[10]: "{}.mp4",
        test_ids[11]: "{}.MP4",
        test_ids[0]: "{}.mp4",  # also listed in train: kept in test only
    }
    sides = ("info.json", "jpg", "webp", "description", "mp4.part", "temp.mp4")
    for vid, pattern in local.items():
        video = vids / pattern.format(vid)
        video.parent.mkdir(parents=True, exist_ok=True)
        video.write_bytes(b"")
        for side in sides:
            (video.parent / f"{vid}.{side}").write_bytes(b"{}")
    for side in sides:
        (vids / f"{train_ids[3]}.{side}").write_bytes(b"{}")

    idx = load_dataset(root, strict=True)  # strict: Sports-1M missing videos are only counted
    assert idx.format == "sports1m" and len(idx.classes) == 487
    assert [e.path for e in idx.train] == [str(vids / local[v].format(v)) for v in train_ids[:3]]
    assert [e.path for e in idx.test] == [
        str(vids / local[v].format(v)) for v in (test_ids[0], test_ids[10], test_ids[11])
    ]
    assert idx.train[0].labels == (0,) and idx.test[0].labels == (int(real[0][1]),)
    assert (idx.duplicates, idx.overlap) == (2, 3)
    assert idx.missing_train == len(train_ids) - 3 and idx.missing_test == len(real) - 3
    missing = f"{idx.missing} listed videos not found under {vids}"
    note = next(n for n in idx.notes if missing in n)
    assert f"train {idx.missing_train}, test {idx.missing_test}" in note
    assert any(n.startswith(f"{7 * len(sides)} files in {vids} are not videos") for n in idx.notes)
    assert not any("several video files" in n for n in idx.notes)
    assert len(idx.notes) == 4  # side files, repeats, overlap, missing: one line each
