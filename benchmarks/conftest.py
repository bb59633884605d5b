"""Shared benchmark plumbing: the device, clips/s beside each timing, and the closing tables:
clips/s with the multiresolution / full-frame ratios, and the roofline table.

Roofline: every benchmark whose extra_info has "bytes" (read + written per timed call) and/or
"flops" gets GB/s and TFLOP/s from its median, as % of the copy bandwidth and matmul rate that
bench_peaks.py measured in this same run (run it alongside, or the % columns stay empty), and
x reference: its speed against the variant of its benchmark.group whose extra_info["impl"] is
"reference" or "eager"."""

from __future__ import annotations

import platform

import pytest
import torch

RATES: dict[tuple, float] = {}  # (group, variant) -> clips/s
SPREAD: dict[tuple, tuple[float, float]] = {}  # (group, variant) -> clips/s at the 75th, 25th %ile


def run_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def record(benchmark, group: str, variant: str, clips: int, **info) -> None:
    """Store clips/s (from the timing's median) in extra_info and for the closing table."""
    benchmark.extra_info.update(info)
    stats = getattr(benchmark, "stats", None)
    if stats is None:  # --benchmark-disable: ran once for correctness, nothing timed
        return
    rate = clips / stats.stats.median
    benchmark.extra_info["clips_per_s"] = round(rate, 2)
    RATES[(group, variant)] = rate
    SPREAD[(group, variant)] = (clips / stats.stats.q3, clips / stats.stats.q1)  # slow, fast


@pytest.fixture(scope="session")
def device() -> torch.device:
    return run_device()


def pytest_benchmark_update_machine_info(config, machine_info):
    dev = run_device()
    machine_info["sportsfusion_device"] = device_name(dev)
    machine_info["torch"] = torch.__version__
    machine_info["cuda"] = torch.version.cuda


@pytest.hookimpl(trylast=True)  # after pytest-benchmark's own tables: this one closes the run
def pytest_terminal_summary(terminalreporter, config):
    _clips_table(terminalreporter)
    session = getattr(config, "_benchmarksession", None)  # pytest-benchmark's, with every timing
    _roofline_table(terminalreporter, [b for b in getattr(session, "benchmarks", []) if b])


def _clips_table(tr) -> None:
    if not RATES:
        return
    tr.section(f"clips/s on {device_name(run_device())}")
    groups = sorted({g for g, _ in RATES})
    for g in groups:
        row = {v: r for (gg, v), r in RATES.items() if gg == g}
        cells = "  ".join(f"{v} {r:9.1f}" for v, r in sorted(row.items()))
        ratio = ""
        if "full" in row and "multires" in row:
            ratio = f"  multires/full {row['multires'] / row['full']:.2f}x"
            if (g, "full") in SPREAD and (g, "multires") in SPREAD:  # the interquartile spread
                (f_slow, f_fast), (m_slow, m_fast) = SPREAD[(g, "full")], SPREAD[(g, "multires")]
                ratio += f" ({m_slow / f_fast:.2f}-{m_fast / f_slow:.2f})"
        tr.write_line(f"{g:28s} {cells}{ratio}")


BASELINES = ("reference", "eager")  # extra_info["impl"] of the variant others are compared with


def _roofline_table(tr, benchmarks) -> None:
    rated = [b for b in benchmarks if "bytes" in b.extra_info or "flops" in b.extra_info]
    if not rated:
        return  # --benchmark-disable, or nothing that counts its work
    peak = {}  # "copy": bytes/s, "matmul": flop/s, from bench_peaks.py
    for b in rated:
        kind = b.extra_info.get("peak")
        if kind in ("copy", "matmul"):
            peak[kind] = b.extra_info["bytes" if kind == "copy" else "flops"] / b.stats.median
    baseline = {b.group: b.stats.median for b in rated if b.extra_info.get("impl") in BASELINES}

    def cell(value, fmt, width, suffix=""):
        text = f"{value:{fmt}}{suffix}" if value is not None else "-"
        return f"{text:>{width}}"

    tr.section(f"roofline on {device_name(run_device())}")
    tr.write_line(
        f"{'group':28s} {'variant':38s} {'median':>10s} {'GB/s':>8s} {'%copy':>6s} "
        f"{'TFLOP/s':>8s} {'%mm':>6s} {'x ref':>6s}"
    )
    for b in sorted(rated, key=lambda b: (str(b.group), b.stats.median)):
        median, info = b.stats.median, b.extra_info
        gbs = info["bytes"] / median / 1e9 if "bytes" in info else None
        tflops = info["flops"] / median / 1e12 if "flops" in info else None
        copy = 100 * gbs * 1e9 / peak["copy"] if gbs and "copy" in peak else None
        mm = 100 * tflops * 1e12 / peak["matmul"] if tflops and "matmul" in peak else None
        ref = baseline.get(b.group)
        tr.write_line(
            f"{str(b.group):28.28s} {str(b.param or b.name):38.38s} {median * 1e3:8.3f}ms "
            f"{cell(gbs, '.1f', 8)} {cell(copy, '.0f', 6, '%')} {cell(tflops, '.2f', 8)} "
            f"{cell(mm, '.0f', 6, '%')} {cell(ref / median if ref else None, '.2f', 6, 'x')}"
        )
