"""What a user sees when a job starts: one line naming device, kernels and data, no TensorFlow
C++ noise on a CPU machine, and the full logs back with --verbosity."""

import os
import subprocess
import sys

import pytest

from robust_saliency import models

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOISE = ("cuInit", "cpu_feature_guard", "absl::InitializeLog", "cudart_stub")


@pytest.fixture(scope="module")
def evaluate_command(tmp_path_factory):
    folder = tmp_path_factory.mktemp("entry")
    path = str(folder / "linear.keras")
    models.linear_classifier().save(path)
    return [sys.executable, "-m", "experiments.evaluate", f"--model_path={path}",
            "--dataset=synthetic", f"--out_dir={folder / 'out'}", "--num_images=4",
            "--attacks=gradient"]


def run(command):
    # As a user runs it: without the suite's own TF_CPP_MIN_LOG_LEVEL (conftest sets it).
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300, check=True)


def test_a_job_starts_quietly_with_one_line_on_device_kernels_and_data(evaluate_command):
    done = run(evaluate_command)
    assert not [line for line in done.stderr.splitlines() if any(n in line for n in NOISE)]
    first = done.stdout.splitlines()[0]
    assert first.startswith("device: CPU") and "kernels: oneDNN" in first
    assert "data: synthetic" in first


def test_verbosity_brings_the_logs_back(evaluate_command):
    done = run(evaluate_command + ["--verbosity=1"])
    assert any(n in done.stderr for n in NOISE)


def test_a_benchmark_starts_as_quietly_as_a_job():
    # What `python -m benchmarks.<name>` does before its own code: import the package, then
    # TensorFlow, and touch the devices (where the CUDA probe logs).
    done = run([sys.executable, "-c", "import benchmarks, tensorflow as tf; "
                "print(len(tf.config.list_physical_devices()))"])
    assert not [line for line in done.stderr.splitlines() if any(n in line for n in NOISE)]
    assert int(done.stdout.split()[-1]) >= 1
