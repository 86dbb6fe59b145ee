"""Training on several CPU replicas, in a process of its own with single-threaded kernels.

MirroredStrategy over logical CPU devices (distribute.split_cpu) runs every replica's kernels in
TensorFlow's one intra-op thread pool. At its default size (a thread per core) the replicas'
kernels contend for that pool: the step is slower than the step of the same global batch on one
device, and in some processes, chosen at random as they start, the replicas take turns on one
core, the step about as long in wall time as in CPU time and twice the single-device one
(`python -m benchmarks.resnet_step --fit`). With one intra-op thread the inter-op pool runs the
replicas side by side, each on a core, in every process. The same setting would make every
single-device kernel, such as an attack's gradient, single-threaded and slower, and TensorFlow
fixes its pools when it starts; so a cohort trains each member in a child process set up this
way, and measures in its own.

    train_apart(config, run_dir, replicas=2)   # as runs.train(..., strategy="mirrored")
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from typing import TYPE_CHECKING, Any

# Nothing that loads TensorFlow at import: the child must choose how TensorFlow loads.
from robust_saliency import environment

if TYPE_CHECKING:
    from robust_saliency import train_config


def train_apart(config: train_config.TrainConfig, run_dir: str, *, replicas: int,
                verbose: int | str = 2) -> dict[str, Any]:
    """Trains `config` into `run_dir` as runs.train(config, run_dir, strategy="mirrored") on
    `replicas` logical CPU devices, in a child process whose kernels run on one thread each
    (module doc). Resumes, records and raises as runs.train does; the child prints Keras's
    progress to this process's output, and an interruption (Ctrl-C) stops the child, keeping
    the epochs it finished.

    Args:
      config: TrainConfig; batch_size is the global batch over the replicas.
      run_dir: the run folder (see runs.train).
      replicas: logical CPU devices, >= 1.
      verbose: Keras progress-bar verbosity.

    Returns:
      The run record (run.json's content), status 'completed'.

    Raises:
      TrainingDiverged: as runs.train.
      RuntimeError: the child failed otherwise (its traceback is on this process's stderr).
    """
    from robust_saliency import runs

    if replicas < 1:
        raise ValueError(f"replicas must be >= 1, got {replicas}")
    record = runs.finished_record(config, run_dir)
    if record is not None:
        return record
    job = {"config": config.to_json(), "run_dir": run_dir, "replicas": replicas,
           "verbose": verbose, "command": sys.argv}
    child = subprocess.Popen([sys.executable, "-m", __name__], stdin=subprocess.PIPE, text=True)
    try:
        child.communicate(json.dumps(job))
    except KeyboardInterrupt:
        _stop(child)
        raise
    record = runs.finished_record(config, run_dir)  # raises TrainingDiverged for a diverged run
    if record is None:
        raise RuntimeError(f"training {run_dir} in a child process failed (exit code "
                           f"{child.returncode}; its error is printed above). Rerunning resumes "
                           "from its last finished epoch.")
    return record


def _stop(child, patience=30.0):
    """Stops the child after this process was interrupted: Ctrl-C (its own may not have reached
    it), then, if it is still running after `patience` seconds, SIGTERM and SIGKILL. Its finished
    epochs are in its backup whichever ends it."""
    for send, wait in ((lambda: child.send_signal(signal.SIGINT), patience),
                       (child.terminate, 5.0), (child.kill, None)):
        if child.poll() is not None:
            return
        send()
        try:
            child.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def split_cpu_single_threaded(replicas: int) -> None:
    """Sets this process up as train_apart's child: TensorFlow's kernels on one thread each and
    the CPU split into `replicas` logical devices (distribute.split_cpu). Call it before
    TensorFlow's first operation, which fixes both.
    """
    import tensorflow as tf

    from robust_saliency import distribute

    tf.config.threading.set_intra_op_parallelism_threads(1)
    distribute.split_cpu(replicas)


def _main():
    """The child: reads the job train_apart wrote to its stdin, trains, exits."""
    job = json.load(sys.stdin)
    # Ctrl-C from the parent stops the training even where this process started with SIGINT
    # ignored (as a job in the background of a non-interactive shell does).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL"):  # the parent's quiet setting holds here too
        environment.import_tensorflow_quietly()
    from robust_saliency import runs, train_config

    split_cpu_single_threaded(job["replicas"])
    sys.argv = job["command"]  # run.json records the command the user ran
    try:
        runs.train(train_config.TrainConfig.from_json(job["config"]), job["run_dir"],
                   strategy="mirrored", verbose=job["verbose"])
    except runs.TrainingDiverged:
        pass  # run.json says so; the parent raises it
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    _main()
