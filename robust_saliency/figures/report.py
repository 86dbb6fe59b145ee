"""The figures of a one-model report (robust_saliency.report), drawn from its per-image table.

  robust_accuracy   accuracy under an L2 budget eps against eps, one curve per attack and
                    rho_best, with the bootstrap band over images of rho_best's curve.
  alignment         alignment alpha(x) against rho_best(x) per image, Spearman's rho and its
                    interval in the title (the paper's Fig. 4 with the verified distance).
  linearized        rho_tilde(x) against rho_best(x) per image, with the line rho_tilde = rho.
  decomposition     the median shares of the summands of bounds (18)-(20) (Figs. 6-8) and the
                    linear term's share of the binarized score (Fig. 9), for this one model.
  gallery           the most and least robust images with their gradient, SmoothGrad and IG
                    maps and their minimal adversarial perturbation.
  pair_curves, pair_changes   two models on the same images (robust_saliency.report.compare).

Each returns the paths of the PNG and PDF it wrote.
"""

import matplotlib.pyplot as plt
import numpy as np

from robust_saliency import attacks, plotting, stats

# The bound summands of Figs. 6-8: (title, right-hand side column, summand columns).
BOUNDS = (("(18)", "bound14", ("alignment_bin", "bias_term")),
          ("(19)", "bound15", ("alignment", "angle_term", "bias_term")),
          ("(20)", "bound16", ("alignment_xi", "angle_term_xi")))


def budgets(distances, count=200):
    """`count` budgets from 0 to just past the largest finite distance among `distances`."""
    finite = np.concatenate([d[np.isfinite(d)] for d in distances] or [[]])
    top = 1.05 * float(finite.max()) if len(finite) else 1.0
    return np.linspace(0.0, top, count)


@plotting.styled
def robust_accuracy(table, out_dir, stem="robust_accuracy", *, title=""):
    paper, strong = plotting.attack_columns(table)
    columns = [c for c in paper + strong if c in table] + ["rho_best"]
    eps = budgets([table[c] for c in columns])
    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    for i, column in enumerate(columns):
        label, colour, _ = plotting.estimate_look(column, i)
        hits = stats.robust_at(table["correct"], table[column], eps)
        best = column == "rho_best"
        ax.plot(eps, hits.mean(axis=0), color=colour, lw=2.0 if best else 1.0, label=label,
                zorder=3 if best else 2)
        if best:
            low, high = stats.mean_band(hits)
            ax.fill_between(eps, low, high, color=colour, alpha=0.2, lw=0,
                            label=f"{stats.CONFIDENCE:.0%} bootstrap band (images)")
    ax.set_xlabel(r"L2 budget $\varepsilon$")
    ax.set_ylabel("robust accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=7)
    ax.set_title(title or "Accuracy under attack")
    return plotting.save(fig, out_dir, stem)


def _scatter(ax, x, y, xlabel, ylabel):
    finite = np.isfinite(x) & np.isfinite(y)
    ax.scatter(x[finite], y[finite], s=6, alpha=0.6, color=plotting.PALETTE[5], lw=0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    r, (low, high) = stats.spearman(x, y), stats.spearman_interval(x, y)
    return f"Spearman {r:.2f} [{low:.2f}, {high:.2f}], {int(finite.sum())} images"


@plotting.styled
def alignment(table, out_dir, stem="alignment_vs_rho", *, title=""):
    fig, ax = plt.subplots(figsize=(4.6, 3.6))
    text = _scatter(ax, table["rho_best"], table["alignment"], r"$\rho_{best}(x)$",
                    r"alignment $\alpha(x)$")
    ax.set_title(f"{title or 'Alignment against verified robustness'}\n{text}")
    return plotting.save(fig, out_dir, stem)


@plotting.styled
def linearized(table, out_dir, stem="rho_tilde_vs_rho", *, title=""):
    fig, ax = plt.subplots(figsize=(4.6, 3.6))
    x, y = table["rho_best"], table["lin_robustness"]
    text = _scatter(ax, x, y, r"$\rho_{best}(x)$", r"linearized $\tilde\rho(x)$")
    finite = np.isfinite(x) & np.isfinite(y)
    if finite.any():
        top = float(max(x[finite].max(), y[finite].max()))
        ax.plot([0, top], [0, top], color="0.5", lw=0.8, ls="--", label=r"$\tilde\rho = \rho$")
        ax.legend(fontsize=7)
    ax.set_title(f"{title or 'Linearized against verified robustness'}\n{text}")
    return plotting.save(fig, out_dir, stem)


def shares(table):
    """{bound: {summand: median share}} for BOUNDS, and 'linear' (Fig. 9's ratio of medians)."""
    out = {equation: {term: stats.median_share(table[term], table[rhs]) for term in terms}
           for equation, rhs, terms in BOUNDS}
    out["linear"] = stats.median_magnitude_ratio(table["x_term_bin"], table["psi_bin"])[0]
    return out


@plotting.styled
def decomposition(table, out_dir, stem="decomposition", *, title=""):
    found = shares(table)
    fig, (left, right) = plt.subplots(1, 2, figsize=(7.6, 3.4),
                                      gridspec_kw={"width_ratios": [3, 1]})
    colours = {"alignment_bin": 5, "alignment": 5, "alignment_xi": 5, "bias_term": 1,
               "angle_term": 6, "angle_term_xi": 6}
    for position, (equation, _, terms) in enumerate(BOUNDS):
        bottom = 0.0
        for term in terms:
            share = found[equation][term]
            left.bar(position, share, bottom=bottom, color=plotting.PALETTE[colours[term]],
                     edgecolor="white", width=0.6)
            left.text(position, bottom + share / 2, plotting.LABELS[term], ha="center",
                      va="center", fontsize=7, color="white")
            bottom += share
    left.set_xticks(range(len(BOUNDS)), [f"bound {e}" for e, _, _ in BOUNDS])
    left.set_ylabel("median share of the bound")
    left.set_title("Summands of Theorems 2-3's bounds (Figs. 6-8)")
    right.bar(0, found["linear"], color=plotting.PALETTE[3], width=0.6)
    right.axhline(1.0, color="0.6", lw=0.8, ls="--")
    right.set_xticks([0], [r"$M|\langle x,g^\dagger\rangle| / M|\Psi^\dagger|$"])
    right.set_title("Linear share (Fig. 9)")
    if title:
        fig.suptitle(title, fontsize=9)
    return plotting.save(fig, out_dir, stem)


@plotting.styled
def gallery(arrays, out_dir, stem="gallery", *, display=None):
    """Rows: images (most robust first, then least robust); columns: the image, its gradient,
    SmoothGrad and IG maps, its minimal adversarial perturbation and the adversarial image."""
    columns = (("x", "image"), ("grad_pred", "gradient"), ("smoothgrad", "SmoothGrad"),
               ("ig", "Integrated Gradients"), ("perturbation", "minimal perturbation"),
               ("adversarial", "adversarial image"))
    rows = len(arrays["x"])
    fig, axes = plt.subplots(rows, len(columns), figsize=(1.6 * len(columns), 1.6 * rows),
                             squeeze=False)
    for row in range(rows):
        for col, (key, name) in enumerate(columns):
            ax = axes[row, col]
            if key in ("x", "adversarial"):
                plotting.show_image(ax, arrays[key][row], display)
            else:
                plotting.show_map(ax, arrays[key][row])
            if row == 0:
                ax.set_title(name, fontsize=7)
        found_by = attacks.label(str(arrays["attack"][row]))
        axes[row, 0].set_ylabel(f"#{int(arrays['index'][row])}: class "
                                f"{int(arrays['pred'][row])} -> "
                                f"{int(arrays['adversarial_class'][row])}\n"
                                f"rho {arrays['rho_best'][row]:.3g} ({found_by})\n"
                                f"alpha {arrays['alignment'][row]:.3g}", fontsize=6)
    return plotting.save(fig, out_dir, stem)


@plotting.styled
def pair_curves(tables, names, out_dir, stem="pair_robust_accuracy"):
    """Both models' rho_best robust-accuracy curves with their bootstrap bands."""
    eps = budgets([t["rho_best"] for t in tables])
    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    for i, (table, name) in enumerate(zip(tables, names)):
        hits = stats.robust_at(table["correct"], table["rho_best"], eps)
        colour = plotting.PALETTE[(5, 4)[i % 2]]
        ax.plot(eps, hits.mean(axis=0), color=colour, lw=1.8, label=f"{name}: rho_best")
        ax.fill_between(eps, *stats.mean_band(hits), color=colour, alpha=0.2, lw=0)
    ax.set_xlabel(r"L2 budget $\varepsilon$")
    ax.set_ylabel("robust accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=7, title=f"bands: {stats.CONFIDENCE:.0%} bootstrap over images",
              title_fontsize=7)
    return plotting.save(fig, out_dir, stem)


def changes(tables):
    """Per image, (log ratio of rho_best second / first, change of alignment), both finite."""
    with np.errstate(divide="ignore", invalid="ignore"):
        growth = np.log(tables[1]["rho_best"] / tables[0]["rho_best"])
    gain = tables[1]["alignment"] - tables[0]["alignment"]
    return growth, gain


@plotting.styled
def pair_changes(tables, names, out_dir, stem="pair_changes"):
    """Per image: growth of rho_best against the change of alignment, first -> second."""
    growth, gain = changes(tables)
    fig, ax = plt.subplots(figsize=(4.8, 3.8))
    text = _scatter(ax, growth, gain, rf"$\ln(\rho_{{best}}$ {names[1]} / {names[0]})",
                    rf"alignment {names[1]} $-$ {names[0]}")
    ax.axhline(0.0, color="0.6", lw=0.8)
    ax.axvline(0.0, color="0.6", lw=0.8)
    ax.set_title(f"Per image, {names[0]} -> {names[1]}\n{text}")
    return plotting.save(fig, out_dir, stem)
