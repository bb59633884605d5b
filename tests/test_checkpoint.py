"""Checkpoints: atomic writes, safe loading, one-line errors."""

import pytest
import torch

from sportsfusion.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from sportsfusion.models import arch_of, create, from_arch


def tiny(classes=4, name="slow", multires=True):
    return create(name, classes, multires, input_size=64, width=0.1)


def state_for(model, **extra):
    return {
        "model": model.state_dict(),
        "arch": arch_of(model),
        "classes": ["a", "b", "c", "d"],
        "step": 7,
        **extra,
    }


def test_round_trip_rebuilds_the_same_model(tmp_path):
    model = tiny().eval()
    save_checkpoint(tmp_path / "run" / "last.pt", state_for(model))
    loaded, state = load_checkpoint(tmp_path / "run" / "last.pt")
    assert state["step"] == 7 and state["arch"]["name"] == "slow" and state["arch"]["multires"]
    clip = torch.randint(0, 256, (2, 10, 64, 64, 3), dtype=torch.uint8)
    with torch.no_grad():
        torch.testing.assert_close(loaded(clip), model(clip), rtol=0, atol=0)
    # plain torch.load with weights_only=True reads it: no pickled classes inside
    assert set(torch.load(tmp_path / "run" / "last.pt", weights_only=True)) >= {"model", "arch"}


def test_save_is_atomic_and_leaves_no_temporary_files(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(path, state_for(tiny()))
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # a kill in the middle of writing

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, state_for(tiny(), step=8))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


@pytest.mark.parametrize("content", [b"", b"not a checkpoint", b"PK\x03\x04garbage"])
def test_corrupt_file_is_a_one_line_error(tmp_path, content):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path)
    assert "\n" not in str(e.value) and str(path) in str(e.value)


def test_truncated_checkpoint_is_a_one_line_error(tmp_path):
    path = tmp_path / "cut.pt"
    save_checkpoint(path, state_for(tiny()))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(path)


def test_foreign_dict_and_wrong_shapes_are_named(tmp_path):
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a SportsFusion checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    state = state_for(tiny())
    state["arch"] = {**state["arch"], "num_classes": 9}  # weights say 4 classes
    save_checkpoint(tmp_path / "mismatch.pt", state)
    with pytest.raises(
        CheckpointError, match=r"head.fc8.weight has shape \(4, .*model expects \(9"
    ):
        load_checkpoint(tmp_path / "mismatch.pt")


def test_a_cnn_average_record_loads_back():
    """An average of separately trained members (what `sportsfusion.export --checkpoint a b c d`
    records) loads as a CNNAverage with each member's own architecture."""
    from sportsfusion.models import ENSEMBLE_MEMBERS, CNNAverage

    torch.manual_seed(0)
    members = [tiny(name=n, multires=n != "slow") for n in ENSEMBLE_MEMBERS]
    model = CNNAverage(members).eval()
    record = arch_of(model)
    assert record["name"] == "average" and [m["name"] for m in record["members"]] == list(
        ENSEMBLE_MEMBERS
    )
    assert [m["multires"] for m in record["members"]] == [True, True, True, False]
    loaded = from_arch(record)
    loaded.load_state_dict(model.state_dict())
    clip = torch.randint(0, 256, (2, model.frames_per_clip, 64, 64, 3), dtype=torch.uint8)
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval()(clip), model(clip), rtol=0, atol=0)


def test_a_cnn_average_checkpoint_round_trips(tmp_path):
    model = create("average", 4, True, input_size=64, width=0.1).eval()
    save_checkpoint(tmp_path / "avg.pt", state_for(model))
    loaded, state = load_checkpoint(tmp_path / "avg.pt")
    assert state["arch"]["name"] == "average" and len(loaded.members) == 4
    clip = torch.randint(0, 256, (1, model.frames_per_clip, 64, 64, 3), dtype=torch.uint8)
    with torch.no_grad():
        torch.testing.assert_close(loaded(clip), model(clip), rtol=0, atol=0)


def test_the_average_is_the_papers_four_whatever_models_exist(monkeypatch):
    from sportsfusion import models

    monkeypatch.setitem(models.MODELS, "fifth", models.MODELS["single"])
    average = create("average", 3, input_size=64, width=0.1)
    assert [m.name for m in average.members] == ["single", "early", "late", "slow"]
