"""The op dispatchers under torch.compile(fullgraph=True): a graph break anywhere in a choice
would split every model into one graph per layer (and make fullgraph=True raise), so the fused
path would race torch.compile with one hand tied.

On the CPU the whole model compiles through each dispatcher on every path this machine runs. The
CUDA branch cannot run here, but its choice can: each op's candidate table for "cuda" is traced
with the extension and Triton made to look present for CUDA, so whatever the dispatcher calls on
that branch (the availability probes, the extension's with_cuda(), importlib) must be something
dynamo can trace or treat as a constant.
"""

import importlib

import pytest
import torch

from sportsfusion.models import create
from sportsfusion.ops import IMPLS, _backends, forced_impl
from sportsfusion.ops._backends import choose

# The modules, not the functions of the same name that sportsfusion.ops exports.
conv_op = importlib.import_module("sportsfusion.ops.conv3d_fused")
lrn_op = importlib.import_module("sportsfusion.ops.lrn_pool")
stem_op = importlib.import_module("sportsfusion.ops.fovea_context")

FORMS = [("single", False), ("single", True), ("early", True), ("late", True), ("slow", True)]
FORMS += [("slow", False)]
CPU_PATHS = ["reference"] + (["native"] if _backends.native_runs_on("cpu") else [])


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


@pytest.mark.parametrize("impl", CPU_PATHS)
@pytest.mark.parametrize("name,multires", FORMS)
def test_model_compiles_as_one_graph(name, multires, impl):
    torch.manual_seed(0)
    model = create(name, 5, multires=multires, width=0.05, input_size=48)
    clips = torch.randint(0, 256, (2, model.frames_per_clip, 48, 48, 3), dtype=torch.uint8)
    with forced_impl(impl):
        compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
        got = compiled(clips)  # fullgraph=True raises on the first graph break
        want = model(clips)
        got.logsumexp(1).sum().backward()  # and the backward traces too
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    assert all(p.grad is not None for p in model.parameters())


class _ExtensionWithCuda:
    """Stands in for sportsfusion._C built with CUDA kernels: with_cuda() is a pybind11 call in
    the real one, which dynamo cannot trace."""

    @staticmethod
    def with_cuda() -> bool:
        return True


def _cuda_choices() -> dict:
    """op -> a function returning the candidate table its dispatcher builds for CUDA."""
    return {
        "conv3d_fused": lambda: conv_op._candidates("cuda", torch.bfloat16),
        "lrn_pool": lambda: lrn_op._candidates("cuda", torch.bfloat16),
        "fovea_context": lambda: stem_op._candidates(
            "cuda", stem_op.fovea_context_reference, "fovea_context", stem_op._triton_fovea_context
        ),
        "clip_to_input": lambda: stem_op._candidates(
            "cuda", stem_op.clip_to_input_reference, "clip_to_input", stem_op._triton_clip_to_input
        ),
    }


EXPECTED_ON_CUDA = {
    "conv3d_fused": "triton",
    "lrn_pool": "native",
    "fovea_context": "native",
    "clip_to_input": "native",
}


@pytest.mark.parametrize("op", EXPECTED_ON_CUDA)
def test_the_cuda_choice_traces_without_a_graph_break(op, monkeypatch):
    pytest.importorskip("triton")
    monkeypatch.setattr(_backends, "native_module", lambda: _ExtensionWithCuda())  # its CUDA
    _backends._triton_importable.cache_clear()  # traced afresh: the import must not break
    table = _cuda_choices()[op]

    def chosen(x):  # the choice, as a number the graph can return
        name, _ = choose(op, "cuda", table(), None)
        return x + IMPLS.index(name)

    x = torch.zeros(3)
    with forced_impl("auto"):
        got = torch.compile(chosen, fullgraph=True, backend="eager")(x)
    assert IMPLS[int(got[0])] == EXPECTED_ON_CUDA[op]


@pytest.mark.parametrize("built", [True, False], ids=["extension built", "no extension"])
def test_auto_on_the_cpu_is_native_where_built_else_the_reference(built, monkeypatch):
    """The measured order (ops/_backends.PREFERENCE): the C++ ops beat the reference on the CPU."""
    if built and not _backends.native_runs_on("cpu"):
        pytest.skip("sportsfusion._C is not built here")
    if not built:
        monkeypatch.setattr(_backends, "native_module", lambda: None)
    clips_choice = _backends.choose(
        "fovea_context",
        "cpu",
        stem_op._candidates(
            "cpu", stem_op.fovea_context_reference, "fovea_context", stem_op._triton_fovea_context
        ),
        "auto",
    )[0]
    lrn_choice = _backends.choose("lrn_pool", "cpu", lrn_op._candidates("cpu", torch.float32))[0]
    conv_choice = _backends.choose(
        "conv3d_fused", "cpu", conv_op._candidates("cpu", torch.float32)
    )[0]
    want = "native" if built else "reference"
    assert (clips_choice, lrn_choice, conv_choice) == (want, want, "reference")
