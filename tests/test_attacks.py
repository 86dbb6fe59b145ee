"""Attacks: exact linear distances as ground truth, verification, the paper's ordering, input
checks."""

import gc
import weakref

import keras
import numpy as np
import pytest
from helpers import linear_setup, linear_weights

from experiments import presets
from robust_saliency import attacks, models
from robust_saliency.attacks import verify


@pytest.fixture(scope="session")
def linear_case():
    return linear_setup()


@pytest.mark.slow
@pytest.mark.parametrize("method, tolerance", [
    ("gradient", 0.10), ("bim", 0.10), ("cw", 0.02), ("ddn", 0.10)])
def test_linear_distances_are_upper_bounds_close_to_exact(linear_case, method, tolerance):
    model, x, exact = linear_case
    found = attacks.minimal_l2(model, x, method, (0.0, 1.0))
    assert np.all(np.isfinite(found))
    assert np.all(found >= exact - 1e-4), "an attack beat the exact distance: verification bug"
    assert np.median(found / exact) <= 1 + tolerance


# Each attack at the settings the MNIST cohorts run it with (the quick and converged presets
# shorten CW to 5 x 100 steps; everything else runs at its defaults), so the ordering and
# agreement below are checked where the published numbers come from. The defaults' own accuracy
# is checked against exact distances above (CW's 5 x 500 steps included).
COHORT_OPTIONS = presets.get("mnist_converged").attack_options


@pytest.fixture(scope="session")
def trained_attacks(trained_small_net, synthetic_arrays):
    _, (x_val, _) = synthetic_arrays
    x = x_val[:16]
    out = {}
    for method in ("gradient", "bim", "cw", "bim_linf", "fmn_linf"):
        out[method] = attacks.find_adversarials(trained_small_net, x, method, (0.0, 1.0),
                                                **COHORT_OPTIONS.get(method, {}))
    return x, out


@pytest.mark.slow
def test_every_reported_perturbation_flips_and_its_norm_is_the_distance(trained_small_net,
                                                                        trained_attacks):
    x, out = trained_attacks
    pred = trained_small_net.predict(x, verbose=0).argmax(1)
    for method, (dist, adv) in out.items():
        assert np.all(np.isfinite(dist)), method
        assert adv.min() >= 0.0 and adv.max() <= 1.0, method
        np.testing.assert_array_equal(trained_small_net.predict(adv, verbose=0).argmax(1) != pred,
                                      True, err_msg=method)
        np.testing.assert_allclose(
            np.linalg.norm((adv - x).reshape(len(x), -1).astype(np.float64),
                           ord=attacks.NORMS[method], axis=1), dist, rtol=1e-9, err_msg=method)


@pytest.mark.slow
def test_bim_linf_and_fmn_linf_agree_on_a_trained_net(trained_attacks):
    # Measured: median bim_linf / fmn_linf 1.007 (0.944-1.018 per image), distances 0.06-0.12.
    _, out = trained_attacks
    ratio = out["bim_linf"][0] / out["fmn_linf"][0]
    assert 0.95 <= np.median(ratio) <= 1.05, ratio


@pytest.mark.slow
def test_paper_ordering_elaborate_attacks_below_gradient(trained_attacks):
    # The paper's statement (Figs. 2-3) and the claims rule: BIM and CW both below the gradient
    # attack. CW against BIM is not the paper's claim, and at the cohorts' CW settings their
    # order here depends on the CPU kernels: CW below BIM with TensorFlow's default kernels on
    # an AVX2 CPU, above with TF_ENABLE_ONEDNN_OPTS=1 (CW 1.637, BIM 1.608).
    _, out = trained_attacks
    median = {m: np.median(d) for m, (d, _) in out.items()}
    assert max(median["cw"], median["bim"]) <= median["gradient"], median


def test_attacks_on_one_network_share_one_trace_and_do_not_keep_it_alive():
    model, x, _ = linear_setup()
    for method, batch in (("gradient", 24), ("bim", 24), ("ddn", 5), ("bim_linf", 7)):
        found = attacks.minimal_distance(model, x[:batch], method, (0.0, 1.0),
                                         **{"ddn": {"steps": 5}}.get(method, {}))
        assert np.all(np.isfinite(found)), method
    # Four attacks and three batch sizes, one trace of the forward pass between them.
    assert verify.logits_function(model).experimental_get_tracing_count() == 1
    # The cache must not keep the network alive (a cohort evaluates model after model).
    alive = weakref.ref(model)
    del model
    gc.collect()
    assert alive() is None


def test_labels_none_equals_predictions(trained_small_net, synthetic_arrays):
    _, (x_val, _) = synthetic_arrays
    x = x_val[:8]
    pred = trained_small_net.predict(x, verbose=0).argmax(1)
    a = attacks.minimal_l2(trained_small_net, x, "gradient", (0.0, 1.0))
    b = attacks.minimal_l2(trained_small_net, x, "gradient", (0.0, 1.0), labels=pred)
    np.testing.assert_array_equal(a, b)


def test_already_misclassified_images_are_at_zero(trained_small_net, synthetic_arrays):
    _, (x_val, _) = synthetic_arrays
    x = x_val[:6]
    pred = trained_small_net.predict(x, verbose=0).argmax(1)
    wrong = (pred + 1) % 10
    wrong[3:] = pred[3:]
    d = attacks.minimal_l2(trained_small_net, x, "gradient", (0.0, 1.0), labels=wrong)
    assert np.all(d[:3] == 0) and np.all(d[3:] > 0)


@pytest.mark.parametrize("labels", [np.full(3, 10), np.array([0, -1, 2]),
                                    np.array([1.0, 2.0, 3.0])],
                         ids=["one-based 10", "negative", "float"])
def test_labels_the_network_cannot_predict_are_refused(labels):
    """A label outside [0, classes) is misclassified everywhere: without the check, every
    image would get distance 0."""
    model = models.linear_classifier()
    x = np.full((3, 28, 28, 1), 0.5, "float32")
    with pytest.raises(ValueError, match=r"labels must be integer class indices in \[0, 10\)"):
        attacks.minimal_distance(model, x, "ddn", (0.0, 1.0), labels=labels)


@pytest.mark.parametrize("mutate, message", [
    (lambda x: x + 0.5, "outside the bounds"),
    (lambda x: np.where(np.arange(x.size).reshape(x.shape) == 7, np.nan, x), "NaN/Inf"),
])
def test_bad_images_fail_before_any_attack(mutate, message):
    model = models.linear_classifier()
    x = np.full((3, 28, 28, 1), 0.6, "float32")
    with pytest.raises(ValueError, match=message):
        attacks.minimal_l2(model, mutate(x), "cw", (0.0, 1.0))


def test_unknown_method_and_bad_model_fail():
    x = np.full((2, 28, 28, 1), 0.5, "float32")
    with pytest.raises(ValueError, match="unknown attack method 'pgd'"):
        attacks.minimal_l2(models.linear_classifier(), x, "pgd", (0.0, 1.0))
    inputs = keras.Input((28, 28, 1))
    not_logits = keras.Model(inputs, keras.layers.Conv2D(2, 3)(inputs))
    with pytest.raises(ValueError, match="2-D logits"):
        attacks.minimal_l2(not_logits, x, "gradient", (0.0, 1.0))


def test_a_candidate_just_short_of_the_boundary_is_pushed_out_not_lost():
    # A random affine classifier (float64 closed form as in helpers.exact_linear_distance) and,
    # per image, the point a fraction 3e-5 short of its nearest boundary along the L2-optimal
    # direction: not
    # adversarial, as a minimisation attack's last point can be under other kernels' rounding.
    model, x, exact = linear_setup()
    w, b = linear_weights(model)
    xf = x.reshape(len(x), -1).astype(np.float64)
    scores = xf @ w + b
    pred = scores.argmax(1)
    gaps = w[:, pred].T[:, None, :] - w.T[None, :, :]  # (N, n, D): w_pred - w_j
    margins = scores[np.arange(len(x)), pred][:, None] - scores
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(np.arange(w.shape[1]) == pred[:, None], np.inf,
                          margins / np.linalg.norm(gaps, axis=2))
    gap = gaps[np.arange(len(x)), ratios.argmin(1)]
    unit = gap / np.linalg.norm(gap, axis=1, keepdims=True)
    short = (xf - (1 - 3e-5) * exact[:, None] * unit).reshape(x.shape).astype("float32")
    short[0] = x[0]  # no perturbation at all: stays 'not found'
    attacker = verify.Attacker(model, (0.0, 1.0))
    plain, _, _ = attacker.verify(x, short, pred)
    assert not plain.any()
    ok, dist, candidate = attacker.verify_or_push(x, short, pred)
    assert not ok[0] and ok[1:].all()
    assert np.all(dist[1:] >= exact[1:] - 1e-6)
    assert np.all(dist[1:] <= exact[1:] * (1 + max(verify.PUSH_STEPS)))
    assert np.all(attacker.predict(candidate[1:]) != pred[1:])
    # A candidate that already verifies comes back as it is.
    again, dist_again, same = attacker.verify_or_push(x[1:], candidate[1:], pred[1:])
    assert again.all()
    np.testing.assert_array_equal(same, candidate[1:])
    np.testing.assert_array_equal(dist_again, dist[1:])
