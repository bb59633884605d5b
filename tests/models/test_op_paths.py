"""A model's output does not depend on which implementation the dispatcher picks: every model and
form, forced through each fast path this machine can run, against the forced reference.

On the CPU that is the C++ ops (`native`: fovea/context stem, LRN + pool) and the Triton kernels
under TRITON_INTERPRET=1 (`triton`: fovea/context stem, conv + bias + ReLU); on a GPU machine the
same test runs the CUDA kernels and compiled Triton.
"""

import pytest
import torch

from sportsfusion.models import create
from sportsfusion.ops import forced_impl
from sportsfusion.ops._backends import native_runs_on, triton_runs_on

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
pytestmark = pytest.mark.gpu  # on CUDA: the CUDA kernels and compiled Triton in every model
PATHS = {"native": native_runs_on(DEVICE), "triton": triton_runs_on(DEVICE)}
FORMS = [("single", False), ("single", True), ("early", True), ("late", True), ("slow", False)]
FORMS += [("slow", True)]


@pytest.fixture(autouse=True)
def strict_fp32(monkeypatch):
    """fp32 means fp32: with TF32 (cuDNN's default, which the Triton conv follows) a 10-bit
    mantissa in the convolutions moves CUDA logits far past 1e-4. Matmuls (FC6-8) in full fp32
    too, whatever a caller set."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    precision = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    yield
    torch.set_float32_matmul_precision(precision)


def test_fp32_comparisons_run_without_tf32():
    assert not torch.backends.cudnn.allow_tf32
    assert torch.get_float32_matmul_precision() == "highest"


def tiny(name: str, multires: bool) -> torch.nn.Module:
    torch.manual_seed(0)
    return create(name, 5, multires=multires, width=0.05, input_size=48).eval().to(DEVICE)


@pytest.mark.parametrize("impl", list(PATHS))
@pytest.mark.parametrize("name,multires", FORMS)
def test_model_output_is_the_same_on_every_path(name, multires, impl):
    if not PATHS[impl]:
        pytest.skip(f"the {impl} path cannot run on {DEVICE} here")
    model = tiny(name, multires)
    frames = model.frames_per_clip
    clips = torch.randint(
        0,
        256,
        (2, frames, 48, 48, 3),
        dtype=torch.uint8,
        generator=torch.Generator().manual_seed(1),
    ).to(DEVICE)
    with torch.no_grad(), forced_impl("reference"):
        want = model(clips)
    with torch.no_grad(), forced_impl(impl):
        got = model(clips)
    # fp32 throughout: the stems are exact, conv sums in another order (Triton) or LRN's pow
    # computed in another way (C++) move logits by float rounding only.
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("impl", list(PATHS))
def test_training_step_gradients_are_the_same_on_every_path(impl):
    if not PATHS[impl]:
        pytest.skip(f"the {impl} path cannot run on {DEVICE} here")
    clips = torch.randint(
        0, 256, (2, 10, 48, 48, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(2)
    ).to(DEVICE)
    grads = {}
    for path in ("reference", impl):
        model = tiny("slow", True)
        with forced_impl(path):
            model(clips).logsumexp(1).sum().backward()
        grads[path] = {n: p.grad for n, p in model.named_parameters()}
    for name, want in grads["reference"].items():
        torch.testing.assert_close(grads[impl][name], want, rtol=1e-3, atol=1e-5, msg=name)
