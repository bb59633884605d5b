"""The native first stage (csrc/fovea_context/, torch.ops.sportsfusion.*) against the reference.

Every value is a multiple of 2^-8, so the C++ and CUDA ops must equal the reference bit for bit:
fp32 and fp16 exactly, bf16 as the reference's fp32 value rounded to nearest even (what
.to(bfloat16) does), i.e. within half a bf16 ulp. Outputs are pre-filled with NaN so every element
must be written. Also: the documented errors, opcheck, torch.compile through the fake kernels, a
model's output whichever path runs, and a compile check of the CUDA wrappers with g++ (no GPU).
"""

import functools
import glob
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from stem_outputs import assert_equals_reference, nan_output
from torch.utils import cpp_extension

from sportsfusion import models, ops
from sportsfusion.ops import _backends
from sportsfusion.ops._backends import choose
from sportsfusion.ops.fovea_context import (
    _candidates,
    clip_to_input_reference,
    fovea_context_reference,
)

ROOT = Path(__file__).resolve().parents[2]
OP = torch.ops.sportsfusion  # its ops exist once sportsfusion._C is imported
native = pytest.mark.skipif(
    _backends.native_module() is None,
    reason="the native extension is not built (python setup.py build_ext --inplace)",
)
native_cuda = pytest.mark.skipif(
    not torch.cuda.is_available() or not _backends.native_runs_on("cuda"),
    reason="needs a CUDA device and the extension built with CUDA",
)

DTYPES = [torch.float32, torch.bfloat16, torch.float16]
LAYOUTS = ["ncthw", "channels_last_3d", "sliced"]
# (B, T, H, W): the paper's 178 with several batch sizes and clip lengths, odd and prime sizes,
# the smallest frame with a fovea, frames without one (H = 1), wide rows (several CUDA tiles).
SHAPES = [
    (1, 1, 178, 178),
    (2, 10, 178, 178),
    (3, 2, 31, 47),
    (1, 3, 2, 2),
    (2, 3, 1, 5),
    (4, 1, 7, 130),
    (1, 2, 9, 601),
]


def random_clips(shape, seed, device="cpu"):
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (*shape, 3), dtype=torch.uint8, generator=gen).to(device)


def check_op(clips, dtype, layout):
    """The out ops into poisoned outputs and the functional ops, against the reference."""
    fovea_want, context_want = fovea_context_reference(clips.cpu())
    full_want = clip_to_input_reference(clips.cpu())
    fovea = nan_output(fovea_want.shape, dtype, layout, clips.device)
    context = nan_output(context_want.shape, dtype, layout, clips.device)
    full = nan_output(full_want.shape, dtype, layout, clips.device)
    OP.fovea_context_out(clips, fovea, context)
    OP.clip_to_input_out(clips, full)
    channels_last = layout == "channels_last_3d"
    fovea_f, context_f = OP.fovea_context(clips, dtype, channels_last)
    full_f = OP.clip_to_input(clips, dtype, channels_last)
    fmt = torch.channels_last_3d if channels_last else torch.contiguous_format
    results = {
        "fovea": (fovea, fovea_f, fovea_want),
        "context": (context, context_f, context_want),
        "clip_to_input": (full, full_f, full_want),
    }
    for name, (out, functional, want) in results.items():
        assert_equals_reference(out.cpu(), want, name)
        assert_equals_reference(functional.cpu(), want, f"{name} (functional)")
        assert functional.is_contiguous(memory_format=fmt)


@native
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_cpu_equals_reference(shape, dtype, layout):
    check_op(random_clips(shape, seed=sum(shape)), dtype, layout)


def strided_inputs(clips):
    b, t, h, w, _ = clips.shape
    flat = torch.empty(clips.numel() + 1, dtype=torch.uint8)
    misaligned = flat[1:].view(clips.shape)  # the data pointer 1 byte past the allocation's
    misaligned.copy_(clips)
    big = torch.zeros(b, 2 * t, h + 2, w + 5, 3, dtype=torch.uint8)
    big[:, ::2, 1:-1, 2:-3] = clips
    return {
        "frames_apart": big[:, ::2, 1:-1, 2:-3],  # packed rows: read in place
        "misaligned": misaligned,
        "channel_planar": clips.permute(0, 4, 1, 2, 3).contiguous().permute(0, 2, 3, 4, 1),
        "time_reversed": clips.flip(1).transpose(0, 1).contiguous().transpose(0, 1).flip(1),
    }


@native
def test_cpu_reads_non_contiguous_clips():
    clips = random_clips((2, 3, 31, 47), seed=5)
    for name, strided in strided_inputs(clips).items():
        assert torch.equal(strided, clips), name
        check_op(strided, torch.bfloat16, "channels_last_3d")


# id: (call(clips, fovea, context), error, message); clips (2, 3, 9, 13, 3), outputs fp32.
BAD_ARGUMENTS = {
    "dtype": (
        lambda c, f, x: OP.fovea_context_out(c.float(), f, x),
        ValueError,
        r"fovea_context_out: clips must be a dense uint8 tensor \(B, T, H, W, 3\), got Float",
    ),
    "rank": (
        lambda c, f, x: OP.fovea_context(c[0], torch.float32, False),
        ValueError,
        r"fovea_context: clips must be .* got Byte \[3, 9, 13, 3\]",
    ),
    "channels": (
        lambda c, f, x: OP.clip_to_input(c[..., :2], torch.float32, False),
        ValueError,
        r"clip_to_input: clips must be .* \[2, 3, 9, 13, 2\]",
    ),
    "out-shape": (
        lambda c, f, x: OP.fovea_context_out(c, f[:, :, :, :3], x),
        ValueError,
        r"fovea must be a dense float32/bfloat16/float16 tensor \[2, 3, 3, 4, 6\]",
    ),
    "out-dtype": (
        lambda c, f, x: OP.fovea_context_out(c, f, x.double()),
        ValueError,
        r"context must be a dense float32/bfloat16/float16 tensor .* got Double",
    ),
    "mixed-dtypes": (
        lambda c, f, x: OP.fovea_context_out(c, f, x.half()),
        ValueError,
        "fovea and context must have one dtype, got Float and Half",
    ),
    "full-shape": (
        lambda c, f, x: OP.clip_to_input_out(c, f),
        ValueError,
        r"clip_to_input_out: out must be .* \[2, 3, 3, 9, 13\], got Float \[2, 3, 3, 4, 6\]",
    ),
    "functional-dtype": (
        lambda c, f, x: OP.fovea_context(c, torch.int32, True),
        ValueError,
        "fovea_context: dtype must be float32, bfloat16 or float16, got Int",
    ),
    "aliased-outputs": (
        lambda c, f, x: OP.fovea_context_out(c, f, f),
        RuntimeError,
        "unsupported operation: some elements of the input tensor and the written-to tensor",
    ),
    "expanded-output": (
        lambda c, f, x: OP.fovea_context_out(c, f[:1].expand(2, 3, 3, 4, 6), x),
        RuntimeError,
        "unsupported operation: more than one element of the written-to tensor",
    ),
    "device": (  # CPU clips with meta outputs dispatch to the fake kernel
        lambda c, f, x: OP.fovea_context_out(c, f.to("meta"), x.to("meta")),
        ValueError,
        "fovea: expected clips' device",
    ),
}


@native
@pytest.mark.parametrize("call, error, message", BAD_ARGUMENTS.values(), ids=BAD_ARGUMENTS)
def test_bad_arguments_are_clear_errors(call, error, message):
    clips = torch.zeros(2, 3, 9, 13, 3, dtype=torch.uint8)
    fovea, context = torch.empty(2, 3, 3, 4, 6), torch.empty(2, 3, 3, 4, 6)
    with pytest.raises(error, match=message) as info:
        call(clips, fovea, context)
    assert "\n" not in str(info.value).strip()  # one line


@native
@pytest.mark.parametrize("channels_last", [False, True])
def test_opcheck(channels_last):
    clips = random_clips((2, 3, 9, 13), seed=6)
    for dtype in DTYPES:
        args = (clips, dtype, channels_last)
        torch.library.opcheck(torch.ops.sportsfusion.fovea_context.default, args)
        torch.library.opcheck(torch.ops.sportsfusion.clip_to_input.default, args)
    outs = [nan_output((2, 3, 3, 4, 6), torch.bfloat16, "sliced") for _ in range(2)]
    torch.library.opcheck(torch.ops.sportsfusion.fovea_context_out.default, (clips, *outs))
    out = nan_output((2, 3, 3, 9, 13), torch.float16, "ncthw")
    torch.library.opcheck(torch.ops.sportsfusion.clip_to_input_out.default, (clips, out))


@native
def test_torch_compile_traces_through_the_fake_kernels():
    clips = random_clips((2, 3, 9, 13), seed=7)

    def stem(c):
        fovea, context = torch.ops.sportsfusion.fovea_context(c, torch.bfloat16, True)
        return fovea.float() + context.float(), torch.ops.sportsfusion.clip_to_input(
            c, torch.float16, False
        )

    compiled = torch.compile(stem, fullgraph=True, backend="aot_eager", dynamic=True)
    for shape in [(2, 3, 9, 13), (1, 2, 6, 7)]:  # dynamic: one graph for both
        c = random_clips(shape, seed=8)
        for got, want in zip(compiled(c), stem(c)):
            assert torch.equal(got, want) and got.stride() == want.stride()

    # The public dispatcher too; it is called once first because ops/_backends.py logs a path's
    # first use, which dynamo cannot trace.
    def public(c):
        return ops.fovea_context(c, dtype=torch.bfloat16, channels_last=True, impl="native")

    want = public(clips)
    got = torch.compile(public, fullgraph=True, backend="aot_eager")(clips)
    assert all(torch.equal(g, w) for g, w in zip(got, want))


@native
@pytest.mark.parametrize("multires", [True, False], ids=["multires", "full-frame"])
def test_model_output_is_the_same_whichever_path_runs(multires, monkeypatch):
    torch.manual_seed(0)
    model = models.create("single", 5, multires=multires, width=0.05, input_size=48).eval()
    clips = random_clips((3, model.frames_per_clip, 48, 48), seed=9)
    with ops.forced_impl("reference"), torch.no_grad():
        want = model(clips)
        # Only the first stage goes native: the towers' ops (lrn_pool, ...) have native paths of
        # their own, equal to their references only within rounding.
        for name in ("fovea_context", "clip_to_input"):
            monkeypatch.setattr(ops, name, functools.partial(getattr(ops, name), impl="native"))
        got = model(clips)
    assert torch.equal(got, want)


# ---- The CUDA build, compile-checked here and run on the GPU machine.

CUDA_INCLUDE = Path(os.environ.get("CUDA_HOME", "/usr/local/cuda")) / "include"
CUDA_WRAPPERS = sorted(glob.glob(str(ROOT / "csrc" / "*" / "*_torch_cuda.cpp")))


@pytest.mark.skipif(shutil.which("g++") is None, reason="no g++")
@pytest.mark.skipif(
    not (CUDA_INCLUDE / "cuda_runtime_api.h").exists(), reason=f"no CUDA headers in {CUDA_INCLUDE}"
)
@pytest.mark.parametrize("source", CUDA_WRAPPERS, ids=lambda p: Path(p).name)
def test_cuda_wrappers_compile(source):
    """setup.py builds these only where torch has CUDA; g++ checks them against the CPU wheel's
    c10/cuda headers. That wheel lacks the CMake-generated cuda_cmake_macros.h, which only sets
    export macros, hence C10_CUDA_NO_CMAKE_CONFIGURE_FILE."""
    includes = [*cpp_extension.include_paths(), str(CUDA_INCLUDE), str(ROOT / "csrc")]
    defines = ["-DSPORTSFUSION_WITH_CUDA", "-DC10_CUDA_NO_CMAKE_CONFIGURE_FILE"]
    command = ["g++", "-fsyntax-only", "-std=c++20", *defines, *(f"-I{p}" for p in includes)]
    result = subprocess.run([*command, source], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-4000:]


@pytest.mark.gpu
@native_cuda
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", [*SHAPES, (64, 10, 178, 178)], ids=str)
def test_cuda_equals_reference(shape, dtype, layout):
    check_op(random_clips(shape, seed=sum(shape), device="cuda"), dtype, layout)


@pytest.mark.gpu
@native_cuda
def test_cuda_reads_non_contiguous_clips_on_the_current_stream():
    clips = random_clips((2, 3, 31, 47), seed=10)
    for strided in strided_inputs(clips).values():
        check_op(strided.cuda(), torch.bfloat16, "ncthw")
    # A side stream and a CUDA graph capture work only if the launch goes on the current stream.
    clips = clips.cuda()
    shape = (2, 3, 3, 15, 23)
    fovea, context = (nan_output(shape, torch.bfloat16, "channels_last_3d", "cuda") for _ in "fc")
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, stream=side):
            torch.ops.sportsfusion.fovea_context_out(clips, fovea, context)
        graph.replay()
    torch.cuda.current_stream().wait_stream(side)
    for got, want in zip((fovea, context), fovea_context_reference(clips.cpu())):
        assert_equals_reference(got.cpu(), want, "graph replay")


@pytest.mark.gpu
@native_cuda
def test_cuda_dispatcher_picks_native_and_the_stem_matches():
    candidates = _candidates("cuda", fovea_context_reference, "fovea_context", None)
    assert choose("fovea_context", "cuda", candidates)[0] == "native"
    model = models.create("single", 5, multires=True, width=0.05, input_size=48).cuda().eval()
    clips = random_clips((3, 1, 48, 48), seed=11, device="cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        native = model.stem(clips)
        with ops.forced_impl("reference"):
            reference = model.stem(clips)
    for got, want in zip(native, reference):
        assert got.dtype == torch.bfloat16 and got.is_contiguous(
            memory_format=torch.channels_last_3d
        )
        assert torch.equal(got, want)
