"""The compiled minimal-L2 attacks (DDN, FMN): exact distances of affine models with the box
active, compiled against eager, one trace for any batch size, early exit, rho_best, bad input."""

import numpy as np
import pytest
from helpers import assert_exact_inside_box, box_case, linear_setup, random_float64_net

from robust_saliency import attacks, evaluation, table_summary
from robust_saliency.attacks import minimal_norm, through_foolbox, verify


@pytest.fixture(scope="module", params=[2, 10], ids=["2 classes", "10 classes"])
def affine_box(request):
    return box_case(request.param)


def test_the_box_is_active_in_the_reference(affine_box):
    _, _, exact, free = affine_box
    assert np.all(exact > free * (1 + 1e-3)), "the unconstrained distance would do: no box"


def test_fmn_reaches_the_exact_distance_of_affine_models_inside_the_box(affine_box):
    model, x, exact, _ = affine_box
    found, adversarials = attacks.find_adversarials(model, x, "fmn", (0.0, 1.0), steps=1000,
                                                    final_alpha=1e-3, final_gamma=1e-4)
    assert_exact_inside_box(found, adversarials, exact)


def test_fmn_published_schedule_resolves_the_distance_to_its_last_radius_step(affine_box):
    # alpha and gamma end at 1e-2 and 1e-3: the typical image is still within 1e-4, and none
    # further out than the last radius change (measured: at most 4.4e-4).
    model, x, exact, _ = affine_box
    ratio = attacks.minimal_l2(model, x, "fmn", (0.0, 1.0), steps=1000) / exact
    assert np.all(ratio >= 1 - 1e-9)
    assert np.median(ratio) - 1 <= 1e-4
    assert np.max(ratio) - 1 <= 1e-3


def test_ddn_is_exact_on_two_classes_only_up_to_its_radius_steps():
    model, x, exact, _ = box_case(2)
    found = attacks.minimal_l2(model, x, "ddn", (0.0, 1.0), steps=1000)
    assert np.all(found >= exact * (1 - 1e-9))
    assert np.median(found / exact) - 1 <= 1e-3


def test_ddn_margin_reaches_the_exact_distance_of_affine_models_inside_the_box(affine_box):
    model, x, exact, _ = affine_box
    found, adversarials = attacks.find_adversarials(model, x, "ddn", (0.0, 1.0), steps=1000,
                                                    loss="margin", final_gamma=1e-4)
    assert_exact_inside_box(found, adversarials, exact)


def test_published_ddn_stays_above_the_ten_class_distance_that_its_margin_form_reaches():
    # The cross-entropy's ascent mixes the classes' directions (attacks.DDN): the gap is the
    # algorithm's, not the budget's, since the margin form at the same budget closes it.
    model, x, exact, _ = box_case(10)
    published = attacks.minimal_l2(model, x, "ddn", (0.0, 1.0), steps=1000) / exact
    margin = attacks.minimal_l2(model, x, "ddn", (0.0, 1.0), steps=1000, loss="margin") / exact
    assert np.median(published) - 1 > 0.05
    assert np.max(margin) - 1 <= 1e-3


def test_fmn_restarted_from_ddn_reaches_the_exact_distance_at_its_defaults(affine_box):
    # Even from the published DDN's points, which sit 7-28% out on ten classes.
    model, x, exact, _ = affine_box
    found, adversarials = attacks.find_adversarials(model, x, "ddn_fmn", (0.0, 1.0))
    ratio = found / exact
    assert np.all(ratio >= 1 - 1e-9)
    assert np.all(ratio - 1 <= 1e-4)
    assert adversarials.min() >= 0.0 and adversarials.max() <= 1.0


def test_fmn_restarted_from_ddn_keeps_what_ddn_found():
    net, x, labels = random_float64_net()
    ddn = attacks.minimal_l2(net, x, "ddn", (0.0, 1.0), labels, steps=50)
    restarted = attacks.minimal_l2(net, x, "ddn_fmn", (0.0, 1.0), labels, ddn_steps=50,
                                   steps=20)
    assert np.all(np.isfinite(ddn)) and np.all(restarted <= ddn * (1 + 1e-3))
    assert np.median(restarted) < np.median(ddn)


def test_unknown_ddn_loss_names_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown loss 'hinge'.*valid: \['cross_entropy', "
                                         r"'margin'\]"):
        attacks.get("ddn", loss="hinge")


def test_compiled_ddn_follows_foolbox_ddn():
    import foolbox as fb

    model, x, _ = linear_setup()  # float32: Foolbox's DDN does not run in float64
    attacker = verify.Attacker(model, (0.0, 1.0))
    labels = attacker.predict(x)
    theirs = through_foolbox.minimisation(attacker, fb.attacks.DDNAttack(steps=100), x, labels)
    ours = attacks.get("ddn").run(attacker, x, labels)
    norm = lambda p: np.linalg.norm((p - x).reshape(len(x), -1), axis=1)  # noqa: E731
    # The same algorithm and schedule; the two cross-entropy gradients differ in their last
    # float32 bits, which changes which side of the boundary an iterate lands on for a few
    # images, and from there their paths (measured: 23 of 24 images equal to 1e-7, one 0.13%
    # apart).
    same = np.isclose(norm(ours), norm(theirs), rtol=1e-5)
    assert same.mean() >= 0.9
    np.testing.assert_allclose(norm(ours), norm(theirs), rtol=5e-3)
    assert np.median(norm(ours)) == pytest.approx(np.median(norm(theirs)), rel=1e-5)


@pytest.mark.parametrize("algorithm", minimal_norm.ALGORITHMS)
def test_compiled_loop_equals_eager_and_one_trace_serves_every_batch_size(algorithm):
    net, x, labels = random_float64_net()
    options = dict(steps=20, alpha0=1.0, alpha1=0.01, gamma0=0.05, gamma1=0.001)
    compiled = minimal_norm.run(net, x[:4], labels[:4], (0.0, 1.0), algorithm, **options)
    eager = minimal_norm.run(net, x[:4], labels[:4], (0.0, 1.0), algorithm, eager=True,
                             **options)
    np.testing.assert_allclose(compiled[1], eager[1], rtol=1e-9)
    np.testing.assert_allclose(compiled[0], eager[0], atol=1e-9)
    for n in (3, 5, 7):
        minimal_norm.run(net, x[:n], labels[:n], (0.0, 1.0), algorithm, check_every=5,
                         tol=1e-2, **options)
    loop = minimal_norm.compiled_loop(net, algorithm)
    assert loop.experimental_get_tracing_count() == 1


def test_early_exit_saves_steps_and_keeps_what_was_found():
    model, x, exact, _ = box_case(10, n=12)
    labels = verify.Attacker(model, (0.0, 1.0)).predict(x)
    options = dict(steps=400, alpha0=1.0, alpha1=0.01, gamma0=0.05, gamma1=0.001)
    _, full, full_steps = minimal_norm.run(model, x, labels, (0.0, 1.0), "fmn", **options)
    _, early, early_steps = minimal_norm.run(model, x, labels, (0.0, 1.0), "fmn",
                                             check_every=40, tol=1e-3, **options)
    assert early_steps < full_steps / 2
    assert np.all(np.isfinite(early)) and np.all(early >= full * (1 - 1e-12))
    assert np.median(early / exact) - 1 <= 1e-2


def test_rho_best_is_the_per_image_minimum_of_the_l2_columns(tmp_path):
    model, x, exact, _ = box_case(10, n=10)
    labels = np.argmax(model(x), axis=1)
    methods = ("gradient", "ddn", "fmn", "ddn_fmn")
    summary = evaluation.evaluate(model, x, labels, str(tmp_path), bounds=(0.0, 1.0),
                                  attack_methods=methods)
    from robust_saliency import results

    table = results.read_table(str(tmp_path / results.PER_IMAGE_CSV))
    columns = np.stack([table["rho_" + m] for m in methods])
    np.testing.assert_array_equal(table["rho_best"], columns.min(axis=0))
    assert np.all(table["rho_best"] >= exact * (1 - 1e-9))
    assert np.median(table["rho_best"] / exact) - 1 <= 1e-4
    assert summary["medians"]["rho_best"] == pytest.approx(np.median(table["rho_best"]))


def test_unknown_attack_option_names_the_valid_ones():
    model, x, _, _ = box_case(2, n=2)
    with pytest.raises(ValueError, match=r"unknown option.*'stpes'.*valid: .*'steps'"):
        attacks.minimal_l2(model, x, "fmn", (0.0, 1.0), stpes=10)
    with pytest.raises(ValueError, match="unknown option"):
        attacks.check_methods(("ddn",), {"ddn": {"gama": 0.1}})


@pytest.mark.parametrize("mutate, message", [
    (lambda x: np.where(np.arange(x.size).reshape(x.shape) == 5, np.nan, x), "NaN/Inf"),
    (lambda x: np.where(np.arange(x.size).reshape(x.shape) == 5, np.inf, x), "NaN/Inf"),
    (lambda x: x + 1.5, "outside the bounds")])
@pytest.mark.parametrize("method", attacks.STRONG)
def test_bad_pixels_fail_before_any_step(mutate, message, method):
    model, x, _, _ = box_case(2, n=3)
    with pytest.raises(ValueError, match=message):
        attacks.minimal_l2(model, mutate(x), method, (0.0, 1.0))


def test_a_model_wrong_everywhere_is_excluded_as_already_adversarial(tmp_path):
    model, x, _, _ = box_case(10, n=6)
    wrong = (np.argmax(model(x), axis=1) + 1) % 10  # every label disagrees with the model
    found = attacks.minimal_l2(model, x, "fmn", (0.0, 1.0), labels=wrong)
    np.testing.assert_array_equal(found, 0.0)
    table = {"label": wrong, "correct": np.zeros(6, int), "rho_fmn": found}
    summary = table_summary.summarize(table)
    assert summary["excluded"]["rho_fmn"] == {"already_adversarial": 6, "not_found": 0}
    assert np.isnan(summary["medians"]["rho_fmn"])  # not a median of zeros
    # The evaluation attacks the model's own predictions: distances, not zeros, at accuracy 0.
    summary = evaluation.evaluate(model, x, wrong, str(tmp_path), bounds=(0.0, 1.0),
                                  attack_methods=("fmn",))
    assert summary["excluded"]["rho_fmn"] == {"already_adversarial": 0, "not_found": 0}
    assert summary["accuracy"] == 0.0


def test_compiled_cw_is_foolbox_cw_step_for_step_on_a_linear_model():
    model, x, _ = linear_setup()
    attacker = verify.Attacker(model, (0.0, 1.0))
    labels = attacker.predict(x)
    options = dict(binary_search_steps=3, steps=50, stepsize=0.01, initial_const=10.0)
    theirs = through_foolbox.FoolboxCW(**options).run(attacker, x, labels)
    ours = attacks.get("cw", **options).run(attacker, x, labels)
    np.testing.assert_allclose(ours, theirs, atol=5e-7)


def test_compiled_cw_equals_eager_and_one_trace_serves_every_batch_size():
    from robust_saliency.attacks import cw

    net, x, labels = random_float64_net()
    options = dict(binary_search_steps=2, steps=10, stepsize=0.05, initial_const=1.0)
    compiled = cw.run(net, x[:4], labels[:4], (0.0, 1.0), **options)
    eager = cw.run(net, x[:4], labels[:4], (0.0, 1.0), eager=True, **options)
    np.testing.assert_allclose(compiled[1], eager[1], rtol=1e-9)
    assert compiled[2] == eager[2] > 0
    for n in (3, 5, 7):
        cw.run(net, x[:n], labels[:n], (0.0, 1.0), **options)
    assert cw.compiled_round(net).experimental_get_tracing_count() == 1


def test_compiled_bim_is_foolbox_bim_step_for_step_on_a_linear_model():
    # Same search, same end points: on an affine model every step's gradient is the same
    # vector, so the two implementations differ only in rounding.
    model, x, exact = linear_setup()
    attacker = verify.Attacker(model, (0.0, 1.0))
    labels = attacker.predict(x)
    theirs = through_foolbox.FoolboxBIM().run(attacker, x, labels)
    bim = attacks.get("bim")
    ours = bim.run(attacker, x, labels)
    np.testing.assert_allclose(ours, theirs, atol=2e-6)
    norm = lambda p: np.linalg.norm((p - x).reshape(len(x), -1), axis=1)  # noqa: E731
    assert np.all(norm(ours) >= exact - 1e-4)
    # Only the images still searching ran: fewer image-steps than the whole batch every time
    # (at least 3 doublings from 0.5 plus 8 bisections for these distances, about 2-4).
    runs = bim.image_steps / bim.options["steps"]
    assert len(x) * (bim.options["search_steps"] + 1) <= runs
    assert runs < len(x) * (bim.options["search_steps"] + 4)


def test_compiled_bim_follows_foolbox_bim_on_a_trained_net(trained_small_net, synthetic_arrays):
    _, (x_val, _) = synthetic_arrays
    x = x_val[:16]
    attacker = verify.Attacker(trained_small_net, (0.0, 1.0))
    labels = attacker.predict(x)
    ok, theirs, _ = attacker.verify(x, through_foolbox.FoolboxBIM().run(attacker, x, labels),
                                    labels)
    good, ours, _ = attacker.verify(x, attacks.get("bim").run(attacker, x, labels), labels)
    assert ok.all() and good.all()
    np.testing.assert_allclose(ours, theirs, rtol=1e-3)
    assert np.median(ours) == pytest.approx(np.median(theirs), rel=1e-4)


def test_compiled_bim_equals_eager_and_one_trace_serves_every_batch_size():
    from robust_saliency.attacks import bim as bim_attack

    net, x, labels = random_float64_net()
    eps = np.linspace(0.2, 2.0, 7)
    compiled = bim_attack.fixed_epsilon(net, x[:4], labels[:4], eps[:4], (0.0, 1.0), steps=5)
    eager = bim_attack.fixed_epsilon(net, x[:4], labels[:4], eps[:4], (0.0, 1.0), steps=5,
                                    eager=True)
    np.testing.assert_allclose(compiled, eager, atol=1e-12)
    moved = np.linalg.norm((compiled - x[:4]).reshape(4, -1), axis=1)
    # Five steps of 0.1 epsilon: at most half of epsilon; the box takes a little of it.
    assert np.all(moved <= 0.5 * eps[:4] * (1 + 1e-12)) and np.all(moved > 0.4 * eps[:4])
    projected = bim_attack.fixed_epsilon(net, x[:4], labels[:4], eps[:4], (0.0, 1.0), steps=15)
    assert np.all(np.linalg.norm((projected - x[:4]).reshape(4, -1), axis=1)
                  <= eps[:4] * (1 + 1e-12))
    assert compiled.min() >= 0.0 and compiled.max() <= 1.0
    for n in (3, 5, 7):
        bim_attack.fixed_epsilon(net, x[:n], labels[:n], eps[:n], (0.0, 1.0), steps=5)
    assert bim_attack.compiled_loop(net).experimental_get_tracing_count() == 1
