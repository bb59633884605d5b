"""Checkpoints that survive a kill and load with `torch.load(weights_only=True)`.

A checkpoint is a plain dict: `model` (state dict), `optimizer`, `step`, `epoch`, `classes`
(names), `arch` (`sportsfusion.models.arch_of`'s record), `config` (the run's flags as a dict),
`rng`. This module is file I/O and state loading; the models know how to rebuild themselves.
Writes go to a temporary file in the same folder, then `os.replace`: a kill mid-write leaves the
previous checkpoint intact.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from sportsfusion.models import from_arch

REQUIRED = ("model", "arch", "classes")


class CheckpointError(ValueError):
    """One-line reason a checkpoint cannot be used (printed as-is by the CLIs)."""


def save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_checkpoint(path: str | os.PathLike) -> dict:
    """Load the dict safely (weights_only=True); every failure becomes a CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a corrupt file fails anywhere in the unpickler (struct.error, ...)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: not a readable checkpoint ({first})") from None
    if not isinstance(state, dict) or any(k not in state for k in REQUIRED):
        raise CheckpointError(
            f"{path}: not a SportsFusion checkpoint (needs {', '.join(REQUIRED)})"
        )
    return state


def load_state(model: torch.nn.Module, weights: dict, path, *, skip_prefixes=()) -> None:
    """Copy weights into `model`; a shape mismatch is a one-line CheckpointError."""
    own = model.state_dict()
    for key, value in weights.items():
        if key.startswith(tuple(skip_prefixes)):
            continue
        if key not in own:
            raise CheckpointError(f"{path}: unexpected weight {key!r} for this model")
        if own[key].shape != value.shape:
            raise CheckpointError(
                f"{path}: weight {key} has shape {tuple(value.shape)}, "
                f"model expects {tuple(own[key].shape)} (different model or input size?)"
            )
        own[key] = value
    missing = [k for k in own if k not in weights and not k.startswith(tuple(skip_prefixes))]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {len(missing)} weights, e.g. {missing[0]}")
    model.load_state_dict(own)


def load_checkpoint(path: str | os.PathLike) -> tuple[torch.nn.Module, dict]:
    """Rebuild the trained model from a checkpoint: returns (model in eval mode, the dict)."""
    state = read_checkpoint(path)
    try:
        model = from_arch(state["arch"])
    except (TypeError, ValueError, KeyError) as e:
        raise CheckpointError(f"{path}: bad architecture record {state['arch']!r} ({e})") from None
    load_state(model, state["model"], path)
    return model.eval(), state
