"""Hit@k and video scores (paper-facts §5), multi-label aware."""

import numpy as np

from sportsfusion.metrics import confusion_matrix, hit_at_k, per_class_accuracy, video_scores


def test_hit_at_k_counts_any_true_label_in_the_top_k():
    probs = np.array([[0.5, 0.3, 0.2], [0.1, 0.2, 0.7], [0.4, 0.35, 0.25]])
    labels = [(0,), (1,), (1, 2)]
    assert hit_at_k(probs, labels, 1) == 1 / 3
    assert hit_at_k(probs, labels, 2) == 1.0
    assert hit_at_k(probs, labels, 5) == 1.0  # k above the class count means all classes


def test_video_scores_average_clip_probabilities():
    probs = np.array([[1.0, 0.0], [0.0, 1.0], [0.2, 0.8]])
    scores = video_scores(probs, np.array([0, 0, 2]), 3)
    np.testing.assert_allclose(scores[0], [0.5, 0.5])
    assert np.isnan(scores[1]).all()
    np.testing.assert_allclose(scores[2], [0.2, 0.8])


def test_per_class_accuracy_and_confusion():
    scores = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8]])
    labels = [(0,), (1,), (1,)]
    np.testing.assert_allclose(per_class_accuracy(scores, labels, 2), [1.0, 0.5])
    assert confusion_matrix(scores, labels, 2).tolist() == [[1, 0], [1, 1]]
