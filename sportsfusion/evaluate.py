"""Evaluate checkpoints: `python -m sportsfusion.evaluate --checkpoint CKPT [CKPT...] --data DIR`

Clip hit@1, video hit@1 and video hit@5 (paper-facts §5): N evenly spaced clips per video (and
with --crops 4 the paper's 4 crops/flips per clip); a video's score is the mean of its clips'
class probabilities; a hit when any of its labels is in the top k. Several checkpoints average
their probabilities clip by clip: the paper's "CNN average". Writes per-class accuracy, the
confusion matrix as CSV and a confusion PNG (at most 50 classes) beside the JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import torch

from sportsfusion import ops
from sportsfusion.checkpoint import CheckpointError, load_checkpoint
from sportsfusion.cli import HelpFormatter, default_workers, fail, setup_logging, torch_device
from sportsfusion.data.decode import BadVideo
from sportsfusion.data.formats import FORMATS, DatasetIndex, VideoEntry
from sportsfusion.data.loader import (
    SkipLog,
    clip_dataset,
    make_eval_loader,
    probe_split,
    resolve_data,
)
from sportsfusion.data.sampling import ClipDataset, clip_span
from sportsfusion.metrics import (
    confusion_matrix,
    hit_at_k,
    hits_at_k,
    most_confused,
    per_class_accuracy,
    video_scores,
    write_confusion_csv,
)
from sportsfusion.models import to_channels_last
from sportsfusion.ops._backends import OpsUnavailableError

log = logging.getLogger("sportsfusion.evaluate")


@torch.no_grad()
def predict(
    model, dataset: ClipDataset, *, batch_size, workers, device, skips, progress, desc, dali=False
):
    """Class probabilities for every (video, clip, crop) item the dataset yields."""
    from tqdm import tqdm

    loader = make_eval_loader(dataset, batch_size, workers, dali=dali, device=device)
    amp = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    probs, keys = [], []
    for batch in tqdm(loader, desc=desc, disable=not progress, unit="batch", dynamic_ncols=True):
        skips.add(batch.skipped)
        if batch.clips is None:
            continue
        with amp:
            logits = model(batch.clips.to(device, non_blocking=True))
        probs.append(logits.float().softmax(1).cpu().numpy())
        keys.append(torch.stack([batch.videos, batch.clip_indices, batch.crop_indices], 1))
    if not probs:
        return np.zeros((0, 0)), np.zeros((0, 3), dtype=np.int64)
    return np.concatenate(probs), torch.cat(keys).numpy()


def evaluate_models(
    models: list[torch.nn.Module],
    entries: list[VideoEntry],
    infos: list,
    classes: list[str],
    *,
    clips_per_video: int = 20,
    crops: int = 1,
    batch_size: int = 32,
    workers: int = 0,
    device: torch.device = torch.device("cpu"),
    strict: bool = False,
    progress: bool = True,
    dali: bool = False,
) -> dict:
    """Metrics of the models' averaged probabilities on `entries` (already probed)."""
    skips = SkipLog(strict)
    total: dict[tuple[int, int, int], np.ndarray] = {}
    counts: dict[tuple[int, int, int], int] = {}
    for i, model in enumerate(models):
        model.to(device).eval()
        if device.type == "cuda":  # as training lays it out: what the fused stem writes
            to_channels_last(model)
        dataset = clip_dataset(
            entries,
            infos,
            len(classes),
            model,
            train=False,
            clips_per_video=clips_per_video,
            crops=crops,
        )
        probs, keys = predict(
            model,
            dataset,
            batch_size=batch_size,
            workers=workers,
            device=device,
            skips=skips,
            progress=progress,
            dali=dali,
            desc=f"evaluate {i + 1}/{len(models)}" if len(models) > 1 else "evaluate",
        )
        for p, key in zip(probs, map(tuple, keys.tolist())):
            total[key] = total.get(key, 0) + p
            counts[key] = counts.get(key, 0) + 1
    # An item counts only if every model scored it (a file that failed for one is dropped).
    keys = sorted(k for k in total if counts[k] == len(models))
    if not keys:
        raise ValueError("no test clip could be decoded")
    probs = np.stack([total[k] / len(models) for k in keys])
    keys_arr = np.array(keys)
    videos = keys_arr[:, 0]
    labels = [entries[v].labels for v in range(len(entries))]
    centre = keys_arr[:, 2] == 0  # clip hit@1 on the centre crop only (paper-facts §5)
    scores = video_scores(probs, videos, len(entries))
    scored = [v for v in range(len(entries)) if not np.isnan(scores[v, 0])]
    vlabels = [labels[v] for v in scored]
    per_class = per_class_accuracy(scores[scored], vlabels, len(classes))
    return {
        "clip_hit@1": hit_at_k(probs[centre], [labels[v] for v in videos[centre]], 1),
        "video_hit@1": hit_at_k(scores[scored], vlabels, 1),
        "video_hit@5": hit_at_k(scores[scored], vlabels, 5),
        "videos": len(scored),
        "clips": int(centre.sum()),
        "skipped": len(entries) - len(scored),
        "chance@1": 1.0 / len(classes),
        "per_class": {c: (None if np.isnan(a) else float(a)) for c, a in zip(classes, per_class)},
        "confusion": confusion_matrix(scores[scored], vlabels, len(classes)).tolist(),
        "classes": classes,
        # Per video, in `entries` order: 1 when its top-1 class is one of its labels, None when
        # no clip of it could be scored. Two models evaluated on one split pair up on this.
        "video_correct": _per_video(hits_at_k(scores[scored], vlabels, 1), scored, len(entries)),
    }


def _per_video(hits: list[bool], scored: list[int], n: int) -> list[int | None]:
    """Per-video 0/1 over all n entries from the scored ones' hits (None: not scored)."""
    out: list[int | None] = [None] * n
    for v, hit in zip(scored, hits):
        out[v] = int(hit)
    return out


def evaluate_split(
    models: list[torch.nn.Module],
    index: DatasetIndex,
    split: str = "test",
    *,
    probed: tuple | None = None,
    workers: int = 0,
    strict: bool = False,
    device: torch.device = torch.device("cpu"),
    dali: bool = False,
    progress: bool = True,
    **options,
) -> dict:
    """Metrics of the models' averaged probabilities on one split of `index`: probe its videos
    (or take `probed`, a probe_split result the caller already has, so bad videos are not warned
    twice), then `evaluate_models` (`options`: clips per video, crops, batch size). `skipped`
    counts the unusable videos too, `missing` the split's listed-but-absent ones. What train,
    evaluate and the study's CNN average all run."""
    if probed is None:
        span = max(clip_span(m.frames_per_clip, m.frame_spacing) for m in models)
        listed = index.test if split == "test" else index.train
        probed = probe_split(
            listed, span, workers, strict, split, dali=dali, device=device, progress=progress
        )
    entries, infos, bad = probed
    if not entries:
        raise ValueError(f"no usable {split} video in {index.root}")
    m = evaluate_models(
        models, entries, infos, index.classes, workers=workers, device=device, strict=strict,
        progress=progress, dali=dali, **options,
    )  # fmt: skip
    m["skipped"] += len(bad)
    m["missing"] = index.missing_test if split == "test" else index.missing_train
    return m


def print_metrics(m: dict, num_classes: int) -> None:
    print(
        f"clip hit@1 {m['clip_hit@1']:.3f}  video hit@1 {m['video_hit@1']:.3f}  "
        f"video hit@5 {m['video_hit@5']:.3f}  ({m['videos']} videos, {m['clips']} clips, "
        f"{m['skipped']} skipped; chance hit@1 {1 / num_classes:.3f})"
    )


MAX_PLOTTED_CLASSES = 50  # the confusion PNG's most classes: its size does not grow with N


def plot_confusion(m: dict, path: Path, csv_path: Path | None = None) -> list[int]:
    """Draw m["confusion"] (rows: true class, columns: video top-1) to the PNG `path`.

    Rows are normalised by the true class's videos. With at most MAX_PLOTTED_CLASSES classes the
    whole matrix is drawn; with more, only the MAX_PLOTTED_CLASSES most confused ones (most
    off-diagonal videos, row plus column: `metrics.most_confused`), in class order, named on the
    axes; the title says so and names `csv_path`, where `run` writes the full matrix. The figure
    is at most 19.5 x 19 inches at 120 dpi (2340 x 2280 pixels) whatever the class count.
    Returns the plotted class indices.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(m["confusion"], dtype=float)
    classes = m["classes"]
    total = len(classes)
    idx = most_confused(cm, MAX_PLOTTED_CLASSES)
    norm = cm[np.ix_(idx, idx)] / np.maximum(cm[idx].sum(1, keepdims=True), 1)
    names = [c if len(c) <= 28 else c[:27] + "…" for c in (classes[i] for i in idx)]
    n = len(idx)
    fig, ax = plt.subplots(figsize=(max(5, 0.35 * n + 2), max(4, 0.35 * n + 1.5)))
    try:
        im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        ax.set_xticks(range(n), names, rotation=90, fontsize=7)
        ax.set_yticks(range(n), names, fontsize=7)
        ax.set_xlabel("predicted (video top-1)")
        ax.set_ylabel("true class")
        title = f"video hit@1 {m['video_hit@1']:.3f} on {m['videos']} videos"
        if n < total:
            title += f"\n{n} most confused of {total} classes"
            if csv_path is not None:
                title += f" (full matrix: {Path(csv_path).name})"
        ax.set_title(title, fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046, label="fraction of the true class's videos")
        fig.tight_layout()
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)
    return idx.tolist()


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        "sportsfusion.evaluate",
        description=__doc__.splitlines()[0],
        add_help=add_help,
        formatter_class=HelpFormatter,
    )
    p.add_argument("--checkpoint", nargs="+", required=True, help="one or more (CNN average)")
    p.add_argument(
        "--data",
        default=None,
        help="data set root / CSV file (default: the synthetic set, built once in a cache)",
    )
    p.add_argument("--format", default="auto", choices=FORMATS)
    p.add_argument("--split", type=int, default=1)
    p.add_argument("--videos", default=None, help="Sports-1M video folder")
    p.add_argument("--subset", default="test", choices=("test", "train"))
    p.add_argument("--clips-per-video", type=int, default=20, help="paper-facts §5: 20")
    p.add_argument("--crops", type=int, default=1, choices=(1, 4), help="crops/flips per clip")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--workers", type=int, default=min(2, default_workers()))
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument(
        "--json",
        default=None,
        help="write the metrics here, the full confusion matrix beside it as <stem>.confusion.csv "
        f"(also in the JSON up to {MAX_PLOTTED_CLASSES} classes) and <stem>.confusion.png "
        f"(at most the {MAX_PLOTTED_CLASSES} most confused classes)",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="a bad video, or a listed UCF-101 / CSV video that is not there, is an error",
    )
    p.add_argument("--ops", default=None, choices=ops.IMPLS)
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.add_argument(
        "--dali",
        action="store_true",
        help="decode clips with NVIDIA DALI instead of PyAV (GPU: NVDEC; CPU: VP8/VP9/MJPEG "
        "files only); needs pip install -e .[dali]",
    )
    return p


def run(args: argparse.Namespace) -> int:
    ops.force_impl(args.ops)
    device = torch_device(args.device)
    loaded = [load_checkpoint(c) for c in args.checkpoint]
    models = [m for m, _ in loaded]
    classes = loaded[0][1]["classes"]
    for path, (_, state) in zip(args.checkpoint[1:], loaded[1:]):
        if state["classes"] != classes:
            raise ValueError(f"{path}: its classes differ from {args.checkpoint[0]}'s")
    index = resolve_data(args.data, args.format, args.split, args.videos, args.strict)
    if index.classes != classes:
        raise ValueError(
            f"the checkpoint knows {len(classes)} classes, {index.root} has {len(index.classes)} "
            "different ones (evaluate on the data set it was trained on)"
        )
    for note in index.notes:  # printed once here, kept in the --json output
        log.warning("note: %s", note)
    m = evaluate_split(
        models,
        index,
        args.subset,
        workers=args.workers,
        strict=args.strict,
        device=device,
        dali=args.dali,
        progress=args.progress,
        clips_per_video=args.clips_per_video,
        crops=args.crops,
        batch_size=args.batch_size,
    )
    m["notes"] = list(index.notes)
    m["checkpoints"] = list(args.checkpoint)
    print_metrics(m, len(classes))
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        # The full confusion matrix always goes to <stem>.confusion.csv; the JSON embeds it as
        # well ("confusion") only up to MAX_PLOTTED_CLASSES classes, and names the CSV.
        csv_path, png = out.with_suffix(".confusion.csv"), out.with_suffix(".confusion.png")
        write_confusion_csv(csv_path, m["confusion"], classes)
        report = dict(m, confusion_csv=csv_path.name)
        if len(classes) > MAX_PLOTTED_CLASSES:
            del report["confusion"]
        out.write_text(json.dumps(report, indent=2))
        plot_confusion(m, png, csv_path)
        log.info("wrote %s, %s and %s", out, csv_path, png)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    setup_logging()
    try:
        return run(args)
    except (ValueError, CheckpointError, OSError, BadVideo, OpsUnavailableError) as e:
        return fail(e)


if __name__ == "__main__":
    raise SystemExit(main())
