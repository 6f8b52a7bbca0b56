"""One command for a GPU machine: install, name the device, run the GPU tests and the benchmark.

Usage, from a fresh clone, on a machine with an NVIDIA GPU and its driver::

    python benchmarks/gpu_check.py [--report gpu_check.md] [--venv .venv-gpu]
        [--budget 480] [--dry-run]

Steps, each with its command, exit status, time and output in the Markdown
report (``--report``), all within ``--budget`` seconds (8 minutes; a step that
would run past it is stopped and the report says so):

1. a virtual environment (``--venv``) with ``pip install -e ".[gpu,test]"``;
2. the device: ``nvidia-smi`` and the name CuPy gives device 0;
3. the GPU tests (``tests/test_gpu_kernels.py``, ``tests/test_gpu_estimators.py``,
   ``tests/test_cuda_sources.py``); their header says whether they ran on the
   GPU or, where CuPy sees none, on the CPU emulation;
4. ``benchmarks/bench_gpu.py``: 784-1000-1000-10 and 4096-4096-4096-10, batches
   256 and 1024, compressions 1/8 and 1/64, against the dense cuBLAS floor and,
   for 4096-4096-4096-10, the CPU backend, in the same run; then the CUDA
   scatter and materialise of one 4096 x 4096 virtual matrix at both
   compressions, unsharded against sharded (``hash_shards="auto"``).

``--dry-run`` writes the report with the commands and runs none of them.
"""

import argparse
import datetime
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GPU_TESTS = [
    "tests/test_gpu_kernels.py",
    "tests/test_gpu_estimators.py",
    "tests/test_cuda_sources.py",
]
BENCH = [
    "benchmarks/bench_gpu.py",
    *("--shapes", "784-1000-1000-10", "4096-4096-4096-10"),
    *("--batch", "256", "1024"),
    *("--compression", "0.125", "0.015625"),
    *("--cpu-shapes", "4096-4096-4096-10"),
    *("--scatter-shapes", "4096-4096"),
    *("--repeats", "3", "--steps", "8", "--cpu-steps", "2"),
    "--markdown",
]
DEVICE_NAME = (
    "import cupy; p = cupy.cuda.runtime.getDeviceProperties(0); "
    "n = p['name']; print('CuPy', cupy.__version__, 'device 0:', "
    "n.decode() if isinstance(n, bytes) else n)"
)


def steps(venv):
    """(title, command) of each step; the commands run from the repository's root."""
    python = str(Path(venv) / "bin" / "python")
    return [
        ("Environment", [sys.executable, "-m", "venv", venv]),
        ("Install", [python, "-m", "pip", "install", "--quiet", "-e", ".[gpu,test]"]),
        ("Device (nvidia-smi)", ["nvidia-smi"]),
        ("Device (CuPy)", [python, "-c", DEVICE_NAME]),
        ("GPU tests", [python, "-m", "pytest", *GPU_TESTS, "-q", "-rs", "-p", "no:cacheprovider"]),
        ("Benchmark", [python, *BENCH]),
    ]


def run_step(command, timeout):
    """Exit status (None: stopped at the timeout, or not found), seconds and output."""
    start = time.perf_counter()
    try:
        result = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, timeout=max(timeout, 1)
        )
        status, output = result.returncode, result.stdout + result.stderr
    except subprocess.TimeoutExpired as error:
        status, output = None, error.stdout or ""
        if isinstance(output, bytes):
            output = output.decode(errors="replace")
        output += f"\n[stopped after {timeout:.0f} s: the check's time budget ran out]"
    except FileNotFoundError as error:
        status, output = None, f"[cannot run: {error}]"
    return status, time.perf_counter() - start, output


def report(results, dry_run, invocation):
    """The Markdown report of ``results``: (title, command, status, seconds, output) each."""
    lines = [
        "# GPU check",
        "",
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- commit: {_commit()}",
        f"- host: {platform.node()}, {platform.platform()}, {os.cpu_count()} logical cores",
        f"- command: `{invocation}`",
    ]
    if dry_run:
        lines += ["", "**Dry run: the commands below were not run.**"]
    for title, command, status, seconds, output in results:
        lines += ["", f"## {title}", "", f"`{shlex.join(command)}`"]
        if dry_run:
            continue
        verdict = "stopped or not run" if status is None else f"exit status {status}"
        lines += ["", f"{verdict}, {seconds:.0f} s", ""]
        if title == "Benchmark" and status == 0:
            lines += [output.strip()]  # its tables are Markdown already
        else:
            lines += ["```", output.strip()[-20000:], "```"]
    return "\n".join(lines) + "\n"


def _commit():
    result = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    )
    return result.stdout.strip() or "unknown"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", default="gpu_check.md")
    parser.add_argument("--venv", default=".venv-gpu")
    parser.add_argument("--budget", type=float, default=480.0, help="seconds for all steps")
    parser.add_argument("--dry-run", action="store_true", help="write the commands, run nothing")
    args = parser.parse_args(argv)
    deadline = time.perf_counter() + args.budget
    results = []
    for title, command in steps(args.venv):
        if args.dry_run:
            results.append((title, command, None, 0.0, ""))
            continue
        print(f"== {title}: {shlex.join(command)}", flush=True)
        status, seconds, output = run_step(command, deadline - time.perf_counter())
        print(output[-3000:], flush=True)
        results.append((title, command, status, seconds, output))
        if title in ("Environment", "Install") and status != 0:
            break  # nothing else can run
    invocation = " ".join(["python", "benchmarks/gpu_check.py", *(argv or sys.argv[1:])])
    Path(args.report).write_text(report(results, args.dry_run, invocation))
    print(f"report written to {args.report}")
    failed = [title for title, _, status, *_ in results if status != 0]
    return 1 if failed and not args.dry_run else 0


if __name__ == "__main__":
    sys.exit(main())
