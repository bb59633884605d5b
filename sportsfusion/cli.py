"""What every command shares: logging that coexists with progress bars, one-line failures."""

from __future__ import annotations

import argparse
import logging
import os
import sys


def setup_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr, force=True)


def fail(error: BaseException, code: int = 2) -> int:
    """Bad input ends in one line on stderr and a non-zero exit, never a traceback."""
    message = " ".join(str(error).split()) or type(error).__name__
    print(f"error: {message}", file=sys.stderr)
    return code


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Each default once: not appended when the help already says it ("default ..."), nor when
    it is None (the help says what an absent flag means)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default is None or "default" in text:
            return text
        return super()._get_help_string(action)


def default_workers() -> int:
    """Loader / probe processes: the cores, up to 8."""
    return max(1, min(8, (os.cpu_count() or 2)))


def torch_device(name: str):
    """--device auto|cpu|cuda -> a torch.device; cuda without a GPU is a one-line error."""
    import torch  # here: the torch-free commands (prepare, synthetic) import this module too

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is available (use --device cpu)")
    return torch.device(name)
