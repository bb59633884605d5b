"""The synthetic data generator: UCF-101 layout, real decodable files, reproducibility, and
motion-only class pairs that no single frame can tell apart."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest

from sportsfusion.data import synthetic as syn
from sportsfusion.data.synthetic import PRESETS, SyntheticConfig, class_names, generate, main

av = pytest.importorskip("av", reason="needs PyAV (decodes and encodes the test videos)")

TINY = SyntheticConfig(num_classes=4, videos_per_class=6, frames=10, width=64, height=48)


def _lists(root: Path):
    lists = root / "ucfTrainTestlist"
    classes = {}
    for line in (lists / "classInd.txt").read_text().splitlines():
        index, name = line.split()
        classes[name] = int(index)
    splits = []
    for s in (1, 2, 3):
        train = dict(
            line.rsplit(" ", 1) for line in (lists / f"trainlist0{s}.txt").read_text().splitlines()
        )
        train = {path: int(label) for path, label in train.items()}
        test = (lists / f"testlist0{s}.txt").read_text().split()
        splits.append((train, test))
    return classes, splits


def _group(path: str) -> tuple[str, int]:
    m = re.fullmatch(r"([A-Za-z]+)/v_\1_g(\d\d)_c(\d\d)\.(webm|mp4)", path)
    assert m, path
    return m.group(1), int(m.group(2))


def _decode(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("syn") / "vp9", TINY, progress=False)


def test_layout_and_lists(tiny_set):
    classes, splits = _lists(tiny_set)
    assert list(classes) == class_names(TINY) and sorted(classes.values()) == [1, 2, 3, 4]
    videos = {str(p.relative_to(tiny_set)) for p in tiny_set.glob("*/*.webm")}
    assert len(videos) == 4 * 6
    tested = []
    for train, test in splits:
        assert set(train).isdisjoint(test) and set(train) | set(test) == videos
        for path, label in train.items():  # labels are 1-based and match the folder
            assert classes[_group(path)[0]] == label
        # a group is never split between train and test
        assert {_group(p) for p in train}.isdisjoint({_group(p) for p in test})
        for name in classes:  # every class in train and test of every split
            assert any(p.startswith(name + "/") for p in train)
            assert any(p.startswith(name + "/") for p in test)
        tested += test
    assert sorted(tested) == sorted(videos)  # test sets: disjoint thirds of the groups
    assert not list(tiny_set.parent.glob(".*partial*"))  # temporary dir renamed away


@pytest.mark.parametrize("codec", ["vp9", "h264"])
def test_files_decode(tmp_path, tiny_set, codec):
    if codec == "vp9":
        root, config = tiny_set, TINY
    else:
        config = dataclasses.replace(TINY, num_classes=2, videos_per_class=3, codec="h264")
        root = generate(tmp_path / "h264", config, progress=False)
    ext = ".webm" if codec == "vp9" else ".mp4"
    files = sorted(root.glob("*/*" + ext))
    assert len(files) == config.num_classes * config.videos_per_class
    for path in files[:: config.videos_per_class]:
        with av.open(str(path)) as container:
            assert container.streams.video[0].codec_context.name == codec
        frames = _decode(path)
        assert frames.shape == (config.frames, config.height, config.width, 3)
        assert frames.std() > 5  # not blank
    # decoded frames are close to what was rendered (a sane encoder setting)
    rendered, _ = syn.render_video(config, 0, 0)
    decoded = _decode(root / syn._video_path(class_names(config)[0], 1, 1, config))
    assert np.abs(decoded.astype(float) - rendered).mean() < 6


@pytest.mark.parametrize("codec", ["vp9", "h264"])
def test_reproducible_and_seed_sensitive(tmp_path, codec):
    config = SyntheticConfig(num_classes=2, videos_per_class=3, frames=8, width=48, height=32)
    config = dataclasses.replace(config, codec=codec)
    a = _files(generate(tmp_path / "a", config, progress=False))
    b = _files(generate(tmp_path / "b", config, progress=False))
    c = _files(generate(tmp_path / "c", dataclasses.replace(config, seed=7), progress=False))
    assert a == b
    assert a.keys() == c.keys()
    videos = [k for k in a if not k.startswith("ucfTrainTestlist")]
    assert all(a[k] != c[k] for k in videos)


def _pair_stats(config, labels, videos=12):
    """Mean frame and the ball's own horizontal displacement per frame of each class: the track
    is read with the camera off, as the camera's apparent motion is alike for every class."""
    still = dataclasses.replace(config, pan=0, zoom=0, shake=0)
    means, steps = [], []
    for label in labels:
        frames = [syn.render_video(config, label, v)[0] for v in range(videos)]
        means.append(np.mean([f.mean(axis=0) for f in frames], axis=0))
        tracks = [syn.object_track(still, label, v) for v in range(videos)]
        dx = np.concatenate([np.diff(t["x"]) for t in tracks])
        steps.append(dx[np.abs(dx) < 20])  # drop the wrap-around jumps (a frame width)
    return means, steps


def test_motion_only_pair_looks_the_same_moves_differently():
    config = SyntheticConfig(videos_per_class=12, frames=24, width=96, height=72)
    names = class_names(config)
    left, right, hockey = (
        names.index(n) for n in ("SoccerPassLeft", "SoccerPassRight", "IceHockey")
    )
    (m_left, m_right, m_hockey), (d_left, d_right, _) = _pair_stats(config, (left, right, hockey))
    # single frames: the pair's mean frames nearly agree, far more than an appearance class
    pair_gap, look_gap = np.abs(m_left - m_right).mean(), np.abs(m_left - m_hockey).mean()
    assert pair_gap < 0.1 * look_gap
    # the ball position over single frames has the same distribution in both classes
    xs = [
        np.concatenate([syn.render_video(config, c, v)[1]["x"] for v in range(12)])
        for c in (left, right)
    ]
    assert abs(np.median(xs[0]) - np.median(xs[1])) < 0.15 * config.width
    # motion: every step goes left in one class and right in the other, several px a frame
    assert (d_left < -1.5).all() and (d_right > 1.5).all()


def test_motion_visible_in_decoded_video(tmp_path):
    """The direction can be read from the encoded frames, camera off: the brightening (where
    the ball arrives) lies on the side the ball moves to."""
    config = SyntheticConfig(
        num_classes=2, videos_per_class=3, frames=12, width=96, height=72, pan=0, zoom=0, shake=0
    )
    root = generate(tmp_path / "d", config, progress=False)
    for name, sign in (("SoccerPassLeft", -1), ("SoccerPassRight", 1)):
        votes = []
        for path in sorted((root / name).glob("*.webm")):
            gray = _decode(path).astype(np.float32).mean(axis=3)
            cols = np.arange(config.width)
            for a, b in zip(gray[:-1], gray[1:]):
                diff = b - a
                gain, loss = np.clip(diff, 0, None).sum(0), np.clip(-diff, 0, None).sum(0)
                if gain.sum() > 200 and loss.sum() > 200:
                    votes.append(
                        np.sign((cols * gain).sum() / gain.sum() - (cols * loss).sum() / loss.sum())
                    )
        assert len(votes) >= 10 and np.mean(np.array(votes) == sign) > 0.8, name


def _camera_levels(*levels, **knobs):
    """The sports set at 96x72 with the camera at these multiples of the preset's pan, zoom and
    shake (given per 120 px of height for pan and shake, so 0.6 and 0.3 px here)."""
    base = SyntheticConfig(frames=24, width=96, height=72, **knobs)
    return [dataclasses.replace(base, pan=0.6 * m, zoom=0.003 * m, shake=0.3 * m) for m in levels]


def test_camera_strength_keeps_objects_in_view():
    """The camera moves the object in the frame but, whatever its strength, it neither puts it
    out of view more often nor lets it stray beyond the view torus [-size, W + size)."""
    configs = _camera_levels(0, 1, 2, 3, 4, videos_per_class=100)
    for label, name in enumerate(class_names(configs[0])):
        inside = []
        for config in configs:
            tracks = [syn.object_track(config, label, v) for v in range(100)]
            x, y, r = (np.concatenate([t[q] for t in tracks]) for q in ("x", "y", "size"))
            assert ((-r <= x) & (x < 96 + r) & (-r <= y) & (y < 72 + r)).all(), name
            inside.append(np.mean((0 <= x) & (x < 96) & (0 <= y) & (y < 72)))
        # at level 0 the wrapping classes spend size / (W + 2 size) of the time past each edge
        assert inside[0] > 0.88 and np.ptp(inside) < 0.03, (name, inside)


def test_camera_changes_the_camera_only():
    """The object's own draws (size, colour, speed, phase) do not depend on the camera: its
    apparent motion is its own velocity plus what the camera adds, frame by frame."""
    still, moving = _camera_levels(0, 3, videos_per_class=12)
    names = class_names(still)
    for label in range(len(names)):
        for v in range(12):
            _, rng_a, _, _, a = syn._video(still, label, v)
            _, rng_b, _, _, b = syn._video(moving, label, v)
            assert np.array_equal(a["size"], b["size"]) and np.array_equal(a["angle"], b["angle"])
            # the stream the colour and the players come from next is in the same state
            assert rng_a.bit_generator.state == rng_b.bit_generator.state
    for v in range(12):
        own = np.diff(syn.object_track(still, names.index("SoccerPassRight"), v)["x"])
        velocity = np.median(own)  # camera off: the ball's own velocity, wrap jumps aside
        assert velocity > 1.5 and (np.isclose(own, velocity) | (own < -50)).all()
        _, _, (centre, scale), drawn, seen = syn._video(moving, names.index("SoccerPassRight"), v)
        x, cx = drawn["x"], centre[:, 0]  # world pixels
        # where the camera alone takes a still point at the ball's place from frame i to i + 1
        camera = (x[:-1] - cx[1:]) * scale[1:] - (x[:-1] - cx[:-1]) * scale[:-1]
        left = (np.diff(seen["x"]) - camera) / scale[1:]  # in world pixels
        steady = np.isclose(left, velocity)
        assert steady.mean() > 0.8 and (np.abs(left[~steady]) > 50).all()  # the rest: wraps
        assert not np.allclose(np.diff(seen["x"]), velocity)  # the camera does add motion


def test_test_only_videos(tmp_path, caplog):
    """Extra videos in every test list and in no train list; the rest of the set is unchanged,
    byte for byte, train lists and their label noise included."""
    config = dataclasses.replace(TINY, num_classes=2, frames=4, label_noise=0.3)
    plain = generate(tmp_path / "plain", config, progress=False)
    more = dataclasses.replace(config, test_videos_per_class=6)
    root = generate(tmp_path / "more", more, progress=False)
    a, b = _files(plain), _files(root)
    assert {k: v for k, v in b.items() if k in a and "testlist" not in k} == {
        k: v for k, v in a.items() if "testlist" not in k
    }
    extras = sorted(set(b) - set(a))
    assert len(extras) == 2 * 6
    # groups of their own, numbered after the regular ones (g01-g03): new scenes
    assert {_group(p) for p in extras} == {(n, g) for n in class_names(config) for g in (4, 5)}
    for (train_a, test_a), (train_b, test_b) in zip(_lists(plain)[1], _lists(root)[1]):
        assert train_b == train_a and sorted(test_b) == sorted(test_a + extras)
    for path in extras:
        assert _decode(root / path).shape == (4, 48, 64, 3)
    from sportsfusion.data.formats import load_dataset

    for split in (1, 2, 3):
        with caplog.at_level("WARNING"):
            index = load_dataset(str(root), "auto", split)
        assert (index.duplicates, index.overlap, index.missing) == (0, 0, 0)
        assert all("disagree with their folder" in n for n in index.notes)  # the label noise
        assert len(index.test) == len(_lists(plain)[1][split - 1][1]) + len(extras)
    assert not caplog.records


def test_cache_key_holds_the_generator_version(tmp_path, monkeypatch):
    """A set cached by an older generator is not reused for the same config."""
    from sportsfusion.data import loader

    monkeypatch.setenv("SPORTSFUSION_CACHE", str(tmp_path))
    built = []

    def fake_generate(out, config):  # the cache logic only: no videos
        built.append(out)
        (out / "ucfTrainTestlist").mkdir(parents=True)
        (out / "ucfTrainTestlist/classInd.txt").write_text("1 A\n")

    monkeypatch.setattr(syn, "generate", fake_generate)
    first = loader.synthetic_default(frames=2)
    assert loader.synthetic_default(frames=2) == first and len(built) == 1  # cached
    monkeypatch.setattr(syn, "GENERATOR_VERSION", syn.GENERATOR_VERSION + 1)
    assert loader.synthetic_default(frames=2) != first and len(built) == 2


def test_presets_differ_and_names():
    sports, ucf = class_names(PRESETS["sports"]), class_names(PRESETS["ucf"])
    assert 12 <= len(sports) <= 16 and 6 <= len(ucf) <= 8
    assert not set(sports) & set(ucf)
    assert all(re.fullmatch(r"[A-Z][A-Za-z0-9]*", n) for n in sports + ucf)
    looks = {spec.look for spec in syn.CLASS_SETS["sports"]}
    assert looks.isdisjoint(spec.look for spec in syn.CLASS_SETS["ucf"])


def test_label_noise_changes_only_train_lists(tmp_path):
    config = dataclasses.replace(TINY, num_classes=3, frames=2, width=32, height=32)
    clean = generate(tmp_path / "clean", config, progress=False)
    noisy = generate(
        tmp_path / "noisy", dataclasses.replace(config, label_noise=0.5), progress=False
    )
    a, b = _files(clean), _files(noisy)
    changed = {k for k in a if a[k] != b[k]}
    assert changed == {f"ucfTrainTestlist/trainlist0{s}.txt" for s in (1, 2, 3)}
    classes, splits = _lists(noisy)
    for train, _ in splits:
        wrong = [p for p, label in train.items() if classes[_group(p)[0]] != label]
        assert len(wrong) == round(0.5 * len(train))
        assert all(1 <= label <= 3 for label in train.values())


def test_main_refuses_non_empty_out(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    flags = ["--out", str(out), "--num-classes", "2", "--videos-per-class", "3", "--frames", "2"]
    flags += ["--width", "32", "--height", "32", "--no-progress"]
    assert main(flags) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and err.count("\n") == 1 and "Traceback" not in err
    assert (out / "keep.txt").read_text() == "mine"
    assert main(flags + ["--overwrite"]) == 0
    assert "2 classes, 6 videos (2 frames" in capsys.readouterr().out
    assert main(flags + ["--overwrite", "--test-videos-per-class", "2"]) == 0
    assert "2 classes, 10 videos (4 test-only, 2 frames" in capsys.readouterr().out
    assert not (out / "keep.txt").exists() and (out / "ucfTrainTestlist/classInd.txt").exists()
    assert main(flags[:2] + ["--width", "33", "--no-progress"]) == 2  # odd: a one-line error too
    assert "even" in capsys.readouterr().err


def test_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--out", "--preset", "--label-noise", "--videos-per-class", "--codec", "--pan"):
        assert flag in text
    assert "sports: 20, ucf: 12" in text  # defaults of both presets are shown
