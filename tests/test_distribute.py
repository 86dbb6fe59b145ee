"""Distribution: mirrored steps against single-device ones (with and without batch norm), a real
two-worker MultiWorkerMirroredStrategy run on localhost, and strategy selection errors."""

import json
import os
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import randomize_biases

from robust_saliency import distribute, models, training

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _step(strategy, x, y, build, **options):
    """All weights (trainable and BN statistics) after one SGD step on the batch (x, y)."""
    with strategy.scope():
        keras.utils.set_random_seed(1)
        net = randomize_biases(build(), np.random.default_rng(5))
        model = training.RobustModel(net, **options)
        model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.0))
    model.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(len(x)), epochs=1, verbose=0,
              shuffle=False)
    # Layer names differ between builds (conv2d, conv2d_1, ...): key by position and kind.
    return {(i, "moving" in w.path): np.asarray(w) for i, w in enumerate(net.weights)}


@pytest.mark.parametrize("build, convention", [
    (models.small_bn_net, "per_example"),
    # The fine-tuning presets' network and the authors' convention: each replica's penalty is
    # the batch mean over its own half of the squared gradients of its half's mean loss.
    (lambda: models.resnet_cifar(depth=8), "batch_mean")], ids=["small_bn_net", "resnet8"])
def test_mirrored_batch_norm_step_is_the_mean_of_the_replicas_steps(rng, mirrored, build,
                                                                     convention):
    """With batch norm each replica normalises by its own half-batch statistics, so the mirrored
    step is not the single-device step on the whole batch. What it is, exactly: the loss is the
    global mean, so the gradient is the mean of the two half-batch gradients, and with plain SGD
    the new trainable weights are the mean of the two single-device steps on the halves. The
    moving statistics are not averaged: Keras keeps the first replica's update (its non-trainable
    variables aggregate ONLY_FIRST_REPLICA), i.e. the single-device update on the first half."""
    x = rng.uniform(0, 1, (8, 28, 28, 1)).astype("float32")
    y = rng.integers(0, 10, 8)
    # B of the batch-mean scale: each replica's own 4 images, as in the authors' per-GPU code.
    options = dict(lam=3.0, convention=convention, weight_decay=1e-3,
                   batch_size=4 if convention == "batch_mean" else None)
    stepped = _step(mirrored, x, y, build, **options)
    first, second = (_step(tf.distribute.get_strategy(), x[s], y[s], build, **options)
                     for s in (slice(0, 4), slice(4, 8)))
    whole = _step(tf.distribute.get_strategy(), x, y, build, **options)
    assert any(moving for _, moving in stepped)
    for key, value in stepped.items():
        expected = first[key] if key[1] else (first[key] + second[key]) / 2
        np.testing.assert_allclose(value, expected, rtol=1e-4, atol=1e-6, err_msg=str(key))
    # ... and it does differ from the whole-batch step (else this test would prove nothing).
    assert max(np.abs(stepped[n] - whole[n]).max() for n in stepped) > 1e-5


def test_unknown_strategy_and_missing_tf_config(monkeypatch):
    with pytest.raises(ValueError, match="unknown strategy 'tpu'"):
        distribute.get_strategy("tpu")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="needs the TF_CONFIG"):
        distribute.get_strategy("multi_worker")


def test_chief_and_worker_dirs(monkeypatch):
    cluster = {"worker": ["a:1", "b:2"]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster,
                                                "task": {"type": "worker", "index": 1}}))
    assert not distribute.is_chief()
    assert distribute.worker_dir("r") == os.path.join("r", "workers", "worker1")
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster,
                                                "task": {"type": "worker", "index": 0}}))
    assert distribute.is_chief() and distribute.worker_dir("r") == "r"


def _free_port():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_workers_on_localhost_agree(tmp_path):
    run_dir = str(tmp_path / "run")
    cluster = {"worker": [f"localhost:{_free_port()}", f"localhost:{_free_port()}"]}
    procs = []
    for index in (0, 1):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", TF_CONFIG=json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": index}}))
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "experiments.train", "--preset=mnist_quick",
             "--train.data.dataset=synthetic", "--train.penalty.lam=10",
             "--train.schedule.epochs=1", "--train.data.train_subset=40",
             "--train.batch_size=20", "--strategy=multi_worker", f"--run_dir={run_dir}"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-3000:]
    chief = json.load(open(os.path.join(run_dir, "run.json")))
    assert chief["status"] == "completed" and chief["replicas"] == 2
    assert chief["strategy"] == "multi_worker"
    weights = [keras.models.load_model(os.path.join(d, "model.keras")).get_weights()
               for d in (run_dir, os.path.join(run_dir, "workers", "worker1"))]
    initial = training.RobustModel(models.small_net())
    assert len(weights[0]) == len(initial.network.get_weights())
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)
