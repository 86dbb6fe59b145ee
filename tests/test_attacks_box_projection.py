"""The box-constrained L2 projection onto a hyperplane (attacks.box_projection), against the
exact box distance of an affine model."""

import numpy as np
import pytest
from helpers import exact_box_distance

from robust_saliency.attacks import box_projection


def test_box_projection_is_the_nearest_point_of_the_hyperplane_inside_the_box():
    # Against exact_box_distance's bisection, as the two-class affine model (w, b) whose
    # boundary is the hyperplane; half the pixels at a bound so that the box is active.
    rng = np.random.default_rng(0)
    t = rng.uniform(0, 1, (6, 50))
    t[rng.uniform(size=t.shape) < 0.5] = 0.0
    w = rng.normal(size=(6, 50))
    b = (w * t).sum(1) + rng.choice([-1, 1], 6) * rng.uniform(0.5, 2.0, 6)
    d = box_projection.project(t, w, b, 0.0, 1.0).numpy()
    assert np.all(t + d >= 0.0) and np.all(t + d <= 1.0)
    np.testing.assert_allclose((w * (t + d)).sum(1), b, rtol=1e-12)
    for i in range(6):
        # Class 1's score -s (w . z - b), s the side t is on, class 0's 0: t is class 0 and the
        # boundary is the hyperplane.
        side = np.sign((w[i] * t[i]).sum() - b[i])
        reference = exact_box_distance(t[i:i + 1], np.stack([np.zeros(50), -side * w[i]], 1),
                                       np.array([0.0, side * b[i]]), 0.0, 1.0)
        assert np.linalg.norm(d[i]) == pytest.approx(reference[0], rel=1e-9)


def test_a_box_that_cannot_reach_the_hyperplane_moves_every_pixel_to_its_bound():
    t = np.full((1, 4), 0.5)
    w = np.array([[1.0, -2.0, 0.0, 3.0]])
    d = box_projection.project(t, w, np.array([100.0]), 0.0, 1.0).numpy()
    np.testing.assert_array_equal(t + d, [[1.0, 0.0, 0.5, 1.0]])
