"""The train command end to end: outputs, resume after SIGKILL, divergence, bad flags."""

import glob
import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from robust_saliency import runs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--preset=mnist_quick", "--train.data.dataset=synthetic", "--train.data.train_subset=400",
        "--train.batch_size=20"]


def _command(*args):
    return [sys.executable, "-m", "experiments.train", *TINY, *args]


def _env():
    return dict(os.environ, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2")


def _run(*args):
    return subprocess.run(_command(*args), cwd=ROOT, env=_env(), capture_output=True, text=True,
                          timeout=600)


def _main_in_process(*args):
    """experiments.train's main on these flags in this process, its flags reset afterwards."""
    from absl import flags as absl_flags

    from experiments import train

    absl_flags.FLAGS.unparse_flags()
    absl_flags.FLAGS(["train", *TINY, *args])
    try:
        train.main([])
    finally:
        absl_flags.FLAGS.unparse_flags()


def _tags(event_dir):
    import tensorflow as tf

    tags = set()
    for path in glob.glob(os.path.join(event_dir, "**", "events.out.tfevents.*"), recursive=True):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(v.tag for v in event.summary.value)
    return tags


# The schedule flags override the preset's; 500 / 10 = 50 steps per epoch: a second or more,
# ample for the 50 ms poll to catch the run between epochs.
SCHEDULE = ("--train.optimizer.learning_rate=0.004", "--train.schedule.kind=step",
            "--train.schedule.decay_epochs=1",
            "--train.schedule.decay_factor=0.5")


def _args(run_dir, strategy):
    return ("--train.penalty.lam=10", "--train.schedule.epochs=3", "--train.data.train_subset=500",
            "--train.batch_size=10", *SCHEDULE,
            f"--strategy={strategy}", f"--run_dir={run_dir}")


def _kill_after_an_epoch_then_rerun(run_dir, strategy):
    """The train command SIGKILLed once run.json records a finished epoch, then run again with
    the same flags: (epochs completed at the kill, run.json at the kill, the rerun's result)."""
    run_json = os.path.join(run_dir, "run.json")
    proc = subprocess.Popen(_command(*_args(run_dir, strategy)), cwd=ROOT, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    completed = 0
    while time.time() < deadline and proc.poll() is None:
        try:
            completed = json.load(open(run_json)).get("epochs_completed", 0)
        except (OSError, ValueError):
            completed = 0
        if completed >= 1:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait(timeout=60)
    killed = json.load(open(run_json))
    return completed, killed, _run(*_args(run_dir, strategy))


@pytest.fixture(scope="module")
def resumed_run(tmp_path_factory):
    """One killed-and-resumed run of the train command (default strategy), which both the
    resume test and the end-to-end output test read: a resumed run must leave every output a
    run that was never cut leaves."""
    run_dir = str(tmp_path_factory.mktemp("train") / "run")
    return (run_dir, *_kill_after_an_epoch_then_rerun(run_dir, "default"))


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["default", "mirrored"])
def test_sigkill_then_rerun_resumes(tmp_path, strategy, request):
    if strategy == "default":
        run_dir, completed, killed, resumed = request.getfixturevalue("resumed_run")
    else:
        run_dir = str(tmp_path / "run")
        completed, killed, resumed = _kill_after_an_epoch_then_rerun(run_dir, strategy)
    assert 1 <= completed < 3, "training was not caught between epochs"
    assert killed["status"] == "running"
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    record = json.load(open(os.path.join(run_dir, "run.json")))
    assert record["status"] == "completed" and record["strategy"] == strategy
    assert [h["epoch"] for h in record["history"]] == [1, 2, 3]
    assert record["history"][0] == killed["history"][0]  # kept, not retrained
    out = resumed.stdout
    assert "Epoch 1/3" not in out and f"Epoch {completed + 1}/3" in out
    keras.models.load_model(os.path.join(run_dir, "model.keras"))


@pytest.mark.slow
def test_train_command_end_to_end(resumed_run, capsys):
    run_dir, _, _, resumed = resumed_run
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    record = json.load(open(os.path.join(run_dir, "run.json")))
    assert record["status"] == "completed"
    for key in ("loss", "nll", "penalty", "weight_norm", "accuracy", "val_loss",
                "probe_alignment", "probe_lin_robustness"):
        assert key in record["history"][-1], key
    config = record["config"]  # nested: {"data": {...}, "penalty": {...}, ...}
    assert config["penalty"]["lam"] == 10.0 and config["data"]["dataset"] == "synthetic"
    assert config["optimizer"]["learning_rate"] == 0.004
    assert config["schedule"] == {**config["schedule"], "kind": "step", "decay_epochs": 1,
                                  "decay_factor": 0.5}
    assert "tensorflow" in record["versions"]
    model = runs.load_model(run_dir)
    assert model.penalty.lam == 10.0
    # Loaded with its optimizer state: 150 steps taken over both processes, so the step
    # schedule is at 0.004 / 2^3.
    assert int(model.optimizer.iterations) == 150
    assert float(model.optimizer.learning_rate) == pytest.approx(0.0005)
    x = np.zeros((2, 28, 28, 1), "float32")
    assert model(x).shape == (2, 10)
    assert not os.path.exists(os.path.join(run_dir, "backup"))  # removed once finished
    tags = _tags(os.path.join(run_dir, "tb"))
    assert {"epoch_loss", "epoch_penalty", "epoch_probe_alignment"} <= tags
    assert {"probe/images", "probe/saliency"} <= tags
    assert "_hparams_/session_start_info" in tags
    # A finished run reruns in no time and leaves the model untouched (the command's main in
    # this process: the fixture's runs were the real command).
    stamp = os.path.getmtime(os.path.join(run_dir, "model.keras"))
    capsys.readouterr()
    _main_in_process(*_args(run_dir, "default"))
    assert "completed" in capsys.readouterr().out
    assert os.path.getmtime(os.path.join(run_dir, "model.keras")) == stamp


@pytest.mark.slow
def test_divergence_is_recorded_and_fails(tmp_path):
    run_dir = str(tmp_path / "run")
    done = _run("--train.penalty.lam=1e30", "--train.schedule.epochs=2", f"--run_dir={run_dir}")
    assert done.returncode != 0
    assert "diverged" in done.stderr
    record = json.load(open(os.path.join(run_dir, "run.json")))
    assert record["status"] == "diverged"
    assert record["diverged_at"]["epoch"] == 0
    assert not os.path.exists(os.path.join(run_dir, "model.keras"))
    # Rerunning reports the divergence again instead of training a NaN model on (the command's
    # main in this process: the run above was the real command).
    with pytest.raises(SystemExit) as exit_info:
        _main_in_process("--train.penalty.lam=1e30", "--train.schedule.epochs=2",
                         f"--run_dir={run_dir}")
    assert "diverged" in str(exit_info.value.code)


@pytest.mark.parametrize("flag, message", [
    ("--train.penalty.lam=-1", "lam must be >= 0"),
    ("--train.batch_size=0", "batch_size must be >= 1"),
    ("--train.penalty.convention=sum", "unknown penalty convention 'sum'"),
    ("--train.penalty.sensitivity_mode=probs", "unknown sensitivity mode 'probs'"),
    ("--preset=nope", "unknown preset"),
    ("--train.data.dataset=cifar", "unknown dataset"),
    ("--train.model.num_classes=5", "num_classes=5 needs dataset 'imagenet'"),
])
def test_invalid_flags_fail_before_work(tmp_path, flag, message):
    # The command's own main in this process (a subprocess per flag spent seconds importing
    # TensorFlow); test_bad_preset_fails_as_a_command runs one case as the real command.
    run_dir = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_info:
        _main_in_process(flag, f"--run_dir={run_dir}")
    assert message in str(exit_info.value.code)
    assert not run_dir.exists()


def test_bad_preset_fails_as_a_command(tmp_path):
    run_dir = tmp_path / "run"
    done = _run("--preset=nope", f"--run_dir={run_dir}")
    assert done.returncode != 0
    assert "unknown preset" in done.stderr
    assert not run_dir.exists()


def test_print_preset_shows_the_protocol(capsys):
    _main_in_process("--print_preset")
    out = capsys.readouterr().out
    assert "lambdas: 10, 150, 2000, 20000, 180000" in out
    # Resolved: TINY's batch size and dataset, the preset's first lambda.
    assert "  batch_size = 20\n" in out and "  data.dataset = 'synthetic'" in out
    assert "  penalty.lam = 10.0" in out and "  optimizer.momentum = 0.9" in out
