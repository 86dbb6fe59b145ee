"""Training apart: a member trained on CPU replicas in a child process with single-threaded
kernels records what the parent would, resumes and diverges as runs.train does, and stops with
its parent."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from helpers import tiny_cohort_spec

from robust_saliency import cohort, results, runs, train_process

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = tiny_cohort_spec().train


@pytest.mark.slow
def test_child_trains_mirrored_single_threaded_and_a_finished_run_starts_no_child(
        tmp_path, monkeypatch):
    run_dir = str(tmp_path / "run")
    record = train_process.train_apart(TINY.replace(penalty={"lam": 1.0}), run_dir, replicas=2,
                                       verbose=0)
    assert record == results.read_json(os.path.join(run_dir, results.RUN_JSON))
    assert record["status"] == "completed" and record["epochs_completed"] == 1
    assert record["strategy"] == "mirrored" and record["replicas"] == 2
    assert record["intra_op_threads"] == 1  # this process keeps TensorFlow's default pool
    assert record["command"] == sys.argv
    assert runs.load_model(run_dir) is not None

    def no_child(*args, **kwargs):
        raise AssertionError("a finished run started a child process")

    monkeypatch.setattr(subprocess, "Popen", no_child)
    again = train_process.train_apart(TINY.replace(penalty={"lam": 1.0}), run_dir, replicas=2)
    assert again == record


@pytest.mark.slow
def test_divergence_in_the_child_raises_here(tmp_path):
    run_dir = str(tmp_path / "run")
    with pytest.raises(runs.TrainingDiverged, match="lam=1e"):
        train_process.train_apart(TINY.replace(penalty={"lam": 1e30}), run_dir, replicas=2)
    assert results.read_json(os.path.join(run_dir, results.RUN_JSON))["status"] == "diverged"


# Ctrl-C's default handler, which a process started in the background of a non-interactive
# shell (as CI may start the suite) inherits switched off: SIGINT ignored, for this script and
# the child it starts.
_PARENT = """
import signal
import sys
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.path.insert(0, {tests!r})
from helpers import tiny_cohort_spec
from robust_saliency import train_process
config = tiny_cohort_spec().train.replace(penalty={{"lam": 1.0}}, schedule={{"epochs": 1000}})
train_process.train_apart(config, {run_dir!r}, replicas=2, verbose=0)
"""


def _children(pid):
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="needs Linux's /proc")
def test_interrupting_the_parent_stops_the_child_and_keeps_finished_epochs(tmp_path):
    run_dir = str(tmp_path / "run")
    script = _PARENT.format(tests=os.path.join(ROOT, "tests"), run_dir=run_dir)
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run_json = os.path.join(run_dir, results.RUN_JSON)
    deadline = time.time() + 300
    children, sent = [], False
    while time.time() < deadline and parent.poll() is None:
        children = children or _children(parent.pid)
        if os.path.exists(run_json) and json.load(open(run_json))["epochs_completed"] >= 2:
            parent.send_signal(signal.SIGINT)
            sent = True
            break
        time.sleep(0.05)
    try:
        _, err = parent.communicate(timeout=120)
    finally:  # leave nothing running behind a failed test
        for pid in [parent.pid, *children]:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
    assert sent, "the parent ended before it was interrupted: " + err[-2000:]
    assert "KeyboardInterrupt" in err, err[-2000:]
    assert len(children) == 1 and not _alive(children[0])
    kept = results.read_json(run_json)
    assert kept["status"] == "running" and 2 <= kept["epochs_completed"] < 1000


def test_cpu_replicas_need_the_mirrored_strategy(tmp_path):
    with pytest.raises(ValueError, match="needs strategy 'mirrored'"):
        cohort.run(str(tmp_path / "c"), tiny_cohort_spec(), cpu_replicas=2)
