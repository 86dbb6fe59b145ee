"""The presets are CohortSpecs made by registered factories: one definition per preset, with
its description, and overrides that keep the spec's validation."""

import pytest

from experiments import presets
from robust_saliency import cohort


@pytest.mark.parametrize("name", sorted(presets.PRESETS))
def test_each_preset_is_a_fresh_cohort_spec_named_after_it_with_a_command(name):
    spec = presets.get(name)
    assert isinstance(spec, cohort.CohortSpec) and spec.name == name
    assert presets.get(name) is not spec  # a caller's change cannot leak into the registry
    text = presets.describe(spec)
    assert f"python -m experiments.cohort --preset={name}" in text or "make demo" in text
    assert f"num_images: {spec.num_images}" in text
    assert f"  penalty.name = {spec.train.penalty.name!r}" in text


def test_override_replaces_only_what_is_given_and_validates():
    spec = presets.get("mnist_quick")
    changed = presets.override(spec, lambdas=[1.0, 2.0], schedule={"epochs": 2},
                               seeds=[0, 1])
    assert changed.lambdas == (1.0, 2.0) and changed.seeds == (0, 1)
    assert changed.train.schedule.epochs == 2
    assert changed.train.optimizer == spec.train.optimizer
    assert changed.attacks == spec.attacks and changed.num_images == spec.num_images
    assert presets.override(spec) == spec
    with pytest.raises(ValueError, match="num_images must be >= 1"):
        presets.override(spec, num_images=0)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        presets.override(spec, batch_size=0)
    with pytest.raises(ValueError, match="unknown training setting 'momentun'; did you mean "
                                         "optimizer.momentum\\? valid: .*optimizer.momentum"):
        presets.override(spec, momentun=0.5)


def test_a_factory_whose_spec_has_another_name_is_refused():
    def mislabelled():
        """A preset whose spec says otherwise."""
        return presets.override(presets.get("mnist_quick"), num_images=3)

    with pytest.raises(ValueError, match="preset mislabelled: its CohortSpec is named "
                                         "'mnist_quick'"):
        presets.preset(mislabelled)
    assert "mislabelled" not in presets.PRESETS


def test_unknown_preset_names_the_valid_ones():
    with pytest.raises(ValueError, match="unknown preset 'nope'; valid: .*mnist_quick"):
        presets.get("nope")


def test_only_the_smoke_preset_writes_its_own_data(tmp_path):
    spec = presets.get("mnist_quick")
    assert presets.with_data(spec, spec.train, str(tmp_path)) is spec.train
    assert list(presets.SYNTHETIC_DATA) == ["imagenet_smoke"]
