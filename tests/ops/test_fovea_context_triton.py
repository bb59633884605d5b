"""The Triton first stage (kernels/fovea_context.py) against the PyTorch reference it must equal.

Every normalised value is a multiple of 2^-8, so fp32 must match bit for bit. bf16/fp16 must be
the reference's fp32 value rounded to nearest even, i.e. exactly reference.to(dtype): the kernel
rounds bf16 by hand, so this holds under the interpreter (whose own cast truncates) as on a GPU.
Without CUDA the kernels run under TRITON_INTERPRET=1 (tests/conftest.py), so shapes stay small.
"""

import importlib.util
import os

import pytest
import torch

from sportsfusion.ops.fovea_context import clip_to_input_reference, fovea_context_reference

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
pytestmark = pytest.mark.gpu  # on CUDA every test here checks the compiled kernel
if importlib.util.find_spec("triton") is None:
    pytest.skip("triton is not installed", allow_module_level=True)
if DEVICE == "cpu" and os.environ.get("TRITON_INTERPRET") != "1":
    pytest.skip("no CUDA device and TRITON_INTERPRET is not 1", allow_module_level=True)

from stem_outputs import assert_equals_reference, nan_output  # noqa: E402

from sportsfusion.kernels.fovea_context import (  # noqa: E402 (after the skips above)
    clip_to_input_out,
    fovea_context_out,
)

# (B, T, H, W): batch 1 and one frame, odd and prime sizes that leave partial tiles, the smallest
# frame with a fovea (2x2), and the paper's 178x178 with few frames (the interpreter is slow).
SHAPES = [
    (1, 1, 2, 2),
    (2, 5, 2, 2),
    (3, 2, 31, 47),
    (1, 5, 33, 33),
    (2, 1, 7, 130),
    (1, 2, 178, 178),
]
DTYPES = [torch.float32, torch.bfloat16, torch.float16]
LAYOUTS = ["ncthw", "channels_last_3d", "sliced"]


def random_clips(shape, seed):
    b, t, h, w = shape
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (b, t, h, w, 3), dtype=torch.uint8, generator=gen).to(DEVICE)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_fovea_context_equals_reference(shape, dtype, layout):
    clips = random_clips(shape, seed=sum(shape))
    fovea_want, context_want = fovea_context_reference(clips)
    fovea = nan_output(fovea_want.shape, dtype, layout, DEVICE)
    context = nan_output(context_want.shape, dtype, layout, DEVICE)
    fovea_context_out(clips, fovea, context)
    assert_equals_reference(fovea, fovea_want, "fovea")
    assert_equals_reference(context, context_want, "context")


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_clip_to_input_equals_reference(shape, dtype, layout):
    clips = random_clips(shape, seed=sum(shape) + 1)
    want = clip_to_input_reference(clips)
    out = nan_output(want.shape, dtype, layout, DEVICE)
    clip_to_input_out(clips, out)
    assert_equals_reference(out, want, "out")


def test_frames_without_a_fovea_write_nothing():
    clips = random_clips((2, 3, 1, 9), seed=0)  # H = 1: fovea and context are (2, 3, 3, 0, 4)
    fovea, context = (torch.empty(2, 3, 3, 0, 4, device=DEVICE) for _ in range(2))
    fovea_context_out(clips, fovea, context)


def _bad_calls():
    clips = torch.zeros(1, 2, 8, 6, 3, dtype=torch.uint8, device=DEVICE)
    half = torch.zeros(1, 3, 2, 4, 3, device=DEVICE)
    full = torch.zeros(1, 3, 2, 8, 6, device=DEVICE)
    return {
        "float clips": (fovea_context_out, (clips.float(), half, half), "clips: expected a uint8"),
        "rank 4": (fovea_context_out, (clips[0], half, half), "clips: expected a uint8"),
        "4 channels": (clip_to_input_out, (clips.new_zeros(1, 2, 8, 6, 4), full), "clips: expect"),
        "strided clips": (
            fovea_context_out,
            (clips.transpose(2, 3).contiguous().transpose(2, 3), half, half),
            "clips: expected a contiguous tensor",
        ),
        "fovea shape": (fovea_context_out, (clips, half[..., :2], half), "fovea: expected"),
        "context dtype": (fovea_context_out, (clips, half, half.double()), "context: expected"),
        "context device": (fovea_context_out, (clips, half, half.to("meta")), "context: .* on"),
        "out shape": (clip_to_input_out, (clips, half), r"out: expected .* \(1, 3, 2, 8, 6\)"),
        "out dtype": (clip_to_input_out, (clips, full.to(torch.uint8)), "out: expected a float32"),
    }


@pytest.mark.parametrize("case", list(_bad_calls()))
def test_bad_arguments_are_a_clear_error(case):
    fn, args, message = _bad_calls()[case]
    with pytest.raises(ValueError, match=message):
        fn(*args)


def test_registered_ops_pass_opcheck():
    # Under the interpreter wrap_triton hands back the bare kernel, which cannot run on fake
    # tensors, so only the schema and autograd checks apply there; on CUDA all of them do.
    utils = ("test_schema", "test_autograd_registration") if DEVICE == "cpu" else None
    kwargs = {} if utils is None else {"test_utils": utils}
    clips = random_clips((1, 2, 8, 6), seed=3)
    half = torch.empty(1, 3, 2, 4, 3, device=DEVICE)
    torch.library.opcheck(
        torch.ops.sportsfusion_triton.fovea_context_out.default,
        (clips, half, torch.empty_like(half)),
        **kwargs,
    )
    full = torch.empty(1, 3, 2, 8, 6, device=DEVICE)
    clip_to_input = torch.ops.sportsfusion_triton.clip_to_input_out.default
    torch.library.opcheck(clip_to_input, (clips, full), **kwargs)
