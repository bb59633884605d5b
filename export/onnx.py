"""Export a trained model to ONNX: the file every runtime (onnxruntime, TensorRT) reads.

    export_onnx(model, classes, "model.onnx")     -> Path   (checked with onnx.checker)
    compare_with_torch(model, "model.onnx")       -> largest |onnxruntime - pytorch| on probs
    read_metadata("model.onnx")                   -> {"classes": [...], "frames_per_clip": 10, ...}
    cast_precision(model_proto, "fp16" | "bf16")  -> the same graph computing in reduced precision

Graph contract (see `sportsfusion.export`): input `clips` uint8 (batch, T, H, W, 3) exactly as the
decoders produce it, the model's own first stage inside the graph (cast, subtract 117, scale,
fovea/context), output `probs` float32 (batch, classes): softmax of the logits (the CNN average
returns log-probabilities, so its probabilities are their exp). Only the batch axis is dynamic;
the clip geometry is fixed by the architecture and stored in the metadata.

Exporter: `torch.onnx.export(..., dynamo=True)`. torch.export traces the model symbolically and
*proves* the batch axis dynamic (it fails loudly if any code specialises on the batch size,
where the legacy TorchScript tracer would silently bake a constant into a Reshape); it is the
maintained exporter (the TorchScript one is deprecated), and its onnxscript optimiser folds the
constant subgraphs. Cost: a few seconds per export instead of about one.

LRN: the paper's local response normalisation runs over channels. ONNX `LRN` would be mapped by
TensorRT onto its native LRN, which sums over the third-from-last axis: time, not channels, on the
5-D (N, C, T, H, W) activations of slow fusion. PyTorch's LocalResponseNorm is exported as its
decomposition (square, Pad over channels, AveragePool, Pow, Div), so no `LRN` node is ever
emitted and every runtime normalises over channels (tests/export/test_onnx.py checks both).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper, version_converter
from torch import nn

from sportsfusion.models import CNNAverage, arch_of
from sportsfusion.ops import _backends

INPUT, OUTPUT = "clips", "probs"
PRECISIONS = ("fp32", "fp16", "bf16")
EXPORT_BATCH = 2  # traced batch size; 0 and 1 would be specialised by torch.export
MAX_BATCH = 4096
PREFIX = "sportsfusion."
METADATA_KEYS = tuple(
    PREFIX + k
    for k in ("classes", "arch", "frames_per_clip", "frame_spacing", "input_size", "precision")
)
_JSON_KEYS = {"classes", "arch"}
_INT_KEYS = {"frames_per_clip", "frame_spacing", "input_size"}
# Models past this size are written with their weights in `<file>.data` (protobuf's 2 GiB limit).
EXTERNAL_DATA_BYTES = 1_800_000_000
_ONNX_TYPES = {"fp16": TensorProto.FLOAT16, "bf16": TensorProto.BFLOAT16}
BF16_OPSET = 22

log = logging.getLogger("sportsfusion.export")


class ExportError(RuntimeError):
    """One-line reason a model cannot be exported or an exported file cannot be used."""


def _first_line(error: BaseException, limit: int = 300) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error))  # the exporter colours its messages
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    text = lines[0] if lines else type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _exporter_reason(error: BaseException) -> str:
    """The exporter wraps the real reason (torch.export's, a missing op's) in a generic one."""
    root = error
    while root.__cause__ is not None:
        root = root.__cause__
    outer = _first_line(error).split(". ")[0].rstrip(".")
    if root is error:
        return outer
    return f"{outer}: {type(root).__name__}: {_first_line(root)}"


class ProbsModel(nn.Module):
    """The exported function: uint8 clips -> float32 class probabilities."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.log_probs = isinstance(model, CNNAverage)  # it returns log of averaged probs

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        out = self.model(clips).float()
        return out.exp() if self.log_probs else out.softmax(dim=1)


def model_arch(model: nn.Module) -> dict:
    """The architecture record the metadata stores (`sportsfusion.models.arch_of`)."""
    try:
        return arch_of(model)
    except ValueError as e:
        raise ExportError(f"cannot export: {e}") from None


def _num_classes(model: nn.Module) -> int:
    if isinstance(model, CNNAverage):
        return _num_classes(model.members[0])
    return model.head.fc8.out_features


def reference_ops():
    """The plain-PyTorch op implementations: what export traces and every runtime can run."""
    return _backends.forced_impl("reference")


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The exporter's chatter (optional torchvision ops, optimiser passes) is not ours to print."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript", "onnx_ir")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _set_metadata(proto: onnx.ModelProto, values: dict[str, str]) -> None:
    kept = [p for p in proto.metadata_props if p.key not in values]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    for key, value in values.items():
        proto.metadata_props.add(key=key, value=value)


def save_model(proto: onnx.ModelProto, path: str | os.PathLike) -> None:
    """Save; weights go to `<file>.data` beside it when the file would pass protobuf's 2 GiB."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = path.with_name(path.name + ".data")
    data.unlink(missing_ok=True)
    weight_bytes = sum(len(t.raw_data) + 4 * len(t.float_data) for t in proto.graph.initializer)
    if weight_bytes > EXTERNAL_DATA_BYTES:
        onnx.save_model(proto, path, save_as_external_data=True, location=data.name)
    else:
        onnx.save_model(proto, path)


def _check(path: Path) -> None:
    try:
        onnx.checker.check_model(str(path))
    except Exception as e:  # ValidationError, or a protobuf error on a damaged file
        raise ExportError(f"{path}: the ONNX checker rejects it ({_first_line(e)})") from None


def trace(
    module: nn.Module,
    example: torch.Tensor,
    *,
    opset: int = 18,
    input_name: str = INPUT,
    output_name: str = OUTPUT,
) -> onnx.ModelProto:
    """The exporter as export_onnx runs it: one input with a dynamic batch axis, one output,
    reference ops, eval mode (left set). Exporter errors become one-line ExportErrors."""
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    module.eval()
    try:
        with reference_ops(), torch.no_grad(), _quiet_exporter():
            program = torch.onnx.export(
                module,
                (example,),
                dynamo=True,
                input_names=[input_name],
                output_names=[output_name],
                dynamic_shapes=({0: batch},),
                opset_version=opset,
                optimize=True,
                verbose=False,
            )
            return program.model_proto
    except Exception as e:  # the exporter raises many types; each is one line to the user
        raise ExportError(_exporter_reason(e)) from None


def export_onnx(
    model: nn.Module,
    classes: list[str],
    out_path: str | os.PathLike,
    *,
    opset: int = 18,
    precision: str = "fp32",
    arch: dict | None = None,
) -> Path:
    """Write `model` as ONNX (contract in the module docstring), run the checker, return the path.

    `arch` defaults to the model's own record (a checkpoint's `arch` may be passed instead).
    """
    out_path = Path(out_path)
    if precision not in PRECISIONS:
        raise ExportError(f"precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    newest = onnx.defs.onnx_opset_version()
    if not 1 <= opset <= newest:
        raise ExportError(f"opset {opset}: onnx {onnx.__version__} writes opsets 1 to {newest}")
    arch = model_arch(model) if arch is None else arch
    classes = [str(c) for c in classes]
    if len(classes) != _num_classes(model):
        raise ExportError(
            f"{len(classes)} class names for a model with {_num_classes(model)} outputs"
        )
    frames, size = model.frames_per_clip, model.input_size
    example = torch.randint(0, 256, (EXPORT_BATCH, frames, size, size, 3), dtype=torch.uint8)
    was_training = model.training
    try:
        proto = trace(ProbsModel(model), example, opset=opset)  # eval() reaches the model too
    except ExportError as e:
        raise ExportError(f"cannot export {arch.get('name', 'model')}: {e}") from None
    finally:
        model.train(was_training)
    got = _opset(proto)
    if got != opset:  # below 18 the exporter converts down, and keeps 18 when it cannot
        raise ExportError(
            f"cannot export {arch.get('name', 'model')} at opset {opset}: the exporter's version "
            f"converter left it at opset {got} (use --opset {got} or higher)"
        )
    _set_metadata(
        proto,
        {
            PREFIX + "classes": json.dumps(classes),
            PREFIX + "arch": json.dumps(arch, sort_keys=True),
            PREFIX + "frames_per_clip": str(frames),
            PREFIX + "frame_spacing": str(model.frame_spacing),
            PREFIX + "input_size": str(size),
            PREFIX + "precision": precision,
        },
    )
    proto.doc_string = f"SportsFusion {arch.get('name', 'model')}: uint8 clips -> class probs"
    if precision != "fp32":
        proto = cast_precision(proto, precision)
    save_model(proto, out_path)
    try:
        _check(out_path)
    except ExportError:
        out_path.unlink(missing_ok=True)
        out_path.with_name(out_path.name + ".data").unlink(missing_ok=True)
        raise
    return out_path


# -- reduced precision -------------------------------------------------------------------------


def _opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def _bf16_bits(values: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bit patterns, rounding to nearest even (NaN stays a quiet NaN)."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    rounded[np.isnan(values)] = 0x7FC0
    return rounded


def _cast_tensor(tensor: TensorProto, precision: str) -> TensorProto:
    values = numpy_helper.to_array(tensor).astype(np.float32)
    if precision == "fp16":
        out = numpy_helper.from_array(values.astype(np.float16), tensor.name)
    else:
        out = TensorProto(name=tensor.name, data_type=TensorProto.BFLOAT16)
        out.dims.extend(values.shape)
        out.raw_data = _bf16_bits(values).astype("<u2").tobytes()
    out.doc_string = tensor.doc_string
    return out


def _cast_graph(graph: onnx.GraphProto, precision: str) -> None:
    for i, init in enumerate(graph.initializer):
        if init.data_type == TensorProto.FLOAT:
            graph.initializer[i].CopyFrom(_cast_tensor(init, precision))
    _cast_nodes(graph.node, precision)


def _cast_nodes(nodes, precision: str) -> None:
    target = _ONNX_TYPES[precision]
    for node in nodes:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR and attr.t.data_type == TensorProto.FLOAT:
                attr.t.CopyFrom(_cast_tensor(attr.t, precision))  # Constant, ConstantOfShape
            elif attr.type == onnx.AttributeProto.GRAPH:
                _cast_graph(attr.g, precision)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for g in attr.graphs:
                    _cast_graph(g, precision)
            elif attr.name in ("to", "dtype") and attr.i == TensorProto.FLOAT:
                attr.i = target  # Cast(to=float), RandomNormal(dtype=float), ...
        if node.op_type == "Constant":  # scalar/list float forms become typed tensors
            for attr in list(node.attribute):
                if attr.name in ("value_float", "value_floats"):
                    values = np.array(attr.f if attr.name == "value_float" else list(attr.floats))
                    tensor = _cast_tensor(
                        numpy_helper.from_array(values.astype(np.float32)), precision
                    )
                    node.attribute.remove(attr)
                    node.attribute.append(helper.make_attribute("value", tensor))


def cast_precision(model_proto: onnx.ModelProto, precision: str) -> onnx.ModelProto:
    """The same graph computing in fp16 or bf16; graph inputs and outputs keep their types.

    TensorRT 10+ strongly typed networks (the only kind TensorRT 11 builds) run each layer in the
    type the graph gives it, so reduced precision is a property of the ONNX graph: float32
    initializers and constants become the target type, Casts to float32 cast to it instead, float32
    graph inputs get a Cast after them and float32 outputs a Cast back to float32 before them.
    value_info is cleared and shape inference re-run, so every intermediate type is recomputed.
    bf16 first converts the graph to opset 22 when it is older (bfloat16 Conv/pooling need it).
    """
    if precision not in _ONNX_TYPES:
        raise ExportError(f"precision {precision!r}: expected fp16 or bf16")
    target = _ONNX_TYPES[precision]
    model = onnx.ModelProto()
    model.CopyFrom(model_proto)
    opset = _opset(model)
    if precision == "bf16" and opset < BF16_OPSET:
        # Conv, pooling and Sub accept bfloat16 only from opset 22 (float16 since opset 1).
        try:
            model = version_converter.convert_version(model, BF16_OPSET)
        except Exception as e:
            raise ExportError(
                f"bf16 needs opset {BF16_OPSET}; converting from {opset} failed ({_first_line(e)})"
            ) from None
    graph = model.graph
    _cast_graph(graph, precision)
    for function in model.functions:  # local functions, if the exporter left any
        _cast_nodes(function.node, precision)

    def rename(old: str, new: str) -> None:
        for node in graph.node:
            for io in (node.input, node.output):
                for i, name in enumerate(io):
                    if name == old:
                        io[i] = new

    prologue = []
    for inp in graph.input:
        if inp.type.tensor_type.elem_type == TensorProto.FLOAT:
            inner = f"{inp.name}_{precision}"
            rename(inp.name, inner)
            prologue.append(helper.make_node("Cast", [inp.name], [inner], to=target))
    for out in graph.output:
        if out.type.tensor_type.elem_type == TensorProto.FLOAT:
            inner = f"{out.name}_{precision}"
            rename(out.name, inner)
            graph.node.append(helper.make_node("Cast", [inner], [out.name], to=TensorProto.FLOAT))
    for i, node in enumerate(prologue):
        graph.node.insert(i, node)
    del graph.value_info[:]
    _set_metadata(model, {PREFIX + "precision": precision})
    try:
        model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
        onnx.checker.check_model(model, full_check=True)  # full: checks every op's types
    except Exception as e:
        raise ExportError(f"the {precision} graph is invalid: {_first_line(e)}") from None
    return model


# -- reading and checking exported files ------------------------------------------------------


def read_metadata(onnx_path: str | os.PathLike) -> dict:
    """The `sportsfusion.*` metadata, parsed: classes (list), arch (dict), frames_per_clip,
    frame_spacing, input_size (ints), precision (str)."""
    path = Path(onnx_path)
    if not path.is_file():
        raise ExportError(f"{path}: ONNX file not found")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as e:
        raise ExportError(f"{path}: not a readable ONNX file ({_first_line(e)})") from None
    props = {p.key: p.value for p in proto.metadata_props}
    missing = [k for k in METADATA_KEYS if k not in props]
    if missing:
        raise ExportError(f"{path}: not a SportsFusion ONNX export (no {missing[0]} metadata)")
    out = {}
    try:
        for key in METADATA_KEYS:
            short, value = key[len(PREFIX) :], props[key]
            out[short] = (
                json.loads(value)
                if short in _JSON_KEYS
                else int(value)
                if short in _INT_KEYS
                else value
            )
    except ValueError as e:
        raise ExportError(f"{path}: bad {key} metadata ({_first_line(e)})") from None
    return out


def onnxruntime_session(onnx_path: str | os.PathLike, providers=("CPUExecutionProvider",)):
    """An onnxruntime session (CPU by default); failures are one-line ExportErrors."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only
    try:
        return ort.InferenceSession(str(onnx_path), options, providers=list(providers))
    except Exception as e:
        raise ExportError(f"{onnx_path}: onnxruntime cannot load it ({_first_line(e)})") from None


def random_clips(batch: int, meta: dict, rng: np.random.Generator) -> np.ndarray:
    size = meta["input_size"]
    shape = (batch, meta["frames_per_clip"], size, size, 3)
    return rng.integers(0, 256, shape, dtype=np.uint8)


def check_batches(batch: int, trials: int) -> list[int]:
    """`trials` batch sizes from `batch` upwards, skipping the traced one (proves the axis)."""
    sizes, b = [], max(1, batch)
    while len(sizes) < trials:
        if b != EXPORT_BATCH:
            sizes.append(b)
        b += 1
    return sizes


def compare_with_torch(
    model: nn.Module,
    onnx_path: str | os.PathLike,
    *,
    batch: int = 2,
    trials: int = 2,
    seed: int | None = None,
) -> float:
    """Largest |onnxruntime - pytorch| over the probabilities of fresh random uint8 clips.

    Trial i runs `check_batches(batch, trials)[i]` clips: never the batch the export traced, so a
    match also proves the dynamic batch axis. seed=None draws fresh clips every call.
    """
    meta = read_metadata(onnx_path)
    session = onnxruntime_session(onnx_path)
    rng = np.random.default_rng(seed)
    was_training = model.training
    wrapper = ProbsModel(model).eval()  # eval() reaches the model too
    worst = 0.0
    try:
        for b in check_batches(batch, trials):
            clips = random_clips(b, meta, rng)
            (got,) = session.run([OUTPUT], {INPUT: clips})
            with reference_ops(), torch.no_grad():
                want = wrapper(torch.from_numpy(clips)).numpy()
            if got.shape != want.shape:
                raise ExportError(f"{onnx_path}: output {got.shape}, PyTorch gives {want.shape}")
            worst = max(worst, float(np.abs(got.astype(np.float64) - want).max()))
    finally:
        model.train(was_training)
    return worst
