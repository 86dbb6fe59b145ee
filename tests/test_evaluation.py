"""Evaluation: the table's contents, resume after an interrupted attack, and the evaluate
command end to end (the summary and robust-accuracy curve: test_table_summary.py)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from robust_saliency import attacks, evaluation, metrics, results, runs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHEAP = {"cw": {"steps": 50, "binary_search_steps": 3}, "bim": {"steps": 5, "search_steps": 4}}


def test_table_summary_and_maps(tmp_path, trained_small_net, synthetic_arrays):
    _, (x, y) = synthetic_arrays
    x, y = x[:12], y[:12]
    summary = evaluation.evaluate(trained_small_net, x, y, str(tmp_path), bounds=(0.0, 1.0),
                                  attack_methods=("gradient", "cw"), attack_options=CHEAP)
    table = results.read_table(tmp_path / "per_image.csv")
    for key in ("index", "label", "correct", *metrics.PER_IMAGE_KEYS, "rho_gradient", "rho_cw",
                "rho_best"):
        assert key in table and len(table[key]) == 12, key
    np.testing.assert_array_equal(table["label"], y)
    np.testing.assert_array_equal(table["rho_best"],
                                  np.minimum(table["rho_gradient"], table["rho_cw"]))
    assert summary["accuracy"] == pytest.approx(np.mean(table["pred"] == y))
    assert summary["medians"]["rho_cw"] == pytest.approx(np.median(table["rho_cw"]))
    assert "pred" not in summary["medians"]
    on_disk = json.load(open(tmp_path / "summary.json"))
    assert on_disk["excluded"]["rho_cw"] == {"already_adversarial": 0, "not_found": 0}
    maps = np.load(tmp_path / "maps.npz")
    assert maps["grad_pred"].shape == (12, 28, 28, 1)
    np.testing.assert_allclose(maps["x"], x)


def test_interrupted_evaluation_resumes_with_missing_attacks(tmp_path, trained_small_net,
                                                             synthetic_arrays, monkeypatch):
    _, (x, y) = synthetic_arrays
    x, y = x[:8], y[:8]
    real = attacks.minimal_distance
    calls = []

    def interrupted(model, images, method, bounds, **options):
        calls.append(method)
        if method == "bim":
            raise KeyboardInterrupt
        return real(model, images, method, bounds, **options)

    monkeypatch.setattr(attacks, "minimal_distance", interrupted)
    with pytest.raises(KeyboardInterrupt):
        evaluation.evaluate(trained_small_net, x, y, str(tmp_path), bounds=(0.0, 1.0),
                            attack_methods=("gradient", "bim"), attack_options=CHEAP)
    table = results.read_table(tmp_path / "per_image.csv")
    assert "rho_gradient" in table and "rho_bim" not in table
    monkeypatch.setattr(attacks, "minimal_distance", real)
    summary = evaluation.evaluate(trained_small_net, x, y, str(tmp_path), bounds=(0.0, 1.0),
                                  attack_methods=("gradient", "bim"), attack_options=CHEAP)
    assert summary["stages_run"] == ["rho_bim"]
    again = evaluation.evaluate(trained_small_net, x, y, str(tmp_path), bounds=(0.0, 1.0),
                                attack_methods=("gradient", "bim"), attack_options=CHEAP)
    assert again["stages_run"] == []


def test_forgotten_columns_alone_are_measured_again(tmp_path, trained_small_net,
                                                   synthetic_arrays):
    _, (x, y) = synthetic_arrays
    x, y = x[:8], y[:8]
    common = dict(bounds=(0.0, 1.0), attack_methods=("gradient", "bim"), attack_options=CHEAP)
    evaluation.evaluate(trained_small_net, x, y, str(tmp_path), **common)
    before = results.read_table(tmp_path / "per_image.csv")
    assert evaluation.forget(str(tmp_path), ["rho_bim", "rho_cw"]) == ["rho_bim"]
    table = results.read_table(tmp_path / "per_image.csv")
    assert "rho_bim" not in table and not (tmp_path / "summary.json").exists()
    assert "rho_bim" not in json.load(open(tmp_path / "timings.json"))
    assert evaluation.forget(str(tmp_path), ["rho_bim"]) == []  # nothing left to drop
    summary = evaluation.evaluate(trained_small_net, x, y, str(tmp_path), **common)
    assert summary["stages_run"] == ["rho_bim"]
    after = results.read_table(tmp_path / "per_image.csv")
    for key in before:  # measured again by the same attack: the same values
        np.testing.assert_array_equal(after[key], before[key], err_msg=key)
    with pytest.raises(ValueError, match=r"\['alignment'\] are written by the metrics pass"):
        evaluation.forget(str(tmp_path), ["alignment", "rho_bim"])
    assert "rho_bim" in results.read_table(tmp_path / "per_image.csv")


@pytest.mark.slow
def test_evaluate_command_end_to_end(tmp_path):
    config = runs.TrainConfig.of(
        data={"dataset": "synthetic", "train_subset": 500, "val_subset": 100},
        schedule={"epochs": 1, "kind": "constant"},
        optimizer={"learning_rate": 1e-2}, batch_size=50, probe_size=0)
    run_dir = str(tmp_path / "run")
    runs.train(config, run_dir, verbose=0)
    done = subprocess.run(
        [sys.executable, "-m", "experiments.evaluate", f"--run_dir={run_dir}",
         "--num_images=20", "--attacks=gradient,bim,cw,fmn_linf", "--aggregated_saliency",
         "--attack_options=cw.steps=30,cw.binary_search_steps=2,bim.steps=5,fmn_linf.steps=20"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "evaluated 20 images" in done.stdout
    summary = json.load(open(os.path.join(run_dir, "summary.json")))
    assert summary["num_images"] == 20 and summary["dataset"] == "synthetic"
    assert summary["attack_options"]["cw"] == {"steps": 30, "binary_search_steps": 2}
    curve = results.read_table(os.path.join(run_dir, "robust_accuracy.csv"))
    assert {"epsilon", "robust_accuracy_cw", "robust_accuracy_best"} <= set(curve)
    assert "robust_accuracy_fmn_linf" not in curve  # L-inf distances get their own curve
    curve = results.read_table(os.path.join(run_dir, "robust_accuracy_linf.csv"))
    assert {"epsilon", "robust_accuracy_fmn_linf", "robust_accuracy_best_linf"} <= set(curve)
    for column in ("alignment_smoothgrad", "alignment_ig", "rho_fmn_linf", "rho_best_linf"):
        assert np.isfinite(summary["medians"][column]), column


def test_evaluate_command_rejects_bad_flags(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "experiments.evaluate", f"--run_dir={tmp_path}",
         "--attacks=gradient,pgd"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "unknown attack methods ['pgd']" in done.stderr
