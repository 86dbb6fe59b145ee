"""What every attack shares: its settings, its registration, and `tf`, TensorFlow on first use.

An attack is one subclass of `Attack` in a module of its own, holding its algorithm:

    class MyAttack(Attack):
        '''What it does and its paper.'''
        name, label = "my_attack", "My attack"   # the rho_my_attack column, its display label
        defaults = {"steps": 100}                  # its options, all of them

        def run(self, attacker, x, labels):
            ...                                    # candidate points x + e, one per image
            return points

Defining the class registers it (`REGISTRY`), so `minimal_distance(model, x, "my_attack",
bounds)` runs it and a cohort measuring it puts it in rho_best. `run` receives an
attacks.verify.Attacker (its `network`, `bounds`, `predict`, `verify_or_push`) and candidates
need not be adversarial: attacks.verify judges every one. An attack's options are checked when
it is made, and `image_steps` counts its (image, step) pairs, each a forward and a backward
pass (the benchmarks' FLOP count).
"""

from __future__ import annotations

import importlib
import math
from typing import Any

import numpy as np

INF = math.inf
# name -> Attack subclass, in the order the classes were defined.
REGISTRY: dict[str, type[Attack]] = {}


class _TensorFlow:
    """`tensorflow`, imported when an attribute is first read: the attack modules use `tf` at
    run time only, so the registry (names, norms, labels) stays importable without it."""

    def __getattr__(self, attribute):
        return getattr(importlib.import_module("tensorflow"), attribute)


tf = _TensorFlow()


class Attack:
    """An attack: `name` (its `rho_<name>` column), `norm` (2 or math.inf, the norm it
    minimises and reports), `label` (figures and tables), `defaults` (every keyword option it
    takes); `run(attacker, x, labels)` returns candidate points, which are verified after."""

    name = ""
    norm: float = 2
    label = ""
    defaults: dict[str, Any] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # Only a class that names itself is an attack of its own: a subclass that changes how
        # a registered attack runs (e.g. the Foolbox references of attacks.through_foolbox)
        # inherits the name but must not take the registered attack's place.
        if "name" in cls.__dict__ and cls.name:
            REGISTRY[cls.name] = cls

    def __init__(self, **options):
        unknown = sorted(set(options) - set(self.defaults))
        if unknown:
            raise ValueError(f"unknown option(s) {unknown} for attack {self.name!r}; valid: "
                             f"{sorted(self.defaults)}")
        self.options = {**self.defaults, **options}
        self.image_steps = 0

    def run(self, attacker, x, labels):
        """Candidate adversarial points for images `x` (N, ...) away from `labels` (N,)."""
        raise NotImplementedError(f"attack {self.name!r} defines no run()")


def chunks(best, steps, check_every, tol):
    """The per-image early exit of the iterative attacks (DDN, FMN, ALMA, FAB): yields (rows of
    the images still running, first step, end step) for each chunk of `check_every` steps (one
    chunk of all `steps` if None). The caller runs the chunk and updates `best`, the (N,) best
    distances, in place; after it an image leaves when its best distance improved by at most
    `tol` (relative) over the chunk, after a first adversarial was found."""
    chunk = check_every or steps
    active = np.arange(len(best))
    for k0 in range(0, steps, chunk):
        if not len(active):
            return
        before = best[active].copy()
        yield active, k0, min(k0 + chunk, steps)
        after = best[active]
        with np.errstate(invalid="ignore"):  # inf - inf and 0 * inf: not settled
            settled = np.isfinite(before) & (before - after <= tol * after)
        active = active[~settled]
