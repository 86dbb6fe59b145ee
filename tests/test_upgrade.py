"""The one-time upgrade of older result folders: each older layout is rewritten into exactly what
the current code writes, once and atomically; the library refuses an old folder naming the
command."""

import copy
import dataclasses
import json
import os
import subprocess
import sys
import zipfile

import keras
import numpy as np
import pytest
from helpers import tiny_cohort_spec

from robust_saliency import cohort, evaluation, models, results, runs, training, upgrade

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAT_OF = {dotted: flat for flat, dotted in upgrade.FLAT_TRAIN_CONFIG.items()}


def _spec():
    spec = tiny_cohort_spec()
    # The authors' scale at B = the whole batch of one replica: what a flat folder meant.
    train = spec.train.replace(penalty={"convention": "batch_mean", "batch_size": 50})
    return dataclasses.replace(spec, train=train)


def _flat(config_json, *, drop=("penalty.convention", "penalty.batch_size",
                                "penalty.sensitivity_mode")):
    """The flat layout of a nested config, without the fields flat files predate."""
    flat = {}
    for part, value in config_json.items():
        for leaf, leaf_value in (value.items() if isinstance(value, dict) else [(None, value)]):
            dotted = f"{part}.{leaf}" if leaf else part
            if dotted not in drop:
                flat[FLAT_OF[dotted]] = leaf_value
    return flat


def _write_current(folder):
    """A cohort folder of one member as the current code writes it (cohort.json, run.json,
    per_image.csv, summary.json)."""
    spec = _spec()
    member = cohort.member_dir(folder, 0, spec.lambdas[0])
    config = spec.train.replace(penalty={"lam": spec.lambdas[0]})
    results.write_json(os.path.join(folder, results.COHORT_JSON),
                       {**spec.to_json(), "data": None})
    results.write_json(os.path.join(member, results.RUN_JSON),
                       {results.SCHEMA_KEY: results.SCHEMA_VERSION, "config": config.to_json(),
                        "status": "completed", "strategy": "default", "replicas": 1})
    rng = np.random.default_rng(0)
    table = {"index": np.arange(30), "label": rng.integers(0, 10, 30),
             "correct": np.ones(30, int),
             "alignment": rng.uniform(1, 2, 30), "lin_robustness": rng.uniform(0, 1, 30)}
    results.write_table(os.path.join(member, results.PER_IMAGE_CSV), table)
    summary = {"num_images": 30, "accuracy": 1.0, "attacks": []}
    results.write_json(os.path.join(member, results.SUMMARY_JSON),
                       {**summary, **evaluation.summarize(table, meta=summary)})
    return spec, member


def _downgrade(folder, member):
    """The same folder in the oldest layout: flat configs, no version, no cohort fields added
    since, no bootstrap intervals, no seed or degenerate column."""
    path = os.path.join(folder, results.COHORT_JSON)
    saved = results.read_json(path)
    old = {k: v for k, v in saved.items()
           if k not in (results.SCHEMA_KEY, *upgrade.COHORT_FIELDS_ADDED)}
    results.write_json(path, {**old, "train": _flat(saved["train"])})
    path = os.path.join(member, results.RUN_JSON)
    record = results.read_json(path)
    del record[results.SCHEMA_KEY], record["replicas"]
    results.write_json(path, {**record, "config": _flat(record["config"])})
    path = os.path.join(member, results.SUMMARY_JSON)
    summary = results.read_json(path)
    del summary["median_intervals"]
    results.write_json(path, summary)
    path = os.path.join(folder, results.COHORT_CSV)
    table = results.read_table(path)
    results.write_table(path, {k: v for k, v in table.items() if k not in ("seed", "degenerate")})


def _files(folder):
    found = {}
    for root, _, names in os.walk(folder):
        for name in names:
            with open(os.path.join(root, name), "rb") as f:
                found[os.path.relpath(os.path.join(root, name), folder)] = f.read()
    return found


def test_the_oldest_layout_upgrades_to_what_the_current_code_writes_once(tmp_path):
    folder = str(tmp_path / "c")
    _, member = _write_current(folder)
    cohort.gather(folder)
    current = _files(folder)
    _downgrade(folder, member)
    assert _files(folder) != current
    changed = upgrade.upgrade_tree(folder)
    assert sorted(os.path.relpath(p, folder) for p in changed) == sorted(
        ["cohort.json", "cohort.csv", os.path.join("m00_lam1", "run.json"),
         os.path.join("m00_lam1", "summary.json")])
    upgraded = _files(folder)
    # The run record gains "replicas" only in what it means (B), not as a field it never had.
    run_json = os.path.join("m00_lam1", "run.json")
    assert json.loads(upgraded[run_json]) == {
        k: v for k, v in json.loads(current[run_json]).items() if k != "replicas"}
    assert {k: v for k, v in upgraded.items() if k != run_json} == {
        k: v for k, v in current.items() if k != run_json}
    assert upgrade.upgrade_tree(folder) == []  # once: a second run rewrites nothing
    assert _files(folder) == upgraded


def test_an_old_folder_is_refused_naming_the_command(tmp_path):
    folder = str(tmp_path / "c")
    spec, member = _write_current(folder)
    cohort.gather(folder)
    _downgrade(folder, member)
    command = f"with: python -m experiments.upgrade_results {os.path.abspath(folder)}"
    for read in (lambda: cohort.read(folder), lambda: cohort.run(folder, spec),
                 lambda: runs.load_model(member)):
        with pytest.raises(results.OldLayoutError, match="older layout") as error:
            read()
        assert str(error.value).endswith(command)  # a member's names its cohort
    record = results.read_json(os.path.join(member, results.RUN_JSON), check=False)
    results.write_json(os.path.join(member, results.RUN_JSON),
                       {**record, results.SCHEMA_KEY: results.SCHEMA_VERSION + 1})
    with pytest.raises(results.OldLayoutError, match="newer than this robust_saliency"):
        results.read_json(os.path.join(member, results.RUN_JSON))


def test_a_nested_config_without_its_b_takes_the_replica_batch_or_asks(tmp_path):
    folder = str(tmp_path / "r")
    config = _spec().train.to_json()
    del config["penalty"]["convention"], config["penalty"]["batch_size"]  # both predate B
    record = {"config": config, "status": "completed", "strategy": "mirrored"}
    results.write_json(os.path.join(folder, results.RUN_JSON), record)
    with pytest.raises(upgrade.UpgradeError, match="pass --replicas"):
        upgrade.upgrade_tree(folder)
    assert upgrade.upgrade_tree(folder, dry_run=True, replicas=2) == [
        os.path.join(folder, results.RUN_JSON)]
    assert results.read_json(os.path.join(folder, results.RUN_JSON), check=False) == record
    results.write_json(os.path.join(folder, results.RUN_JSON), {**record, "replicas": 2})
    upgrade.upgrade_tree(folder)
    penalty = results.read_json(os.path.join(folder, results.RUN_JSON))["config"]["penalty"]
    assert penalty["convention"] == "batch_mean" and penalty["batch_size"] == 25  # 50 / 2


def test_a_model_saved_with_flat_penalty_arguments_is_upgraded_and_loads(tmp_path, rng):
    folder = tmp_path / "r"
    folder.mkdir()
    model = training.RobustModel(models.small_net(), lam=100.0, convention="batch_mean",
                                 batch_size=100, sensitivity_mode="nll", weight_decay=1e-6)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9))
    x = rng.uniform(0, 1, (4, 28, 28, 1)).astype("float32")
    path = str(folder / results.MODEL_FILE)
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        members = {i.filename: archive.read(i.filename) for i in archive.infolist()}
    document = json.loads(members["config.json"])
    flat = copy.deepcopy(document)
    del flat["config"]["penalty"]
    flat["config"].update(penalty="gradient_norm", lam=100.0)  # B and convention predate them
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, json.dumps(flat) if name == "config.json" else data)
    with pytest.raises(Exception, match="experiments.upgrade_results"):
        keras.models.load_model(path)
    results.write_json(str(folder / results.RUN_JSON),
                       {"config": {"batch_size": 100}, "replicas": 1, "status": "completed"})
    changed = upgrade.upgrade_tree(str(folder))
    assert path in changed
    loaded = keras.models.load_model(path)
    assert loaded.penalty_config == model.penalty_config
    np.testing.assert_array_equal(loaded(x), model(x))
    assert upgrade.upgrade_tree(str(folder)) == []


def test_the_command_lists_then_rewrites(tmp_path):
    folder = str(tmp_path / "c")
    _, member = _write_current(folder)
    cohort.gather(folder)
    _downgrade(folder, member)
    before = _files(folder)
    command = [sys.executable, "-m", "experiments.upgrade_results", folder]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    dry = subprocess.run([*command, "--dry_run"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=300)
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert f"{folder}: would rewrite 4 file(s)" in dry.stdout and _files(folder) == before
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"{folder}: rewrote 4 file(s)" in done.stdout
    cohort.read(folder)  # now the current layout
    missing = subprocess.run([*command[:-1], str(tmp_path / "nowhere")], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=300)
    assert missing.returncode == 1 and "is not a folder" in missing.stderr
