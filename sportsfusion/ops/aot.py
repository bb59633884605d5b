"""Compile the project's Triton kernels for a GPU this machine does not have (Hopper, sm_90).

    python -m sportsfusion.ops.aot [--all-configs] [--dtype bf16 fp16] [--only CASE ...]

Triton compiles a kernel for any target: only launching it needs the GPU. Each op module with
Triton kernels declares its cases, `compile_cases(dtype) -> {name: launcher}`: its real host
launchers (the `triton_op` wrappers) on CPU tensors of the shapes the GPU runs. This module runs
each with
`torch.library.wrap_triton` swapped for a recorder, so every launch is captured with exactly the
arguments, strides and constexprs the GPU would get. Each captured launch is then bound with
Triton's own argument specialiser (the one the JIT uses: integers equal to 1 become constexprs,
pointers and multiples of 16 get divisibility hints) and compiled for sm_90 with every autotune
config that survives the kernel's pruning, down to a cubin by the ptxas Triton ships.

What a compile tells without a GPU, per config: whether it compiles at all (an autotune config
that does not is silently skipped on the GPU), registers per thread, bytes of local-memory stack
(register spills: a kernel with spills is slow before it runs), shared memory, and which
instructions the kernel got (wgmma for Hopper's tensor cores, cp.async for loads pipelined into
shared memory, and the byte widths of its global loads and stores: 16 is a full vector, 1 or 2
a scalar access, with which a memory-bound kernel cannot reach copy bandwidth). Timings still
need the GPU: this is the check CI can make on every commit.

Needs a Triton with the NVIDIA backend (the Linux wheel) and TRITON_INTERPRET unset: under the
interpreter `@triton.jit` builds an interpreted function (the CLI refuses to run under it, and
tests run it in a subprocess with the variable removed).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator

import torch

# The Triton these checks were written against: its JIT binder (internal API) and its sm_90
# codegen (access widths, registers), which tests/ops/test_aot_sm90.py asserts. Other versions
# (the GPU machine's 3.6, for one) are refused with exit status 2 rather than half-checked.
CALIBRATED_TRITON = "3.9"
HOPPER = ("cuda", 90, 32)  # backend, compute capability, warp size: the H100 and H200
RESOURCE_LINE = re.compile(r"REG:(\d+) STACK:(\d+) SHARED:(\d+) LOCAL:(\d+)")
# PTX global accesses: "ld.global[.nc].v4.b32 ...", "st.global.b16 ...", "cp.async.cg... 0x10, ..."
GLOBAL_ACCESS = re.compile(r"\b(ld|st)\.global(?:\.[a-z]+)*?(?:\.v(\d))?\.[bfsu](\d+)\b")
ASYNC_COPY = re.compile(
    r"\bcp\.async\.c[ag]\.shared\.global \[[^]]*\], \[[^]]*\], (0x[0-9a-f]+|\d+)"
)


def calibrated(version: str) -> bool:
    """Whether a Triton version string is of the CALIBRATED_TRITON release ("3.9.0", "3.9.1+x")."""
    return version.split("+")[0].split(".")[:2] == CALIBRATED_TRITON.split(".")


@dataclasses.dataclass
class Launch:
    """One kernel launch as the host code made it."""

    kernel: object  # triton Autotuner or JITFunction
    args: tuple
    kwargs: dict


@dataclasses.dataclass
class Compiled:
    """What the sm_90 compile of one launch with one config produced."""

    kernel: str
    config: str  # "BLOCK_M=128 BLOCK_N=128 BLOCK_K=64 w8 s3"
    ok: bool
    error: str = ""
    registers: int = 0  # per thread; 255 is the hardware maximum
    stack_bytes: int = 0  # local-memory stack per thread: > 0 means registers spilled
    shared_bytes: int = 0  # dynamic + static shared memory per program
    wgmma: bool = False  # Hopper warp-group MMA in the PTX
    cp_async: bool = False  # global -> shared asynchronous copies (software pipelining)
    # Bytes per thread and instruction of each kind of global load (ld.global, cp.async) and store
    # in the PTX, e.g. [2, 16]: 16 is a full vector, 1 or 2 a scalar access.
    load_bytes: list[int] = dataclasses.field(default_factory=list)
    store_bytes: list[int] = dataclasses.field(default_factory=list)


@contextlib.contextmanager
def recording() -> Iterator[list[Launch]]:
    """Within the block, `torch.library.wrap_triton(kernel)[grid](*args, **kwargs)` records a
    Launch instead of running anything. The kernels' modules look wrap_triton up at call time."""
    launches: list[Launch] = []

    class _Recorder:
        def __init__(self, kernel):
            self.kernel = kernel

        def __getitem__(self, grid):
            def launch(*args, **kwargs):
                launches.append(Launch(self.kernel, args, kwargs))

            return launch

    original = torch.library.wrap_triton
    torch.library.wrap_triton = _Recorder
    try:
        yield launches
    finally:
        torch.library.wrap_triton = original


def _configs(launch: Launch, all_configs: bool):
    """The autotune configs the GPU would try for this launch (after the kernel's own pruning),
    or the kernel's launch options for a plain @triton.jit kernel."""
    from triton.runtime.autotuner import Autotuner

    kernel = launch.kernel
    if not isinstance(kernel, Autotuner):
        return [None]
    if all_configs or kernel.early_config_prune is None:
        return kernel.configs
    named = dict(zip(kernel.arg_names, launch.args))
    return kernel.early_config_prune(kernel.configs, named, **launch.kwargs)


def _describe(config, kwargs: dict) -> str:
    if config is None:  # a plain @triton.jit kernel: its launch chose the blocks and warps
        blocks = " ".join(f"{k}={v}" for k, v in kwargs.items() if k.startswith("BLOCK"))
        return f"{blocks} w{kwargs.get('num_warps', 4)}"
    blocks = " ".join(f"{k}={v}" for k, v in config.kwargs.items())
    return f"{blocks} w{config.num_warps} s{config.num_stages}"


def _resources(cubin: bytes) -> tuple[int, int, int]:
    """(registers, stack bytes, static shared bytes) from cuobjdump, which Triton ships."""
    from triton import knobs

    cuobjdump = knobs.nvidia.cuobjdump.path
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        out = subprocess.run(
            [cuobjdump, "--dump-resource-usage", f.name], capture_output=True, text=True, check=True
        ).stdout
    match = RESOURCE_LINE.search(out)
    if match is None:
        raise RuntimeError(f"cuobjdump printed no resource line:\n{out}")
    regs, stack, shared, _local = (int(g) for g in match.groups())
    return regs, stack, shared


def _access_widths(ptx: str) -> tuple[list[int], list[int]]:
    """Distinct byte widths of the global loads and stores in the PTX, ascending."""
    widths = {"ld": set(), "st": set()}
    for op, lanes, bits in GLOBAL_ACCESS.findall(ptx):
        widths[op].add(int(lanes or 1) * int(bits) // 8)
    widths["ld"].update(int(size, 0) for size in ASYNC_COPY.findall(ptx))
    return sorted(widths["ld"]), sorted(widths["st"])


def compile_launch(launch: Launch, config, target=HOPPER) -> Compiled:
    """Compile one launch with one autotune config for `target`, as the JIT would on that GPU."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource, make_backend

    # The JIT's binder is internal to Triton; main() refuses Tritons other than CALIBRATED_TRITON.
    from triton.runtime.jit import create_function_from_signature

    fn = launch.kernel.fn if hasattr(launch.kernel, "configs") else launch.kernel
    kwargs = dict(launch.kwargs)
    if config is not None:
        kwargs.update(config.all_kwargs())
    name = fn.__name__
    gpu = GPUTarget(*target)
    backend = make_backend(gpu)
    # Triton's own binder: the same specialisation (constexpr 1s, divisibility by 16) as a launch.
    binder = create_function_from_signature(fn.signature, fn.params, backend)
    bound, specialization, options = binder(*launch.args, **kwargs)
    options, signature, constexprs, attrs = fn._pack_args(
        backend, options, bound, specialization, options
    )
    try:
        kernel = triton.compile(
            ASTSource(fn, signature, constexprs, attrs), target=gpu, options=options.__dict__
        )
    except Exception as err:  # a config that does not compile: the autotuner would skip it
        lines = str(err).strip().splitlines()
        return Compiled(
            name,
            _describe(config, launch.kwargs),
            ok=False,
            error=lines[-1] if lines else repr(err),
        )
    regs, stack, static_shared = _resources(kernel.asm["cubin"])
    ptx = kernel.asm["ptx"]
    load_bytes, store_bytes = _access_widths(ptx)
    return Compiled(
        kernel=name,
        config=_describe(config, launch.kwargs),
        ok=True,
        registers=regs,
        stack_bytes=stack,
        shared_bytes=kernel.metadata.shared + static_shared,
        wgmma="wgmma.mma_async" in ptx,
        cp_async="cp.async" in ptx,
        load_bytes=load_bytes,
        store_bytes=store_bytes,
    )


def compile_op(run: Callable[[], object], all_configs: bool = False) -> list[Compiled]:
    """Run a host launcher under `recording()` and compile every launch it made, each with every
    autotune config the GPU would try."""
    with recording() as launches:
        run()
    if not launches:
        raise RuntimeError("the launcher made no kernel launch (empty output?)")
    first = {}  # a launcher that splits a batch launches one kernel several times: compile it once
    for launch in launches:
        first.setdefault(id(launch.kernel), launch)
    return [
        compile_launch(launch, config)
        for launch in first.values()
        for config in _configs(launch, all_configs)
    ]


# --- the project's launches, at the shapes the GPU runs ------------------------------------------

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def compile_cases(dtype: torch.dtype) -> dict[str, Callable[[], object]]:
    """Every op's declared cases (`compile_cases` in each sportsfusion.ops module), by name."""
    import pkgutil

    import sportsfusion.ops as ops

    cases = {}
    for info in pkgutil.iter_modules(ops.__path__):
        if info.name.startswith("_") or info.name == "aot":
            continue
        module = importlib.import_module(f"sportsfusion.ops.{info.name}")
        if hasattr(module, "compile_cases"):
            cases.update(module.compile_cases(dtype))
    return cases


def _widths(sizes: list[int]) -> str:
    return ",".join(map(str, sizes)) or "-"


def _table(rows: list[tuple[str, str, Compiled]]) -> str:
    header = (
        "| op | dtype | config | compiles | regs | spill B | smem KiB | wgmma | cp.async "
        "| ld/st B |"
    )
    lines = [header, "|" + "---|" * 10]
    for op, dtype, c in rows:
        if not c.ok:
            lines.append(f"| {op} | {dtype} | {c.config} | no: {c.error[:60]} | | | | | | |")
            continue
        lines.append(
            f"| {op} | {dtype} | {c.config} | yes | {c.registers} | {c.stack_bytes} | "
            f"{c.shared_bytes / 1024:.0f} | {'yes' if c.wgmma else 'no'} | "
            f"{'yes' if c.cp_async else 'no'} | {_widths(c.load_bytes)}/{_widths(c.store_bytes)} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    names = list(compile_cases(torch.bfloat16))
    parser = argparse.ArgumentParser(
        prog="python -m sportsfusion.ops.aot",
        description="Compile the Triton kernels for sm_90 (H100/H200) without a GPU and print "
        "registers, spills, shared memory and tensor-core use per case and autotune config.",
    )
    parser.add_argument("--dtype", nargs="+", choices=sorted(DTYPES), default=["bf16"])
    parser.add_argument(
        "--only",
        nargs="+",
        choices=names,
        default=names,
        metavar="CASE",
        help="cases to compile (default: all of " + ", ".join(names) + ")",
    )
    parser.add_argument("--all-configs", action="store_true", help="skip the autotuner's pruning")
    parser.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    parser.add_argument(
        "--any-triton",
        action="store_true",
        help=f"compile with a Triton other than {CALIBRATED_TRITON} too (e.g. the GPU machine's, "
        "to see that the kernels build there; its codegen differs from what the tests assert)",
    )
    args = parser.parse_args(argv)

    if os.environ.get("TRITON_INTERPRET", "0") == "1":
        print(
            "error: unset TRITON_INTERPRET: the interpreter builds no GPU kernels", file=sys.stderr
        )
        return 2
    try:
        import triton
        from triton.backends.nvidia.compiler import CUDABackend  # noqa: F401
    except ImportError as err:
        print(f"error: needs Triton with its NVIDIA backend ({err})", file=sys.stderr)
        return 2
    if not calibrated(triton.__version__) and not args.any_triton:
        print(
            f"error: this is Triton {triton.__version__}; the compile checks bind through "
            f"Triton {CALIBRATED_TRITON}'s JIT internals and its tests expect its codegen "
            "(install the dev extra's pin, or pass --any-triton)",
            file=sys.stderr,
        )
        return 2

    from tqdm import tqdm

    jobs = []
    for name in ("bf16", "fp16", "fp32"):
        if name in args.dtype:
            cases = compile_cases(DTYPES[name])
            jobs += [(case, name, cases[case]) for case in names if case in args.only]
    rows = []
    try:
        for op, dtype, run in tqdm(jobs, desc="compiling for sm_90", unit="op"):
            rows += [(op, dtype, c) for c in compile_op(run, args.all_configs)]
    except RuntimeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(_table(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                [{"op": op, "dtype": dtype, **dataclasses.asdict(c)} for op, dtype, c in rows], f
            )
    failed = [f"{op} {dtype} {c.config}: {c.error}" for op, dtype, c in rows if not c.ok]
    if failed:
        print(
            f"{len(failed)} of {len(rows)} configs did not compile:",
            *failed,
            sep="\n",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
