"""The confusion matrix: full as CSV, a PNG bounded to the MAX_PLOTTED_CLASSES most confused."""

import numpy as np
from PIL import Image

from sportsfusion.evaluate import MAX_PLOTTED_CLASSES, plot_confusion
from sportsfusion.metrics import most_confused, read_confusion_csv, write_confusion_csv

PLANTED = [(10, 300), (451, 7), (123, 124), (0, 486)]  # (true, predicted) heavy confusions


def synthetic(n, seed=0):
    rng = np.random.default_rng(seed)
    cm = rng.poisson(0.05, (n, n)) + np.diag(rng.integers(5, 30, n))
    for t, p in PLANTED if n > 486 else []:
        cm[t, p] += 40
    classes = [f'class {i}, "quoted"' if i % 97 == 0 else f"class_{i}" for i in range(n)]
    return {"confusion": cm.tolist(), "classes": classes, "video_hit@1": 0.5, "videos": cm.sum()}


def test_many_classes_plot_the_most_confused_on_a_bounded_png(tmp_path):
    m = synthetic(487)
    png = tmp_path / "eval.confusion.png"
    shown = plot_confusion(m, png, tmp_path / "eval.confusion.csv")
    assert len(shown) == MAX_PLOTTED_CLASSES and shown == sorted(shown)
    assert {c for pair in PLANTED for c in pair} <= set(shown)
    width, height = Image.open(png).size
    assert width <= 2500 and height <= 2500  # 20,694 x 20,634 before


def test_few_classes_plot_all(tmp_path):
    m = synthetic(MAX_PLOTTED_CLASSES)
    assert plot_confusion(m, tmp_path / "c.png") == list(range(MAX_PLOTTED_CLASSES))
    assert plot_confusion(synthetic(3), tmp_path / "c3.png") == [0, 1, 2]


def test_most_confused_ranks_off_diagonal_mass_ties_to_lower_index():
    cm = np.diag([100, 100, 100, 100, 100])
    cm[3, 1] = 5  # classes 1 and 3: 5 off-diagonal videos each
    cm[2, 4] = 1
    cm[0, 4] = 1  # classes 0 and 2: 1 each; class 4: 2
    assert most_confused(cm, 3).tolist() == [1, 3, 4]
    assert most_confused(cm, 4).tolist() == [0, 1, 3, 4]
    assert most_confused(cm, 9).tolist() == [0, 1, 2, 3, 4]


def test_csv_round_trips_the_full_matrix(tmp_path):
    m = synthetic(487)
    path = tmp_path / "eval.confusion.csv"
    write_confusion_csv(path, m["confusion"], m["classes"])
    classes, cm = read_confusion_csv(path)
    assert classes == m["classes"]
    np.testing.assert_array_equal(cm, np.array(m["confusion"]))
    header, first = path.read_text().splitlines()[:2]
    assert header.startswith('true \\ predicted,"class 0, ""quoted""",class_1,')
    assert first.startswith('"class 0, ""quoted""",')  # names quoted as CSV wants
