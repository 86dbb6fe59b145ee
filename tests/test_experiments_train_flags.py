"""The training flags are generated from the configuration's fields: one per leaf by its dotted
name, values parsed as the field's type and validated as in Python, unknown names refused with
the likely or the valid ones."""

import pytest
from absl import flags as absl_flags

from experiments import train, train_flags  # noqa: F401 - train defines the flags
from robust_saliency import runs, train_config

FLAGS = absl_flags.FLAGS


@pytest.fixture
def parse():
    """Parses flags as `python -m experiments.train` would; resets them afterwards."""
    def parse(*args):
        FLAGS.unparse_flags()
        FLAGS(["train", *args])
        return train.config_from_flags()

    yield parse
    FLAGS.unparse_flags()


def test_every_leaf_has_one_dotted_flag_and_no_other_name():
    names = [leaf.name for leaf in train_config.leaves()]
    assert len(names) == len(set(names)) == 31
    for name in names:
        assert "train." + name in FLAGS, name
        assert FLAGS["train." + name].help  # the field's own help text
    for old in ("lam", "epochs", "dataset", "penalty_convention", "learning_rate"):
        assert old not in FLAGS, old


def test_dotted_flags_set_the_field(parse):
    _, config = parse("--train.optimizer.momentum=0.95", "--train.penalty.lam=100",
                      "--train.schedule.epochs=3",
                      "--train.data.train_subset=none", "--train.penalty.name=pgd_l2",
                      '--train.penalty.options={"steps": 3}', "--train.schedule.kind=plateau")
    assert config.optimizer.momentum == 0.95 and config.penalty.lam == 100.0
    assert config.schedule.epochs == 3 and config.schedule.kind == "plateau"
    assert config.data.train_subset is None and config.penalty.options == {"steps": 3}
    _, default = parse()
    assert default.penalty.lam == train.presets.get("mnist_quick").lambdas[0]
    assert default.data.train_subset == 9000


@pytest.mark.parametrize("flag, change", [
    ("--train.optimizer.momentum=1.5", {"optimizer.momentum": 1.5}),
    ("--train.penalty.lam=-1", {"penalty.lam": -1.0}),
    ("--train.schedule.patience=0", {"schedule.patience": 0}),
    ("--train.data.dataset=cifar", {"data.dataset": "cifar"}),
    ('--train.penalty.options={"stepz": 3}',
     {"penalty.name": "pgd_l2", "penalty.options": {"stepz": 3}}),
])
def test_an_invalid_value_gives_the_error_python_gives(parse, flag, change):
    with pytest.raises(ValueError) as in_python:
        train.presets.get("mnist_quick").train.replace(**{"penalty.lam": 10.0, **change})
    args = [flag] + (["--train.penalty.name=pgd_l2"] if "penalty.name" in change else [])
    with pytest.raises(ValueError) as through_flags:
        parse(*args)
    assert str(through_flags.value) == str(in_python.value)


def test_values_that_do_not_parse_name_the_flag_and_the_type(parse):
    with pytest.raises(ValueError, match=r"--train.schedule.epochs='abc' is not an integer"):
        parse("--train.schedule.epochs=abc")
    with pytest.raises(ValueError, match=r"--train.penalty.options='\[1\]' is not a JSON object"):
        parse("--train.penalty.options=[1]")
    with pytest.raises(ValueError, match="--train.data.dataset='none' is not text|unknown "
                                         "dataset 'none'"):
        parse("--train.data.dataset=none")  # not optional: 'none' is a dataset name here


def test_an_unknown_dotted_name_is_refused_with_the_valid_names():
    with pytest.raises(SystemExit) as exit_info:
        train_flags.parse_flags(["train", "--train.optimizer.momentun=0.9"])
    message = str(exit_info.value.code)
    assert message.startswith("error: unknown flag --train.optimizer.momentun")
    assert "--train.optimizer.momentum" in message and "--train.penalty.lam" in message


@pytest.mark.parametrize("old, new", [("--lam=10", "--train.penalty.lam"),
                                      ("--penalty_convention=x", "--train.penalty.convention"),
                                      ("--epochs=3", "--train.schedule.epochs"),
                                      ("--train.lam=1", "--train.penalty.lam")])
def test_an_old_or_bare_name_is_answered_by_its_dotted_flag(old, new):
    with pytest.raises(SystemExit) as exit_info:
        train_flags.parse_flags(["train", old])
    message = str(exit_info.value.code)
    assert message.startswith(f"error: unknown flag {old.split('=')[0]}")
    assert f"did you mean {new}?" in message


def test_every_leaf_resolves_flattens_and_round_trips():
    # The flags, --print_preset and the saved layout all follow from leaves(): each leaf is
    # found by its dotted name, in flatten's order, and survives to_json/from_json.
    config = runs.TrainConfig()
    for leaf in train_config.leaves():
        assert train_config.resolve(leaf.name) == leaf.name
        assert train_config.get(config, leaf.name) == leaf.default or leaf.name in (
            "penalty.sensitivity_mode",)  # resolved on construction
    assert list(train_config.flatten(config)) == [leaf.name for leaf in train_config.leaves()]
    assert runs.TrainConfig.from_json(config.to_json()) == config
