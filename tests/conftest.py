"""Fixtures of the test modules."""

from _gpu import cuda  # noqa: F401 (the device of the GPU test modules)
