"""Export trained models (installed as `sportsfusion.export`): ONNX, TensorRT, and the runtimes
that run them. `python -m sportsfusion.export {onnx,tensorrt} ...`.

ONNX file contract (shared by every runtime): input `clips`, uint8 (batch, T, H, W, 3) as decoders
produce it; output `probs`, float32 (batch, classes); metadata_props under `sportsfusion.*` carry
the class names and the clip geometry (see `onnx.METADATA_KEYS`).
"""
