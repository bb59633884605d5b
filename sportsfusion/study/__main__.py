"""Reproduce the paper's experiments: `python -m sportsfusion.study EXPERIMENT --out DIR`

    python -m sportsfusion.study all --out study/quick --preset quick
    python -m sportsfusion.study table1 --out study/t1 --data ~/sports1m --preset full
    python -m sportsfusion.study transfer --out study/t3 --ucf-data ~/UCF-101 --preset full

Writes DIR/report.md (tables beside the paper's numbers, findings held / did not hold /
inconclusive, commands, machine, wall time), DIR/results.json and PNG figures. Each run lives in
DIR/runs/<name>/: re-running the same command reuses finished runs and continues interrupted ones.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
import time
from pathlib import Path

from sportsfusion import ops
from sportsfusion.checkpoint import CheckpointError
from sportsfusion.cli import HelpFormatter, fail, setup_logging, torch_device
from sportsfusion.data.decode import BadVideo
from sportsfusion.data.formats import FORMATS, load_dataset
from sportsfusion.study.experiments import RESULTS, SECTIONS, Study, execute, plan
from sportsfusion.study.findings import all_findings
from sportsfusion.study.presets import PRESETS
from sportsfusion.study.report import machine, write
from sportsfusion.study.runner import Interrupted, StudyError


class _HelpFormatter(HelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Each default once (cli.HelpFormatter), and the description and epilog as written."""


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    presets = "\n".join(f"  {name:6s} {p.notes}" for name, p in PRESETS.items())
    p = argparse.ArgumentParser(
        "sportsfusion.study",
        description=__doc__,
        epilog=f"presets (every field is listed in the report):\n{presets}",
        add_help=add_help,
        formatter_class=_HelpFormatter,
    )
    p.add_argument("experiment", choices=(*SECTIONS, "all"), help="what to run (all: the three)")
    p.add_argument("--out", required=True, help="study folder: report, results, runs/")
    p.add_argument("--preset", default="quick", choices=list(PRESETS), help="experiment size")
    p.add_argument("--data", default=None, help="Table 1 / pretraining set; None = synthetic")
    p.add_argument("--format", default="auto", choices=FORMATS, help="layout of --data")
    p.add_argument("--videos", default=None, help="Sports-1M video folder for --data")
    p.add_argument("--ucf-data", default=None, help="transfer target; None = synthetic")
    p.add_argument("--seed", type=int, default=0, help="first training seed")
    p.add_argument(
        "--seeds",
        type=int,
        default=None,
        help="training seeds per run: --seed, --seed + 1, ... (None = the preset's)",
    )
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="for runs")
    p.add_argument(
        "--ops",
        choices=ops.IMPLS,
        default=None,
        help="op implementation for every run (the same as SPORTSFUSION_OPS)",
    )
    p.add_argument(
        "--no-progress", dest="progress", action="store_false", help="no bars nor training logs"
    )
    return p


def check(args: argparse.Namespace, sections: list[str]) -> None:
    """Bad input fails here, before any run starts, in one line."""
    torch_device(args.device)  # --device cuda without a GPU fails here, not at the first run
    if args.seed < 0:
        raise StudyError(f"--seed must be >= 0, got {args.seed}")
    if args.seeds is not None and args.seeds < 1:
        raise StudyError(f"--seeds must be >= 1, got {args.seeds}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise StudyError(f"--out {out} exists and is not a folder")
    if args.data is not None and not ({"table1", "transfer"} & set(sections)):
        raise StudyError("--data sets the Table 1 / pretraining data; camera-motion makes its own")
    if args.ucf_data is not None and "transfer" not in sections:
        raise StudyError("--ucf-data is the transfer target: it needs `transfer` or `all`")
    for flag, data, fmt, videos in (
        ("--data", args.data, args.format, args.videos),
        ("--ucf-data", args.ucf_data, "auto", None),
    ):
        if data is None:
            continue
        index = load_dataset(data, fmt, 1, videos)  # DatasetFormatError: one line naming the file
        if not index.test:
            raise StudyError(f"{flag} {data}: no test videos (the study evaluates on them)")
        if len(index.classes) < 2:
            raise StudyError(f"{flag} {data}: needs at least 2 classes")


def run(args: argparse.Namespace, argv: list[str]) -> int:
    started = time.time()
    sections = list(SECTIONS) if args.experiment == "all" else [args.experiment]
    check(args, sections)
    preset = PRESETS[args.preset]
    seeds = tuple(range(args.seed, args.seed + (args.seeds or preset.seeds)))
    study = Study(
        out=Path(args.out),
        preset=preset,
        seeds=seeds,
        data=args.data,
        format=args.format,
        videos=args.videos,
        ucf_data=args.ucf_data,
        device=args.device,
        progress=args.progress,
    )
    study.out.mkdir(parents=True, exist_ok=True)
    steps = plan(study, sections)
    print(f"study {', '.join(sections)} ({preset.name} preset): {len(steps)} runs in {study.out}")
    try:
        execute(study, steps)
    except (Interrupted, KeyboardInterrupt) as e:
        code = e.code if isinstance(e, Interrupted) else 130
        print(
            f"interrupted: finished runs are kept in {study.out / 'runs'}; re-run the same command "
            "to resume",
            file=sys.stderr,
        )
        return code
    results = {
        "study": {
            "command": "python -m sportsfusion.study " + shlex.join(argv),
            "sections": sections,
            "seeds": list(seeds),
            "machine": machine(args.device),
            "units": "accuracies in %, multiply-adds and params as counts, clips/s, seconds",
        },
        "preset": preset.as_dict(),
    }
    for section in sections:
        results[section.replace("-", "_")] = RESULTS[section](study)
    results["datasets"] = study.datasets
    results["findings"] = all_findings(results)
    results["runs"] = {
        name: {"command": study.commands[name], "this_time": study.how[name], **record}
        for name, record in study.records.items()
    }
    path = write(study, sections, results, results["study"]["command"], started)
    print(
        f"wrote {path}, {study.out / 'results.json'} and the figures "
        f"({time.time() - started:.0f} s)"
    )
    for f in results["findings"]:
        print(f"  {f['verdict']:>12}: {f['claim']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = get_args_parser().parse_args(argv)
    setup_logging(logging.WARNING if not args.progress else logging.INFO)
    if args.ops is not None:  # each run's train() resets --ops, so pass it the way runs read it
        os.environ["SPORTSFUSION_OPS"] = args.ops
    try:
        return run(args, argv)
    except (StudyError, ValueError, CheckpointError, OSError, BadVideo) as e:
        return fail(e)


if __name__ == "__main__":
    raise SystemExit(main())
