"""The nested training configuration: each part validates its own fields, short and dotted
names, and every older layout (flat run.json/cohort.json, flat RobustModel configs) read
through one upgrade."""

import copy
import dataclasses

import keras
import numpy as np
import pytest

from robust_saliency import models, results, runs, train_config, training

FLAT = {"dataset": "synthetic", "model": "small_net", "lam": 30.0, "penalty": "alignment",
        "penalty_convention": "per_example", "epochs": 4, "learning_rate": 0.01,
        "lr_schedule": "plateau", "plateau_patience": 3, "train_subset": 200, "seed": 2}


def test_a_flat_config_upgrades_to_the_nested_one_field_by_field():
    nested = results.upgrade_train_config(FLAT)
    assert nested["penalty"] == {"name": "alignment", "lam": 30.0, "convention": "per_example",
                                 "sensitivity_mode": "nll"}  # the old default, not 'logits'
    assert nested["schedule"] == {"epochs": 4, "kind": "plateau", "patience": 3}
    assert nested["seed"] == 2 and nested["data"] == {"dataset": "synthetic",
                                                      "train_subset": 200}
    config = runs.TrainConfig.from_json(FLAT)
    assert config == runs.TrainConfig.of(**{**FLAT, "sensitivity_mode": "nll"})
    assert results.upgrade_train_config(config.to_json()) == config.to_json()  # nested: kept
    assert results.train_setting(FLAT, "optimizer.learning_rate") == 0.01
    assert results.train_setting(FLAT, "optimizer.momentum", "absent") == "absent"
    assert results.train_setting(config.to_json(), "penalty.name") == "alignment"


def test_every_short_name_is_a_leaf_and_the_flat_layout_round_trips():
    leaves = [leaf.name for leaf in train_config.leaves()]
    assert sorted(train_config.SHORT_NAMES.values()) == sorted(leaves)
    config = runs.TrainConfig.of(**FLAT)
    flat = {short: train_config.get(config, short) for short in train_config.SHORT_NAMES}
    assert runs.TrainConfig.from_json(flat) == config


def test_each_part_names_its_own_problems():
    with pytest.raises(ValueError, match="invalid data configuration: unknown dataset 'x'"):
        runs.TrainConfig.of(dataset="x")
    with pytest.raises(ValueError, match="invalid model configuration: weights='imagenet' "
                                         "needs model 'resnet50'"):
        runs.TrainConfig.of(weights="imagenet")
    with pytest.raises(ValueError, match="invalid schedule configuration: unknown lr_schedule "
                                         "'cosine'.*; epochs \\(schedule.epochs\\) must be >= 1"):
        runs.TrainConfig.of(lr_schedule="cosine", epochs=0)
    with pytest.raises(ValueError, match="invalid penalty configuration: penalty 'pgd_l2': "
                                         ".*unexpected keyword argument 'stepz'"):
        runs.TrainConfig.of(penalty="pgd_l2", penalty_options={"stepz": 1})
    with pytest.raises(ValueError, match="unknown training setting 'lr'; valid: data.dataset"):
        runs.TrainConfig.of(lr=0.1)
    with pytest.raises(ValueError, match="data must be a DataConfig"):
        runs.TrainConfig(data={"dataset": "mnist"})


def test_a_saved_config_from_a_newer_version_is_refused_not_half_read():
    saved = {**runs.TrainConfig().to_json(), "optimizer": {"learning_rate": 0.1, "nesterov": 1}}
    with pytest.raises(ValueError, match="unknown fields optimizer.nesterov .*newer"):
        runs.TrainConfig.from_json(saved)
    assert not runs.saved_config_matches(saved, runs.TrainConfig())


def test_a_model_saved_with_flat_penalty_arguments_still_loads(tmp_path):
    penalty = train_config.PenaltyConfig(name="alignment", lam=3.0, convention="per_example")
    model = training.RobustModel(models.linear_classifier(), penalty=penalty, weight_decay=1e-4)
    saved = model.get_config()
    assert saved["penalty"] == results.jsonable(dataclasses.asdict(penalty))
    flat = {k: v for k, v in saved.items() if k != "penalty"}
    flat.update(lam=3.0, penalty="alignment", penalty_convention="per_example",
                sensitivity_mode="logits", penalty_batch_size=None, penalty_options={})
    for config in (saved, flat):  # Keras consumes the network's config: a copy each time
        again = training.RobustModel.from_config(copy.deepcopy(config))
        assert again.penalty_config == penalty and again.weight_decay == 1e-4
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.penalty_config == penalty
    x = np.random.default_rng(0).uniform(size=(3, 28, 28, 1)).astype("float32")
    np.testing.assert_array_equal(loaded(x), model(x))


def test_robust_model_takes_a_penalty_config_or_its_short_names_not_both():
    net = models.linear_classifier()
    short = training.RobustModel(net, lam=2.0, penalty="gradient_l1",
                                 penalty_convention="per_example")
    assert short.penalty_config == train_config.PenaltyConfig(name="gradient_l1", lam=2.0,
                                                              convention="per_example")
    with pytest.raises(TypeError, match="give lam in the PenaltyConfig"):
        training.RobustModel(net, penalty=train_config.PenaltyConfig(), lam=1.0)
