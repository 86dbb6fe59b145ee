"""The plateau learning-rate schedule: its rule, its callback, and a run it ends early."""

import json
import os

import keras
import numpy as np
import pytest

from robust_saliency import models, results, runs, training


@pytest.mark.parametrize("values, patience, max_decays, expected", [
    ([1.0, 0.9, 0.8], 2, None, (0, False)),  # always improving
    ([1.0, 0.9, 0.95, 0.96], 2, None, (1, False)),  # two epochs without a new best: a decay
    ([1.0, 0.9, 0.95, 0.96, 0.97], 2, None, (1, False)),  # the count restarted after the decay
    ([1.0, 0.9, 0.95, 0.96, 0.97, 0.98], 2, None, (2, False)),
    ([1.0, 0.9, 0.95, 0.96], 2, 0, (0, True)),  # the first plateau ends a run allowed 0 decays
    ([1.0, 1.0, 1.0, 1.0], 1, 2, (2, True)),  # an equal value is no improvement
    ([1.0, 0.99995, 0.9998], 1, None, (1, False)),  # 5e-5 is below min_delta (1e-4), 2e-4 not
    ([1.0, 0.95, 1.2, 0.9, 1.3], 2, None, (0, False)),  # a new best resets the count
])
def test_plateau_state_rule(values, patience, max_decays, expected):
    assert training.plateau_state(values, patience=patience, max_decays=max_decays) == expected


def _compiled_model(lr):
    model = models.small_net()
    model.compile(optimizer=keras.optimizers.SGD(lr, momentum=0.9), loss="mse")
    return model


def test_callback_follows_the_recorded_history_and_logs_the_rate_used():
    history = [{"epoch": 1, "val_loss": 1.0}, {"epoch": 2, "val_loss": 1.1},
               {"epoch": 3, "val_loss": 1.2}]  # one decay already (patience 2)
    schedule = training.PlateauSchedule(0.5, lambda: history, factor=0.1, patience=2,
                                        max_decays=1)
    schedule.set_model(_compiled_model(0.5))
    optimizer = schedule.model.optimizer
    schedule.on_train_begin()  # a resumed run: the rate is the one the history implies
    np.testing.assert_allclose(float(optimizer.learning_rate.numpy()), 0.05, rtol=1e-6)
    logs = {"val_loss": 1.3}
    schedule.on_epoch_end(3, logs)  # epoch 4: one epoch after the decay, no plateau yet
    np.testing.assert_allclose(logs["learning_rate"], 0.05, rtol=1e-6)
    assert not schedule.model.stop_training
    history.append({"epoch": 4, "val_loss": 1.3})
    logs = {"val_loss": 1.4}
    schedule.on_epoch_end(4, logs)  # the plateau after max_decays decays ends training
    assert schedule.model.stop_training
    np.testing.assert_allclose(logs["learning_rate"], 0.05, rtol=1e-6)


def test_plateau_run_stops_early_and_a_run_cut_after_its_last_epoch_resumes_done(tmp_path):
    # A learning rate so small that the validation loss cannot improve by min_delta: epoch 1
    # sets the best, epoch 2 is a plateau (patience 1) and decays, epoch 3 ends the run.
    config = runs.TrainConfig.of(
        data={"dataset": "synthetic", "train_subset": 100, "val_subset": 50},
        schedule={"epochs": 10, "kind": "plateau", "patience": 1, "max_decays": 1},
        optimizer={"learning_rate": 1e-9}, penalty={"lam": 1.0},
        batch_size=50, probe_size=0)
    run_dir = str(tmp_path / "run")
    seen = {}

    class CutAfterThirdEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 2:
                seen["stopping"] = self.model.stop_training  # the schedule's decision
                seen["weights"] = [w.numpy().copy() for w in self.model.network.weights]
                raise KeyboardInterrupt  # after run.json and the backup recorded epoch 3

    with pytest.raises(KeyboardInterrupt):
        runs.train(config, run_dir, verbose=0, extra_callbacks=[CutAfterThirdEpoch()])
    assert seen["stopping"]
    cut = json.load(open(os.path.join(run_dir, "run.json")))
    assert cut["status"] == "running" and cut["epochs_completed"] == 3
    record = runs.train(config, run_dir, verbose=0)
    assert record["status"] == "completed" and record["epochs_completed"] == 3
    assert [h["epoch"] for h in record["history"]] == [1, 2, 3]  # nothing trained again
    np.testing.assert_allclose([h["learning_rate"] for h in record["history"]],
                               [1e-9, 1e-9, 1e-10], rtol=1e-6)
    for saved, kept in zip(runs.load_model(run_dir).network.weights, seen["weights"]):
        np.testing.assert_array_equal(saved.numpy(), kept)


def test_plateau_settings_are_validated():
    with pytest.raises(ValueError, match=r"schedule.patience must be >= 1"):
        runs.TrainConfig.of(schedule={"patience": 0})
    with pytest.raises(ValueError,
                       match=r"schedule.max_decays must be >= 0"):
        runs.TrainConfig.of(schedule={"max_decays": -1})
    with pytest.raises(ValueError, match="probe_size must be >= 0"):
        runs.TrainConfig.of(probe_size=-1)


def test_a_completed_run_without_its_model_file_trains_afresh(tmp_path):
    """A run.json kept without its model and weights must not count as trained: its recorded
    epochs describe weights that are gone. With its weights file (a committed result folder)
    it is done and loads."""
    config = runs.TrainConfig.of(
        data={"dataset": "synthetic", "train_subset": 100, "val_subset": 50},
        schedule={"epochs": 1, "kind": "constant"}, penalty={"lam": 1.0},
        batch_size=50, probe_size=0)
    run_dir = str(tmp_path / "run")
    first = runs.train(config, run_dir, verbose=0)
    os.remove(os.path.join(run_dir, "model.keras"))
    assert runs.train(config, run_dir, verbose=0) == first  # the weights file: done
    runs.load_model(run_dir)
    os.remove(os.path.join(run_dir, results.WEIGHTS_FILE))
    stale_table = os.path.join(run_dir, results.PER_IMAGE_CSV)
    results.write_table(stale_table, {"label": np.zeros(3)})  # an evaluation of the lost model
    stale = dict(first, history=[dict(first["history"][0], val_loss=-1.0)])
    with open(os.path.join(run_dir, "run.json"), "w") as f:
        json.dump(stale, f)
    again = runs.train(config, run_dir, verbose=0)
    assert again["status"] == "completed" and os.path.exists(os.path.join(run_dir, "model.keras"))
    assert [h["epoch"] for h in again["history"]] == [1]
    assert again["history"][0]["val_loss"] > 0  # measured again, not the stale row
    assert not os.path.exists(stale_table)  # not to be extended with the new model's columns
