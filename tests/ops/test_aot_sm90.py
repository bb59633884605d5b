"""Every Triton kernel compiles for Hopper (sm_90), with every autotune config the GPU would try,
on a machine without a GPU: the interpreter's tests prove the kernels' arithmetic, this proves the
same source lowers to a cubin for the H100 and keeps what makes it fast there (tensor cores,
pipelined loads, no register spills in at least one config per layer, shared memory within the
chip's limit). sportsfusion.ops.aot runs in a subprocess because TRITON_INTERPRET=1, which
these tests' process sets, turns @triton.jit into the interpreter."""

import importlib.metadata
import json
import os
import subprocess
import sys

import pytest
import torch

from sportsfusion.ops import aot
from sportsfusion.ops.conv3d_fused import LAYERS

pytest.importorskip("triton.backends.nvidia.compiler", reason="needs Triton's NVIDIA backend")
if not aot.calibrated(importlib.metadata.version("triton")):  # e.g. the GPU machine's Triton 3.6
    pytest.skip(
        f"sm_90 compile checks are calibrated on Triton {aot.CALIBRATED_TRITON}, "
        f"this is {importlib.metadata.version('triton')}",
        allow_module_level=True,
    )

H100_SHARED_PER_BLOCK = 227 * 1024  # opt-in maximum on sm_90 (CUDA programming guide, table 23)
STEM_OPS = ("fovea_context", "clip_to_input")
DTYPES = ("bf16", "fp32")


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    path = tmp_path_factory.mktemp("aot") / "rows.json"
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    cmd = [sys.executable, "-m", "sportsfusion.ops.aot", "--dtype", *DTYPES, "--json", path]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode == 2:  # a Triton other than the pinned 3.9 (e.g. on the GPU machine)
        pytest.skip(done.stderr.strip().splitlines()[-1])
    assert done.returncode in (0, 1), done.stderr[-3000:]  # 1: some config failed (checked below)
    return json.loads(path.read_text())


def _select(rows, op, dtype):
    chosen = [r for r in rows if r["op"] == op and r["dtype"] == dtype]
    assert chosen, f"no compile of {op} in {dtype}"
    return chosen


@pytest.mark.slow
def test_every_config_compiles(rows):
    ops = set(LAYERS) | set(STEM_OPS)
    assert {r["op"] for r in rows} == ops
    failed = [f"{r['op']} {r['dtype']} {r['config']}: {r['error']}" for r in rows if not r["ok"]]
    assert not failed, "\n".join(failed)


@pytest.mark.slow
@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_conv_uses_tensor_cores_and_pipelined_loads(rows, layer):
    """bf16 on Hopper: warp-group MMA (wgmma) and cp.async loads into a multi-stage shared-memory
    ring in every config; an edit that loses either would fall off the tensor-core roofline."""
    for r in _select(rows, layer, "bf16"):
        assert r["wgmma"], f"{layer} {r['config']}: no wgmma"
        assert r["cp_async"], f"{layer} {r['config']}: loads not pipelined"


@pytest.mark.slow
@pytest.mark.parametrize(
    "layer", sorted(name for name, geometry in LAYERS.items() if geometry[0] < 16)
)
def test_rgb_conv_loads_whole_pixels(rows, layer):
    """conv1 reads RGB: padded to 4 channels (pad_thin_channels) with the kernel told so, each
    pixel is one 8-byte load, pipelined through cp.async; unpadded, the compiler can only gather
    2-byte elements synchronously. (The weights load in 16-byte and the bias in 2/4-byte pieces,
    so 8 bytes can only be the input.)"""
    for r in _select(rows, layer, "bf16"):
        assert 8 in r["load_bytes"], r


@pytest.mark.slow
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", sorted(LAYERS) + list(STEM_OPS))
def test_some_config_fits_without_spills(rows, op, dtype):
    """The autotuner can only pick a good config if one exists: at least one config per op keeps
    its registers (<= 255 per thread) without spilling, and none exceeds sm_90's shared memory."""
    chosen = _select(rows, op, dtype)
    assert any(not r["stack_bytes"] for r in chosen), [
        (r["config"], r["stack_bytes"]) for r in chosen
    ]
    for r in chosen:
        assert 0 < r["registers"] <= 255
        assert r["shared_bytes"] <= H100_SHARED_PER_BLOCK, (r["config"], r["shared_bytes"])


@pytest.mark.slow
@pytest.mark.parametrize("dtype", DTYPES)
def test_full_frame_stem_uses_vector_accesses(rows, dtype):
    """clip_to_input into the channels-last output CUDA models ask for is one elementwise stream:
    its full blocks load and store 16-byte vectors (scalar byte loads, which the tiled kernel for
    other layouts makes, would cap it far below copy bandwidth)."""
    for r in _select(rows, "clip_to_input", dtype):
        assert max(r["load_bytes"]) == 16 and max(r["store_bytes"]) == 16, r


def test_recording_restores_wrap_triton():
    from sportsfusion.ops.aot import recording

    original = torch.library.wrap_triton
    with pytest.raises(RuntimeError), recording() as launches:
        torch.library.wrap_triton("kernel")[(1,)](1, 2, flag=True)
        raise RuntimeError("boom")
    assert torch.library.wrap_triton is original
    assert [(x.kernel, x.args, x.kwargs) for x in launches] == [("kernel", (1, 2), {"flag": True})]
