"""TensorRT engines: built from the ONNX export, checked against onnxruntime.

The build/run tests need `tensorrt` and a CUDA GPU (marker `tensorrt`); they skip with the reason
otherwise. The missing-tensorrt message test runs everywhere: it hides tensorrt from a real
`python -m sportsfusion.export` process. So do the runner's own tests: TensorRTRunner.run on the
CPU against a stand-in execution context that reads and writes the raw addresses it is given.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from sportsfusion.export.onnx import ExportError
from sportsfusion.export.tensorrt import INPUT, OUTPUT, TENSORRT_MISSING, TensorRTRunner

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


# -- the runner against a stand-in execution context (no tensorrt, no CUDA) --------------------


class StandInContext:
    """Records what TensorRTRunner asks of an IExecutionContext. execute_async_v3 reads the
    input from the raw address it was given and writes per-clip channel means (one "class" per
    RGB channel) to the output address, as an engine would: a wrong address, a dropped row or a
    mixed-up chunk shows in the output. `reject` names a tensor whose address it refuses."""

    def __init__(self, reject: str | None = None):
        self.reject, self.shape, self.addresses, self.calls = reject, None, {}, []

    def set_input_shape(self, name, shape):
        assert name == INPUT
        self.shape = tuple(shape)
        self.calls.append(("set_input_shape", name, self.shape))
        return True

    def get_tensor_shape(self, name):
        assert name == OUTPUT and self.shape is not None
        return (self.shape[0], 3)

    def set_tensor_address(self, name, address):
        self.calls.append(("set_tensor_address", name, address))
        self.addresses[name] = address
        return name != self.reject

    def execute_async_v3(self, stream):
        self.calls.append(("execute_async_v3", stream))
        clips = np.frombuffer(
            (ctypes.c_uint8 * int(np.prod(self.shape))).from_address(self.addresses[INPUT]),
            np.uint8,
        ).reshape(self.shape)
        probs = np.frombuffer(
            (ctypes.c_float * (self.shape[0] * 3)).from_address(self.addresses[OUTPUT]),
            np.float32,
        ).reshape(self.shape[0], 3)
        probs[:] = clips.reshape(self.shape[0], -1, 3).mean(1)
        return True

    def addresses_set(self):
        return [call[2] for call in self.calls if call[0] == "set_tensor_address"]


class CPURunner(TensorRTRunner):
    """TensorRTRunner on the CPU: only its two CUDA calls are replaced."""

    def _device_scope(self):
        return contextlib.nullcontext()

    def _stream_handle(self):
        return 0


def cpu_runner(context, *, min_batch, max_batch, frames=1, size=178):
    runner = object.__new__(CPURunner)  # no engine file, no tensorrt
    runner.device = torch.device("cpu")
    runner.min_batch, runner.max_batch = min_batch, max_batch
    runner.frames_per_clip, runner.input_size = frames, size
    runner._out_dtype = torch.float32
    runner.engine, runner.context = object(), context
    return runner


def aligned_clips(clips: np.ndarray, alignment=256) -> torch.Tensor:
    """clips copied to an address that is a multiple of `alignment` (chunk 1 needs no copy)."""
    buf = torch.empty(clips.nbytes + alignment, dtype=torch.uint8)
    skip = -buf.data_ptr() % alignment
    out = buf[skip : skip + clips.nbytes].view(clips.shape)
    out.copy_(torch.from_numpy(clips))
    return out


def test_runner_sets_only_256_byte_aligned_addresses():
    # single-frame 178x178 clips are 95,052 bytes (76 mod 256): 10 clips at max batch 4 are
    # chunks starting at bytes 0, 380,208 and 760,416, the last two not 256-byte aligned; the
    # last chunk (2 clips) is below min batch 3 and is padded
    clips = np.random.default_rng(0).integers(0, 256, (10, 1, 178, 178, 3), dtype=np.uint8)
    assert clips[0].nbytes == 95_052
    x = aligned_clips(clips)
    context = StandInContext()
    probs = cpu_runner(context, min_batch=3, max_batch=4).run(x)

    addresses = context.addresses_set()
    assert len(addresses) == 6  # input and output, three chunks
    assert [hex(a) for a in addresses if a % 256] == []
    assert addresses[0] == x.data_ptr()  # an aligned chunk is used where it lies, not copied
    shapes = [call[2] for call in context.calls if call[0] == "set_input_shape"]
    assert shapes == [(4, 1, 178, 178, 3), (4, 1, 178, 178, 3), (3, 1, 178, 178, 3)]
    assert [call[1] for call in context.calls if call[0] == "execute_async_v3"] == [0, 0, 0]
    # every clip's row, in order: the engine saw each chunk's own clips
    want = clips.reshape(10, -1, 3).mean(1, dtype=np.float64)
    assert probs.dtype == torch.float32 and probs.shape == (10, 3)
    np.testing.assert_allclose(probs.numpy(), want, rtol=1e-5)


def test_runner_aligns_numpy_input_and_returns_numpy():
    clips = np.random.default_rng(1).integers(0, 256, (5, 1, 178, 178, 3), dtype=np.uint8)
    context = StandInContext()
    probs = cpu_runner(context, min_batch=1, max_batch=2)(clips)
    assert all(a % 256 == 0 for a in context.addresses_set()) and len(context.addresses_set()) == 6
    assert isinstance(probs, np.ndarray) and probs.shape == (5, 3)
    np.testing.assert_allclose(probs, clips.reshape(5, -1, 3).mean(1), rtol=1e-5)


@pytest.mark.parametrize("name", [INPUT, OUTPUT])
def test_rejected_tensor_address_is_one_clear_error(name):
    context = StandInContext(reject=name)
    runner = cpu_runner(context, min_batch=1, max_batch=4)
    clips = np.zeros((3, 1, 178, 178, 3), dtype=np.uint8)
    with pytest.raises(ExportError) as raised:
        runner.run(clips)
    message = str(raised.value)
    address = context.addresses[name]
    assert message.startswith(f"TensorRT rejected the address of {name!r} ({address:#x}")
    assert "\n" not in message
    assert not any(call[0] == "execute_async_v3" for call in context.calls)  # nothing enqueued


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
