"""The cohort: end to end on synthetic data, skipping finished stages, resuming after a kill,
divergence, member selection."""

import dataclasses
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from helpers import tiny_cohort_spec

from robust_saliency import cohort, results, run_folders, runs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_TRAIN = tiny_cohort_spec().train
_spec = tiny_cohort_spec


@pytest.mark.slow
def test_cohort_end_to_end_then_skips_everything(tiny_cohort):
    folder, ran, lines = tiny_cohort  # run once from an empty folder, shared with test_figures
    lines = list(lines)
    assert ran == [(0, "train"), (0, "metrics"), (0, "rho_gradient"), (0, "rho_bim"),
                   (0, "rho_cw"), (1, "train"), (1, "metrics"), (1, "rho_gradient"),
                   (1, "rho_bim"), (1, "rho_cw")]
    assert "model 2/2, lambda=1000: evaluating cw 12/12" in lines
    spec, table = cohort.read(folder)
    assert list(table["status"]) == ["evaluated", "evaluated"]
    assert list(table["lam"]) == [1.0, 1000.0]
    record = results.read_json(os.path.join(folder, table["run_dir"][1], "run.json"))
    assert "probe_alignment" not in record["history"][0]  # probe_size=0: no probe ran
    assert not os.path.exists(os.path.join(folder, table["run_dir"][1], "tb", "probe"))
    summary = results.read_json(os.path.join(folder, table["run_dir"][1], "summary.json"))
    # cohort.csv carries the summary's medians; CW's may be nan: at these cheap settings it can
    # find no adversarial for the strongly regularised member (all excluded as not found).
    for column in ("rho_bim", "rho_best", "rho_cw"):
        np.testing.assert_allclose(table[f"median_{column}"][1],
                                   float(summary["medians"][column]),  # JSON holds nan as "nan"
                                   rtol=1e-12)  # and nan equals nan here
    assert np.isfinite(table["median_rho_best"][1])
    before = open(os.path.join(folder, "cohort.csv")).read()
    lines.clear()
    assert cohort.run(folder, _spec(), progress=lambda m, end="\n": lines.append(m)) == []
    assert lines == ["model 1/2, lambda=1: done", "model 2/2, lambda=1000: done"]
    assert open(os.path.join(folder, "cohort.csv")).read() == before


@pytest.mark.slow
def test_diverged_member_is_recorded_and_the_sweep_goes_on(tmp_path):
    folder = str(tmp_path / "c")
    cohort.run(folder, _spec(lambdas=(1e30, 1.0)), train_verbose=0)
    _, table = cohort.read(folder)
    assert list(table["status"]) == ["diverged", "evaluated"]
    assert np.isnan(table["accuracy"][0]) and table["accuracy"][1] >= 0


@pytest.mark.slow
def test_members_subset_then_gather_the_rest(tmp_path):
    folder = str(tmp_path / "c")
    ran = cohort.run(folder, _spec(), members=[1], train_verbose=0)
    assert {m for m, _ in ran} == {1}
    _, table = cohort.read(folder)
    assert list(table["status"]) == ["pending", "evaluated"]


def test_member_selection():
    assert cohort.select_members(5) == [0, 1, 2, 3, 4]
    assert cohort.select_members(5, members=[3, 0, 3]) == [0, 3]
    assert cohort.select_members(5, shard="1/2") == [1, 3]
    with pytest.raises(ValueError, match="out of range"):
        cohort.select_members(3, members=[5])
    with pytest.raises(ValueError, match="i/n"):
        cohort.select_members(3, shard="two")


def test_folder_of_another_cohort_is_refused(tmp_path):
    folder = str(tmp_path / "c")
    os.makedirs(folder)
    results.write_json(os.path.join(folder, "cohort.json"), {**_spec().to_json(), "data": None})
    with pytest.raises(ValueError, match="different lambdas"):
        cohort.run(folder, _spec(lambdas=(5.0,)))


def _cohort_command(folder):
    return [sys.executable, "-m", "experiments.cohort", "--train.data.dataset=synthetic",
            f"--results_dir={folder}", "--lambdas=1,1000", "--train.schedule.epochs=1",
            "--train.data.train_subset=300", "--num_images=12", "--train.probe_size=0",
            "--attacks=gradient,bim", "--attack_options=bim.steps=3,bim.search_steps=3",
            "--train.optimizer.learning_rate=0.005", "--train.schedule.kind=step",
            "--train.schedule.decay_epochs=3", "--train.schedule.decay_factor=0.2"]


@pytest.mark.slow
def test_killed_cohort_rerun_completes_with_the_same_rows(tmp_path):
    folder = str(tmp_path / "c")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.Popen(_cohort_command(folder), cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = os.path.join(folder, "m00_lam1", "summary.json")
    second_run = os.path.join(folder, "m01_lam1000", "run.json")
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if os.path.exists(first) and os.path.exists(second_run):
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the cohort finished before it could be killed"
    _, killed = cohort.read(folder)
    assert killed["status"][0] == "evaluated" and killed["status"][1] != "evaluated"
    row0 = {k: v[0] for k, v in killed.items()}
    done = subprocess.run(_cohort_command(folder), cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "model 1/2, lambda=1: done" in done.stdout
    _, table = cohort.read(folder)
    assert list(table["status"]) == ["evaluated", "evaluated"]
    for key, value in row0.items():
        if isinstance(value, float) and np.isnan(value):
            assert np.isnan(table[key][0]), key
        else:
            assert table[key][0] == value, key
    saved = json.load(open(os.path.join(folder, "cohort.json")))
    assert saved["lambdas"] == [1.0, 1000.0]
    # The schedule flags override the preset's, in cohort.json and in each member's run.json.
    schedule = {"optimizer.learning_rate": 0.005, "schedule.kind": "step",
                "schedule.decay_epochs": 3, "schedule.decay_factor": 0.2}
    record = results.read_json(os.path.join(folder, "m00_lam1", "run.json"))
    assert saved[results.SCHEMA_KEY] == record[results.SCHEMA_KEY] == results.SCHEMA_VERSION
    for train in (saved["train"], record["config"]):
        assert {k: train[k.split(".")[0]][k.split(".")[1]] for k in schedule} == schedule


def test_explanation_metrics_can_be_added_to_a_measured_cohort_not_taken_away(tmp_path):
    folder = str(tmp_path / "c")
    os.makedirs(folder)
    results.write_json(os.path.join(folder, "cohort.json"), {**_spec().to_json(), "data": None})
    cohort._claim_folder(folder, dataclasses.replace(_spec(), explanation_metrics=True))
    assert results.read_json(os.path.join(folder, "cohort.json"))["explanation_metrics"] is True
    with pytest.raises(ValueError, match="different explanation_metrics"):
        cohort._claim_folder(folder, _spec())


COMMITTED = sorted(glob.glob(os.path.join(ROOT, "results", "**", results.COHORT_JSON),
                             recursive=True))


@pytest.mark.skipif(not COMMITTED, reason="no committed cohorts")
@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: os.path.basename(os.path.dirname(p)))
def test_committed_cohorts_load_and_still_resume(tmp_path, path, monkeypatch):
    """Every committed cohort.json and run.json is in the current layout: it loads into the
    TrainConfig and writes back unchanged, and the folder is claimed by its own spec and every
    member's config matches the spec's at its lambda and seed, so a rerun resumes instead of
    refusing the folder."""
    found = results.read_json(path)
    # The data source is checked elsewhere (test_data); here the dataset need not be on disk.
    monkeypatch.setattr(run_folders, "data_record", lambda config: found["data"])
    spec = cohort.CohortSpec.from_json(found)
    assert results.jsonable(spec.to_json()) == {k: v for k, v in found.items() if k != "data"}
    folder = str(tmp_path / "c")
    os.makedirs(folder)
    shutil.copy(path, folder)
    cohort._claim_folder(folder, spec)  # raises for a folder of another configuration
    run_jsons = glob.glob(os.path.join(os.path.dirname(path), "*", results.RUN_JSON))
    assert run_jsons
    for run_json in run_jsons:
        config = results.read_json(run_json)["config"]
        lam, seed = config["penalty"]["lam"], config["seed"]
        assert run_folders.saved_config_matches(config, spec.train.replace(penalty={"lam": lam},
                                                                    seed=seed))
        assert not run_folders.saved_config_matches(
            config, spec.train.replace(penalty={"lam": lam + 1.0}, seed=seed))
        assert runs.TrainConfig.from_json(config).to_json() == config


def test_a_committed_cohort_reruns_with_every_member_done(tmp_path, monkeypatch):
    """The README's cohort, copied as committed (weights, no model.keras): cohort.run with the
    spec of its cohort.json and with the preset that made it trains and evaluates nothing."""
    from experiments import presets

    source = os.path.join(ROOT, "results", "mnist_quick_mnist")
    folder = str(tmp_path / "quick")
    shutil.copytree(source, folder, ignore=shutil.ignore_patterns("tb"))
    found = results.read_json(os.path.join(folder, results.COHORT_JSON))
    monkeypatch.setattr(run_folders, "data_record", lambda config: found["data"])
    assert cohort.run(folder, cohort.CohortSpec.from_json(found)) == []
    preset = presets.override(presets.get("mnist_quick"), seeds=found["seeds"])
    assert cohort.run(folder, preset) == []
    assert results.read_json(os.path.join(folder, results.COHORT_JSON)) == found


def _committed_copy(tiny_cohort, tmp_path):
    """The shared tiny cohort as a committed folder holds it: every file but model.keras."""
    folder = str(tmp_path / "committed")
    shutil.copytree(tiny_cohort[0], folder,
                    ignore=shutil.ignore_patterns(results.MODEL_FILE, "tb", "backup"))
    return folder


def test_a_committed_member_loads_from_its_weights_exactly(tiny_cohort, tmp_path):
    folder = _committed_copy(tiny_cohort, tmp_path)
    member = os.path.join(folder, "m00_lam1")
    x = np.random.default_rng(0).uniform(0, 1, (5, *runs.load_model(
        os.path.join(tiny_cohort[0], "m00_lam1")).network.input_shape[1:])).astype("float32")
    full = runs.load_model(os.path.join(tiny_cohort[0], "m00_lam1")).network(x)
    rebuilt = runs.load_model(member).network(x)
    np.testing.assert_array_equal(np.asarray(rebuilt), np.asarray(full))
    weights = os.path.join(member, results.WEIGHTS_FILE)
    with open(weights, "r+b") as f:  # one byte changed
        f.seek(-100, os.SEEK_END)
        byte = f.read(1)
        f.seek(-100, os.SEEK_END)
        f.write(bytes([byte[0] ^ 1]))
    with pytest.raises(ValueError, match="sha256.*restore it"):
        runs.load_model(member)
    os.remove(weights)
    with pytest.raises(FileNotFoundError, match="no trained model"):
        runs.load_model(member)


@pytest.mark.slow
def test_attacks_added_to_a_committed_cohort_run_alone_without_retraining(tiny_cohort,
                                                                          tmp_path):
    folder = _committed_copy(tiny_cohort, tmp_path)
    before = results.read_table(os.path.join(folder, "m00_lam1", results.PER_IMAGE_CSV))
    spec = dataclasses.replace(_spec(), attacks=_spec().attacks + ("fmn",),
                               attack_options={**_spec().attack_options, "fmn": {"steps": 20}})
    ran = cohort.run(folder, spec, train_verbose=0)
    assert sorted(set(stage for _, stage in ran)) == ["rho_fmn"]
    after = results.read_table(os.path.join(folder, "m00_lam1", results.PER_IMAGE_CSV))
    for column in before:
        if column != "rho_best":
            np.testing.assert_array_equal(after[column], before[column])
    rho = np.stack([after[f"rho_{m}"] for m in spec.attacks])
    np.testing.assert_array_equal(after["rho_best"], rho.min(axis=0))
    assert results.read_json(os.path.join(folder, results.COHORT_JSON))["attacks"] == list(
        spec.attacks)
    with pytest.raises(ValueError, match="different attack_options"):
        cohort.run(folder, dataclasses.replace(spec, attack_options={"fmn": {"steps": 20}}))


def test_forget_command_drops_the_columns_of_the_chosen_members_only(tiny_cohort, tmp_path):
    folder = _committed_copy(tiny_cohort, tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "experiments.forget", f"--results_dir={folder}",
         "--columns=rho_bim", "--members=0"], cwd=ROOT, capture_output=True, text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), timeout=300)
    assert done.returncode == 0, done.stderr
    assert "m00_lam1: dropped rho_bim" in done.stdout
    _, table = cohort.read(folder)
    first, second = (os.path.join(folder, d, results.PER_IMAGE_CSV) for d in table["run_dir"])
    assert "rho_bim" not in results.read_table(first)
    assert "rho_bim" in results.read_table(second)
    _, table = cohort.read(folder)
    assert list(table["status"]) == ["trained", "evaluated"]  # member 0 is to be re-measured
