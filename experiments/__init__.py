"""The repository's entry points (thin: flags, a config, one library call).

Importing this package, which every `python -m experiments.<job>` does before anything else, sets
TensorFlow's environment before TensorFlow loads, where the user has not set it:
  * TF_CPP_MIN_LOG_LEVEL=3 and TensorFlow imported with stderr silenced: no C++ log lines, so
    a CPU machine does not greet the user with "failed call to cuInit", cpu_feature_guard or
    absl banner lines (real errors still raise); `--verbosity=1` (or any --verbosity / -v)
    brings every log line back;
  * TF_ENABLE_ONEDNN_OPTS=1 (set by importing robust_saliency first): oneDNN's CPU kernels on
    every CPU, not only on AVX-512 ones where TensorFlow switches them on itself, so the jobs
    (like the test suite) run one set of kernels on every machine; run.json records them
    (versions.onednn).
`banner` is the one line a job prints instead: device, kernels and data source.
"""

import os
import sys

import robust_saliency  # noqa: F401, E402 - chooses the kernels before TensorFlow loads
from robust_saliency import environment

_VERBOSE = any(a == "-v" or a.startswith(("--verbosity", "-v=")) for a in sys.argv[1:])


if not _VERBOSE:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" not in sys.modules:
        environment.import_tensorflow_quietly()


def quiet_logs():
    """absl's Python log at WARNING unless --verbosity was given (call after flag parsing)."""
    if not _VERBOSE:
        import tensorflow as tf
        from absl import logging

        logging.set_verbosity(logging.WARNING)
        # tf.function's retracing warnings: each member of a cohort is a new network, whose
        # kernels are traced once, as they must be.
        tf.get_logger().setLevel("ERROR")


def banner(dataset=None, data_dir=None):
    """'device: CPU, 0 GPUs | kernels: oneDNN on | data: ...' for the job's first line."""
    import tensorflow as tf

    from robust_saliency import data, environment

    gpus = len(tf.config.list_physical_devices("GPU"))
    onednn = environment.onednn_kernels()
    parts = [f"device: {'GPU' if gpus else 'CPU'} ({os.cpu_count()} cores), {gpus} GPU(s)",
             "kernels: oneDNN " + {True: "on", False: "off", None: "unknown"}[onednn]]
    if dataset is not None:
        source = data.source_info(dataset, data_dir)
        parts.append(f"data: {dataset} from {source.get('source')} "
                     f"({source.get('train_images')} train, "
                     f"{source.get('validation_images')} validation)")
    quiet_logs()
    return " | ".join(parts)
