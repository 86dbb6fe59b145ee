"""The nested training configuration: each part validates its own fields, parts replaced by
dicts or dotted names, one layout read (older ones refused naming the upgrade command)."""

import copy
import dataclasses

import keras
import numpy as np
import pytest

from robust_saliency import models, results, run_folders, runs, train_config, training, upgrade


def test_parts_are_replaced_by_dicts_objects_or_dotted_names():
    config = runs.TrainConfig()
    by_dict = config.replace(penalty={"lam": 30.0, "name": "alignment"},
                             schedule={"epochs": 4}, seed=2)
    assert by_dict.penalty.lam == 30.0 and by_dict.penalty.name == "alignment"
    assert by_dict.schedule.epochs == 4 and by_dict.seed == 2
    assert by_dict.schedule.decay_epochs == config.schedule.decay_epochs  # the rest kept
    assert by_dict == config.replace(**{"penalty.lam": 30.0, "penalty.name": "alignment",
                                        "schedule.epochs": 4, "seed": 2})
    part = train_config.PenaltyConfig(name="alignment", lam=30.0)
    assert config.replace(penalty=part).penalty is part
    assert runs.TrainConfig.of(penalty={"lam": 1.0}).penalty.lam == 1.0


def test_old_short_names_are_refused_with_the_dotted_name():
    with pytest.raises(ValueError, match="unknown training setting 'lam'; did you mean "
                                         "penalty.lam"):
        runs.TrainConfig().replace(lam=1.0)
    with pytest.raises(ValueError, match="did you mean schedule.epochs"):
        runs.TrainConfig.of(epochs=3)
    with pytest.raises(ValueError, match="unknown training setting 'penalty.lamda'"):
        runs.TrainConfig().replace(penalty={"lamda": 1.0})


def test_a_saved_config_of_another_layout_is_refused_naming_the_upgrade():
    flat = {"dataset": "mnist", "lam": 10.0, "epochs": 3}
    with pytest.raises(ValueError, match="unknown fields dataset, epochs, lam; missing fields "
                                         ".*experiments.upgrade_results"):
        runs.TrainConfig.from_json(flat)
    partial = runs.TrainConfig().to_json()
    del partial["penalty"]["convention"]
    with pytest.raises(ValueError, match="missing fields penalty.convention"):
        runs.TrainConfig.from_json(partial)
    assert not run_folders.saved_config_matches(flat, runs.TrainConfig())


def test_each_part_names_its_own_problems():
    with pytest.raises(ValueError, match="invalid data configuration: unknown dataset 'x'"):
        runs.TrainConfig.of(data={"dataset": "x"})
    with pytest.raises(ValueError, match="invalid model configuration: weights='imagenet' "
                                         "needs model 'resnet50'"):
        runs.TrainConfig.of(model={"weights": "imagenet"})
    with pytest.raises(ValueError, match="invalid schedule configuration: unknown lr_schedule "
                                         "'cosine'.*; schedule.epochs must be >= 1"):
        runs.TrainConfig.of(schedule={"kind": "cosine", "epochs": 0})
    with pytest.raises(ValueError, match="invalid penalty configuration: penalty 'pgd_l2': "
                                         ".*unexpected keyword argument 'stepz'"):
        runs.TrainConfig.of(penalty={"name": "pgd_l2", "options": {"stepz": 1}})
    with pytest.raises(ValueError, match="unknown training setting 'lr'; valid: data.dataset"):
        runs.TrainConfig.of(lr=0.1)
    with pytest.raises(ValueError, match="data must be a DataConfig"):
        runs.TrainConfig(data={"dataset": "mnist"})


def test_a_saved_config_from_a_newer_version_is_refused_not_half_read():
    saved = {**runs.TrainConfig().to_json(), "optimizer": {"learning_rate": 0.1, "nesterov": 1}}
    with pytest.raises(ValueError, match="unknown fields optimizer.nesterov"):
        runs.TrainConfig.from_json(saved)
    assert not run_folders.saved_config_matches(saved, runs.TrainConfig())


def test_a_model_round_trips_its_penalty_config_and_refuses_a_flat_one(tmp_path):
    penalty = train_config.PenaltyConfig(name="alignment", lam=3.0, convention="per_example")
    model = training.RobustModel(models.linear_classifier(), penalty=penalty, weight_decay=1e-4)
    saved = model.get_config()
    assert saved["penalty"] == results.jsonable(dataclasses.asdict(penalty))
    again = training.RobustModel.from_config(copy.deepcopy(saved))
    assert again.penalty_config == penalty and again.weight_decay == 1e-4
    flat = {k: v for k, v in saved.items() if k != "penalty"}
    flat.update(lam=3.0, penalty="alignment", penalty_convention="per_example")
    with pytest.raises(results.OldLayoutError, match="experiments.upgrade_results"):
        training.RobustModel.from_config(copy.deepcopy(flat))
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.penalty_config == penalty
    x = np.random.default_rng(0).uniform(size=(3, 28, 28, 1)).astype("float32")
    np.testing.assert_array_equal(loaded(x), model(x))


def test_robust_model_takes_a_penalty_config_or_its_field_names_not_both():
    net = models.linear_classifier()
    short = training.RobustModel(net, lam=2.0, penalty="gradient_l1",
                                 convention="per_example")
    assert short.penalty_config == train_config.PenaltyConfig(name="gradient_l1", lam=2.0,
                                                              convention="per_example")
    with pytest.raises(TypeError, match="give lam in the PenaltyConfig"):
        training.RobustModel(net, penalty=train_config.PenaltyConfig(), lam=1.0)


def test_likely_names_an_old_flat_name_a_bare_leaf_or_a_close_spelling():
    # One mechanism answers both TrainConfig.replace and the command-line flags.
    old_names = upgrade.FLAT_TRAIN_CONFIG
    assert train_config.likely("lr_schedule", old_names) == ["schedule.kind"]  # a renamed one
    assert train_config.likely("lam") == ["penalty.lam"]  # a leaf's last name
    assert train_config.likely("momentun") == ["optimizer.momentum"]  # close spelling
    assert train_config.likely("optimizer.momentun")[0] == "optimizer.momentum"
    assert train_config.likely("zzz") == []
