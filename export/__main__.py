"""Export a trained model: `python -m sportsfusion.export {onnx,tensorrt} ...`.

    python -m sportsfusion.export onnx --checkpoint runs/slow/last.pt --out slow.onnx
    python -m sportsfusion.export tensorrt --onnx slow.onnx --out slow.engine --fp16

`onnx` rebuilds the model from its checkpoint (several checkpoints: their CNN average), writes the
ONNX file (checked by onnx.checker) and prints the largest difference between onnxruntime and
PyTorch on random clips. `tensorrt` builds an engine from that file and prints the largest
difference between TensorRT and onnxruntime. Bad input ends in one `error:` line, exit 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from sportsfusion.cli import fail, setup_logging

PRECISIONS = ("fp32", "fp16", "bf16")  # the same as onnx.PRECISIONS, without importing onnx
EXPORT_MISSING = "needs onnx, onnxruntime and onnxscript: run `pip install -e .[export]` ({})"

log = logging.getLogger("sportsfusion.export")


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m sportsfusion.export",
        description="Export a trained SportsFusion model to ONNX or a TensorRT engine.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="{onnx,tensorrt}")

    o = sub.add_parser(
        "onnx",
        help="checkpoint -> ONNX (uint8 clips in, class probabilities out)",
        description="Export a checkpoint to ONNX, run the checker and compare with PyTorch.",
    )
    o.add_argument(
        "--checkpoint",
        nargs="+",
        required=True,
        help="trained checkpoint (several: export their CNN average)",
    )
    o.add_argument("--out", type=Path, required=True, help="ONNX file to write")
    o.add_argument(
        "--opset",
        type=int,
        default=18,
        help="ONNX opset (default %(default)s; bf16 graphs are raised to 22)",
    )
    o.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="fp32",
        help="compute type inside the graph, input stays uint8 and output float32 "
        "(default %(default)s)",
    )
    o.add_argument(
        "--check-batch",
        type=int,
        default=3,
        help="compare with PyTorch on random clips of this batch size and the next "
        "(default %(default)s; 0 skips)",
    )

    t = sub.add_parser(
        "tensorrt",
        help="ONNX -> TensorRT engine (needs tensorrt and a CUDA GPU)",
        description="Build a TensorRT engine from an exported ONNX file and check it against "
        "onnxruntime.",
    )
    t.add_argument("--onnx", type=Path, required=True, help="file from the onnx command")
    t.add_argument("--out", type=Path, required=True, help="engine file to write")
    prec = t.add_mutually_exclusive_group()
    prec.add_argument(
        "--fp16",
        dest="precision",
        action="store_const",
        const="fp16",
        help="fp16 engine (default fp32)",
    )
    prec.add_argument(
        "--bf16",
        dest="precision",
        action="store_const",
        const="bf16",
        help="bf16 engine (default fp32)",
    )
    t.set_defaults(precision="fp32")
    t.add_argument("--tf32", action="store_true", help="let fp32 layers use TF32 tensor cores")
    t.add_argument(
        "--min-batch",
        type=int,
        default=1,
        help="smallest batch the engine takes (default %(default)s)",
    )
    t.add_argument(
        "--opt-batch",
        type=int,
        default=8,
        help="batch the kernels are tuned for (default %(default)s)",
    )
    t.add_argument(
        "--max-batch",
        type=int,
        default=32,
        help="largest batch the engine takes (default %(default)s)",
    )
    t.add_argument(
        "--timing-cache",
        type=Path,
        default=None,
        help="timing cache to load and update (default OUT.timing.cache)",
    )
    t.add_argument(
        "--workspace-gib",
        type=float,
        default=4.0,
        help="builder workspace limit (default %(default)s)",
    )
    t.add_argument(
        "--no-check", dest="check", action="store_false", help="skip the onnxruntime comparison"
    )
    return p


def _load_models(paths: list[str]):
    from sportsfusion.checkpoint import load_checkpoint
    from sportsfusion.models import CNNAverage, arch_of

    loaded = [load_checkpoint(p) for p in paths]
    classes = loaded[0][1]["classes"]
    for path, (_, state) in zip(paths[1:], loaded[1:]):
        if list(state["classes"]) != list(classes):
            raise ValueError(f"{path}: its classes differ from {paths[0]}'s: cannot average them")
    if len(loaded) == 1:
        model, state = loaded[0]
        return model, list(classes), state["arch"]
    model = CNNAverage([m for m, _ in loaded]).eval()
    return model, list(classes), arch_of(model)


def run_onnx(args) -> int:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as e:
        raise ImportError(EXPORT_MISSING.format(e)) from None
    from sportsfusion.export.onnx import check_batches, compare_with_torch, export_onnx

    if args.check_batch < 0:
        raise ValueError(f"--check-batch {args.check_batch}: expected 0 or more")
    model, classes, arch = _load_models(args.checkpoint)
    log.info("exporting %s (%d classes) to %s", arch["name"], len(classes), args.out)
    path = export_onnx(
        model, classes, args.out, opset=args.opset, precision=args.precision, arch=arch
    )
    if args.check_batch:
        sizes = check_batches(args.check_batch, trials=2)
        try:
            diff = compare_with_torch(model, path, batch=args.check_batch, trials=len(sizes))
        except Exception as e:
            if args.precision == "fp32":
                raise
            # onnxruntime's CPU provider has fp16 kernels for most ops here, bf16 for few
            why = " ".join(str(e).split())[:200]
            print(f"no comparison: onnxruntime CPU cannot run this {args.precision} graph ({why})")
        else:
            print(
                f"max |onnxruntime - pytorch| = {diff:.1e} on {sum(sizes)} random clips "
                f"(batches {', '.join(map(str, sizes))}; {args.precision} graph)"
            )
    print(path)
    return 0


def run_tensorrt(args) -> int:
    from sportsfusion.export.tensorrt import (
        build_engine,
        check_against_onnxruntime,
        import_tensorrt,
    )

    import_tensorrt()  # first, and before onnx/torch: without it, say how to install it
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as e:
        raise ImportError(EXPORT_MISSING.format(e)) from None
    engine = build_engine(
        args.onnx,
        args.out,
        precision=args.precision,
        min_batch=args.min_batch,
        opt_batch=args.opt_batch,
        max_batch=args.max_batch,
        timing_cache=args.timing_cache,
        workspace_gib=args.workspace_gib,
        tf32=args.tf32,
    )
    if args.check:
        batches = tuple(sorted({args.min_batch, args.max_batch}))
        diff = check_against_onnxruntime(engine, args.onnx, batches)
        print(
            f"max |tensorrt - onnxruntime| = {diff:.1e} on {sum(batches)} random clips "
            f"({args.precision} engine, batches {', '.join(map(str, batches))})"
        )
    print(engine)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    setup_logging()
    try:
        return run_onnx(args) if args.command == "onnx" else run_tensorrt(args)
    except (ImportError, ValueError, RuntimeError, OSError) as e:
        # CheckpointError is a ValueError; ExportError and TensorRTMissing are RuntimeErrors
        return fail(e)


if __name__ == "__main__":
    sys.exit(main())
