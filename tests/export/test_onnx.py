"""ONNX export: every model in both forms matches PyTorch in onnxruntime, the file contract holds
(uint8 in, float32 probs out, dynamic batch, metadata), LRN stays over channels, fp16/bf16 casts,
and the CLI with its one-line errors.

Tiny networks (width 0.05, 48x48 clips) keep the paper's structure; each export takes 2-5 s.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto

from sportsfusion.checkpoint import save_checkpoint
from sportsfusion.export.__main__ import main
from sportsfusion.export.onnx import (
    EXPORT_BATCH,
    INPUT,
    METADATA_KEYS,
    OUTPUT,
    ExportError,
    _bf16_bits,
    cast_precision,
    check_batches,
    compare_with_torch,
    export_onnx,
    model_arch,
    read_metadata,
    trace,
)
from sportsfusion.models import CNNAverage, arch_of, create
from sportsfusion.models.layers import lrn

SIZE, WIDTH, CLASSES = 48, 0.05, ["archery", "bmx", "curling", "darts"]
CASES = [
    *(
        (name, multires, "both")
        for name in ("single", "early", "late", "slow")
        for multires in (False, True)
    ),
    ("slow", True, "fovea"),  # the fovea-only ablation
    ("average", False, "both"),  # the CNN average of the four
]
IDS = [f"{n}-{'multires' if m else 'full'}{'-' + s if s != 'both' else ''}" for n, m, s in CASES]


def sharpen(model: torch.nn.Module, std: float = 3.0) -> torch.nn.Module:
    """Rescale FC8 so logits spread to about `std`: near-uniform probabilities (the init's
    small FC8) would make any tolerance on probs meaningless."""
    if isinstance(model, CNNAverage):
        for m in model.members:
            sharpen(m, std)
        return model
    clips = torch.randint(0, 256, (4, model.frames_per_clip, SIZE, SIZE, 3), dtype=torch.uint8)
    with torch.no_grad():
        spread = model(clips).std().item()
        model.head.fc8.weight.mul_(std / spread)
        model.head.fc8.bias.normal_(std=1.0)
    return model


def tiny(name="single", multires=False, stream="both", seed=0):
    torch.manual_seed(seed)
    return sharpen(
        create(name, len(CLASSES), multires, stream, input_size=SIZE, width=WIDTH)
    ).eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(model, onnx path) per case, exported once for the whole module."""
    folder, cache = tmp_path_factory.mktemp("onnx"), {}

    def get(case):
        if case not in cache:
            model = tiny(*case)
            path = export_onnx(model, CLASSES, folder / f"{'-'.join(map(str, case))}.onnx")
            cache[case] = model, path
        return cache[case]

    return get


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_every_model_matches_pytorch_on_a_dynamic_batch(exported, case):
    model, path = exported(case)
    # batches 1 and 3 on a graph traced at 2: the batch axis is really dynamic
    assert check_batches(1, 2) == [1, 3] and EXPORT_BATCH == 2
    assert compare_with_torch(model, path, batch=1, trials=2) < 1e-4

    proto = onnx.load(str(path))
    (inp,), (out,) = proto.graph.input, proto.graph.output
    assert (inp.name, inp.type.tensor_type.elem_type) == (INPUT, TensorProto.UINT8)
    assert (out.name, out.type.tensor_type.elem_type) == (OUTPUT, TensorProto.FLOAT)
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert isinstance(dims[0], str) and dims[1:] == [model.frames_per_clip, SIZE, SIZE, 3]
    assert [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim] == [dims[0], 4]
    ops = {n.op_type for n in proto.graph.node} | {
        n.op_type for f in proto.functions for n in f.node
    }
    assert "LRN" not in ops  # TensorRT's LRN would normalise over time on 5-D activations

    meta = read_metadata(path)
    assert set(meta) == {k.removeprefix("sportsfusion.") for k in METADATA_KEYS}
    assert meta == {
        "classes": CLASSES,
        "arch": model_arch(model),
        "frames_per_clip": model.frames_per_clip,
        "frame_spacing": model.frame_spacing,
        "input_size": SIZE,
        "precision": "fp32",
    }
    if case[0] != "average":
        assert meta["arch"] == arch_of(model)  # create(**arch) rebuilds it, like a checkpoint


def test_probabilities_are_softmax_and_not_uniform(exported):
    model, path = exported(("late", True, "both"))
    clips = np.random.default_rng(1).integers(0, 256, (3, 2, SIZE, SIZE, 3), dtype=np.uint8)
    (probs,) = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {INPUT: clips}
    )
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    assert probs.max() > 0.5  # sharpened: a tolerance of 1e-4 on these means something


def channel_lrn(x: np.ndarray, size=5, alpha=5e-4, beta=0.5, k=2.0, axis=1) -> np.ndarray:
    """Local response normalisation over `axis` in float64, written from its definition."""
    x = x.astype(np.float64)
    sq = np.moveaxis(x, axis, 0) ** 2
    n = sq.shape[0]
    total = np.stack([sq[max(0, c - size // 2) : c + (size - 1) // 2 + 1].sum(0) for c in range(n)])
    return x / (k + alpha / size * np.moveaxis(total, 0, axis)) ** beta


def test_lrn_on_5d_activations_normalises_over_channels_in_every_runtime():
    norm = lrn()  # the paper's LRN as every tower builds it
    x = torch.randn(2, 7, 4, 5, 6) * 60  # (N, C, T, H, W), large enough that the sum matters
    proto = trace(norm, x, input_name="x", output_name="y")
    assert "LRN" not in {n.op_type for n in proto.graph.node}
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    for batch in (1, 3):
        xs = (np.random.default_rng(batch).standard_normal((batch, 7, 4, 5, 6)) * 60).astype(
            np.float32
        )
        (got,) = session.run(None, {"x": xs})
        want = channel_lrn(xs)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
        # and the test can tell: over time (TensorRT's native LRN on 5-D) is far off
        assert np.abs(channel_lrn(xs, axis=2) - want).max() > 1e-2


def test_fp16_cast_runs_in_onnxruntime_close_to_fp32(exported, tmp_path):
    model, path = exported(("slow", True, "both"))
    half = cast_precision(onnx.load(str(path)), "fp16")
    onnx.checker.check_model(half, full_check=True)
    floats = [t for t in half.graph.initializer if t.data_type in (1, 10, 16)]
    assert floats and all(t.data_type == TensorProto.FLOAT16 for t in floats)
    assert half.graph.input[0].type.tensor_type.elem_type == TensorProto.UINT8
    assert half.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert half.graph.node[-1].op_type == "Cast" and half.graph.node[-1].output == [OUTPUT]
    assert {p.key: p.value for p in half.metadata_props}["sportsfusion.precision"] == "fp16"
    onnx.save(half, tmp_path / "half.onnx")
    clips = np.random.default_rng(2).integers(0, 256, (3, 10, SIZE, SIZE, 3), dtype=np.uint8)
    (full,) = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {INPUT: clips}
    )
    try:
        session = ort.InferenceSession(
            str(tmp_path / "half.onnx"), providers=["CPUExecutionProvider"]
        )
    except Exception as e:  # an onnxruntime build without fp16 CPU kernels: checks above stand
        pytest.skip(f"onnxruntime CPU cannot run fp16 here: {str(e).splitlines()[0]}")
    (got,) = session.run(None, {INPUT: clips})
    assert got.dtype == np.float32
    # fp16 rounds every value to 2^-11 relative (4.9e-4); over ~8 layers the logits (spread ~3)
    # move by about 1e-2 at worst, and probabilities by at most half of that (softmax's
    # Jacobian has norm <= 1/2). 1e-2 catches a broken cast (errors of 0.1-1) with margin;
    # a nonzero difference proves the graph really computes in fp16.
    diff = np.abs(got - full).max()
    assert 0 < diff < 1e-2


def test_bf16_cast_passes_the_checker(tmp_path):
    # onnxruntime's CPU provider has no bfloat16 Conv/Sub/pooling kernels: checker and types
    # only here; TensorRT runs it (tests/export/test_tensorrt.py).
    model = tiny("single", True)
    path = export_onnx(model, CLASSES, tmp_path / "bf16.onnx", precision="bf16")
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 22
    floats = [t for t in proto.graph.initializer if t.data_type in (1, 10, 16)]
    assert floats and all(t.data_type == TensorProto.BFLOAT16 for t in floats)
    assert proto.graph.input[0].type.tensor_type.elem_type == TensorProto.UINT8
    assert proto.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert read_metadata(path)["precision"] == "bf16"
    # the float32 -> bfloat16 rounding is round-to-nearest-even, as torch's
    values = torch.randn(10_000) * torch.logspace(-30, 30, 10_000)
    want = values.to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    np.testing.assert_array_equal(_bf16_bits(values.numpy()), want)


def test_what_cannot_export_says_why_in_one_line(tmp_path):
    model = tiny("single")
    with pytest.raises(ExportError, match="3 class names for a model with 4 outputs"):
        export_onnx(model, CLASSES[:3], tmp_path / "x.onnx")
    with pytest.raises(ExportError, match="precision"):
        export_onnx(model, CLASSES, tmp_path / "x.onnx", precision="int8")
    with pytest.raises(ExportError, match="opset 99: onnx .* writes opsets 1 to"):
        export_onnx(model, CLASSES, tmp_path / "x.onnx", opset=99)
    # below 18 the exporter converts down; LRN's Pad has no adapter to 17, so it would silently
    # stay at 18: that is an error, not a file with another opset than asked for
    with pytest.raises(ExportError, match="at opset 17: .* left it at opset 18"):
        export_onnx(model, CLASSES, tmp_path / "x.onnx", opset=17)
    forward = model.forward
    # data-dependent control flow: torch.export refuses it
    model.forward = lambda clips: forward(clips) if clips.float().mean() > 127 else -forward(clips)
    with pytest.raises(ExportError) as e:
        export_onnx(model, CLASSES, tmp_path / "x.onnx")
    assert str(e.value).startswith("cannot export single: ") and "\n" not in str(e.value)
    assert "data-dependent" in str(e.value)  # the real reason, not only the exporter's wrapper
    assert not (tmp_path / "x.onnx").exists()


def test_read_metadata_rejects_other_files(tmp_path):
    (tmp_path / "junk.onnx").write_bytes(b"\x00not onnx at all\xff" * 10)
    with pytest.raises(ExportError, match="not a readable ONNX file"):
        read_metadata(tmp_path / "junk.onnx")
    plain = trace(torch.nn.ReLU(), torch.randn(2, 3), input_name="x", output_name="y")
    onnx.save(plain, tmp_path / "plain.onnx")
    with pytest.raises(ExportError, match="not a SportsFusion ONNX export"):
        read_metadata(tmp_path / "plain.onnx")
    with pytest.raises(ExportError, match="not found"):
        read_metadata(tmp_path / "missing.onnx")


# -- the command line --------------------------------------------------------------------------


def checkpoint(path, model, classes=CLASSES):
    save_checkpoint(path, {"model": model.state_dict(), "arch": arch_of(model), "classes": classes})
    return str(path)


def test_cli_exports_a_checkpoint_and_reports_the_difference(tmp_path, capsys):
    ckpt = checkpoint(tmp_path / "run" / "last.pt", tiny("single", True))
    out = tmp_path / "single.onnx"
    assert main(["onnx", "--checkpoint", ckpt, "--out", str(out), "--check-batch", "1"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == str(out)
    assert lines[0].startswith("max |onnxruntime - pytorch| = ") and "on 4 random clips" in lines[0]
    assert float(lines[0].split("= ")[1].split()[0]) < 1e-4
    meta = read_metadata(out)
    assert meta["classes"] == CLASSES and meta["arch"]["name"] == "single"
    assert meta["arch"]["multires"] is True


def test_cli_averages_several_checkpoints(tmp_path, capsys):
    a = checkpoint(tmp_path / "a.pt", tiny("single", seed=1))
    b = checkpoint(tmp_path / "b.pt", tiny("single", seed=2))
    out = tmp_path / "avg.onnx"
    assert main(["onnx", "--checkpoint", a, b, "--out", str(out), "--check-batch", "1"]) == 0
    assert float(capsys.readouterr().out.split("= ")[1].split()[0]) < 1e-4
    arch = read_metadata(out)["arch"]
    assert arch["name"] == "average" and [m["name"] for m in arch["members"]] == ["single"] * 2


@pytest.mark.parametrize(
    "content, message",
    [(b"garbage", "not a readable checkpoint"), (None, "checkpoint not found")],
)
def test_cli_bad_checkpoint_is_one_error_line(tmp_path, capsys, content, message):
    ckpt = tmp_path / "last.pt"
    if content is not None:
        ckpt.write_bytes(content)
    assert main(["onnx", "--checkpoint", str(ckpt), "--out", str(tmp_path / "x.onnx")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]
    assert not (tmp_path / "x.onnx").exists()


def test_cli_different_classes_cannot_be_averaged(tmp_path, capsys):
    a = checkpoint(tmp_path / "a.pt", tiny("single"))
    b = checkpoint(tmp_path / "b.pt", tiny("single"), classes=["w", "x", "y", "z"])
    assert main(["onnx", "--checkpoint", a, b, "--out", str(tmp_path / "x.onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "classes differ" in err and "\n" not in err


def test_cli_help_shows_defaults(capsys):
    for command, defaults in [
        ("onnx", ["default 18", "default fp32", "default 3"]),
        ("tensorrt", ["default 1", "default 8", "default 32", "OUT.timing.cache"]),
    ]:
        with pytest.raises(SystemExit) as e:
            main([command, "--help"])
        assert e.value.code == 0
        text = " ".join(capsys.readouterr().out.split())
        assert all(d in text for d in defaults), (command, text)


def test_metadata_is_plain_json(exported):
    _, path = exported(("single", False, "both"))
    props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    assert json.loads(props["sportsfusion.classes"]) == CLASSES
    assert json.loads(props["sportsfusion.arch"])["name"] == "single"
