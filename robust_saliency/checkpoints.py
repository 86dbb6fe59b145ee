"""The released checkpoints: every evaluated member of a committed cohort, by lambda and seed.

A committed cohort folder (`results/<preset>_<dataset>/` of the repository) holds, per member,
its run.json (the resolved training configuration) and its trained weights (model.weights.h5,
whose sha256 run.json records). `pretrained` rebuilds the architecture from the one and loads
the other, checked against the digest.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING

from robust_saliency import cohort, results

if TYPE_CHECKING:
    from robust_saliency.training import RobustModel

#: Where `pretrained` looks for cohort folders unless given `root`.
ROOT_VARIABLE = "ROBUST_SALIENCY_RESULTS"
_CHECKOUT_RESULTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                 "results")


def default_root():
    """$ROBUST_SALIENCY_RESULTS if set, else the `results/` folder of the repository checkout
    this package was imported from, else None."""
    if os.environ.get(ROOT_VARIABLE):
        return os.environ[ROOT_VARIABLE]
    return _CHECKOUT_RESULTS if os.path.isdir(_CHECKOUT_RESULTS) else None


def cohort_dir(name, *, dataset="mnist", root=None):
    """The folder of cohort `name` ('mnist_converged', or a folder name such as
    'mnist_converged_mnist', or a path to a cohort folder).

    Raises:
      FileNotFoundError: no such cohort; the message names the cohorts under the root.
    """
    if os.path.exists(os.path.join(name, results.COHORT_JSON)):
        return name
    root = root or default_root()
    if root is None:
        raise FileNotFoundError(
            "no results folder to load checkpoints from: clone the repository (its results/ "
            f"holds them) and import robust_saliency from it, set ${ROOT_VARIABLE}, or pass "
            "root=<the results folder>.")
    for folder in (f"{name}_{dataset}", name):
        path = os.path.join(root, folder)
        if os.path.exists(os.path.join(path, results.COHORT_JSON)):
            return path
    known = sorted(f for f in os.listdir(root)
                   if os.path.exists(os.path.join(root, f, results.COHORT_JSON))) if (
        os.path.isdir(root)) else []
    raise FileNotFoundError(f"no cohort {name!r} (dataset {dataset!r}) under {root}; the "
                            f"cohorts there: {', '.join(known) or 'none'}.")


def members(name, *, dataset="mnist", root=None):
    """(lam, seed, run_dir, has_weights) of every member of a cohort, in member order."""
    folder = cohort_dir(name, dataset=dataset, root=root)
    spec = results.read_json(os.path.join(folder, results.COHORT_JSON))
    found = []
    for index, lam, seed in cohort.member_list(spec["lambdas"], spec.get("seeds", (0,))):
        run_dir = cohort.member_dir(folder, index, lam, seed)
        path = os.path.join(run_dir, results.RUN_JSON)
        record = results.read_json(path) if os.path.exists(path) else {}
        found.append((lam, seed, run_dir, "trained_weights" in record))
    return found


def pretrained(name: str, lam: float, seed: int = 0, *, dataset: str = "mnist",
               root: str | None = None) -> RobustModel:
    """The trained model of one member of a committed cohort, e.g.
    `pretrained("mnist_converged", lam=10)`.

    Args:
      name: the cohort: its preset ('mnist_converged', 'mnist_quick', ...), its folder name, or
        a path to a cohort folder.
      lam: the member's lambda (matched to 1e-6 relative).
      seed: the member's training seed.
      dataset: the dataset the cohort was trained on (with a preset name).
      root: the folder holding cohort folders (default: default_root()).

    Returns:
      The training.RobustModel, architecture rebuilt from run.json and the weights loaded after
      their sha256 is checked; `.network` is the logits network.

    Raises:
      FileNotFoundError: no such cohort, or no such member (the error lists the members that
        have weights).
      ValueError: the weights file does not match the sha256 recorded for it.
    """
    every = members(name, dataset=dataset, root=root)
    for member_lam, member_seed, run_dir, has_weights in every:
        if member_seed == seed and math.isclose(member_lam, lam, rel_tol=1e-6):
            if not has_weights:
                break
            from robust_saliency import runs  # TensorFlow, needed only now

            return runs.load_model(run_dir)
    available = ", ".join(f"lam={m_lam:g} seed={m_seed}" for m_lam, m_seed, _, w in every if w)
    raise FileNotFoundError(
        f"cohort {name!r} has no checkpoint for lam={lam:g}, seed={seed}; members with weights: "
        f"{available or 'none (train the cohort: python -m experiments.cohort)'}.")
