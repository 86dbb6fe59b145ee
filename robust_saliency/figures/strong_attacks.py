"""Figure 13, beyond the paper: each strong L2 attack against the best estimate rho_best.

rho_best(x) is the smallest distance any L2 attack found on image x (the paper's three and the
strong ones). Which attack finds it, and on which models, is what this figure shows, one curve
per strong attack: every L2 attack column of the cohort beyond the paper's gradient, BIM and CW
(plotting.attack_columns), so an attack added to attacks.ATTACKS appears here with no change.

Top left: per lambda, the median over images of the excess rho_attack(x) / rho_best(x) - 1, in
percent. Top right: the share of images on which the attack comes within TOLERANCE of
rho_best, i.e. finds the minimum. Both are the median over a lambda's seeds with their range as
bars; a degenerate model is hollow and not joined. Bottom: per image, the distribution of that
excess (the share of images whose excess is at most the abscissa; an attack that found no
adversarial never gets there) for the least and the most robust sound models (cohort.extremes).

    python -m experiments.figures --results_dir=DIR --out_dir=figures --figures=fig13
"""

import os

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import ticker

from robust_saliency import attacks, cohort, figure_inputs, plotting, results

# An attack "finds the minimum" on an image when it is within this relative distance of rho_best.
TOLERANCE = 1e-3


def strong_columns(results_dir, members):
    """The per-image columns of the strong L2 attacks with a median in cohort.csv; raises
    MissingResults, saying how to measure them, when there are none."""
    _, strong = plotting.attack_columns(members, prefix="median_rho_")
    if not strong:
        _, known = plotting.attack_columns([f"rho_{n}" for n in attacks.ATTACKS])
        raise figure_inputs.MissingResults(
            f"no strong L2 attack column (median_rho_<attack> of an L2 attack beyond the paper's "
            f"gradient, BIM and CW) in {os.path.join(results_dir, results.COHORT_CSV)}; they are "
            f"measured by python -m experiments.cohort --results_dir={results_dir} "
            f"--attacks={','.join([*attacks.PAPER, *(n[len('rho_'):] for n in known)])}")
    return [c[len("median_"):] for c in strong]


def excess(table, column):
    """rho_<attack>(x) / rho_best(x) - 1 over the images with a finite, positive rho_best (inf
    where the attack found no adversarial)."""
    best = table["rho_best"]
    keep = np.isfinite(best) & (best > 0)
    return table[column][keep] / best[keep] - 1.0


def _over(statistic, values):
    # nan for a member without a measured image (a collapsed model may have none correct).
    return statistic(values) if len(values) else np.nan


def _percent_scale(ax, which):
    # Excesses span 0 (the attack found rho_best) to tens of percent: linear up to 0.01%,
    # logarithmic beyond, ticks as plain numbers.
    getattr(ax, f"set_{which}scale")("symlog", linthresh=0.01, linscale=0.5)
    getattr(ax, f"{which}axis").set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))


def _by_lambda_panel(ax, members, values, bad, looks):
    band = ""
    for (label, colour, marker), value in zip(looks.values(), values):
        lams, *y, band = plotting.per_lambda(members, value)
        plotting.errorbars(ax, (lams, lams, lams), y, label=label, degenerate=bad,
                           marker=marker, color=colour)
    if np.all(lams > 0) and lams.max() > 10 * lams.min():
        ax.set_xscale("log")
    ax.set_xlabel(r"$\lambda$")
    return band


def _distribution_panel(ax, members, at, rows, looks, which):
    missed = []
    for (label, colour, _), row in zip(looks.values(), rows):
        percent = np.sort(row[at]) * 100
        found = np.isfinite(percent)
        share = np.arange(1, len(percent) + 1) / max(len(percent), 1)
        ax.step(np.concatenate([[0.0], percent[found]]), np.concatenate([[0.0], share[found]]),
                where="post", color=colour)
        if (~found).any():
            missed.append(f"{label}: {(~found).sum()} of {len(found)}")
    ax.axvline(TOLERANCE * 100, color="0.6", lw=0.8, ls="--")
    _percent_scale(ax, "x")
    # From just below 0, so the jump at 0 (the images where the attack found rho_best) shows.
    ax.set_xlim(-0.003, max(ax.get_xlim()[1], 1.0))
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(r"excess over $\rho_{best}(x)$: $\rho(x)/\rho_{best}(x) - 1$ (%)")
    ax.set_ylabel("share of images with at most this excess")
    if missed:  # these images' curves never reach 1
        ax.text(0.98, 0.03, "no adversarial found:\n" + "\n".join(missed), fontsize=7,
                ha="right", va="bottom", transform=ax.transAxes)
    ax.set_title(f"{which} robust sound model: member {members['member'][at]}, "
                 f"{plotting.lam_text(members['lam'][at])}\n"
                 rf"(median $\rho_{{best}}$ {members['median_rho_best'][at]:.3g}; dashed: "
                 f"{TOLERANCE:.1%})", fontsize=8)


@plotting.styled
def strong_attacks(results_dir, out_dir, stem="fig13_strong_attacks"):
    """Figure 13: writes <out_dir>/<stem>.png and .pdf; returns their paths."""
    spec, members = figure_inputs.load(results_dir, columns=("median_rho_best",))
    columns = strong_columns(results_dir, members)
    tables = [figure_inputs.per_image(results_dir, members, i, ("rho_best", *columns))
              for i in range(len(members["lam"]))]
    looks, spare = {}, 0
    for column in columns:  # the attacks without a look of their own take the spare ones in turn
        label, colour, marker = plotting.estimate_look(column, spare)
        spare += column not in plotting.ESTIMATES
        looks[column] = (label.replace(" (L2) attack", ""), colour, marker)
    rows = [[excess(t, c) for t in tables] for c in columns]  # per attack, per member
    bad = plotting.lambda_degenerate(members)
    fig, ((median, share), (low, high)) = plt.subplots(2, 2, figsize=(9.6, 7.4),
                                                         layout="constrained")
    band = _by_lambda_panel(median, members, [[_over(np.median, r) * 100 for r in row]
                                              for row in rows], bad, looks)
    median.set_ylabel(r"median excess over $\rho_{best}(x)$ (%)")
    _percent_scale(median, "y")
    top = max((np.nanmax(line.get_ydata(), initial=0) for line in median.lines), default=1)
    # Room around 0 and the top: markers there would be cut in half (symlog's margins are nil).
    median.set_ylim(-0.003, max(2 * top, 1.0))
    _by_lambda_panel(share, members, [[_over(np.mean, r <= TOLERANCE) for r in row]
                                      for row in rows], bad, looks)
    share.set_ylabel(f"share of images within {TOLERANCE:.1%} of " + r"$\rho_{best}(x)$")
    share.set_ylim(-0.02, 1.02)
    plotting.degenerate_legend(median, members)
    handles, names = plotting.legend_entries(median)
    fig.legend(handles, names, loc="outside lower center", ncol=min(len(names), 4),
               title="strong L2 attack" + (f"; bars: {band}" if band else ""))
    least, most = cohort.extremes(members)
    _distribution_panel(low, members, least, rows, looks, "least")
    _distribution_panel(high, members, most, rows, looks, "most")
    fig.suptitle(plotting.title(spec, r"Strong L2 attacks against the best estimate "
                                r"$\rho_{best}$ (the minimum over every L2 attack)", members),
                 fontsize=9)
    return plotting.save(fig, out_dir, stem)
