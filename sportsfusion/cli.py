"""What every command shares: logging that coexists with progress bars, one-line failures."""

from __future__ import annotations

import argparse
import logging
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
