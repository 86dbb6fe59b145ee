"""tf.distribute strategies by name, and which process of a multi-worker job writes results.

  default       one device (TensorFlow's default strategy)
  mirrored      all local GPUs, or all local (logical) CPU devices when there is no GPU
                (split_cpu makes several of one CPU: --cpu_replicas of the cohort command)
  multi_worker  MultiWorkerMirroredStrategy across machines, configured by the TF_CONFIG
                environment variable (every worker runs the same command)

Under every strategy the dataset is batched at the *global* batch size and RobustModel scales
each replica's loss by it, so one step equals the single-device step on the same global batch.
"""

import json
import os

import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multi_worker")


def get_strategy(name="default"):
    """The strategy called `name` (see module doc); create it before building the model."""
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; valid: {', '.join(STRATEGIES)}")
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = (tf.config.list_logical_devices("GPU")
                   or tf.config.list_logical_devices("CPU"))
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    config = os.environ.get("TF_CONFIG")
    if not config:
        raise ValueError(
            "strategy 'multi_worker' needs the TF_CONFIG environment variable on every worker, "
            'e.g. TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
            '"task": {"type": "worker", "index": 0}}\' (index 1 on the second machine).')
    try:
        json.loads(config)
    except ValueError as e:
        raise ValueError(f"TF_CONFIG is not valid JSON: {e}") from e
    return tf.distribute.MultiWorkerMirroredStrategy()


def split_cpu(replicas):
    """Splits the CPU into `replicas` logical devices, so that 'mirrored' trains that many
    replicas on a machine without GPUs (each on its share of the global batch, with its own
    batch-norm statistics and penalty batch, as on as many GPUs). TensorFlow fixes its devices
    when its runtime starts: call this before the first TensorFlow operation.

    Raises:
      RuntimeError: the runtime already started with another number of CPU devices.
    """
    if replicas < 1:
        raise ValueError(f"replicas must be >= 1, got {replicas}")
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(replicas)])
    except RuntimeError as e:
        found = len(tf.config.list_logical_devices("CPU"))
        if found != replicas:
            raise RuntimeError(f"cannot split the CPU into {replicas} devices: TensorFlow has "
                               f"started with {found}; split it before the first TensorFlow "
                               "operation.") from e


def task():
    """(type, index) of this process in a multi-worker cluster; ('worker', 0) when alone."""
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    info = config.get("task", {})
    return info.get("type", "worker"), int(info.get("index", 0))


def is_chief():
    """Whether this process writes the results: the chief, else worker 0 when there is none."""
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    kind, index = task()
    if "chief" in config.get("cluster", {}):
        return kind == "chief"
    return kind == "worker" and index == 0


def worker_dir(run_dir):
    """Where this process writes: run_dir for the chief, run_dir/workers/<type><index> else.

    Every worker must save (saving is collective under MultiWorkerMirroredStrategy), but only the
    chief's files are the run's; the others keep theirs apart for inspection.
    """
    if is_chief():
        return run_dir
    kind, index = task()
    return os.path.join(run_dir, "workers", f"{kind}{index}")
