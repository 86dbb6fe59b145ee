"""The environment a result was computed in: interpreter and library versions, the git revision,
the CPU and whether TensorFlow runs oneDNN's kernels, as recorded beside every run, evaluation
and report (results.py holds the files they are recorded in).
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess

import numpy as np


def import_tensorflow_quietly():
    """Imports TensorFlow with the process's stderr pointed at /dev/null while it loads.

    TensorFlow's C++ libraries log through absl before anything can configure absl (the
    "All log messages before absl::InitializeLog()" banner, oneDNN and CUDA-stub lines, which
    TF_CPP_MIN_LOG_LEVEL does not reach). An import error still shows: it is raised after
    stderr is back."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            try:
                import tensorflow  # noqa: F401
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def git_revision():
    """The source tree's git commit (with '-dirty' if modified), or 'unknown'."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=here, capture_output=True, text=True).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


# Distributions besides TensorFlow, Keras and NumPy whose versions run.json records.
VERSIONED = ("foolbox", "eagerpy", "scipy", "tensorflow-datasets", "matplotlib")


def versions():
    """Versions of what a result depends on, recorded beside every run: the interpreter, the
    libraries by their installed distributions (whether or not imported yet), the git revision and
    whether oneDNN's CPU kernels were on.
    requirements-lock.txt pins the same distributions for a rerun."""
    import keras
    import tensorflow as tf

    found = {"python": platform.python_version(), "tensorflow": tf.__version__,
             "keras": keras.__version__, "numpy": np.__version__}
    for name in VERSIONED:
        try:
            found[name.replace("-", "_")] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    found["git"] = git_revision()
    found["onednn"] = onednn_kernels()
    found["cpu"] = cpu()
    return found


def cpu_info():
    """(the CPU's model name, the set of its /proc/cpuinfo flags); the platform's processor name
    and no flags where /proc/cpuinfo cannot be read."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            lines = f.read().splitlines()
    except OSError:
        return name, flags
    name = next((line.split(":", 1)[1].strip() for line in lines
                 if line.startswith("model name")), name)
    flags = next((set(line.split(":", 1)[1].split()) for line in lines
                  if line.startswith("flags")), flags)
    return name, flags


def cpu():
    """The CPU's name and its widest vector unit ('AMD EPYC ..., avx512f'): the kernels' last
    bits differ between AVX2 and AVX-512 machines even at the same TensorFlow and oneDNN
    setting, so a rerun elsewhere is close but not bit-identical."""
    name, flags = cpu_info()
    widest = next((f for f in ("avx512f", "avx2", "avx") if f in flags), "no avx")
    return f"{name}, {widest}"


def onednn_kernels():
    """Whether TensorFlow runs oneDNN's CPU kernels in this process (its default only on
    AVX-512 CPUs; TF_ENABLE_ONEDNN_OPTS sets it): they change the last bits of every result.
    None where this TensorFlow does not say."""
    try:
        from tensorflow.python.util import _pywrap_util_port  # no public API reports it
    except ImportError:
        return None
    return bool(_pywrap_util_port.IsMklEnabled())
