"""The shared base of the attacks: a new attack is one class, verified and in rho_best with no edit
elsewhere; a candidate that is not adversarial, from any attack, never reaches a result."""

import numpy as np
import pytest
from helpers import box_case

from robust_saliency import attacks, evaluation, results
from robust_saliency.attacks.base import REGISTRY, Attack, tf


def _linearised_step_attack():
    """A toy attack, defined as a user would define one: one step to the nearest linearised
    decision boundary, 0.1% past it (exact on an affine model without a box, since the box may
    cut the step short)."""

    class LinearisedStep(Attack):
        name, label = "toy_linearised_step", "toy"
        defaults = {"overshoot": 1e-3}

        def run(self, attacker, x, labels):
            xt = tf.constant(x)
            classes = attacker.network.output_shape[-1]
            with tf.GradientTape(persistent=True) as tape:
                tape.watch(xt)
                logits = attacker.network(xt, training=False)
                own = tf.gather(logits, labels[:, None], batch_dims=1)
                gaps = [logits[:, j:j + 1] - own for j in range(classes)]
            best = np.full(len(x), np.inf)
            step = np.zeros_like(x)
            for j in range(classes):
                grad = tape.gradient(gaps[j], xt).numpy().reshape(len(x), -1)
                gap = gaps[j].numpy()[:, 0]
                norm2 = np.sum(grad ** 2, axis=1)
                t = np.where((j != labels) & (norm2 > 0), -gap / np.maximum(norm2, 1e-300),
                             np.inf)
                closer = t * np.sqrt(norm2) < best
                best = np.where(closer, t * np.sqrt(norm2), best)
                step[closer] = (t[closer, None] * grad[closer]).reshape(step[closer].shape)
            self.image_steps += len(x)
            return x + (1 + self.options["overshoot"]) * step

    return LinearisedStep


@pytest.fixture
def toy_attack():
    """The toy attack, registered by its definition for this test only (other tests and the
    claims' tables must not see it)."""
    cls = _linearised_step_attack()
    yield cls
    REGISTRY.pop(cls.name, None)


def test_a_new_attack_is_one_class_verified_and_in_rho_best(tmp_path, toy_attack):
    LinearisedStep = toy_attack  # noqa: N806 - a class
    assert attacks.ATTACKS[LinearisedStep.name] is LinearisedStep  # defining it registered it
    model, x, exact, free = box_case(10, n=12)
    found = attacks.minimal_distance(model, x, LinearisedStep.name, (0.0, 1.0))
    # Verified: where the box cut the step short the point is not adversarial and is refused.
    assert np.all(found[np.isfinite(found)] >= exact[np.isfinite(found)] * (1 - 1e-9))
    labels = np.argmax(model(x), axis=1)
    methods = ("gradient", LinearisedStep.name)
    evaluation.evaluate(model, x, labels, str(tmp_path), bounds=(0.0, 1.0),
                        attack_methods=methods, attack_options={"gradient": {"grid_size": 20}})
    table = results.read_table(str(tmp_path / results.PER_IMAGE_CSV))
    np.testing.assert_array_equal(table["rho_" + LinearisedStep.name], found)
    np.testing.assert_array_equal(table["rho_best"],
                                  np.minimum(table["rho_gradient"], found))
    assert attacks.NORMS[LinearisedStep.name] == 2
    assert attacks.label("rho_" + LinearisedStep.name) == "toy"


def test_an_attack_without_run_says_so():
    class Nameless(Attack):
        pass

    assert "" not in REGISTRY and Nameless not in REGISTRY.values()
    with pytest.raises(NotImplementedError, match="defines no run"):
        Nameless().run(None, None, None)


L2_ATTACKS = [name for name, a in attacks.ATTACKS.items() if a.norm == 2]


def test_a_subclass_that_only_runs_an_attack_differently_does_not_replace_it():
    from robust_saliency.attacks import bim, cw, through_foolbox

    assert issubclass(through_foolbox.FoolboxBIM, bim.BIM)
    assert attacks.ATTACKS["bim"] is bim.BIM and attacks.ATTACKS["cw"] is cw.CW
CHEAP = {"bim": {"steps": 5, "search_steps": 2}, "cw": {"steps": 20, "binary_search_steps": 2},
         "ddn": {"steps": 50}, "fmn": {"steps": 50}, "ddn_fmn": {"ddn_steps": 50, "steps": 20},
         "alma": {"steps": 50}, "fab": {"steps": 20}, "gradient": {"grid_size": 30}}


@pytest.mark.parametrize("name", L2_ATTACKS)
def test_a_corrupted_candidate_from_any_attack_never_reaches_a_result(name, monkeypatch):
    model, x, exact, _ = box_case(10, n=6)
    cls = attacks.ATTACKS[name]
    honest = cls.run

    def corrupt_first(self, attacker, x, labels):
        points = honest(self, attacker, x, labels)
        points[0] = x[0] + 0.3 * (points[0] - x[0])  # well short of any boundary
        return points

    monkeypatch.setattr(cls, "run", corrupt_first)
    found = attacks.minimal_l2(model, x, name, (0.0, 1.0), **CHEAP.get(name, {}))
    assert np.isinf(found[0]), f"{name}: a non-adversarial point was reported"
    assert np.all(found[1:] >= exact[1:] * (1 - 1e-9))
