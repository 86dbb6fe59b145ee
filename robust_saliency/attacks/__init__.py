"""Robustness found by attacks: per-image minimal perturbations, each verified, in L2 or L-inf.

One attack is one class in a module of its own (attacks.base says how to write one): its name
(the `rho_<name>` column), the norm it minimises and reports, its display label, its default
options, its algorithm and, in its docstring, its paper. Defining the class registers it in
`ATTACKS`; `minimal_distance(model, images, name, bounds)` runs one by name, and every point it
returns is verified (attacks.verify).

The paper's protocol is `gradient`, `bim` and `cw`; `ddn`, `fmn`, `ddn_fmn`, `alma` and `fab`
are strong minimal-L2 attacks of three families (decoupled direction and norm, augmented
Lagrangian, boundary projection); the per-image minimum of every L2 attack a cohort runs is
`rho_best`, the project's best estimate of rho(x). `bim_linf` and `fmn_linf` minimise the L-inf
norm. Every attack targets the model's own prediction unless labels are given (robustness needs
no ground truth). This module imports no TensorFlow until an attack runs, so plotting reads the
table without it.
"""

from __future__ import annotations

import ast
import collections.abc
import importlib
from typing import TYPE_CHECKING, Any

from robust_saliency.attacks.base import INF, REGISTRY, Attack  # noqa: F401 - public here

if TYPE_CHECKING:
    from collections.abc import Callable

    import keras
    import numpy as np
    from numpy.typing import ArrayLike

# Importing a module registers its attacks; this order is the tables' and figures' order: the
# paper's three, the strong L2 attacks, the L-inf pair.
for _module in ("gradient", "bim", "cw", "minimal_norm", "alma", "fab", "bim_linf", "fmn_linf"):
    importlib.import_module(f"robust_saliency.attacks.{_module}")

# name -> Attack class: every attack defined so far, a new one included as soon as its class is.
ATTACKS = REGISTRY


class _Norms(collections.abc.Mapping):
    """name -> the norm that attack minimises, and so the norm its distances are reported in,
    read from ATTACKS as it stands. L-inf attacks' names end in "_linf", by which result columns
    are told apart (results.is_linf)."""

    def __getitem__(self, name):
        return ATTACKS[name].norm

    def __iter__(self):
        return iter(ATTACKS)

    def __len__(self):
        return len(ATTACKS)


NORMS = _Norms()
# The paper's protocol, and the strong minimal-L2 attacks that join it in rho_best.
PAPER = ("gradient", "bim", "cw")
STRONG = ("ddn", "fmn", "ddn_fmn", "alma", "fab")
# Their settings in the cohorts and reports: three families, since each misses minima the
# others find (benchmarks/RESULTS.md, attack tightness against a three-family reference):
# decoupled direction and norm (DDN, FMN, 300 steps each; ddn_fmn at its defaults), augmented
# Lagrangian (ALMA, 300 steps) and boundary projection (FAB, 50 steps over the 3 classes of
# highest logit, which also keeps it affordable for 1,000 classes).
STRONG_OPTIONS = {"ddn": {"steps": 300}, "fmn": {"steps": 300}, "alma": {"steps": 300},
                  "fab": {"steps": 50, "candidates": 3}}


def get(name, **options):
    """The attack registered under `name`, with `options` over its defaults."""
    if name not in ATTACKS:
        raise ValueError(f"unknown attack method {name!r}; valid: {', '.join(ATTACKS)}")
    return ATTACKS[name](**options)


def label(column):
    """The display label of a `rho_<name>` column (the column itself if no attack has it)."""
    name = column[len("rho_"):] if column.startswith("rho_") else column
    return ATTACKS[name].label if name in ATTACKS else column


def check_methods(methods, options=None):
    """Raises ValueError naming any unknown attack in `methods` or `options`' keys, or an
    unknown option of a known one."""
    unknown = (set(methods) | set(options or {})) - set(ATTACKS)
    if unknown:
        raise ValueError(f"unknown attack methods {sorted(unknown)}; valid: {', '.join(ATTACKS)}")
    for name, opts in (options or {}).items():
        get(name, **opts)


def find_adversarials(model: keras.Model, images: ArrayLike, method: str,
                      bounds: tuple[float, float], labels: ArrayLike | None = None, *,
                      batch_size: int = 100, verbose: bool | None = None,
                      progress: Callable[..., object] | None = None,
                      **options: Any) -> tuple[np.ndarray, np.ndarray]:
    """Like `minimal_distance`, also returning the verified adversarial images.

    Returns:
      (distances, adversarials): distances (N,) float64 in the norm NORMS[method], np.inf
      where no adversarial was found; adversarials (N, ...) the perturbed images (the clean
      image where none).
    """
    from robust_saliency.attacks import verify

    return verify.find_adversarials(model, images, get(method, **options), bounds, labels,
                                    batch_size=batch_size, verbose=verbose, progress=progress)


def minimal_distance(model: keras.Model, images: ArrayLike, method: str,
                     bounds: tuple[float, float], labels: ArrayLike | None = None,
                     **options: Any) -> np.ndarray:
    """Per image, the norm of the smallest verified adversarial perturbation `method` found, in
    the method's own norm NORMS[method] (2 or math.inf).

    Args:
      model: Keras model from images to logits (or a RobustModel), evaluated in inference mode.
      images: array (N, ...) inside `bounds`, finite.
      method: a name in ATTACKS (each class's docstring gives its settings).
      bounds: (low, high) pixel box the perturbed images must stay in.
      labels: the labels to move away from; None uses the model's predictions (the paper).
      **options: `batch_size`, `verbose` (progress on stderr: None once the call has run a
        few seconds, True always, False never), `progress` (callable(done, total)
        after each batch), and the attack's own options (its `defaults`).

    Returns:
      np.ndarray (N,) of float64: ||e||_p, p = NORMS[method], with argmax model(x + e) !=
      label, x + e in bounds; np.inf where the attack found none; 0 where the image is already
      misclassified.

    Raises:
      ValueError: unknown method or option, NaN/Inf pixels, pixels outside `bounds`, a model
        whose output is not 2-D logits, or labels of the wrong shape.
    """
    distances, _ = find_adversarials(model, images, method, bounds, labels, **options)
    return distances


def minimal_l2(model, images, method, bounds, labels=None, **options):
    """`minimal_distance` for the L2 methods (same arguments, returns and errors).

    Raises:
      ValueError: also for an L-inf method, whose distances are not L2 norms.
    """
    if NORMS.get(method, 2) != 2:
        raise ValueError(f"attack method {method!r} minimises the L-inf norm, not L2; use "
                         "minimal_distance, which reports each method's own norm (NORMS)")
    return minimal_distance(model, images, method, bounds, labels, **options)


def parse_options(pairs):
    """['cw.steps=200', 'bim.rel_stepsize=0.05'] -> {'cw': {'steps': 200}, 'bim': {...}}.

    The command-line form of per-method attack options (--attack_options).
    """
    options = {}
    for pair in pairs:
        try:
            key, value = pair.split("=", 1)
            method, option = key.split(".", 1)
            options.setdefault(method, {})[option] = ast.literal_eval(value)
        except (ValueError, SyntaxError) as e:
            raise ValueError(f"bad attack option {pair!r}; expected method.option=value, "
                             "e.g. cw.steps=200") from e
    return options
