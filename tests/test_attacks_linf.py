"""L-inf attacks: exact linear distances (Hoelder) as ground truth, per-image epsilon, and the
norm kept to its method (the verified perturbations of every method, L-inf ones included, are
checked on a trained net in test_attacks.py)."""

import eagerpy as ep
import numpy as np
import pytest
import tensorflow as tf
from helpers import linear_setup

from robust_saliency import attacks, models, results
from robust_saliency.attacks import through_foolbox, verify


def _linear_case(seed, num_classes):
    model, x, exact = linear_setup(seed, num_classes, dual_ord=1)
    # The minimiser moves every pixel by exactly the distance, so with pixels in [0.3, 0.7] it
    # stays inside [0, 1] and the box does not bind.
    assert exact.max() < 0.3
    return model, x, exact


@pytest.fixture(scope="session")
def linear_case():
    return _linear_case(7, 10)


@pytest.fixture(scope="session")
def binary_linear_case():
    return _linear_case(11, 2)


# Measured medians of found / exact: bim_linf 1.096, fmn_linf 1.00003. BIM steps along the sign
# of the cross-entropy gradient, which mixes all classes: its corner of the epsilon box differs
# from the nearest boundary's corner in about 13% of the pixels, hence a ~10% gap that
# bisection cannot close (12 search steps: 1.076). FMN's step targets the nearest boundary.
@pytest.mark.parametrize("method, tolerance", [("bim_linf", 0.15), ("fmn_linf", 0.01)])
def test_linear_distances_are_upper_bounds_close_to_exact(linear_case, method, tolerance):
    model, x, exact = linear_case
    found = attacks.minimal_distance(model, x, method, (0.0, 1.0))
    assert np.all(np.isfinite(found))
    # Float32 pixels and logits move a boundary point by ~1e-8 here; measured min diff -2e-9.
    assert np.all(found >= exact - 1e-6), "an attack beat the exact distance: verification bug"
    assert np.median(found / exact) <= 1 + tolerance


def test_fmn_that_finds_nothing_from_x_restarts_from_bim_linf(linear_case, monkeypatch):
    # FMN stalling on the boundary from x, as it did for one image under oneDNN kernels, made
    # to happen for every image: its runs from x return x unchanged.
    model, x, exact = linear_case
    real = through_foolbox.minimisation
    starts = []

    def stalled_from_x(attacker, attack, x, labels, **kwargs):
        starts.append("starting_points" in kwargs)
        return real(attacker, attack, x, labels, **kwargs) if starts[-1] else x.copy()

    monkeypatch.setattr(through_foolbox, "minimisation", stalled_from_x)
    found = attacks.minimal_distance(model, x, "fmn_linf", (0.0, 1.0))
    assert starts == [False, True]
    assert np.all(found >= exact - 1e-6)
    assert np.median(found / exact) <= 1.01


def test_binary_linear_bim_linf_is_exact_up_to_the_bisection(binary_linear_case):
    # With two classes the cross-entropy gradient is parallel to w_j - w_i, so BIM reaches the
    # optimal corner and only the epsilon search is left: doubling from eps0 brackets the
    # distance d in [0, eps0] or (eps0 2^(k-1), eps0 2^k], then each bisection step halves it.
    model, x, exact = binary_linear_case
    eps0, search_steps = 0.05, 8
    found = attacks.minimal_distance(model, x, "bim_linf", (0.0, 1.0), initial_epsilon=eps0,
                                     search_steps=search_steps)
    bracket = np.maximum(eps0, 2 * exact)
    assert np.all(found >= exact - 1e-6)
    assert np.all(found <= exact + bracket / 2 ** search_steps + 1e-6)


def test_linf_bim_takes_one_epsilon_per_image(linear_case):
    model, x, _ = linear_case
    attacker = verify.Attacker(model, (0.0, 1.0))
    attack = through_foolbox.PerImageEpsilonLinfBIM(steps=20, rel_stepsize=0.1,
                                                    random_start=False)
    eps = np.linspace(0.01, 0.2, len(x)).astype("float32")
    out = attack.run(through_foolbox.model(attacker), tf.convert_to_tensor(x),
                     through_foolbox.labels_tensor(attacker.predict(x)),
                     epsilon=ep.astensor(tf.constant(eps))).numpy()
    # 20 sign steps of 0.1 eps reach the corner of each image's own box, inside [0, 1] here.
    np.testing.assert_allclose(np.abs(out - x).reshape(len(x), -1).max(1), eps, rtol=1e-5)


@pytest.mark.parametrize("method", ["bim_linf", "fmn_linf"])
def test_minimal_l2_rejects_linf_methods(method):
    x = np.full((2, 28, 28, 1), 0.5, "float32")
    with pytest.raises(ValueError, match=f"{method}.*L-inf.*use minimal_distance"):
        attacks.minimal_l2(models.linear_classifier(), x, method, (0.0, 1.0))


def test_every_method_has_a_norm_and_l2_methods_keep_minimal_l2(linear_case):
    assert set(attacks.ATTACKS) == set(attacks.NORMS)
    # Result columns are told apart by name (results.is_linf): L-inf methods end in '_linf'.
    for method, norm in attacks.NORMS.items():
        assert (norm == np.inf) == results.is_linf("rho_" + method), method
    attacks.check_methods(["bim_linf", "fmn_linf"], {"bim_linf": {"steps": 5}})
    model, x, _ = linear_case
    np.testing.assert_array_equal(attacks.minimal_l2(model, x[:4], "gradient", (0.0, 1.0)),
                                  attacks.minimal_distance(model, x[:4], "gradient", (0.0, 1.0)))


def test_restart_points_are_narrowed_until_adversarial_in_their_own_batch(monkeypatch):
    # Batch-dependent rounding, staged: candidate 0 is never adversarial, and candidate 2 only
    # in a batch of four or more, so dropping 0 flips 2 and a second pass must drop it too.
    attacker = verify.Attacker(models.build("linear", (2, 2, 1), 3), (0.0, 1.0))
    labels = np.zeros(4, np.int32)
    candidates = np.zeros((4, 2, 2, 1), "float32")
    candidates[:, 0, 0, 0] = np.arange(4)  # an image's id, read by the fake prediction

    def batch_dependent_predict(batch):
        ids = batch[:, 0, 0, 0].astype(int)
        return np.where((ids == 0) | ((ids == 2) & (len(ids) < 4)), 0, 1)

    monkeypatch.setattr(attacker, "predict", batch_dependent_predict)
    keep = attacker.adversarial_together(candidates, labels)
    np.testing.assert_array_equal(keep, [1, 3])
    assert np.all(batch_dependent_predict(candidates[keep]) != labels[keep])
    assert len(attacker.adversarial_together(candidates[[0]], labels[[0]])) == 0
