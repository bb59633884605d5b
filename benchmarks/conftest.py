"""Shared benchmark plumbing: the device, clips/s beside each timing, and one closing table
with the multiresolution / full-frame ratios measured in this same run."""

from __future__ import annotations

import platform

import pytest
import torch

RATES: dict[tuple, float] = {}  # (group, variant) -> clips/s


def bench_device() -> torch.device:
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


@pytest.fixture(scope="session")
def device() -> torch.device:
    return bench_device()


def pytest_benchmark_update_machine_info(config, machine_info):
    dev = bench_device()
    machine_info["sportsfusion_device"] = device_name(dev)
    machine_info["torch"] = torch.__version__
    machine_info["cuda"] = torch.version.cuda


def pytest_terminal_summary(terminalreporter):
    if not RATES:
        return
    tr = terminalreporter
    tr.section(f"clips/s on {device_name(bench_device())}")
    groups = sorted({g for g, _ in RATES})
    for g in groups:
        row = {v: r for (gg, v), r in RATES.items() if gg == g}
        cells = "  ".join(f"{v} {r:9.1f}" for v, r in sorted(row.items()))
        ratio = ""
        if "full" in row and "multires" in row:
            ratio = f"  multires/full {row['multires'] / row['full']:.2f}x"
        tr.write_line(f"{g:28s} {cells}{ratio}")
