"""The penalties beyond the paper's: the dual-norm (L-infinity) gradient penalty and L2 PGD
adversarial training, each against a closed form or an independent NumPy computation on a
linear model, the PGD attack's ball and box, and their training configs."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import closed_form_gradients, numpy_softmax

from robust_saliency import models, penalties, runs, training


def _linear_net(rng, dim=5, classes=4):
    net = models.linear_classifier(input_shape=(dim,), num_classes=classes, dtype="float64")
    w0, b0 = rng.normal(size=(dim, classes)), rng.normal(size=classes) * 0.1
    net.get_layer("logits").kernel.assign(w0)
    net.get_layer("logits").bias.assign(b0)
    return net, w0, b0


def _float32_exact(x):
    """float64 values that survive Keras' cast of fit's inputs to float32 unchanged."""
    return x.astype(np.float32).astype(np.float64)


def _weights(net):
    layer = net.get_layer("logits")
    return np.asarray(layer.kernel), np.asarray(layer.bias)


@pytest.mark.parametrize("convention", ["batch_mean", "per_example"])
def test_dual_norm_penalty_step_matches_closed_form(rng, convention):
    """s = Psi^y on a linear classifier: P_i = c ||w_y||_1^2, whose gradient w.r.t. w_y is
    2c ||w_y||_1 sign(w_y)."""
    # lr a power of two: Keras keeps it in float32, where 0.05 would be off by 1.5e-8.
    batch, lr, wd = 6, 0.0625, 1e-3
    lam = 0.3 if convention == "per_example" else 10.0
    c = lam / batch**2 if convention == "batch_mean" else lam
    net, w0, b0 = _linear_net(rng)
    x, y = _float32_exact(rng.normal(size=(batch, 5))), rng.integers(0, 4, batch)
    model = training.RobustModel(net, lam=lam, penalty="gradient_l1",
                                 convention=convention, sensitivity_mode="logits",
                                 batch_size=batch if convention == "batch_mean" else None,
                                 weight_decay=wd)
    model.compile(optimizer=keras.optimizers.SGD(lr, momentum=0.0))
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)
    gw, gb = closed_form_gradients(w0, b0, x, y, 0.0, convention, "logits", wd)
    for i in range(batch):
        w = w0[:, y[i]]
        gw[:, y[i]] += 2 * c * np.abs(w).sum() * np.sign(w) / batch
    w1, b1 = _weights(net)
    np.testing.assert_allclose(w1, w0 - lr * gw, rtol=1e-10)
    np.testing.assert_allclose(b1, b0 - lr * gb, rtol=1e-10)


def test_dual_norm_penalty_is_the_squared_l1_norm_of_the_nll_gradient(rng):
    net, w0, b0 = _linear_net(rng)
    x, y = rng.normal(size=(3, 5)), np.array([0, 3, 1])
    penalty = penalties.get("gradient_l1", lam=2.0, convention="per_example")
    _, _, p = penalty(net, tf.constant(x), tf.constant(y), training=False)
    r = numpy_softmax(x @ w0 + b0) - np.eye(4)[y]  # dNLL/dz, so grad_x NLL = W r
    np.testing.assert_allclose(p.numpy(), 2.0 * np.abs(r @ w0.T).sum(axis=1) ** 2, rtol=1e-12)


def _numpy_pgd(x, y, w, b, eps, steps, rel_stepsize, bounds):
    """L2 PGD on the NLL of a linear classifier, written out independently."""
    delta = np.zeros_like(x)
    for _ in range(steps):
        r = numpy_softmax((x + delta) @ w + b) - np.eye(w.shape[1])[y]
        grad = r @ w.T
        delta = delta + eps * rel_stepsize * grad / np.linalg.norm(grad, axis=1, keepdims=True)
        norm = np.linalg.norm(delta, axis=1, keepdims=True)
        delta = delta * np.minimum(1.0, eps / norm)
        delta = np.clip(x + delta, *bounds) - x
    return x + delta


def test_pgd_training_step_matches_an_independent_computation(rng):
    """Attack, then the NLL gradient at the attacked images (Danskin), in NumPy."""
    batch, lr, wd, eps, steps = 6, 0.0625, 1e-3, 0.4, 5
    net, w0, b0 = _linear_net(rng)
    x, y = _float32_exact(rng.uniform(0, 1, size=(batch, 5))), rng.integers(0, 4, batch)
    options = dict(steps=steps, rel_stepsize=0.3, random_start=False, bounds=(0.0, 1.0))
    model = training.RobustModel(net, lam=eps, penalty="pgd_l2", options=options,
                                 weight_decay=wd)
    adversarial = _numpy_pgd(x, y, w0, b0, eps, steps, 0.3, (0.0, 1.0))
    found = model.penalty.attack(net, tf.constant(x), tf.constant(y)).numpy()
    np.testing.assert_allclose(found, adversarial, rtol=1e-10, atol=1e-12)
    # The box binds for some images, so clipping is exercised.
    assert np.any(np.isclose(adversarial, 0.0) | np.isclose(adversarial, 1.0))
    model.compile(optimizer=keras.optimizers.SGD(lr, momentum=0.0))
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)
    gw, gb = closed_form_gradients(w0, b0, adversarial, y, 0.0, "batch_mean", "nll", wd)
    w1, b1 = _weights(net)
    np.testing.assert_allclose(w1, w0 - lr * gw, rtol=1e-10)
    np.testing.assert_allclose(b1, b0 - lr * gb, rtol=1e-10)
    clean_gw, _ = closed_form_gradients(w0, b0, x, y, 0.0, "batch_mean", "nll", wd)
    assert np.abs(gw - clean_gw).max() > 1e-3  # the attack changed the update


@pytest.mark.parametrize("random_start", [False, True])
def test_pgd_attack_stays_in_its_ball_and_box_and_raises_the_loss(rng, random_start):
    keras.utils.set_random_seed(3)
    net = models.small_net()
    x = rng.uniform(0, 1, (16, 28, 28, 1)).astype("float32")
    x[:, :4] = 0.0  # pixels on the box's faces, where the clip binds
    x[:, -4:] = 1.0
    y = rng.integers(0, 10, 16)
    eps = 1.5
    penalty = penalties.get("pgd_l2", lam=eps, steps=10, random_start=random_start)
    adversarial = penalty.attack(net, tf.constant(x), tf.constant(y)).numpy()
    dist = np.linalg.norm((adversarial - x).reshape(16, -1), axis=1)
    assert np.all(dist <= eps * (1 + 1e-6))
    assert np.median(dist) > 0.5 * eps  # it moved
    assert adversarial.min() >= 0.0 and adversarial.max() <= 1.0
    clean = penalties.nll(y, net(x)).numpy()
    attacked = penalties.nll(y, net(adversarial)).numpy()
    assert np.all(attacked > clean)
    logits, nll, gain = penalty(net, tf.constant(x), tf.constant(y), training=False)
    np.testing.assert_allclose(nll.numpy(), clean, rtol=1e-5)
    assert np.all(gain.numpy() > 0)


def test_pgd_with_zero_radius_is_ordinary_training(rng):
    x, y = rng.uniform(0, 1, size=(4, 5)), rng.integers(0, 4, 4)
    net, _, _ = _linear_net(rng)
    _, nll, extra = penalties.get("pgd_l2", lam=0.0)(net, tf.constant(x), tf.constant(y),
                                                     training=False)
    np.testing.assert_array_equal(extra.numpy(), 0.0)


def test_pgd_loss_ignores_the_convention_and_batch_size_it_records(rng):
    # They scale a penalty quadratic in a gradient; PGD's loss is not one, so they are recorded
    # (saved configurations carry them) and change nothing.
    keras.utils.set_random_seed(5)
    net = models.small_net()
    x = tf.constant(rng.uniform(0, 1, (8, 28, 28, 1)).astype("float32"))
    y = tf.constant(rng.integers(0, 10, 8))
    found = []
    for convention, batch_size in (("per_example", None), ("batch_mean", 100), ("batch_mean", 7)):
        penalty = penalties.get("pgd_l2", lam=1.0, steps=3, random_start=False,
                                convention=convention, batch_size=batch_size)
        assert penalty.get_config()["convention"] == convention
        assert penalty.get_config()["batch_size"] == batch_size
        found.append([t.numpy() for t in penalty(net, x, y, training=False)])
    for other in found[1:]:
        for a, b in zip(found[0], other):
            np.testing.assert_array_equal(a, b)


def test_penalty_configs_name_their_problems():
    config = runs.TrainConfig.of(data={"dataset": "synthetic"},
                                 penalty={"lam": 0.5, "name": "pgd_l2", "options": {"steps": 3}})
    assert runs.penalty_config(config).options["bounds"] == (0.0, 1.0)  # the dataset's box
    assert runs.penalty_config(config).build().steps == 3
    with pytest.raises(ValueError, match="unexpected keyword argument 'step'"):
        runs.TrainConfig.of(data={"dataset": "synthetic"},
                            penalty={"lam": 0.5, "name": "pgd_l2", "options": {"step": 3}})
    with pytest.raises(ValueError, match="steps must be >= 1"):
        runs.TrainConfig.of(data={"dataset": "synthetic"},
                            penalty={"lam": 0.5, "name": "pgd_l2", "options": {"steps": 0}})
    with pytest.raises(ValueError, match="attacks the NLL"):
        runs.TrainConfig.of(data={"dataset": "synthetic"},
                            penalty={"lam": 0.5, "name": "pgd_l2", "sensitivity_mode": "logits"})
    with pytest.raises(ValueError, match="unknown penalty 'pgd'"):
        runs.TrainConfig.of(data={"dataset": "synthetic"}, penalty={"name": "pgd"})


def test_pgd_model_saves_and_loads_with_its_options(tmp_path, rng):
    x = rng.uniform(0, 1, (10, 28, 28, 1)).astype("float32")
    y = rng.integers(0, 10, 10)
    model = training.RobustModel(models.small_net(), lam=0.3, penalty="pgd_l2",
                                 options={"steps": 2, "bounds": (0.0, 1.0)})
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9))
    model.fit(x, y, batch_size=5, epochs=1, verbose=0)
    model.save(str(tmp_path / "m.keras"))
    loaded = keras.models.load_model(str(tmp_path / "m.keras"))
    assert loaded.penalty.get_config() == model.penalty.get_config()
    assert loaded.penalty.steps == 2
