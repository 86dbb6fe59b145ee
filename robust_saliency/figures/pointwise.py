"""The pointwise figures of one member: figure 4 (alignment) and figure 5 (attack robustness),
each against the linearized robustness rho_tilde(x) (eq. 9), one point per measured image.

Figure 4 of the paper: alpha(x) (eq. 7) against rho_tilde(x), with their Pearson correlation.
The paper finds them highly correlated on MNIST and uncorrelated on ImageNet.

Figure 5 of the paper: rho(x) found by the CW attack against rho_tilde(x), the diagonal
rho = rho_tilde, and their Pearson correlation; the paper finds them tightly correlated on both
datasets. Beside it, where measured, the best estimate rho_best (the smallest distance of every
L2 attack run on the image), with its own correlation. Without a rho_cw column the attack with
the smallest median distance stands in, and the title says so. As in the paper's medians,
distances that are not finite (no adversarial found) or 0 (already adversarial) are dropped and
counted.

Default member of both: the most robust evaluated one (largest median rho_best, else median
rho_tilde; cohort.extremes), the same model figures 1 and 10 call most robust.

    python -m experiments.figures --results_dir=DIR --figures=fig04,fig05 --member=3
"""

import matplotlib.pyplot as plt
import numpy as np

from robust_saliency import figure_inputs, plotting, results


@plotting.styled
def alignment(results_dir, out_dir, stem="fig04_pointwise_alignment", *, member=None):
    """Figure 4: writes <out_dir>/<stem>.png and .pdf; returns their paths.

    Args:
      member: member index (cohort.csv column `member`); None: the most robust evaluated one
        (cohort.extremes).
    """
    spec, members = figure_inputs.load(results_dir)
    at = figure_inputs.pick(members, member)
    table = figure_inputs.per_image(results_dir, members, at, ("lin_robustness", "alignment"))
    x, y = table["lin_robustness"], table["alignment"]
    ok = np.isfinite(x) & np.isfinite(y)
    r = np.corrcoef(x[ok], y[ok])[0, 1] if ok.sum() > 1 else np.nan
    fig, ax = plt.subplots(figsize=(4.6, 4.0))
    ax.scatter(x[ok], y[ok], s=9, alpha=0.6, color=plotting.PALETTE[5], linewidths=0)
    ax.set_xlabel(r"$\tilde\rho(x)$")
    ax.set_ylabel(r"$\alpha(x)$")
    dropped = f", {len(x) - ok.sum()} non-finite dropped" if (~ok).any() else ""
    what = (f"Pointwise alignment against linearized robustness\nmember {members['member'][at]}"
            f", {plotting.lam_text(members['lam'][at])}: Pearson r = {r:.2f} over "
            f"{ok.sum()} images{dropped}")
    ax.set_title(plotting.title(spec, what))
    return plotting.save(fig, out_dir, stem)


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
def attack(results_dir, out_dir, stem="fig05_pointwise_attack", *, member=None):
    """Figure 5: writes <out_dir>/<stem>.png and .pdf; returns their paths.

    Args:
      member: member index (cohort.csv column `member`); None: the most robust evaluated one
        (cohort.extremes).
    """
    spec, members = figure_inputs.load(results_dir)
    at = figure_inputs.pick(members, member)
    table = figure_inputs.per_image(results_dir, members, at, ("lin_robustness",))
    key = choose_attack(table)
    # Beside the paper's attack, the best estimate (every L2 attack's minimum) where it is a
    # different column: what the paper's tightness looks like against the tighter estimate.
    keys = [key] + (["rho_best"] if "rho_best" in table and key != "rho_best" else [])
    table = figure_inputs.per_image(results_dir, members, at, ("lin_robustness", *keys))
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
    return plotting.save(fig, out_dir, stem)
