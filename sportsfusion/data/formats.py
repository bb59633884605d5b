"""Data set layouts: UCF-101, Sports-1M, a plain CSV, and `auto` detection.

Every reader returns a `DatasetIndex`: class names plus train and test lists of `VideoEntry`.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class VideoEntry:
    path: str  # absolute path of the video file
    labels: tuple[int, ...]  # class indices; several for Sports-1M multi-label videos


@dataclass
class DatasetIndex:
    classes: list[str]  # class names, index = label
    train: list[VideoEntry]
    test: list[VideoEntry]
    format: str  # "ucf101" | "sports1m" | "csv"
    root: str
    missing: int = 0  # listed videos with no local file (skipped and counted)
    notes: list[str] = field(default_factory=list)  # one-line remarks for the run summary
