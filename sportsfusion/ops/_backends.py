"""The one place that chooses an implementation for each hot operation.

Order of choice: an explicit `impl=` argument, then `force_impl()` (the `--ops` flag), then the
SPORTSFUSION_OPS environment variable, then `auto`: the first available fast path for the device
in the op's own preference order, falling back to the reference. Each (op, path) pair is logged
once, so a run always says which code it measured.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator

import torch

IMPLS = ("auto", "reference", "triton", "native")

log = logging.getLogger("sportsfusion.ops")
_forced: str | None = None
_announced: set[tuple[str, str]] = set()


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
