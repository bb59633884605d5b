"""The kernels' two process-wide switches: SPORTSFUSION_AUTOTUNE (which autotune candidates the
GPU compiles, read when a kernel module is imported) and the Triton version the sm_90 compile
checks accept."""

import os
import subprocess
import sys
from contextlib import contextmanager, nullcontext

import pytest
import torch

from sportsfusion.ops import aot

pytest.importorskip("triton")

COUNT_CONFIGS = (
    "from sportsfusion.kernels import conv3d_fused as c, fovea_context as f; "
    "print(len(c._conv3d_fused_kernel.configs), len(f._fovea_context_kernel.configs))"
)


def _configs_seen(setting: str | None) -> subprocess.CompletedProcess:
    """Import the kernels as a GPU process would (no interpreter) and count their candidates."""
    env = {k: v for k, v in os.environ.items() if k not in ("TRITON_INTERPRET",)}
    env.pop("SPORTSFUSION_AUTOTUNE", None)
    if setting is not None:
        env["SPORTSFUSION_AUTOTUNE"] = setting
    cmd = [sys.executable, "-c", COUNT_CONFIGS]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("setting,want", [(None, "12 4"), ("full", "12 4"), ("quick", "3 2")])
def test_autotune_switch_selects_the_candidates(setting, want):
    done = _configs_seen(setting)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == want.split()


def test_a_bad_autotune_setting_is_one_clear_error():
    done = _configs_seen("fast")
    assert done.returncode != 0
    assert "SPORTSFUSION_AUTOTUNE='fast': expected one of ('full', 'quick')" in done.stderr


@pytest.mark.parametrize(
    "version,ok",
    [("3.9.0", True), ("3.9.1+git1234", True), ("3.6.0", False), ("3.10.0", False)],
)
def test_aot_accepts_only_the_calibrated_triton(version, ok):
    assert aot.calibrated(version) is ok


def test_aot_refuses_another_triton_with_exit_2(monkeypatch, capsys):
    import triton

    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    monkeypatch.setattr(triton, "__version__", "3.6.0")
    assert aot.main(["--only", "slow_conv5_multires"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "error: this is Triton 3.6.0; the compile checks bind through Triton 3.9's JIT "
        "internals and its tests expect its codegen (install the dev extra's pin, or pass "
        "--any-triton)"
    ]


class _Tensorish:
    def __init__(self, device):
        self.device = torch.device(device)


def test_device_guard_makes_the_tensors_gpu_current(monkeypatch):
    from sportsfusion import kernels

    entered = []
    monkeypatch.setattr(torch.cuda, "device", lambda d: entered.append(d) or nullcontext())
    with kernels.device_guard(_Tensorish("cuda:1")):
        pass
    with kernels.device_guard(torch.zeros(1)):  # CPU (the interpreter): nothing to switch
        pass
    assert entered == [torch.device("cuda:1")]


def _launches_inside_the_guard(monkeypatch, *modules) -> list[bool]:
    """Patch the modules' device_guard and wrap_triton to record, per launch, whether it happens
    inside the guard."""
    inside, seen = [False], []

    @contextmanager
    def guard(t):
        inside[0] = True
        yield
        inside[0] = False

    wrap = torch.library.wrap_triton

    def recording_wrap(kernel):
        seen.append(inside[0])
        return wrap(kernel)

    for module in modules:
        monkeypatch.setattr(module, "device_guard", guard)
    monkeypatch.setattr(torch.library, "wrap_triton", recording_wrap)
    return seen


def test_every_triton_launch_is_inside_the_device_guard(monkeypatch):
    if os.environ.get("TRITON_INTERPRET") != "1":
        pytest.skip("launches on the CPU under TRITON_INTERPRET=1 only")
    from sportsfusion.kernels import conv3d_fused as conv
    from sportsfusion.kernels import fovea_context as stem

    seen = _launches_inside_the_guard(monkeypatch, conv, stem)
    x = torch.randn(1, 4, 2, 5, 5).contiguous(memory_format=torch.channels_last_3d)
    w = conv.pack_weight(torch.randn(8, 4, 1, 3, 3))
    conv.conv3d_fused_packed(x, w, None, [1, 3, 3], [1, 1, 1], [0, 1, 1], True, False)
    clips = torch.randint(0, 256, (1, 2, 6, 6, 3), dtype=torch.uint8)
    half = torch.empty(1, 3, 2, 3, 3)
    stem.fovea_context_out(clips, half, torch.empty_like(half))
    stem.clip_to_input_out(clips, torch.empty(1, 3, 2, 6, 6))  # the tiled kernel
    last = torch.empty(1, 3, 2, 6, 6).contiguous(memory_format=torch.channels_last_3d)
    stem.clip_to_input_out(clips, last)  # the flat one
    assert seen == [True] * 4


@pytest.mark.gpu
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_triton_runs_on_the_tensors_gpu_not_the_current_one():
    from sportsfusion.ops import conv3d_fused, fovea_context

    clips = torch.randint(0, 256, (2, 3, 8, 8, 3), dtype=torch.uint8)
    with torch.cuda.device(0):
        got = fovea_context(clips.to("cuda:1"), impl="triton")
        x = torch.randn(2, 16, 2, 6, 6)
        w = torch.randn(8, 16, 1, 3, 3)
        y = conv3d_fused(x.to("cuda:1"), w.to("cuda:1"), None, 1, 1, impl="triton")
    want = fovea_context(clips, impl="reference")
    for g, r in zip(got, want):
        assert g.device == torch.device("cuda:1")
        torch.testing.assert_close(g.cpu(), r, rtol=0, atol=0)
    want_y = conv3d_fused(x, w, None, 1, 1, impl="reference")
    torch.testing.assert_close(y.cpu(), want_y, rtol=1e-2, atol=1e-2)
