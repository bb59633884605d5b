"""Build and run TensorRT engines from the ONNX export (TensorRT 10 and 11 Python API).

    build_engine("model.onnx", "model.engine", precision="fp16", max_batch=32) -> Path
    runner = TensorRTRunner("model.engine"); probs = runner(clips)   # uint8 clips -> numpy probs
    check_against_onnxruntime("model.engine", "model.onnx")           -> largest |difference|

Precision: networks are strongly typed (TensorRT 11 builds no other kind; on 10.x the
STRONGLY_TYPED flag asks for it), so every layer runs in the type the ONNX graph gives it. fp16 and
bf16 engines are therefore built from a cast copy of the graph (`onnx.cast_precision`), never with
the removed precision builder flags. fp32 engines clear the TF32 flag unless `tf32=True`: fp32
then means fp32, and the engine matches onnxruntime to float32 rounding.

Beside the engine: `<engine>.json` (precision, batch profile, TensorRT version, ONNX source and
the sportsfusion metadata the runtimes need) and, unless another path is given, the timing cache
`<engine>.timing.cache`, loaded at the start of every build and saved at the end, so rebuilding on
the same GPU skips most kernel timing.

`tensorrt` is imported lazily: without it everything here raises TensorRTMissing, whose message
is TENSORRT_MISSING.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from pathlib import Path

import numpy as np

# The ONNX side (onnx, torch) is imported inside the functions: the missing-tensorrt message must
# not wait for, or depend on, those imports.
INPUT, OUTPUT = "clips", "probs"  # the file contract (sportsfusion.export)
# IExecutionContext::setTensorAddress requires every I/O tensor address to be 256-byte aligned
# (it rejects others). A chunk of a batch is not: one 178x178 frame is 95,052 bytes.
TENSOR_ALIGNMENT = 256

TENSORRT_MISSING = (
    "tensorrt is not installed: run `pip install -e .[tensorrt]` on a machine with CUDA "
    "(PyPI's tensorrt package downloads its libraries from NVIDIA's host at install time)"
)

log = logging.getLogger("sportsfusion.export")


class TensorRTMissing(RuntimeError):
    """`tensorrt` cannot be imported (the message is TENSORRT_MISSING)."""


def import_tensorrt():
    try:
        import tensorrt
    except ImportError:
        raise TensorRTMissing(TENSORRT_MISSING) from None
    return tensorrt


def engine_json(engine_path: str | os.PathLike) -> Path:
    return Path(f"{engine_path}.json")


def default_timing_cache(engine_path: str | os.PathLike) -> Path:
    return Path(f"{engine_path}.timing.cache")


def _logger(trt):
    return trt.Logger(trt.Logger.WARNING)


def _parse_errors(parser) -> str:
    out = []
    for i in range(parser.num_errors):
        error = parser.get_error(i)
        where = ""
        if hasattr(error, "node_operator") and error.node_operator():
            where = f"{error.node_operator()} node {error.node_name() or error.node()}: "
        out.append(where + " ".join(str(error.desc()).split()))
    return "; ".join(out) or "unknown parser error"


def _parsed_network(trt, builder, logger, source: Path, onnx_path: Path):
    """The ONNX graph as a TensorRT network (and its parser, which must outlive it)."""
    from sportsfusion.export.onnx import ExportError

    flags = 0
    strongly_typed = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    if strongly_typed is not None:  # 10.x: opt in; 11.x: always strongly typed
        flags |= 1 << int(strongly_typed)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(source)):  # from a file: external weights resolve
        raise ExportError(f"{onnx_path}: TensorRT cannot parse it ({_parse_errors(parser)})")
    return network, parser


def _builder_config(trt, builder, shapes, workspace_gib: float, tf32: bool, cache_path: Path):
    """Workspace, TF32 off unless asked, one optimisation profile over the (min, opt, max) input
    `shapes`, and the timing cache read from `cache_path` (a fresh one if it is another GPU's)."""
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * 2**30))
    tf32_flag = getattr(trt.BuilderFlag, "TF32", None)
    if tf32_flag is not None and not tf32:
        config.clear_flag(tf32_flag)
    profile = builder.create_optimization_profile()
    profile.set_shape(INPUT, *shapes)
    config.add_optimization_profile(profile)
    blob = cache_path.read_bytes() if cache_path.is_file() else b""
    cache = config.create_timing_cache(blob)
    if not config.set_timing_cache(cache, False):  # made by another GPU / TensorRT version
        log.warning("%s: timing cache does not match this GPU; starting a new one", cache_path)
        config.set_timing_cache(config.create_timing_cache(b""), False)
    return config


def build_engine(
    onnx_path: str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    precision: str = "fp32",
    min_batch: int = 1,
    opt_batch: int = 8,
    max_batch: int = 32,
    timing_cache: str | os.PathLike | None = None,
    workspace_gib: float = 4.0,
    tf32: bool = False,
) -> Path:
    """Build a serialized engine for batches min_batch..max_batch (tuned for opt_batch)."""
    trt = import_tensorrt()
    import onnx

    from sportsfusion.export.onnx import (
        PRECISIONS,
        ExportError,
        cast_precision,
        read_metadata,
        save_model,
    )

    onnx_path, out_path = Path(onnx_path), Path(out_path)
    if precision not in PRECISIONS:
        raise ExportError(f"precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    if not 1 <= min_batch <= opt_batch <= max_batch:
        raise ExportError(
            f"batches must satisfy 1 <= min <= opt <= max, got {min_batch}, {opt_batch}, "
            f"{max_batch}"
        )
    meta = read_metadata(onnx_path)
    if meta["precision"] not in ("fp32", precision):
        raise ExportError(
            f"{onnx_path} is already a {meta['precision']} graph: build it as {meta['precision']} "
            "or export fp32"
        )
    cache_path = Path(timing_cache) if timing_cache else default_timing_cache(out_path)
    frames, size = meta["frames_per_clip"], meta["input_size"]

    with tempfile.TemporaryDirectory(prefix="sportsfusion-trt-") as tmp:
        source = onnx_path
        if precision != meta["precision"]:
            source = Path(tmp) / f"model.{precision}.onnx"
            save_model(cast_precision(onnx.load(str(onnx_path)), precision), source)

        logger = _logger(trt)
        builder = trt.Builder(logger)
        network, _parser = _parsed_network(trt, builder, logger, source, onnx_path)
        shapes = [(b, frames, size, size, 3) for b in (min_batch, opt_batch, max_batch)]
        config = _builder_config(trt, builder, shapes, workspace_gib, tf32, cache_path)

        log.info(
            "building a %s TensorRT engine from %s (batch %d..%d)",
            precision,
            onnx_path,
            min_batch,
            max_batch,
        )
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise ExportError(f"{onnx_path}: TensorRT could not build an engine (see its log)")
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_bytes(memoryview(serialized))
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        cache_path.write_bytes(memoryview(config.get_timing_cache().serialize()))

    record = {
        "precision": precision,
        "tf32": bool(tf32 and precision == "fp32"),
        "min_batch": min_batch,
        "opt_batch": opt_batch,
        "max_batch": max_batch,
        "tensorrt_version": trt.__version__,
        "onnx": str(onnx_path.resolve()),
        "timing_cache": str(cache_path.resolve()),
        **{k: meta[k] for k in ("classes", "frames_per_clip", "frame_spacing", "input_size")},
        "arch": meta["arch"],
    }
    engine_json(out_path).write_text(json.dumps(record, indent=2) + "\n")
    return out_path


def _empty_aligned(shape, dtype, device):
    """An uninitialized contiguous tensor whose data_ptr() is TENSOR_ALIGNMENT-aligned, on any
    allocator: a view into a byte buffer over-allocated by the alignment."""
    import torch

    shape = tuple(shape)
    nbytes = math.prod(shape) * dtype.itemsize
    buf = torch.empty(nbytes + TENSOR_ALIGNMENT, dtype=torch.uint8, device=device)
    skip = -buf.data_ptr() % TENSOR_ALIGNMENT
    return buf[skip : skip + nbytes].view(dtype).view(shape)


def _aligned(x):
    """x itself where its address is TENSOR_ALIGNMENT-aligned, else an aligned copy."""
    if x.is_contiguous() and x.data_ptr() % TENSOR_ALIGNMENT == 0:
        return x
    return _empty_aligned(x.shape, x.dtype, x.device).copy_(x)


class TensorRTRunner:
    """Runs an engine on uint8 clips (torch CUDA tensors or numpy) and returns numpy probs.

    Work is enqueued on the current torch CUDA stream, so it orders with the caller's own torch
    work (a DALI or torch decoder feeding it); `run` returns the probs as a CUDA tensor.
    """

    def __init__(self, engine_path: str | os.PathLike, device: str = "cuda"):
        trt = import_tensorrt()
        import torch

        from sportsfusion.export.onnx import ExportError

        engine_path = Path(engine_path)
        self.device = torch.device(device)
        if self.device.type != "cuda" or not torch.cuda.is_available():
            raise ExportError(f"TensorRT engines run on a CUDA device, got {device!r}")
        if self.device.index is None:
            self.device = torch.device("cuda", torch.cuda.current_device())
        record_path = engine_json(engine_path)
        if not engine_path.is_file() or not record_path.is_file():
            raise ExportError(f"{engine_path}: engine or its {record_path.name} not found")
        try:
            self.record = json.loads(record_path.read_text())
        except ValueError as e:
            raise ExportError(f"{record_path}: not readable JSON ({e})") from None
        self.classes = list(self.record["classes"])
        self.frames_per_clip = int(self.record["frames_per_clip"])
        self.frame_spacing = int(self.record["frame_spacing"])
        self.input_size = int(self.record["input_size"])
        self.precision = self.record["precision"]

        self._logger = _logger(trt)
        self._runtime = trt.Runtime(self._logger)
        with torch.cuda.device(self.device):
            self.engine = self._runtime.deserialize_cuda_engine(engine_path.read_bytes())
            if self.engine is None:
                raise ExportError(
                    f"{engine_path}: TensorRT cannot deserialize it (built by another TensorRT "
                    f"version or GPU? it says {self.record.get('tensorrt_version')})"
                )
            self.context = self.engine.create_execution_context()
        names = {self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)}
        if names != {INPUT, OUTPUT}:
            raise ExportError(f"{engine_path}: expected tensors {INPUT!r}, {OUTPUT!r}, got {names}")
        lo, _, hi = self.engine.get_tensor_profile_shape(INPUT, 0)
        self.min_batch, self.max_batch = int(lo[0]), int(hi[0])
        self._out_dtype = torch.from_numpy(
            np.empty(0, dtype=trt.nptype(self.engine.get_tensor_dtype(OUTPUT)))
        ).dtype

    def run(self, clips):
        """(B, T, H, W, 3) uint8 -> (B, classes) float32 probs on the engine's device."""
        import torch

        x = torch.as_tensor(clips)
        want = (self.frames_per_clip, self.input_size, self.input_size, 3)
        if x.dtype != torch.uint8 or x.dim() != 5 or tuple(x.shape[1:]) != want:
            raise ValueError(
                f"clips: expected uint8 (B, {', '.join(map(str, want))}), "
                f"got {x.dtype} {tuple(x.shape)}"
            )
        x = x.to(self.device, non_blocking=True).contiguous()
        outs = [self._run(x[i : i + self.max_batch]) for i in range(0, len(x), self.max_batch)]
        return torch.cat(outs) if len(outs) != 1 else outs[0]

    def _run(self, x):
        import torch

        from sportsfusion.export.onnx import ExportError

        b = x.shape[0]
        if b < self.min_batch:  # below the profile: pad with blank clips, drop their rows
            pad = x.new_zeros((self.min_batch - b, *x.shape[1:]))
            return self._run(torch.cat([x, pad]))[:b]
        with self._device_scope():
            if not self.context.set_input_shape(INPUT, tuple(x.shape)):
                raise ExportError(f"TensorRT rejects input shape {tuple(x.shape)}")
            x = _aligned(x)  # a chunk of a larger batch starts wherever the previous one ended
            out = _empty_aligned(
                self.context.get_tensor_shape(OUTPUT), self._out_dtype, self.device
            )
            for name, tensor in ((INPUT, x), (OUTPUT, out)):
                if not self.context.set_tensor_address(name, tensor.data_ptr()):
                    raise ExportError(
                        f"TensorRT rejected the address of {name!r} ({tensor.data_ptr():#x}, "
                        f"{tensor.dtype} {tuple(tensor.shape)}); see its log"
                    )
            # x and out were allocated on this stream: the caching allocator's stream order keeps
            # their memory valid until the enqueued work has run.
            if not self.context.execute_async_v3(self._stream_handle()):
                raise ExportError("TensorRT execution failed (see its log)")
        return out.float()

    # The CUDA-specific calls of _run (tests substitute them to run it on the CPU).
    def _device_scope(self):
        import torch

        return torch.cuda.device(self.device)

    def _stream_handle(self) -> int:
        import torch

        return torch.cuda.current_stream(self.device).cuda_stream

    def __call__(self, clips) -> np.ndarray:
        return self.run(clips).cpu().numpy()  # .cpu() waits for the stream


def check_against_onnxruntime(
    engine_path: str | os.PathLike,
    onnx_path: str | os.PathLike,
    batches: tuple[int, ...] | None = None,
    *,
    seed: int | None = None,
) -> float:
    """Largest |TensorRT - onnxruntime (CPU)| over probs of random clips; batches default to
    (1, the engine's max batch)."""
    from sportsfusion.export.onnx import onnxruntime_session, random_clips, read_metadata

    runner = TensorRTRunner(engine_path)
    meta = read_metadata(onnx_path)
    session = onnxruntime_session(onnx_path)
    rng = np.random.default_rng(seed)
    worst = 0.0
    for b in batches or (1, runner.max_batch):
        clips = random_clips(b, meta, rng)
        (want,) = session.run([OUTPUT], {INPUT: clips})
        got = runner(clips)
        worst = max(worst, float(np.abs(got.astype(np.float64) - want).max()))
    return worst
