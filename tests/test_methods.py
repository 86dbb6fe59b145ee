"""Beyond the paper: the quick presets of every robustification method end to end on synthetic
data, their comparison's claims and its figure command, and the sanity command on them (the
comparison's rules on hand-made curves: test_method_comparison.py; the figure's legend:
test_figures_methods.py)."""

import os
import subprocess
import sys

import numpy as np
import pytest

from experiments import fig_methods, presets
from robust_saliency import cohort, evaluation, method_comparison, results
from robust_saliency.figures import methods

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHEAP = {"cw": {"steps": 20, "binary_search_steps": 2}, "bim": {"steps": 3, "search_steps": 3},
         "ddn": {"steps": 20}, "fmn": {"steps": 20}, "bim_linf": {"steps": 3, "search_steps": 3},
         "fmn_linf": {"steps": 20}, "gradient": {"grid_size": 30, "refine_steps": 8},
         "alma": {"steps": 20}, "fab": {"steps": 5, "candidates": 3}}
# The presets' own optimisation is tuned for minutes of MNIST; one epoch on 300 synthetic images
# needs the gentler constant rate under which every method's models stay usable. No per-epoch
# probe: it does not depend on the method, and the train command's test checks it.
TINY = {"data.dataset": "synthetic", "schedule.epochs": 1, "batch_size": 50,
        "data.train_subset": 300, "data.val_subset": 100, "probe_size": 0,
        "optimizer.learning_rate": 1e-2, "schedule.kind": "constant"}


@pytest.fixture(scope="session")
def method_cohorts(tmp_path_factory):
    """Each quick preset's first and last strength, shrunk to seconds, as cohort folders."""
    root = tmp_path_factory.mktemp("methods")
    folders = {}
    for name in fig_methods.PRESETS:
        preset = presets.get(name)
        spec = presets.override(
            preset, lambdas=(preset.lambdas[0], preset.lambdas[-1]), num_images=12,
            attack_options={m: CHEAP[m] for m in preset.attacks}, **TINY)
        folders[name] = str(root / name)
        cohort.run(folders[name], spec, train_verbose=0)
    return folders


@pytest.mark.slow
def test_every_method_preset_runs_end_to_end(method_cohorts):
    for name, folder in method_cohorts.items():
        spec, table = cohort.read(folder)
        assert list(table["status"]) == ["evaluated", "evaluated"], name
        assert spec["train"]["penalty"]["name"] == presets.get(name).train.penalty.name
        for column in ("median_alignment", "median_rho_bim", "median_lin_robustness_linf",
                       *("median_" + c for c in evaluation.SALIENCY_COLUMNS)):
            assert np.all(np.isfinite(table[column])), (name, column)
    linf = method_cohorts["mnist_quick_linf"]
    _, table = cohort.read(linf)
    run_dir = os.path.join(linf, table["run_dir"][0])
    per_image = results.read_table(os.path.join(run_dir, results.PER_IMAGE_CSV))
    np.testing.assert_array_equal(per_image["rho_best_linf"],
                                  np.minimum(per_image["rho_bim_linf"], per_image["rho_fmn_linf"]))
    # The L2 best never takes an L-infinity distance.
    np.testing.assert_array_equal(per_image["rho_best"], np.minimum.reduce(
        [per_image["rho_gradient"], per_image["rho_bim"], per_image["rho_ddn"],
         per_image["rho_fmn"]]))
    curve = results.read_table(os.path.join(run_dir, results.ROBUST_ACCURACY_LINF_CSV))
    assert {"robust_accuracy_bim_linf", "robust_accuracy_best_linf"} <= set(curve)
    assert not any(k.endswith("_linf") for k in results.read_table(
        os.path.join(run_dir, results.ROBUST_ACCURACY_CSV)))


@pytest.mark.slow
def test_methods_figure_and_claims(method_cohorts, tmp_path):
    paths, rows = methods.plot(list(method_cohorts.values()), str(tmp_path))
    assert all(os.path.getsize(p) > 0 for p in paths)
    labels = [method_comparison.label(cohort.read(f)[0]) for f in method_cohorts.values()]
    assert len(set(labels)) == 4
    assert [r["claim"] for r in rows[:4]] == [
        f"alignment rises with robustness under {label}" for label in labels]
    # Two models per method are too few to judge a trend.
    assert all(r["verdict"] == "n/a" for r in rows[:4])
    assert rows[4]["claim"] == "most aligned method at matched robustness"
    done = subprocess.run(
        [sys.executable, "-m", "experiments.fig_methods",
         "--results_dirs=" + ",".join(method_cohorts.values()), f"--out_dir={tmp_path / 'cmd'}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert os.path.exists(tmp_path / "cmd" / "fig_methods.png")
    assert "most aligned method at matched robustness" in open(
        tmp_path / "cmd" / "claims_methods.md").read()


@pytest.mark.slow
def test_sanity_command_writes_the_randomisation_table(method_cohorts):
    folder = method_cohorts["mnist_quick"]
    done = subprocess.run(
        [sys.executable, "-m", "experiments.sanity", f"--results_dir={folder}", "--member=1",
         "--num_images=20"], cwd=ROOT, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert done.returncode == 0, done.stderr[-3000:]
    _, table = cohort.read(folder)
    rows = results.read_table(os.path.join(folder, table["run_dir"][1], "randomisation.csv"))
    # small_net: the trained maps, then its two dense and three conv layers top-down.
    assert list(rows["randomised"][:2]) == ["none", "logits"]
    assert list(rows["layers_randomised"]) == [0, 1, 2, 3, 4, 5]
    assert rows["median_rank_correlation"][0] == pytest.approx(1.0)
    assert rows["median_rank_correlation"][-1] < 0.9
    assert "| none | 0 |" in done.stdout
