"""Hit@k at clip and video level (paper-facts §5), multi-label aware.

A prediction hits when any of the sample's ground-truth labels is among its top k classes.
A video's score is the mean of its clips' class probabilities (and crops, with --crops 4);
clip hit@1 uses the centre crop of each clip only (our convention, §5).
"""

from __future__ import annotations

import numpy as np


def hits_at_k(probs: np.ndarray, labels: list[tuple[int, ...]], k: int) -> list[bool]:
    """probs (N, C); labels: N tuples of true classes -> per row, whether one is in its top k."""
    k = min(k, probs.shape[1])
    top = np.argpartition(-probs, k - 1, axis=1)[:, :k]
    return [bool(set(row.tolist()) & set(lab)) for row, lab in zip(top, labels)]


def hit_at_k(probs: np.ndarray, labels: list[tuple[int, ...]], k: int) -> float:
    """probs (N, C); labels: N tuples of true classes -> fraction of rows hit in their top k."""
    if len(labels) == 0:
        return float("nan")
    return float(np.mean(hits_at_k(probs, labels, k)))


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


def most_confused(cm: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k classes with the most off-diagonal mass, in class order.

    A class's mass is the videos of it predicted as another class (its row) plus the videos of
    other classes predicted as it (its column); ties go to the lower class index. All classes
    when there are at most k.
    """
    cm = np.asarray(cm)
    n = cm.shape[0]
    if n <= k:
        return np.arange(n)
    off = cm.sum(1) + cm.sum(0) - 2 * np.diagonal(cm)
    rank = np.lexsort((np.arange(n), -off))  # most mass first, then lowest index
    return np.sort(rank[:k])


def write_confusion_csv(path, cm: np.ndarray, classes: list[str]) -> None:
    """The full confusion matrix as CSV: a header row `true \\ predicted,<class>,...`, then one
    row per true class: its name, then its video counts per predicted class."""
    import csv

    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["true \\ predicted", *classes])
        for name, row in zip(classes, np.asarray(cm).tolist()):
            w.writerow([name, *row])


def read_confusion_csv(path) -> tuple[list[str], np.ndarray]:
    """(classes, matrix) from a file written by `write_confusion_csv`."""
    import csv

    with open(path, newline="", encoding="utf-8") as f:
        header, *rows = list(csv.reader(f))
    cm = np.array([[int(x) for x in r[1:]] for r in rows], dtype=np.int64).reshape(len(rows), -1)
    return header[1:], cm
