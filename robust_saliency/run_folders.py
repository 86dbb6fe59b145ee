"""A run folder on disk: the configuration and data source its run.json records and its trained
weights. robust_saliency.runs trains into one and loads its model back (runs.load_model).
"""

from __future__ import annotations

import os

from robust_saliency import data, logits, results, train_config


def saved_config_matches(saved, config):
    """Whether a config saved in run.json/cohort.json is `config` (False for one this version
    cannot read)."""
    try:
        return train_config.TrainConfig.from_json(saved) == config
    except (TypeError, ValueError):  # not a configuration this version can make
        return False


def data_record(config):
    """data.source_info of `config`'s dataset, after checking that the source holds the
    training and validation images `config` asks for (DataNotFoundError if not)."""
    d = config.data
    data.check_available(d.dataset, "train", d.train_subset, d.data_dir)
    data.check_available(d.dataset, "validation", d.val_subset, d.data_dir)
    return data.source_info(d.dataset, d.data_dir)


def check_same_data(saved, current, folder):
    """Raises ValueError when a folder's recorded data source (run.json or cohort.json 'data')
    is not the one `config` resolves to now: resuming would mix two datasets."""
    keys = ("source", "sha1", "train_images", "validation_images")
    if saved is None or all(saved.get(k) == current.get(k) for k in keys):
        return
    described = {k: saved.get(k) for k in keys}
    raise ValueError(f"{folder} was made with {described} but the data now resolves to "
                     f"{ {k: current.get(k) for k in keys} }; pass the original source with "
                     "--data_dir, or choose another folder.")


def has_weights(run_dir, record):
    """Whether a completed run keeps its trained weights (a committed folder has no
    model.keras, but its weights file): then it is done, not to be retrained."""
    return bool(record.get("trained_weights")) and os.path.exists(
        os.path.join(run_dir, results.WEIGHTS_FILE))


def save_weights(model, run_dir):
    """Writes the trained network's weights to run_dir/WEIGHTS_FILE (atomically); returns
    run.json's record of them ('trained_weights'): {'file': ..., 'sha256': ...}."""
    path = os.path.join(run_dir, results.WEIGHTS_FILE)
    with results.atomic_path(path) as tmp:
        logits.logits_network(model).save_weights(tmp)
    return {"file": results.WEIGHTS_FILE, "sha256": results.file_digest(path)}


def saved_config(saved):
    """The TrainConfig of a config dict saved in run.json or cohort.json."""
    return train_config.TrainConfig.from_json(saved)
