"""The benchmarks still run against the library as it is: they are not in the suite's timed path,
so a renamed helper or preset would otherwise break them unnoticed until the next measurement."""

import importlib
import os
import pkgutil

import pytest

import benchmarks


@pytest.mark.parametrize("name", [m.name for m in pkgutil.iter_modules(benchmarks.__path__)])
def test_every_benchmark_module_imports(name):
    before = dict(os.environ)
    try:
        module = importlib.import_module(f"benchmarks.{name}")
    finally:  # a benchmark's environment defaults must not leak into the suite's subprocesses
        os.environ.clear()
        os.environ.update(before)
    assert module.__doc__, f"benchmarks.{name} says nowhere what it measures"


@pytest.mark.parametrize("form, lam", [("plain", 0.0), ("double", 10.0), ("mirrored", 10.0)])
def test_resnet_step_times_the_fashion_resnet_preset(form, lam):
    from benchmarks import resnet_step
    from experiments import presets

    config = resnet_step.preset_config(form)
    preset = presets.get("fashion_resnet").train
    assert config.penalty.lam == lam
    assert config.model.init_weights is None  # from scratch: no pretrained run needed
    assert (config.model.name, config.batch_size, config.optimizer) == (
        preset.model.name, preset.batch_size, preset.optimizer)


def test_step_modes_sets_each_process_its_own_value(monkeypatch):
    from benchmarks import common, step_modes

    seen = []

    class Done:
        returncode, stdout, stderr = 0, '{"wall": 0.06, "cpu": 0.1, "gflops": [200, 201]}\n', ""

    def run(command, *, env, **kwargs):
        seen.append(env.get("PYTHONHASHSEED"))
        return Done()

    monkeypatch.setattr(common.subprocess, "run", run)
    monkeypatch.delenv("PYTHONHASHSEED", raising=False)
    assert step_modes.launch("PYTHONHASHSEED=each", 3)["wall"] == 0.06
    step_modes.launch("PYTHONHASHSEED=7", 3)
    step_modes.launch("", 3)
    assert seen == ["3", "7", None]


def test_cohort_stage_account_counts_every_attack():
    """benchmarks.cohort's FLOP rate per stage needs each attack's steps per image: an attack
    it does not know would drop out of the account unnoticed."""
    from benchmarks import cohort
    from robust_saliency import attacks

    shipped = [name for name, attack in attacks.ATTACKS.items()
               if attack.__module__.startswith("robust_saliency.")]  # not a test's own attack
    assert set(attacks.PAPER + attacks.STRONG) <= set(shipped)
    for name in shipped:
        steps = cohort.attack_image_steps(name, attacks.STRONG_OPTIONS.get(name, {}))
        assert steps is not None and steps > 0, name
    assert cohort.attack_image_steps("fab", {"steps": 50, "candidates": 3, "restarts": 2}) == 300
    assert cohort.attack_image_steps("ddn_fmn", {"ddn_steps": 30, "steps": 10}) == 40
