"""Fine-tuning from another run's weights (model.init_weights): a run starts exactly at its
source's network and records where it came from; a missing, changed or mismatched source is a
clear error. Also the other settings of the deep-network presets (the milestone schedule, the
ResNet depth) and, end to end, their tiny pipeline: pretraining, two mirrored fine-tunes from
its weights, evaluation."""

import json
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest

from robust_saliency import data, data_sources, models, results, runs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# small_bn_net: batch norm, so the moving statistics must come along too.
SOURCE = runs.TrainConfig.of(data={"dataset": "synthetic", "train_subset": 100, "val_subset": 50},
                             model={"name": "small_bn_net"},
                             schedule={"epochs": 1, "kind": "constant"},
                             optimizer={"learning_rate": 0.05}, batch_size=50, probe_size=0)


@pytest.fixture(scope="module")
def source_run(tmp_path_factory):
    run_dir = str(tmp_path_factory.mktemp("source") / "run")
    runs.train(SOURCE, run_dir, verbose=0)
    return run_dir


class _LogitsAtStart(keras.callbacks.Callback):
    """The network's inference logits on `images` when fit begins, before the first step."""

    def __init__(self, images):
        super().__init__()
        self.images, self.logits = images, None

    def on_train_begin(self, logs=None):
        self.logits = np.asarray(self.model.network(self.images, training=False))


def _images():
    return data.load_arrays("synthetic", "validation", num_examples=6)[0]


@pytest.mark.parametrize("as_file", [False, True])
def test_a_fine_tune_starts_exactly_at_its_source_and_records_it(source_run, tmp_path,
                                                                  as_file):
    path = os.path.join(source_run, results.WEIGHTS_FILE) if as_file else source_run
    source = runs.load_model(source_run).network
    start = _LogitsAtStart(_images())
    config = SOURCE.replace(penalty={"lam": 10.0}, model={"init_weights": path},
                            optimizer={"learning_rate": 0.01})
    record = runs.train(config, str(tmp_path / "fine"), verbose=0, extra_callbacks=[start])
    np.testing.assert_array_equal(start.logits, np.asarray(source(_images(), training=False)))
    source_record = results.read_json(os.path.join(source_run, results.RUN_JSON))
    assert record["init_weights"] == {
        "path": path, "file": os.path.abspath(os.path.join(source_run, results.WEIGHTS_FILE)),
        "sha256": source_record["trained_weights"]["sha256"]}
    saved = results.read_json(str(tmp_path / "fine" / results.RUN_JSON))
    assert saved["init_weights"] == record["init_weights"]
    assert saved["config"]["model"]["init_weights"] == path
    # ... and it trained from there: its weights moved.
    tuned = runs.load_model(str(tmp_path / "fine")).network
    assert not np.array_equal(np.asarray(tuned(_images(), training=False)), start.logits)


def test_a_missing_source_is_a_clear_error_and_leaves_no_run(source_run, tmp_path):
    fine = str(tmp_path / "fine")
    with pytest.raises(FileNotFoundError, match="init_weights '.*nowhere' does not exist: give "
                                                "a finished run's folder or a weights file"):
        runs.train(SOURCE.replace(model={"init_weights": str(tmp_path / "nowhere")}), fine,
                   verbose=0)
    assert not os.path.exists(os.path.join(fine, results.RUN_JSON))
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / results.RUN_JSON).write_text(json.dumps(
        {results.SCHEMA_KEY: results.SCHEMA_VERSION, "status": "running"}))
    with pytest.raises(FileNotFoundError, match="has no model.weights.h5 .*'running'.*finish "
                                                "that run first"):
        runs.train(SOURCE.replace(model={"init_weights": str(unfinished)}), fine, verbose=0)


def test_a_changed_source_file_is_refused_by_its_recorded_sha256(source_run, tmp_path):
    copy = str(tmp_path / "copy")
    shutil.copytree(source_run, copy)
    keras.utils.set_random_seed(3)
    models.small_bn_net().save_weights(os.path.join(copy, results.WEIGHTS_FILE))
    with pytest.raises(ValueError, match="has sha256 .* not the .* recorded in"):
        runs.train(SOURCE.replace(model={"init_weights": copy}), str(tmp_path / "fine"), verbose=0)


def test_another_architecture_names_the_file_the_shapes_and_the_fix(source_run, tmp_path):
    fine = str(tmp_path / "fine")
    config = SOURCE.replace(model={"name": "small_net", "init_weights": source_run})
    with pytest.raises(ValueError) as error:
        runs.train(config, fine, verbose=0)
    message = str(error.value)
    assert message.startswith(f"init_weights {os.path.join(source_run, results.WEIGHTS_FILE)} "
                              "does not fit model 'small_net' on synthetic (small_net): ")
    assert "layers/conv2d/vars/0: expected (3, 3, 1, 32), found (3, 3, 1, 8)" in message
    assert "Give the weights of a run of the same model" in message
    assert not os.path.exists(os.path.join(fine, results.RUN_JSON))  # a corrected rerun works


def test_milestone_schedule_divides_after_each_milestone_epoch():
    schedule = runs.milestone_decay(0.1, steps_per_epoch=3, milestones=(2, 3), factor=0.1)
    rates = [float(schedule(step)) for step in range(12)]
    np.testing.assert_allclose(rates, [0.1] * 6 + [0.01] * 3 + [0.001] * 3, rtol=1e-6)
    config = runs.TrainConfig.of(schedule={"kind": "milestones", "milestones": "6, 9"})
    assert config.schedule.milestone_epochs() == (6, 9)
    for bad in ("9,6", "0,3", "six", None):
        with pytest.raises(ValueError, match="milestones .*must be increasing epochs"):
            runs.TrainConfig.of(schedule={"kind": "milestones", "milestones": bad})
    with pytest.raises(ValueError, match="needs lr_schedule 'milestones'"):
        runs.TrainConfig.of(schedule={"kind": "step", "milestones": "3"})


def test_depth_and_init_weights_are_validated():
    config = runs.TrainConfig.of(data={"dataset": "synthetic"},
                                 model={"name": "resnet_cifar", "depth": 8})
    assert runs.build_model(config, steps_per_epoch=1).network.name == "resnet8"
    with pytest.raises(ValueError, match="depth=20 needs model 'resnet_cifar'"):
        runs.TrainConfig.of(model={"depth": 20})
    with pytest.raises(ValueError, match="depth must be 6n \\+ 2"):
        runs.TrainConfig.of(model={"name": "resnet_cifar", "depth": 10})
    with pytest.raises(ValueError, match="weights and init_weights are both set"):
        runs.TrainConfig.of(model={"name": "resnet50", "weights": "imagenet", "init_weights": "r"})


def test_bn_momentum_reaches_every_batch_norm_and_is_validated():
    def momenta(config):
        network = runs.build_model(config, steps_per_epoch=1).network
        return {layer.momentum for layer in network.layers
                if isinstance(layer, keras.layers.BatchNormalization)}

    config = runs.TrainConfig.of(data={"dataset": "synthetic"},
                                 model={"name": "resnet_cifar", "depth": 8})
    assert momenta(config) == {0.999}  # the authors' default
    assert momenta(config.replace(model={"bn_momentum": 0.9})) == {0.9}
    assert runs.TrainConfig.from_json(config.replace(model={"bn_momentum": 0.9}).to_json()) == \
        config.replace(model={"bn_momentum": 0.9})
    with pytest.raises(ValueError, match="bn_momentum=0.9 needs model 'resnet_cifar' or"):
        runs.TrainConfig.of(model={"bn_momentum": 0.9})
    with pytest.raises(ValueError, match="bn_momentum must lie in \\[0, 1\\)"):
        runs.TrainConfig.of(model={"name": "resnet_cifar", "bn_momentum": 1.0})


def _cohort(*args):
    env = dict(os.environ, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run([sys.executable, "-m", "experiments.cohort", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow
def test_tiny_pipeline_pretrains_fine_tunes_mirrored_from_it_and_evaluates(tmp_path):
    """fashion_resnet_tiny_pretrain, then fashion_resnet_tiny from its weights under
    MirroredStrategy on two logical CPUs (the commands of the presets' docstrings)."""
    # The real Fashion-MNIST where its Debian package is installed (CI installs it).
    dataset = ([] if os.path.isdir(data_sources.DEBIAN_FASHION_MNIST_DIR)
               else ["--train.data.dataset=synthetic"])
    pre, fine = str(tmp_path / "pre"), str(tmp_path / "fine")
    _cohort("--preset=fashion_resnet_tiny_pretrain", f"--results_dir={pre}", *dataset)
    source = os.path.join(pre, "m00_lam0")
    shown = _cohort("--preset=fashion_resnet_tiny", "--print_preset")
    assert ("model.init_weights = 'results/fashion_resnet_tiny_pretrain_fashion_mnist/m00_lam0'"
            in shown)
    _cohort("--preset=fashion_resnet_tiny", f"--results_dir={fine}",
            f"--train.model.init_weights={source}",
            "--strategy=mirrored", "--cpu_replicas=2", *dataset)
    pretrained = results.read_json(os.path.join(source, results.RUN_JSON))
    table = results.read_table(os.path.join(fine, results.COHORT_CSV))
    assert list(table["status"]) == ["evaluated", "evaluated"]
    for member in table["run_dir"]:
        record = results.read_json(os.path.join(fine, member, results.RUN_JSON))
        assert record["init_weights"]["sha256"] == pretrained["trained_weights"]["sha256"]
        assert record["strategy"] == "mirrored" and record["replicas"] == 2
        assert record["intra_op_threads"] == 1  # trained apart (train_process)
        assert record["config"]["model"]["depth"] == 8
        summary = results.read_json(os.path.join(fine, member, results.SUMMARY_JSON))
        assert summary["num_images"] == 8 and {"gradient", "bim"} <= set(summary["attacks"])
