"""Hit@k at clip and video level (paper-facts §5), multi-label aware.

A prediction hits when any of the sample's ground-truth labels is among its top k classes.
A video's score is the mean of its clips' class probabilities (and crops, with --crops 4);
clip hit@1 uses the centre crop of each clip only (our convention, §5).
"""

from __future__ import annotations

import numpy as np


def hit_at_k(probs: np.ndarray, labels: list[tuple[int, ...]], k: int) -> float:
    """probs (N, C); labels: N tuples of true classes -> fraction of rows hit in their top k."""
    if len(labels) == 0:
        return float("nan")
    k = min(k, probs.shape[1])
    top = np.argpartition(-probs, k - 1, axis=1)[:, :k]
    hits = [bool(set(row.tolist()) & set(lab)) for row, lab in zip(top, labels)]
    return float(np.mean(hits))


def video_scores(probs: np.ndarray, videos: np.ndarray, num_videos: int) -> np.ndarray:
    """Average the rows of `probs` (N, C) per video id -> (num_videos, C); absent videos NaN."""
    sums = np.zeros((num_videos, probs.shape[1]), dtype=np.float64)
    counts = np.zeros(num_videos, dtype=np.int64)
    np.add.at(sums, videos, probs)
    np.add.at(counts, videos, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts[:, None]


def per_class_accuracy(scores: np.ndarray, labels: list[tuple[int, ...]], num_classes: int):
    """Video hit@1 per class (a video counts for each of its labels); NaN for absent classes."""
    top1 = scores.argmax(1)
    hit, total = np.zeros(num_classes), np.zeros(num_classes)
    for pred, lab in zip(top1, labels):
        for c in lab:
            total[c] += 1
            hit[c] += pred in lab
    with np.errstate(invalid="ignore", divide="ignore"):
        return hit / total


def confusion_matrix(scores: np.ndarray, labels: list[tuple[int, ...]], num_classes: int):
    """Rows: first true label; columns: top-1 prediction; counts of videos."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    for pred, lab in zip(scores.argmax(1), labels):
        cm[lab[0], pred] += 1
    return cm
