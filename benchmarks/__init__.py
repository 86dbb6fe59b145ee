"""The repository's benchmarks (`python -m benchmarks.<name>`), run from a checkout.

Importing `experiments` first gives them the jobs' quiet start: the kernels chosen before
TensorFlow loads and no C++ log lines from its import (experiments/__init__.py says how)."""

import experiments  # noqa: F401
