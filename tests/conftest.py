"""Fixtures and report header of the test modules."""

from _gpu import cuda, where_gpu_tests_run  # noqa: F401 (cuda: the GPU test modules' device)


def pytest_report_header(config):
    return where_gpu_tests_run()
