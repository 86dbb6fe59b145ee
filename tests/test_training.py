"""Double backpropagation: the update against closed forms, lam=0 against plain Keras, saving,
and the same step under MirroredStrategy."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import closed_form_gradients

from robust_saliency import models, penalties, training


@pytest.mark.parametrize("convention", ["batch_mean", "per_example"])
@pytest.mark.parametrize("mode", ["nll", "logits"])
def test_one_step_matches_closed_form(rng, convention, mode):
    batch, lr, lam, wd = 6, 0.1, 3.0 if convention == "per_example" else 50.0, 1e-3
    net = models.linear_classifier(input_shape=(5,), num_classes=4, dtype="float64")
    w0 = rng.normal(size=(5, 4))
    b0 = rng.normal(size=4) * 0.1
    net.get_layer("logits").kernel.assign(w0)
    net.get_layer("logits").bias.assign(b0)
    x = rng.normal(size=(batch, 5))
    y = rng.integers(0, 4, batch)
    model = training.RobustModel(net, lam=lam, convention=convention, sensitivity_mode=mode,
                                 batch_size=batch if convention == "batch_mean" else None,
                                 weight_decay=wd)
    model.compile(optimizer=keras.optimizers.SGD(lr, momentum=0.0))
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)
    gw, gb = closed_form_gradients(w0, b0, x, y, lam, convention, mode, wd)
    np.testing.assert_allclose(np.asarray(net.get_layer("logits").kernel), w0 - lr * gw,
                               rtol=1e-5)
    np.testing.assert_allclose(np.asarray(net.get_layer("logits").bias), b0 - lr * gb, rtol=1e-5)
    # The penalty really moved the weights: the update differs from the lam=0 one.
    gw0, _ = closed_form_gradients(w0, b0, x, y, 0.0, convention, mode, wd)
    assert np.abs(gw - gw0).max() > 1e-4


def test_lam_zero_is_ordinary_training(rng):
    x = rng.uniform(0, 1, (20, 28, 28, 1)).astype("float32")
    y = rng.integers(0, 10, 20)
    keras.utils.set_random_seed(0)
    plain = models.small_net(dropout=0.0)
    keras.utils.set_random_seed(0)
    robust_net = models.small_net(dropout=0.0)
    robust_net.set_weights(plain.get_weights())
    plain.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    robust = training.RobustModel(robust_net, lam=0.0, weight_decay=0.0)
    robust.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
    for model in (plain, robust):
        model.fit(x, y, batch_size=10, epochs=1, verbose=0, shuffle=False)
    for a, b in zip(plain.get_weights(), robust_net.get_weights()):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-7)


def test_save_load_round_trip(tmp_path, rng):
    x = rng.uniform(0, 1, (10, 28, 28, 1)).astype("float32")
    y = rng.integers(0, 10, 10)
    model = training.RobustModel(models.small_net(), lam=100.0, weight_decay=1e-6,
                                 convention="per_example", sensitivity_mode="logits")
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9))
    model.fit(x, y, batch_size=5, epochs=1, verbose=0)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, training.RobustModel)
    assert loaded.penalty.get_config() == model.penalty.get_config()
    np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())


def test_invalid_arguments_fail_clearly():
    with pytest.raises(ValueError, match="lam must be >= 0"):
        training.RobustModel(models.linear_classifier(), lam=-1.0)
    with pytest.raises(ValueError, match="unknown penalty convention"):
        training.RobustModel(models.linear_classifier(), lam=1.0, convention="sum")
    with pytest.raises(ValueError, match="unknown sensitivity mode"):
        training.RobustModel(models.linear_classifier(), lam=1.0, sensitivity_mode="probs")


def _one_step_weights(strategy, x, y, **options):
    """(initial, updated) weights of one step on the global batch (x, y) under `strategy`."""
    with strategy.scope():
        keras.utils.set_random_seed(1)
        net = models.small_net(dropout=0.0)
        model = training.RobustModel(net, **options)
        model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.0))
    initial = net.get_weights()
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(len(x))
    model.fit(dataset, epochs=1, verbose=0)
    return initial, net.get_weights()


@pytest.mark.parametrize("options", [
    dict(lam=5.0, convention="per_example"),
    dict(lam=5e3, convention="batch_mean", batch_size=8),
])
def test_mirrored_step_equals_single_device_step(rng, mirrored, options):
    x = rng.uniform(0, 1, (8, 28, 28, 1)).astype("float32")
    y = rng.integers(0, 10, 8)
    options = dict(options, weight_decay=1e-3)
    initial, single = _one_step_weights(tf.distribute.get_strategy(), x, y, **options)
    initial_m, stepped = _one_step_weights(mirrored, x, y, **options)
    for a0, b0 in zip(initial, initial_m):
        np.testing.assert_array_equal(a0, b0)
    assert max(np.abs(a - a0).max() for a, a0 in zip(single, initial)) > 1e-4
    for a, b in zip(single, stepped):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("sensitivity", [{}, {"sensitivity_mode": "logits"}],
                         ids=["default", "explicit"])
@pytest.mark.parametrize("convention", ["batch_mean", "per_example"])
def test_alignment_penalty_step_matches_closed_form(rng, convention, sensitivity):
    """The Outlook penalty on a linear classifier, s = Psi^y: P_i = c (||x||^2 ||w_y||^2 -
    <x, w_y>^2), whose gradient w.r.t. w_y is 2c (||x||^2 w_y - <x, w_y> x). With no
    sensitivity_mode given, the alignment penalty takes this logit form."""
    batch, lr, wd = 6, 0.05, 1e-3
    lam = 0.3 if convention == "per_example" else 10.0
    c = lam / batch**2 if convention == "batch_mean" else lam
    net = models.linear_classifier(input_shape=(5,), num_classes=4, dtype="float64")
    w0, b0 = rng.normal(size=(5, 4)), rng.normal(size=4) * 0.1
    net.get_layer("logits").kernel.assign(w0)
    net.get_layer("logits").bias.assign(b0)
    x, y = rng.normal(size=(batch, 5)), rng.integers(0, 4, batch)
    model = training.RobustModel(net, lam=lam, penalty="alignment", convention=convention,
                                 batch_size=batch if convention == "batch_mean" else None,
                                 weight_decay=wd, **sensitivity)
    model.compile(optimizer=keras.optimizers.SGD(lr, momentum=0.0))
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)
    gw, gb = closed_form_gradients(w0, b0, x, y, 0.0, convention, "logits", wd)
    for i in range(batch):
        w = w0[:, y[i]]
        gw[:, y[i]] += 2 * c * (x[i] @ x[i] * w - (x[i] @ w) * x[i]) / batch
    np.testing.assert_allclose(np.asarray(net.get_layer("logits").kernel), w0 - lr * gw,
                               rtol=1e-5)
    np.testing.assert_allclose(np.asarray(net.get_layer("logits").bias), b0 - lr * gb, rtol=1e-5)


def test_alignment_penalty_vanishes_for_images_parallel_to_their_saliency(rng):
    net = models.linear_classifier(input_shape=(5,), num_classes=3, dtype="float64")
    w = rng.normal(size=(5, 3))
    net.get_layer("logits").kernel.assign(w)
    penalty = training.RobustModel(net, lam=1.0, penalty="alignment",
                                   sensitivity_mode="logits").penalty
    y = np.array([0, 2, 1])
    parallel = np.stack([2.0 * w[:, k] for k in y])
    _, _, p = penalty(net, tf.constant(parallel), tf.constant(y), training=False)
    np.testing.assert_allclose(p.numpy(), 0.0, atol=1e-9)
    _, _, q = penalty(net, tf.constant(rng.normal(size=(3, 5))), tf.constant(y), training=False)
    assert np.all(q.numpy() > 0)


def test_each_penalty_defaults_to_its_sources_sensitivity_and_an_explicit_one_overrides(rng):
    assert {name: penalties.default_sensitivity(name) for name in penalties.PENALTIES} == {
        "gradient_norm": "nll", "gradient_l1": "nll", "alignment": "logits", "pgd_l2": "nll"}
    net = models.linear_classifier(input_shape=(5,), num_classes=3, dtype="float64")
    assert training.RobustModel(net, lam=1.0).penalty.sensitivity_mode == "nll"
    explicit = training.RobustModel(net, lam=1.0, penalty="alignment", sensitivity_mode="nll")
    assert explicit.penalty.sensitivity_mode == "nll"
    default = training.RobustModel(net, lam=1.0, penalty="alignment")
    x, y = tf.constant(rng.normal(size=(4, 5))), tf.constant([0, 2, 1, 1])
    _, _, p_nll = explicit.penalty(net, x, y, training=False)
    _, _, p_logit = default.penalty(net, x, y, training=False)
    assert np.abs(p_nll.numpy() - p_logit.numpy()).max() > 1e-6  # really another objective
    # The saved config names the resolved form, so a loaded model keeps it.
    assert default.get_config()["penalty"]["sensitivity_mode"] == "logits"


def _optimizer_state(model):
    return {v.path: np.asarray(v) for v in model.optimizer.variables}


def test_loaded_model_keeps_its_optimizer_state_and_trains_on_identically(tmp_path, rng):
    x = rng.uniform(0, 1, (20, 28, 28, 1)).astype("float32")
    y = rng.integers(0, 10, 20)
    keras.utils.set_random_seed(0)
    model = training.RobustModel(models.linear_classifier(), lam=10.0, weight_decay=1e-4)
    model.compile(optimizer=training.sgd(0.05, 0.9))
    model.fit(x, y, batch_size=10, epochs=1, verbose=0, shuffle=False)
    path = str(tmp_path / "model.keras")
    model.save(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Skipping variable loading for optimizer" fails here
        loaded = keras.models.load_model(path)
    saved, restored = _optimizer_state(model), _optimizer_state(loaded)
    assert saved.keys() == restored.keys()
    momenta = [k for k in saved if k.endswith("_momentum")]
    assert len(momenta) == len(model.trainable_variables)
    assert all(np.abs(saved[k]).max() > 0 for k in momenta)  # two steps left real momentum
    for key in saved:
        np.testing.assert_array_equal(restored[key], saved[key], err_msg=key)
    for m in (model, loaded):
        m.fit(x, y, batch_size=10, epochs=1, verbose=0, shuffle=False)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-7)


def test_compile_refuses_a_loss_or_metrics_it_would_ignore():
    model = training.RobustModel(models.small_net(), lam=1.0)
    for extra in ({"loss": "mse"}, {"metrics": ["accuracy"]}):
        with pytest.raises(ValueError, match="computes its own loss"):
            model.compile(optimizer="sgd", **extra)


def test_one_hot_labels_get_the_fix(rng):
    x = rng.uniform(0, 1, (10, 28, 28, 1)).astype("float32")
    model = training.RobustModel(models.small_net(), lam=1.0)
    model.compile(optimizer=keras.optimizers.SGD(0.01))
    with pytest.raises(ValueError, match=r"np.argmax\(labels, axis=1\)"):
        model.fit(x, np.eye(10)[rng.integers(0, 10, 10)], batch_size=5, epochs=1, verbose=0)


def test_fit_stops_at_the_first_non_finite_loss(rng):
    x = rng.uniform(0, 1, (40, 28, 28, 1)).astype("float32")
    x[0, 3, 3, 0] = np.nan
    model = training.RobustModel(models.small_net(), lam=1.0)
    model.compile(optimizer=keras.optimizers.SGD(0.01))
    history = model.fit(x, rng.integers(0, 10, 40), batch_size=10, epochs=3, verbose=0,
                        shuffle=False)
    assert len(history.history["loss"]) == 1  # stopped in the first epoch, not after three


def test_an_images_penalty_does_not_depend_on_the_batch_it_is_evaluated_in(rng):
    """The same weights give the same loss and penalty at any evaluation batch size, in both
    conventions ('batch_mean' divides by its fixed B, never by the batch at hand)."""
    x = rng.uniform(0, 1, (60, 28, 28, 1)).astype("float32")
    y = rng.integers(0, 10, 60)
    for options in (dict(lam=1.0), dict(lam=1e4, convention="batch_mean", batch_size=100)):
        keras.utils.set_random_seed(0)
        model = training.RobustModel(models.small_net(), weight_decay=1e-6, **options)
        model.compile(optimizer=keras.optimizers.SGD(0.01))
        scores = [model.evaluate(x, y, batch_size=size, verbose=0, return_dict=True)
                  for size in (7, 32, 60)]
        assert scores[0]["penalty"] > 1e-6, options
        for score in scores[1:]:
            for key in ("loss", "penalty", "nll"):
                np.testing.assert_allclose(score[key], scores[0][key], rtol=1e-5, err_msg=key)


def test_batch_mean_without_its_b_is_refused_with_the_fix():
    with pytest.raises(ValueError, match="'batch_mean' needs the batch size B .*give "
                                         "batch_size .*or use convention 'per_example'"):
        training.RobustModel(models.linear_classifier(), lam=1.0, convention="batch_mean")
    assert penalties.get("gradient_norm", lam=1.0).convention == "per_example"  # the default
