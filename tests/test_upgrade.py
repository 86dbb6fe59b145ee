"""The one-time upgrade of older result folders: each older layout is rewritten into exactly what
the current code writes, once and atomically; the library refuses an old folder naming the
command."""

import copy
import json
import os
import zipfile

import keras
import numpy as np
import pytest
from helpers import (
    downgrade_to_oldest_layout,
    file_bytes,
    upgradable_spec,
    write_current_cohort,
)

from robust_saliency import cohort, models, results, runs, training, upgrade


def test_the_oldest_layout_upgrades_to_what_the_current_code_writes_once(tmp_path):
    folder = str(tmp_path / "c")
    _, member = write_current_cohort(folder)
    cohort.gather(folder)
    current = file_bytes(folder)
    downgrade_to_oldest_layout(folder, member)
    assert file_bytes(folder) != current
    changed = upgrade.upgrade_tree(folder)
    assert sorted(os.path.relpath(p, folder) for p in changed) == sorted(
        ["cohort.json", "cohort.csv", os.path.join("m00_lam1", "run.json"),
         os.path.join("m00_lam1", "summary.json")])
    upgraded = file_bytes(folder)
    # The run record gains "replicas" only in what it means (B), not as a field it never had.
    run_json = os.path.join("m00_lam1", "run.json")
    assert json.loads(upgraded[run_json]) == {
        k: v for k, v in json.loads(current[run_json]).items() if k != "replicas"}
    assert {k: v for k, v in upgraded.items() if k != run_json} == {
        k: v for k, v in current.items() if k != run_json}
    assert upgrade.upgrade_tree(folder) == []  # once: a second run rewrites nothing
    assert file_bytes(folder) == upgraded


def test_an_old_folder_is_refused_naming_the_command(tmp_path):
    folder = str(tmp_path / "c")
    spec, member = write_current_cohort(folder)
    cohort.gather(folder)
    downgrade_to_oldest_layout(folder, member)
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
    config = upgradable_spec().train.to_json()
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
