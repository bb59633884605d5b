"""export/runtime.py: one classifier interface over onnxruntime, PyTorch and TensorRT."""

from __future__ import annotations

import importlib.util
import shutil

import numpy as np
import pytest
import torch

from sportsfusion.checkpoint import save_checkpoint
from sportsfusion.export.runtime import (
    Classifier,
    ModelFileError,
    RuntimeMissing,
    load_classifier,
    runtime_for,
)
from sportsfusion.models import arch_of, create

CLASSES = ["archery", "bmx", "curling"]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """(checkpoint, ONNX file) of one tiny multiresolution single-frame model."""
    from sportsfusion.export.onnx import export_onnx

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("models")
    model = create("single", len(CLASSES), multires=True, input_size=48, width=0.05).eval()
    ckpt = out / "tiny.pt"
    state = {"model": model.state_dict(), "arch": arch_of(model), "classes": CLASSES, "step": 0}
    save_checkpoint(ckpt, state)
    return ckpt, export_onnx(model, CLASSES, out / "tiny.onnx")


def clips(batch: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (batch, 1, 48, 48, 3), dtype=np.uint8)


def test_onnxruntime_and_torch_agree(models):
    ckpt, onnx_path = models
    ort_clf, torch_clf = load_classifier(onnx_path), load_classifier(ckpt, device="cpu")
    assert ort_clf.name == "onnxruntime:CPUExecutionProvider"
    assert torch_clf.name == "torch:cpu"
    for clf in (ort_clf, torch_clf):
        assert isinstance(clf, Classifier)
        assert clf.classes == CLASSES
        assert (clf.frames_per_clip, clf.frame_spacing, clf.input_size, clf.span) == (1, 1, 48, 1)
    for batch in (1, 3):
        x = clips(batch, seed=batch)
        a, b = ort_clf(x), torch_clf(torch.from_numpy(x))  # numpy or torch input alike
        assert a.dtype == b.dtype == np.float32 and a.shape == b.shape == (batch, len(CLASSES))
        np.testing.assert_allclose(a, b, atol=1e-4)
        np.testing.assert_allclose(a.sum(1), 1, atol=1e-5)


def test_auto_picks_runtime_by_file(models, tmp_path):
    ckpt, onnx_path = models
    assert runtime_for(onnx_path) == "onnxruntime"
    assert runtime_for(ckpt) == "torch"
    for name in ("m.engine", "m.plan"):
        (tmp_path / name).write_bytes(b"x")
        assert runtime_for(tmp_path / name) == "tensorrt"
    odd = shutil.copy(ckpt, tmp_path / "weights.bin")  # a torch.save zip under any name
    assert runtime_for(odd) == "torch"
    assert load_classifier(odd).name == "torch:cpu"
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ModelFileError, match="cannot tell which runtime"):
        load_classifier(tmp_path / "notes.txt")


def test_runtime_that_does_not_fit_the_file(models):
    ckpt, onnx_path = models
    with pytest.raises(ModelFileError, match="needs the onnxruntime runtime") as e:
        load_classifier(onnx_path, runtime="torch")
    assert "\n" not in str(e.value)
    with pytest.raises(ModelFileError, match="needs the torch runtime"):
        load_classifier(ckpt, runtime="onnxruntime")
    with pytest.raises(ModelFileError, match="needs the onnxruntime runtime"):
        load_classifier(onnx_path, runtime="tensorrt")
    with pytest.raises(ValueError, match="expected one of"):
        load_classifier(onnx_path, runtime="tflite")


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="tensorrt installed")
def test_tensorrt_missing_is_one_documented_line(tmp_path):
    from sportsfusion.export.tensorrt import TENSORRT_MISSING

    engine = tmp_path / "model.engine"
    engine.write_bytes(b"not built here")
    for runtime in ("auto", "tensorrt"):
        with pytest.raises(RuntimeMissing) as e:
            load_classifier(engine, runtime=runtime)
        assert str(e.value) == TENSORRT_MISSING
    assert "\n" not in TENSORRT_MISSING


def test_wrong_files_are_one_line_errors(models, tmp_path):
    _, onnx_path = models
    (tmp_path / "junk.onnx").write_bytes(b"\x00garbage" * 10)
    (tmp_path / "junk.pt").write_bytes(b"PK\x03\x04 truncated")
    plain = tmp_path / "plain.onnx"  # a valid ONNX file without the sportsfusion metadata
    import onnx

    proto = onnx.load(str(onnx_path))
    del proto.metadata_props[:]
    onnx.save(proto, str(plain))
    for path, match in [
        (tmp_path / "missing.onnx", "not found"),
        (tmp_path / "junk.onnx", "not a usable SportsFusion ONNX model"),
        (tmp_path / "junk.pt", "not a readable checkpoint"),
        (plain, "not a SportsFusion ONNX export"),
    ]:
        with pytest.raises(ModelFileError, match=match) as e:
            load_classifier(path)
        assert "\n" not in str(e.value)


def test_clips_of_the_wrong_geometry_are_refused(models):
    clf = load_classifier(models[1])
    with pytest.raises(ValueError, match=r"expected uint8 clips \(B, 1, 48, 48, 3\)"):
        clf(np.zeros((1, 1, 32, 32, 3), np.uint8))
    with pytest.raises(ValueError, match="got float32"):
        clf(np.zeros((1, 1, 48, 48, 3), np.float32))


DEPLOYED = {"paper": {}, "tiny": {"input_size": 48, "width": 0.05}}  # create() options
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.parametrize(
    "size", [pytest.param("paper", marks=[pytest.mark.gpu, needs_cuda]), "tiny"]
)
def test_onnx_matches_the_deployed_pytorch_runtime(size, tmp_path):
    """Multiresolution slow fusion (the paper's size on a GPU) as a user deploys it: the ONNX file
    in onnxruntime (CPU, fp32) against the PyTorch runtime on this machine's device (on CUDA:
    bf16 autocast, channels-last, the fused ops, one CUDA graph per batch size). Prints the
    largest difference in probabilities, which the GPU check reports."""
    from sportsfusion.export.onnx import export_onnx

    torch.manual_seed(0)
    classes = [f"class{i}" for i in range(101)]
    model = create("slow", len(classes), multires=True, **DEPLOYED[size]).eval()
    ckpt = tmp_path / "slow.pt"
    save_checkpoint(
        ckpt, {"model": model.state_dict(), "arch": arch_of(model), "classes": classes, "step": 0}
    )
    onnx_clf = load_classifier(export_onnx(model, classes, tmp_path / "slow.onnx"))
    torch_clf = load_classifier(ckpt)
    worst, side = 0.0, model.input_size
    for batch in (1, 3):
        rng = np.random.default_rng(batch)
        x = rng.integers(0, 256, (batch, 10, side, side, 3), dtype=np.uint8)
        a, b = onnx_clf(x), torch_clf(x)
        assert a.shape == b.shape == (batch, len(classes))
        worst = max(worst, float(np.abs(a.astype(np.float64) - b).max()))
    # bf16 keeps 8 mantissa bits: about 0.4% of each logit, far more than fp32's rounding.
    tolerance = 1e-2 if torch_clf.name.startswith("torch:cuda") else 1e-4
    print(f"max |onnxruntime - {torch_clf.name}| = {worst:.2e} (slow multires, {size} size)")
    assert worst < tolerance
