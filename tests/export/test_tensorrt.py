"""TensorRT engines: built from the ONNX export, checked against onnxruntime.

The build/run tests need `tensorrt` and a CUDA GPU (marker `tensorrt`); they skip with the reason
otherwise. The missing-tensorrt message test runs everywhere: it hides tensorrt from a real
`python -m sportsfusion.export` process.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sportsfusion.export.tensorrt import TENSORRT_MISSING

SIZE, WIDTH, CLASSES = 48, 0.05, ["archery", "bmx", "curling"]

# `python -m sportsfusion.export` in a process where `import tensorrt` fails, installed or not.
WITHOUT_TENSORRT = (
    "import runpy, sys; sys.modules['tensorrt'] = None; "
    "runpy.run_module('sportsfusion.export', run_name='__main__', alter_sys=True)"
)


def test_missing_tensorrt_is_the_documented_line_and_exit_2(tmp_path):
    argv = ["tensorrt", "--onnx", str(tmp_path / "x.onnx"), "--out", str(tmp_path / "x.engine")]
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_TENSORRT, *argv], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    assert done.stderr == f"error: {TENSORRT_MISSING}\n" and done.stdout == ""
    assert not (tmp_path / "x.engine").exists()
    assert "\n" not in TENSORRT_MISSING and "pip install -e .[tensorrt]" in TENSORRT_MISSING
    assert "CUDA" in TENSORRT_MISSING and "NVIDIA" in TENSORRT_MISSING


# -- real engines (tensorrt + CUDA) ------------------------------------------------------------


@pytest.fixture(scope="module")
def trt():
    module = pytest.importorskip("tensorrt", reason=TENSORRT_MISSING)
    import torch

    if not torch.cuda.is_available():
        pytest.skip("TensorRT engines need a CUDA GPU")
    return module


@pytest.fixture(scope="module")
def exported(trt, tmp_path_factory):
    """A tiny slow-fusion multires model (3-D convs, LRN on 5-D, two streams) as ONNX."""
    import torch

    from sportsfusion.export.onnx import export_onnx
    from sportsfusion.models import create

    torch.manual_seed(0)
    model = create("slow", len(CLASSES), True, input_size=SIZE, width=WIDTH).eval()
    with torch.no_grad():
        model.head.fc8.weight.mul_(100)  # spread the logits: probabilities far from uniform
    path = export_onnx(model, CLASSES, tmp_path_factory.mktemp("trt") / "slow.onnx")
    return model, path


@pytest.mark.tensorrt
def test_fp32_engine_matches_onnxruntime(trt, exported, tmp_path):
    from sportsfusion.export.tensorrt import (
        TensorRTRunner,
        build_engine,
        check_against_onnxruntime,
    )

    _, onnx_path = exported
    engine = build_engine(
        onnx_path, tmp_path / "slow.engine", min_batch=1, opt_batch=2, max_batch=4
    )
    record = json.loads((tmp_path / "slow.engine.json").read_text())
    assert record["precision"] == "fp32" and record["tensorrt_version"] == trt.__version__
    assert (record["min_batch"], record["opt_batch"], record["max_batch"]) == (1, 2, 4)
    assert record["classes"] == CLASSES and record["arch"]["name"] == "slow"
    assert (tmp_path / "slow.engine.timing.cache").stat().st_size > 0
    # fp32 without TF32: the same arithmetic as onnxruntime, up to summation order
    assert check_against_onnxruntime(engine, onnx_path, (1, 4)) < 1e-4

    runner = TensorRTRunner(engine)
    assert runner.classes == CLASSES and runner.input_size == SIZE
    assert (runner.frames_per_clip, runner.frame_spacing) == (10, 1)
    import numpy as np
    import torch

    clips = np.random.default_rng(0).integers(0, 256, (9, 10, SIZE, SIZE, 3), dtype=np.uint8)
    probs = runner(clips)  # 9 > max batch 4: run in chunks
    assert probs.shape == (9, 3) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    on_gpu = runner.run(torch.from_numpy(clips).cuda())
    assert on_gpu.is_cuda
    np.testing.assert_allclose(on_gpu.cpu().numpy(), probs, atol=1e-6)


@pytest.mark.tensorrt
@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_reduced_precision_engines_stay_close(trt, exported, tmp_path, precision):
    from sportsfusion.export.tensorrt import build_engine, check_against_onnxruntime

    _, onnx_path = exported
    cache = tmp_path / "shared.cache"
    engine = build_engine(
        onnx_path, tmp_path / "m.engine", precision=precision, max_batch=4, timing_cache=cache
    )
    assert json.loads((tmp_path / "m.engine.json").read_text())["precision"] == precision
    assert cache.stat().st_size > 0
    # bf16 keeps 8 significant bits (2^-9 relative rounding), fp16 11: the probabilities of
    # this small network move by a few 1e-3 at most, a broken cast by 0.1 or more.
    tolerance = {"fp16": 1e-2, "bf16": 5e-2}[precision]
    assert check_against_onnxruntime(engine, onnx_path, (1, 4)) < tolerance
    # a second build reads the cache it wrote
    build_engine(
        onnx_path, tmp_path / "again.engine", precision=precision, max_batch=4, timing_cache=cache
    )


@pytest.mark.tensorrt
def test_cli_builds_and_checks_an_engine(trt, exported, tmp_path, capsys):
    from sportsfusion.export.__main__ import main

    _, onnx_path = exported
    out = tmp_path / "cli.engine"
    argv = ["tensorrt", "--onnx", str(onnx_path), "--out", str(out), "--max-batch", "4"]
    assert main([*argv, "--opt-batch", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == str(out) and lines[0].startswith("max |tensorrt - onnxruntime| = ")
    assert float(lines[0].split("= ")[1].split()[0]) < 1e-4


@pytest.mark.tensorrt
def test_cli_bad_onnx_is_one_error_line(trt, tmp_path, capsys):
    from sportsfusion.export.__main__ import main

    (tmp_path / "bad.onnx").write_bytes(b"not an onnx file")
    assert (
        main(["tensorrt", "--onnx", str(tmp_path / "bad.onnx"), "--out", str(tmp_path / "e")]) == 2
    )
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
