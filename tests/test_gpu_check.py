"""The parts of ``benchmarks/gpu_check.py`` that run without a GPU: steps, timeouts, report."""

import importlib.util
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
_spec = importlib.util.spec_from_file_location("gpu_check", BENCHMARKS / "gpu_check.py")
gpu_check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gpu_check)


def test_dry_run_writes_every_command_and_runs_none(tmp_path):
    report, venv = tmp_path / "report.md", tmp_path / "venv"
    assert gpu_check.main(["--dry-run", "--report", str(report), "--venv", str(venv)]) == 0
    text = report.read_text()
    assert not venv.exists() and "Dry run" in text
    for title in ("Install", "Device (nvidia-smi)", "Device (CuPy)", "GPU tests", "Benchmark"):
        assert f"## {title}" in text
    assert "install --quiet -e '.[gpu,test]'" in text
    assert "tests/test_gpu_kernels.py tests/test_gpu_estimators.py" in text
    bench = (
        "--shapes 784-1000-1000-10 4096-4096-4096-10 --batch 256 1024 --compression 0.125 0.015625"
    )
    assert bench in text and "exit status" not in text


def test_steps_report_their_status_and_stop_at_the_budget():
    ok = gpu_check.run_step([sys.executable, "-c", "print('| a | b |')"], timeout=60)
    failed = gpu_check.run_step([sys.executable, "-c", "import sys; sys.exit(3)"], timeout=60)
    stopped = gpu_check.run_step([sys.executable, "-c", "import time; time.sleep(30)"], timeout=1)
    missing = gpu_check.run_step(["no-such-command-here"], timeout=60)
    assert (ok[0], failed[0], stopped[0], missing[0]) == (0, 3, None, None)
    assert "budget ran out" in stopped[2] and stopped[1] < 10
    results = [
        ("Benchmark", ["bench"], *ok),
        ("GPU tests", ["pytest"], *failed),
        ("Device (nvidia-smi)", ["nvidia-smi"], *missing),
    ]
    text = gpu_check.report(results, dry_run=False, invocation="python benchmarks/gpu_check.py")
    assert "\n| a | b |\n" in text  # the benchmark's Markdown, as it is
    assert "exit status 3" in text and "stopped or not run" in text and "cannot run" in text


def test_the_benchmark_takes_the_checks_options():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import bench_gpu
    finally:
        sys.path.remove(str(BENCHMARKS))
    args = bench_gpu.parse_args(gpu_check.BENCH[1:])
    assert [bench_gpu.shape_name(u) for u in args.shapes] == [
        "784-1000-1000-10",
        "4096-4096-4096-10",
    ]
    assert (args.batch, args.compression, args.markdown) == ([256, 1024], [0.125, 0.015625], True)
    assert [bench_gpu.shape_name(u) for u in args.scatter_shapes] == ["4096-4096"]
