"""One interface over the three ways to run a trained model: TensorRT, ONNX Runtime, PyTorch.

    classifier = load_classifier("model.onnx")          # runtime picked by the file
    probs = classifier(clips)   # uint8 (B, T, H, W, 3) -> float32 (B, classes) probabilities

`.engine`/`.plan` -> TensorRT, `.onnx` -> ONNX Runtime, `.pt` checkpoint -> PyTorch. Every
classifier carries the clip geometry it expects (frames_per_clip, frame_spacing, input_size)
and the class names, so a caller (sportsfusion.classify) never needs the training config.
Failures are one-line exceptions: `RuntimeMissing` (a package to install) or `ModelFileError`.
"""

from __future__ import annotations

import abc
import os
import zipfile
from pathlib import Path

import numpy as np

RUNTIMES = ("auto", "tensorrt", "onnxruntime", "torch")
DEVICES = ("auto", "cpu", "cuda")
SUFFIXES = {".engine": "tensorrt", ".plan": "tensorrt", ".onnx": "onnxruntime"}
TORCH_SUFFIXES = (".pt", ".pth", ".ckpt")


class RuntimeMissing(RuntimeError):
    """A runtime's package is not installed; the message says what to install (one line)."""


class ModelFileError(ValueError):
    """The model file is missing, unreadable, or does not fit the runtime asked for."""


class Classifier(abc.ABC):
    """What every runtime provides; `__call__` maps uint8 clips to probabilities."""

    name: str  # runtime and execution provider, e.g. "onnxruntime:CPUExecutionProvider"
    classes: list[str]
    frames_per_clip: int
    frame_spacing: int
    input_size: int

    @property
    def span(self) -> int:
        """Consecutive frames one clip covers."""
        return (self.frames_per_clip - 1) * self.frame_spacing + 1

    @abc.abstractmethod
    def __call__(self, clips) -> np.ndarray:
        """(B, T, S, S, 3) uint8 -> (B, classes) float32 probabilities."""

    def _check(self, clips, keep_tensor: bool = False):
        """Validated clips: a contiguous numpy array, or the torch tensor itself if kept."""
        tensor = hasattr(clips, "cpu")
        if tensor and not keep_tensor:
            clips, tensor = clips.cpu().numpy(), False
        clips = clips if tensor else np.ascontiguousarray(clips)
        want = (self.frames_per_clip, self.input_size, self.input_size, 3)
        dtype = str(clips.dtype).removeprefix("torch.")
        if clips.ndim != 5 or tuple(clips.shape[1:]) != want or dtype != "uint8":
            raise ValueError(
                f"{self.name}: expected uint8 clips (B, {', '.join(map(str, want))}), "
                f"got {dtype} {tuple(clips.shape)}"
            )
        return clips


def _cores() -> int:
    # Cores this process may use (a container or taskset can grant fewer than the machine has).
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def _one_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


class OnnxClassifier(Classifier):
    def __init__(self, path: Path, device: str):
        try:
            import onnxruntime as ort

            from sportsfusion.export.onnx import read_metadata
        except ImportError as e:
            raise RuntimeMissing(
                f"the onnxruntime runtime needs {e.name}: pip install -e .[export]"
            ) from None
        available = ort.get_available_providers()
        has_cuda = "CUDAExecutionProvider" in available
        if device == "cuda" and not has_cuda:
            raise RuntimeMissing(
                "onnxruntime has no CUDAExecutionProvider here: "
                "pip install onnxruntime-gpu (or use --device cpu)"
            )
        providers = ["CPUExecutionProvider"]
        if has_cuda and device != "cpu":
            providers.insert(0, "CUDAExecutionProvider")
        try:
            meta = read_metadata(path)
            options = ort.SessionOptions()
            options.intra_op_num_threads = _cores()
            options.inter_op_num_threads = 1  # one clip batch at a time: no parallel graph branches
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            self.session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as e:  # protobuf, ORT and metadata errors all end the same way
            raise ModelFileError(
                f"{path}: not a usable SportsFusion ONNX model ({_one_line(e)})"
            ) from None
        self.classes = list(meta["classes"])
        self.frames_per_clip = int(meta["frames_per_clip"])
        self.frame_spacing = int(meta["frame_spacing"])
        self.input_size = int(meta["input_size"])
        self.name = f"onnxruntime:{self.session.get_providers()[0]}"

    def __call__(self, clips) -> np.ndarray:
        (probs,) = self.session.run(["probs"], {"clips": self._check(clips)})
        return probs.astype(np.float32, copy=False)


class TorchClassifier(Classifier):
    """Eager PyTorch on CPU; on CUDA bf16 autocast and (optionally) one CUDA graph per batch
    size, which removes the per-layer launch overhead that dominates small-batch inference."""

    def __init__(self, path: Path, device: str, cuda_graphs: bool):
        import torch

        from sportsfusion.checkpoint import CheckpointError, load_checkpoint

        if device == "cuda" and not torch.cuda.is_available():
            raise RuntimeMissing("--device cuda: no CUDA device is available (use --device cpu)")
        try:
            model, state = load_checkpoint(path)
        except CheckpointError as e:
            raise ModelFileError(str(e)) from None
        self.device = torch.device(
            "cuda" if device != "cpu" and torch.cuda.is_available() else "cpu"
        )
        self.model = model.to(self.device)
        if self.device.type == "cuda":  # the layout the fused stem writes and cuDNN reads fastest
            from sportsfusion.models import to_channels_last

            to_channels_last(self.model)
        self.classes = list(state["classes"])
        self.frames_per_clip, self.frame_spacing = model.frames_per_clip, model.frame_spacing
        self.input_size = model.input_size
        self.cuda_graphs = cuda_graphs and self.device.type == "cuda"
        self.graphs: dict[tuple, tuple] = {}  # clip shape -> (graph, static input, static output)
        self.name = f"torch:{self.device.type}" + (":cuda-graphs" if self.cuda_graphs else "")

    def _forward(self, x):
        import torch

        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.device.type == "cuda"):
            # softmax of the logits (or of CNNAverage's log-probabilities) = probabilities
            return self.model(x).float().softmax(1)

    def _graphed(self, x):
        import torch

        shape = tuple(x.shape)
        if shape not in self.graphs:
            static_in = torch.empty(shape, dtype=torch.uint8, device=self.device)
            # Warm-up on a side stream (cuDNN autotuning, lazy allocations) must precede capture.
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(3):
                    self._forward(static_in)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_out = self._forward(static_in)
            self.graphs[shape] = (graph, static_in, static_out)
        graph, static_in, static_out = self.graphs[shape]
        static_in.copy_(x)
        graph.replay()
        return static_out

    def __call__(self, clips) -> np.ndarray:
        import torch

        x = torch.as_tensor(self._check(clips, keep_tensor=True))  # no copy for numpy input
        with torch.no_grad():
            if self.cuda_graphs:
                return self._graphed(x).cpu().numpy()  # .cpu() copies out of the static buffer
            return self._forward(x.to(self.device)).cpu().numpy()


class TensorRTClassifier(Classifier):
    def __init__(self, path: Path, device: str):
        import importlib.util

        try:
            from sportsfusion.export import tensorrt as trt_export
        except ImportError as e:
            raise RuntimeMissing(
                f"the tensorrt runtime needs {e.name}: pip install -e .[tensorrt]"
            ) from None
        missing = trt_export.TENSORRT_MISSING
        if importlib.util.find_spec("tensorrt") is None:
            raise RuntimeMissing(missing)
        if device == "cpu":
            raise ModelFileError(f"{path}: TensorRT engines run on CUDA only (drop --device cpu)")
        try:
            self.runner = trt_export.TensorRTRunner(path, device="cuda")
        except (ImportError, getattr(trt_export, "TensorRTMissing", ImportError)):
            raise RuntimeMissing(missing) from None
        except Exception as e:  # deserialisation, sidecar JSON, no CUDA device: one line each
            raise ModelFileError(f"{path}: not a usable TensorRT engine ({_one_line(e)})") from None
        r = self.runner
        self.classes = list(r.classes)
        self.frames_per_clip, self.frame_spacing = int(r.frames_per_clip), int(r.frame_spacing)
        self.input_size = int(r.input_size)
        self.name = "tensorrt:cuda"

    def __call__(self, clips) -> np.ndarray:
        # torch tensors (CUDA ones from a GPU decoder) go to the engine without a host round trip
        return np.asarray(self.runner(self._check(clips, keep_tensor=True)), dtype=np.float32)


def runtime_for(path: Path) -> str:
    """The runtime a model file needs, from its suffix (or, for odd suffixes, its content)."""
    suffix = path.suffix.lower()
    if suffix in SUFFIXES:
        return SUFFIXES[suffix]
    if suffix in TORCH_SUFFIXES or zipfile.is_zipfile(path):  # torch.save writes a zip archive
        return "torch"
    raise ModelFileError(
        f"{path}: cannot tell which runtime runs this file "
        "(expected .onnx, .engine/.plan or a .pt checkpoint)"
    )


def load_classifier(
    path: str | os.PathLike, runtime: str = "auto", device: str = "auto", cuda_graphs: bool = True
) -> Classifier:
    """Open `path` with `runtime` ("auto": by file type) on `device` ("auto": CUDA if usable)."""
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime {runtime!r}: expected one of {', '.join(RUNTIMES)}")
    if device not in DEVICES:
        raise ValueError(f"device {device!r}: expected one of {', '.join(DEVICES)}")
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: model file not found")
    fits = runtime_for(path)
    if runtime != "auto" and runtime != fits:
        raise ModelFileError(
            f"{path}: runtime {runtime} cannot run this file; it needs the {fits} runtime "
            "(use --runtime auto, or export the model in the matching format)"
        )
    if fits == "tensorrt":
        return TensorRTClassifier(path, device)
    if fits == "onnxruntime":
        return OnnxClassifier(path, device)
    return TorchClassifier(path, device, cuda_graphs)


__all__ = [
    "DEVICES",
    "RUNTIMES",
    "Classifier",
    "ModelFileError",
    "RuntimeMissing",
    "load_classifier",
    "runtime_for",
]
