"""The one place that chooses an implementation for each hot operation.

What this process can run: the compiled extension (`native_runs_on`) and Triton
(`triton_runs_on`), each checked once. A missing path is not an error: the package says once which
path it uses instead (the reference always works), and `--ops native|triton` then fails with one
line naming what is missing. These probes are constants to torch.compile: dynamo runs them once
while tracing instead of tracing into them, since it cannot trace importlib, a pybind11 call or
os.environ without breaking the graph.

Every op asks the same way: `candidates(device_type, reference, native=..., triton=...)` gives its
paths in the device's preference order (PREFERENCE), each None where it cannot run here; then
`choose` picks one. Order of choice: an explicit `impl=` argument, then `force_impl()` (the `--ops`
flag), then the SPORTSFUSION_OPS environment variable, then `auto`: the first available path in
that order. Each (op, path) pair is logged once, so a run always says which code it measured.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import logging
import os
from collections.abc import Callable, Iterator

import torch

IMPLS = ("auto", "reference", "triton", "native")

log = logging.getLogger("sportsfusion.ops")
_forced: str | None = None
_announced: set[tuple[str, str]] = set()

# ---- what this process can run


@functools.cache
def native_module():
    """`sportsfusion._C` (importing it registers torch.ops.sportsfusion.*), or None."""
    try:
        module = importlib.import_module("sportsfusion._C")
    except ImportError as exc:
        log.info(
            "sportsfusion.ops: native extension not available (%s); "
            "using Triton or the PyTorch reference",
            exc,
        )
        return None
    return module


@torch.compiler.assume_constant_result
def native_runs_on(device_type: str) -> bool:
    module = native_module()
    if module is None:
        return False
    return device_type == "cpu" or (device_type == "cuda" and module.with_cuda())


@functools.cache
def _triton_importable() -> bool:
    try:
        importlib.import_module("triton")
    except ImportError:
        log.info("sportsfusion.ops: triton not installed; Triton kernels unavailable")
        return False
    return True


@torch.compiler.assume_constant_result
def triton_interpreted() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


@torch.compiler.assume_constant_result
def triton_runs_on(device_type: str) -> bool:
    """Triton compiles for CUDA devices; on the CPU it runs only under its interpreter
    (TRITON_INTERPRET=1, which must be set before triton is first imported)."""
    if device_type == "cuda":
        return _triton_importable()
    return device_type == "cpu" and triton_interpreted() and _triton_importable()


# ---- the preference order, one table for every op

# `auto` takes the first path that runs, in the order measured fastest on that device.
# CUDA: the fused paths first (the issues' design, not yet measured on a GPU: see the README's
# fast-ops section). CPU: the C++ ops where built, measured side by side on the 2-core CI CPU
# (2026-12-01, one process, alternating, median of 7): fovea_context (32,10,178,178,3) 33x the
# reference, clip_to_input 4.5x, lrn_pool on slow fusion's conv1 output at batch 8 8.3x forward
# and 5.6x forward + backward; end to end at batch 8 multires slow fusion 1.50x forward and 1.21x
# per training step (single 1.20x, early 1.42x, late 1.20x, full-frame slow 1.66x forward).
# Triton last: on the CPU it runs only interpreted. Any other device: the reference alone.
# ONNX export forces the reference (export/onnx.reference_ops), whatever this table says.
PREFERENCE = {
    "cuda": ("native", "triton", "reference"),
    "cpu": ("native", "reference", "triton"),
}


def candidates(
    device_type: str,
    reference: Callable,
    *,
    native: Callable | None = None,
    triton: Callable | None = None,
    native_ok: bool = True,
    triton_ok: bool = True,
) -> dict[str, Callable | None]:
    """An op's paths for `device_type` in PREFERENCE order, for `choose`: `native` / `triton`
    where the op has that path at all (forcing a path it lacks runs its reference), each None
    here where the extension or Triton cannot run on this device, or `native_ok` / `triton_ok`
    says the path does not take this call (dtype, layout)."""
    paths: dict[str, Callable | None] = {"reference": reference}
    if native is not None:
        paths["native"] = native if native_ok and native_runs_on(device_type) else None
    if triton is not None:
        paths["triton"] = triton if triton_ok and triton_runs_on(device_type) else None
    order = PREFERENCE.get(device_type, ("reference",))
    return {name: paths[name] for name in order if name in paths}


# ---- choosing


class OpsUnavailableError(RuntimeError):
    """A forced implementation is not available here (one line, printed by the CLIs)."""


def _check(name: str, source: str) -> str:
    if name not in IMPLS:
        raise ValueError(f"{source}={name!r}: expected one of {', '.join(IMPLS)}")
    return name


def force_impl(name: str | None) -> None:
    """Force one implementation for every op (None returns to the environment / auto)."""
    global _forced
    _forced = None if name is None else _check(name, "--ops")


@contextlib.contextmanager
def forced_impl(name: str) -> Iterator[None]:
    """Force `name` inside the block (export traces the reference path), then restore."""
    previous = _forced
    force_impl(name)
    try:
        yield
    finally:
        force_impl(previous)


def active_impl() -> str:
    if _forced is not None:
        return _forced
    return _check(os.environ.get("SPORTSFUSION_OPS", "auto"), "SPORTSFUSION_OPS")


def choose(
    op: str,
    device_type: str,
    candidates: dict[str, Callable | None],
    impl: str | None = None,
) -> tuple[str, Callable]:
    """Pick `(name, fn)` for `op` on `device_type`.

    `candidates` maps impl name to a callable, or None when that path is not available for this
    device; it must contain "reference". Dict order is the preference order for `auto`.
    Forcing an implementation the op does not have at all (e.g. `native` for a Triton-only op)
    runs its reference; forcing one it has but cannot run here is an error.
    """
    want = _check(impl, "impl") if impl is not None else active_impl()
    if want not in candidates and want != "auto":
        want = "reference"
    if want == "auto":
        name = next(n for n, fn in candidates.items() if fn is not None)
    elif candidates.get(want) is not None:
        name = want
    else:
        hint = ""
        if want == "triton" and device_type == "cpu":
            hint = "; Triton runs on the CPU only under TRITON_INTERPRET=1"
        elif want == "native":
            hint = "; the extension is built by pip install --no-build-isolation -e ."
        raise OpsUnavailableError(
            f"{op}: implementation {want!r} is not available on {device_type} "
            f"(available: {', '.join(n for n, fn in candidates.items() if fn is not None)}{hint})"
        )
    # Under torch.compile the choice is traced once; logging there would break fullgraph=True.
    if (op, name) not in _announced and not torch.compiler.is_compiling():
        _announced.add((op, name))
        log.info("sportsfusion.ops: %s uses the %s path on %s", op, name, device_type)
    return name, candidates[name]
