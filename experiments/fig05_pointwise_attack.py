"""Figure 5 of the paper: pointwise attack robustness against linearized robustness, one model.

    python -m experiments.fig05_pointwise_attack --results_dir=DIR --out_dir=figures --member=3

One point per measured image of one member: rho(x) found by the CW attack against rho_tilde(x)
(eq. 9), the diagonal rho = rho_tilde, and their Pearson correlation; the paper finds them
tightly correlated on both datasets. Beside it, where measured, the best estimate rho_best (the
smallest distance of every L2 attack run on the image), with its own correlation. Without a
rho_cw column the attack with the smallest median distance stands in, and the title says so.
As in the paper's medians, distances that are not finite (no adversarial found) or 0 (already
adversarial) are dropped and counted.
Default member: the most robust evaluated one, as in figure 4 (cohort.extremes).
"""

import matplotlib.pyplot as plt
import numpy as np
from absl import app

from experiments import figures
from robust_saliency import plotting, results

STEM = "fig05_pointwise_attack"


def choose_attack(table):
    """'rho_cw' if measured, else the rho_<attack> column with the smallest median distance."""
    attacks = [k for k in table
               if k.startswith("rho_") and k != "rho_best" and not results.is_linf(k)]
    if "rho_cw" in attacks or not attacks:
        return "rho_cw"

    def median(key):
        values = table[key][np.isfinite(table[key]) & (table[key] > 0)]
        return np.median(values) if len(values) else np.inf

    return min(attacks, key=median)


@plotting.styled
def plot(results_dir, out_dir, member=None):
    """Writes <out_dir>/fig05_pointwise_attack.png and .pdf; returns their paths.

    Args:
      member: member index (cohort.csv column `member`); None: the most robust evaluated one
        (cohort.extremes).
    """
    spec, members = plotting.load(results_dir)
    at = plotting.pick(members, member)
    table = plotting.per_image(results_dir, members, at, ("lin_robustness",))
    key = choose_attack(table)
    # Beside the paper's attack, the best estimate (every L2 attack's minimum) where it is a
    # different column: what the paper's tightness looks like against the tighter estimate.
    keys = [key] + (["rho_best"] if "rho_best" in table and key != "rho_best" else [])
    table = plotting.per_image(results_dir, members, at, ("lin_robustness", *keys))
    x = table["lin_robustness"]
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    top, fits = 0.0, []
    for k in keys:
        y = table[k]
        ok = np.isfinite(x) & np.isfinite(y) & (y > 0)
        r = np.corrcoef(x[ok], y[ok])[0, 1] if ok.sum() > 1 else np.nan
        label, colour, marker = plotting.ESTIMATES.get(k, (k, plotting.PALETTE[4], "v"))
        ax.scatter(x[ok], y[ok], s=10, alpha=0.6, color=colour, marker=marker, linewidths=0,
                   label=f"{label}: r = {r:.2f}" if len(keys) > 1 else None)
        top = max(top, np.max(x[ok], initial=0), np.max(y[ok], initial=0))
        fits.append((k, label, r, ok))
    top = top * 1.05 or 1.0
    ax.plot([0, top], [0, top], color="0.5", lw=0.8, ls="--", label=r"$\rho=\tilde\rho$")
    ax.set(xlim=(0, top), ylim=(0, top), aspect="equal")
    ax.set_xlabel(r"$\tilde\rho(x)$")
    ax.set_ylabel(rf"$\rho(x)$, {fits[0][1]}" if len(keys) == 1 else r"$\rho(x)$")
    ax.legend(loc="upper left")
    _, label, r, ok = fits[0]
    notes = [f"member {members['member'][at]}, {plotting.lam_text(members['lam'][at])}: "
             f"Pearson r = {r:.2f} over {ok.sum()} images"]
    if key != "rho_cw":
        notes.append(f"no rho_cw column: {label} instead")
    if (~ok).any():
        notes.append(f"{(~ok).sum()} of {len(x)} dropped (no adversarial found, or 0)")
    what = "Pointwise attack robustness against linearized robustness\n" + "\n".join(notes)
    ax.set_title(plotting.title(spec, what))
    return plotting.save(fig, out_dir, STEM)


def main(argv):
    figures.run_command(plot, argv, member=figures.FLAGS.member)


if __name__ == "__main__":
    figures.define_flags(member=True)
    app.run(main)
