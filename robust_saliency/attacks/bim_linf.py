"""The L-inf basic iterative attack, through Foolbox, in a per-image search over epsilon."""

from robust_saliency.attacks import bim
from robust_saliency.attacks.base import INF, Attack


class BIMLinf(Attack):
    """`bim` in L-inf: Foolbox's L-inf basic iterative attack, sign-gradient steps of
    `rel_stepsize` times epsilon, `steps` steps, so that the corner of the epsilon box is
    reached after 10 steps and 10 remain to move along it; the same doubling and bisection over
    a per-image epsilon as `bim`, from `initial_epsilon` up to the box width. The sign of the
    cross-entropy gradient mixes all classes, so on many-class models it stays above the
    distance `fmn_linf` finds; with two classes it is exact up to the bisection."""

    name, label, norm = "bim_linf", "L-inf BIM", INF
    defaults = {"steps": 20, "rel_stepsize": 0.1, "initial_epsilon": 0.05, "search_steps": 8}

    def run(self, attacker, x, labels):
        from robust_saliency.attacks import through_foolbox

        o = self.options
        attack = through_foolbox.PerImageEpsilonLinfBIM(
            steps=o["steps"], rel_stepsize=o["rel_stepsize"], random_start=False)
        return bim.epsilon_search(attacker, through_foolbox.fixed_epsilon(attacker, attack,
                                                                          x.dtype),
                                  INF, x, labels, o["initial_epsilon"], o["search_steps"])
