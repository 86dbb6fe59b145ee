"""Shared pieces of the figure commands: reading a cohort folder, style, saving, image panels.

Figures read only what `experiments.cohort` wrote (cohort.json, cohort.csv and each member's
per_image.csv and maps.npz); anything missing raises MissingResults naming the file or column
and the command that writes it. Labels use the paper's symbols, with the column names of
DESIGN.md as the keys of LABELS.
"""

import functools
import logging
import os

import matplotlib

matplotlib.use("Agg")  # Figures are files; never open a window (CI has no display).

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from robust_saliency import attacks, bounds, cohort, results, stats  # noqa: E402

# absl shows Python logging at INFO; fontTools logs every font it subsets into a PDF there.
logging.getLogger("fontTools").setLevel(logging.WARNING)

# Okabe & Ito (2008): distinguishable with every common form of colour blindness.
PALETTE = ("#000000", "#E69F00", "#56B4E9", "#009E73", "#D55E00", "#0072B2", "#CC79A7",
           "#F0E442")
STYLE = {
    "figure.dpi": 100, "savefig.dpi": 200, "savefig.bbox": "tight", "font.size": 9,
    "axes.titlesize": 9, "axes.labelsize": 9, "legend.fontsize": 8, "xtick.labelsize": 8,
    "ytick.labelsize": 8, "axes.spines.top": False, "axes.spines.right": False,
    "axes.grid": True, "grid.alpha": 0.3, "grid.linewidth": 0.5, "legend.frameon": False,
    "lines.linewidth": 1.4, "lines.markersize": 5, "pdf.fonttype": 42,
    "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
}
# Robustness estimates: (label, colour, marker); one look per estimate in every figure. The
# attacks' labels are the attack classes' own (robust_saliency.attacks.ATTACKS).
_LOOKS = {"rho_gradient": (PALETTE[1], "s"), "rho_bim": (PALETTE[2], "^"),
          "rho_cw": (PALETTE[3], "D"), "rho_ddn": (PALETTE[5], "v"),
          "rho_fmn": (PALETTE[6], "P"), "rho_ddn_fmn": ("#999999", "X")}
ESTIMATES = {
    "lin_robustness": (r"linearized $\tilde\rho(x)$", PALETTE[0], "o"),
    **{column: (attacks.label(column) + ("" if column == "rho_gradient" else " (L2)")
                + " attack", *look) for column, look in _LOOKS.items()},
    "rho_best": (r"best estimate $\rho_{best}$ (min over L2 attacks)", PALETTE[4], "*"),
}
LABELS = {
    "lin_robustness": r"$\tilde\rho(x)$",
    "alignment": r"$\alpha(x)$",
    "alignment_bin": r"$\alpha^\dagger(x)$",
    "bias_term": r"$|\beta^\dagger|/\|g^\dagger\|$",
    "angle_term": r"$\|x\|\,\|\bar g^\dagger-\bar g\|$",
    "alignment_xi": r"$|\langle\xi,\gamma\rangle|/\|\gamma\|$",
    "angle_term_xi": r"$\|\xi\|\,\|\bar g^\dagger-\bar\gamma\|$",
    "angle_term_xi_printed": r"$\|\xi\|\,\|\bar g^\dagger-\bar g\|$ (as printed)",
    "x_term_bin": r"$|\langle x, g^\dagger\rangle|$",
    "psi_bin": r"$|\Psi^\dagger(x)|$",
}
COHORT_COMMAND = "python -m experiments.cohort --results_dir={}"


class MissingResults(ValueError):
    """A figure's input file, member or column is absent; the message says what writes it."""


def styled(function):
    """Runs a figure function under STYLE, leaving the caller's rcParams untouched."""
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(STYLE):
            return function(*args, **kwargs)
    return wrapper


def _require_file(path, results_dir):
    if not os.path.exists(path):
        raise MissingResults(f"{path} not found; it is written by "
                             f"{COHORT_COMMAND.format(results_dir)}")


def load(results_dir, *, columns=("median_lin_robustness",)):
    """The cohort's specification and its evaluated members.

    Args:
      results_dir: a cohort folder.
      columns: cohort.csv columns the caller needs; absent ones raise MissingResults.

    Returns:
      (spec, members): cohort.json as a dict, and the evaluated rows of cohort.csv as a dict of
      numpy columns, ordered by lambda (the sweep's order, so lines join neighbouring lambdas).
    """
    for name in (results.COHORT_JSON, results.COHORT_CSV):
        _require_file(os.path.join(results_dir, name), results_dir)
    from robust_saliency import cohort  # Imports TensorFlow: only once there is a cohort.

    spec, table = cohort.read(results_dir)
    keep = np.flatnonzero(table["status"] == "evaluated")
    if not len(keep):
        counts = ", ".join(f"{int((table['status'] == s).sum())} {s}"
                           for s in np.unique(table["status"]))
        table_path = os.path.join(results_dir, results.COHORT_CSV)
        raise MissingResults(f"no evaluated member in {table_path} "
                             f"({counts}); finish it with {COHORT_COMMAND.format(results_dir)}")
    missing = [c for c in columns if c not in table]
    if missing:
        raise MissingResults(f"column {', '.join(missing)} missing from "
                             f"{os.path.join(results_dir, results.COHORT_CSV)}; it is written by "
                             f"{COHORT_COMMAND.format(results_dir)}")
    keep = keep[np.lexsort((table["member"][keep], table["lam"][keep]))]
    return spec, {name: column[keep] for name, column in table.items()}


def title(spec, what, members=None):
    """`what`, then the dataset and preset, and how many models are in when some are not."""
    line = f"{results.train_setting(spec['train'], 'data.dataset')}, preset {spec['name']}"
    total = len(spec["lambdas"]) * len(spec.get("seeds", [0]))
    if members is not None and len(members["lam"]) < total:
        line += f" ({len(members['lam'])} of {total} models evaluated)"
    return f"{what}\n{line}"


def by_lambda(members, column):
    """`column` of a cohort's members per lambda, for plotting one point per lambda.

    Returns (lambdas, centre, low, high, band): the median over a lambda's seeds, and as its
    band the seed range when a lambda has several seeds, else the model's bootstrap interval
    over images (cohort.csv's ci_low_/ci_high_ columns) where recorded, else no band (low =
    high = centre). `band` says which, for the legend ('' for none). A seed whose value is not
    finite (a collapsed classifier has no attack distance and an infinite rho_tilde) is left
    out of its lambda's median and range; a lambda with no finite seed gets nan.
    """
    lams = np.unique(members["lam"])
    groups = [members["lam"] == lam for lam in lams]
    seeds = max(int(g.sum()) for g in groups)
    if seeds > 1:
        *curve, _ = stats.seed_range(members["lam"], members[column])
        return (*curve, f"seed range ({seeds} seeds per lambda)")
    centre = np.array([members[column][g][0] for g in groups])
    low_key, high_key = "ci_low_" + column, "ci_high_" + column
    if low_key in members and high_key in members:
        low = np.array([members[low_key][g][0] for g in groups])
        high = np.array([members[high_key][g][0] for g in groups])
        return (lams, centre, low, high,
                f"{stats.CONFIDENCE:.0%} bootstrap interval over images")
    return lams, centre, centre, centre, ""


def errorbars(ax, x, y, *, label, **style):
    """Points (x, y) with the bands by_lambda gave them, as horizontal and vertical bars."""
    (xc, xlo, xhi), (yc, ylo, yhi) = x, y
    keep = np.isfinite(xc) & np.isfinite(yc)
    ax.errorbar(xc[keep], yc[keep], xerr=[(xc - xlo)[keep], (xhi - xc)[keep]],
                yerr=[(yc - ylo)[keep], (yhi - yc)[keep]], label=label, capsize=2,
                elinewidth=0.8, **style)


def lam_text(lam):
    return rf"$\lambda$={lam:g}"


def mark_degenerate(ax, x, y, flags):
    """Rings the points (x, y) whose flag is set: degenerate members (cohort.degenerate).
    Returns whether it drew any, i.e. whether the axes gained a legend entry."""
    flags = np.asarray(flags, bool)
    if flags.any():
        ax.scatter(np.asarray(x)[flags], np.asarray(y)[flags], s=170, facecolors="none",
                   edgecolors=PALETTE[4], linewidths=1.4, zorder=5,
                   label=f"degenerate: accuracy < {cohort.DEGENERATE_SHARE:g} x the least "
                   "regularised")
    return bool(flags.any())


def pick(members, member=None):
    """Position of member index `member` among `members`; None: the most robust
    (cohort.extremes)."""
    if member is None:
        return cohort.extremes(members)[1]
    found = np.flatnonzero(members["member"] == member)
    if not len(found):
        raise MissingResults(f"member {member} is not evaluated; evaluated members: "
                             f"{', '.join(str(m) for m in members['member'])}")
    return int(found[0])


def per_image(results_dir, members, position, columns=()):
    """One member's per_image.csv as a dict of columns, checking that `columns` exist."""
    path = os.path.join(results_dir, str(members["run_dir"][position]), results.PER_IMAGE_CSV)
    _require_file(path, results_dir)
    table = results.read_table(path)
    missing = [c for c in columns if c not in table]
    if missing:
        raise MissingResults(f"column {', '.join(missing)} missing from {path}; it is written "
                             f"by {COHORT_COMMAND.format(results_dir)}")
    return table


def maps(results_dir, members, position):
    """One member's maps.npz (x, grad_pred, grad_bin, xi, gamma and their alignments)."""
    path = os.path.join(results_dir, str(members["run_dir"][position]), results.MAPS_NPZ)
    _require_file(path, results_dir)
    with np.load(path) as arrays:
        return dict(arrays)


def save(fig, out_dir, stem):
    """Writes `fig` as <out_dir>/<stem>.png and .pdf, each atomically; closes it.

    Returns:
      The two paths written.
    """
    paths = []
    for ext in ("png", "pdf"):
        path = os.path.join(out_dir, f"{stem}.{ext}")
        # No creation date in the PDF: redrawing committed figures from unchanged results must
        # leave the files byte-identical, not a diff in every PDF.
        metadata = {"CreationDate": None} if ext == "pdf" else None
        with results.atomic_path(path) as tmp:
            fig.savefig(tmp, format=ext, metadata=metadata)
        paths.append(path)
    plt.close(fig)
    return paths


def annotate_lambdas(ax, x, y, lams):
    """Small grey lambda labels beside points, light enough not to compete with the data."""
    for xi, yi, lam in zip(x, y, lams):
        if np.isfinite(xi) and np.isfinite(yi):
            ax.annotate(f"{lam:g}", (xi, yi), xytext=(-4, 3), textcoords="offset points",
                        ha="right", fontsize=6, color="0.45")


def _unit(image):
    image = np.asarray(image, np.float64)
    low, high = image.min(), image.max()
    return (image - low) / (high - low) if high > low else np.zeros_like(image)


def default_display(spec):
    """How to show a cohort's input images: undo ImageNet's caffe preprocessing, else None
    (min-max scaling, right for MNIST-format images)."""
    if results.train_setting(spec["train"], "data.dataset") == "imagenet":
        from robust_saliency import imagenet

        return imagenet.to_display
    return None


def show_image(ax, image, display=None):
    """An input (x or xi) in `ax`.

    Args:
      image: (H, W, C) with C = 1 or 3, as the network sees it.
      display: callable from that array to something imshow shows (e.g. undoing caffe BGR mean
        subtraction for ImageNet); default: per-image min-max scaling to [0, 1].
    """
    shown = display(image) if display else _unit(image)
    shown = np.squeeze(shown, axis=-1) if shown.shape[-1] == 1 else shown
    ax.imshow(shown, cmap="gray" if shown.ndim == 2 else None, interpolation="nearest")
    _bare(ax)


def show_map(ax, saliency):
    """A saliency map scaled symmetrically around 0 to its own max |value| (paper, Fig. 10).

    One channel: diverging colormap, red > 0 > blue, white at 0. Three channels: colour image
    with 0 at mid-grey, channels in stored order.
    """
    saliency = np.asarray(saliency, np.float64)
    scale = np.max(np.abs(saliency)) or 1.0
    if saliency.shape[-1] == 1:
        ax.imshow(saliency[..., 0], cmap="RdBu_r", vmin=-scale, vmax=scale,
                  interpolation="nearest")
    else:
        ax.imshow(0.5 + 0.5 * saliency / scale, interpolation="nearest")
    _bare(ax)


def _bare(ax):
    # Ticks and spines off but the axes kept, so that set_ylabel still labels a gallery row.
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)


def _estimate_look(key, extra_index):
    if key in ESTIMATES:
        return ESTIMATES[key]
    # An attack added after this module was written still gets its own colour and label.
    return f"{key[len('rho_'):]} attack", PALETTE[5 + extra_index % 3], "P"


@styled
def alignment_vs_robustness(results_dir, out_dir, stem):
    """Figures 2 (ImageNet) and 3 (MNIST): median alpha against median robustness, per model.

    One line per robustness estimate (each attack's minimal L2 distance, and the linearized
    rho_tilde of eq. 9), one point per evaluated model, joined in lambda order.

    Returns:
      The PNG and PDF paths written.
    """
    spec, members = load(results_dir, columns=("median_alignment", "median_lin_robustness"))
    found = [k[len("median_"):] for k in members if k.startswith("median_rho_")
             and not results.is_linf(k)]
    keys = ["lin_robustness"] + [k for k in ESTIMATES if k in found]
    keys += [k for k in found if k not in keys]
    fig, ax = plt.subplots(figsize=(5.4, 3.9))
    lams, *alignment, band = by_lambda(members, "median_alignment")
    extra = 0
    for key in keys:
        label, colour, marker = _estimate_look(key, extra)
        extra += key not in ESTIMATES
        _, *x, _ = by_lambda(members, f"median_{key}")
        errorbars(ax, x, alignment, label=label, marker=marker, color=colour)
    lin = by_lambda(members, "median_lin_robustness")[1]
    annotate_lambdas(ax, lin, alignment[0], lams)
    mark_degenerate(ax, lin, alignment[0],
                    [members["degenerate"][members["lam"] == lam].any() for lam in lams])
    ax.set_xlabel(r"median robustness: $M[\rho(x)]$ per attack, $M[\tilde\rho(x)]$")
    ax.set_ylabel(r"median $\alpha(x)$")
    # Below the axes: the four lines and their bars leave no reliably empty corner.
    ax.legend(title=r"estimate ($\lambda$ beside $\tilde\rho$ points)"
              + (f"; bars: {band}" if band else ""), loc="upper center",
              bbox_to_anchor=(0.5, -0.14), ncol=2)
    ax.set_title(title(spec, "Median alignment against median robustness", members))
    return save(fig, out_dir, stem)


def _violations(tables, rhs):
    over = [bounds.bound_violated(t, rhs) for t in tables]
    return int(sum(o.sum() for o in over)), int(sum(len(o) for o in over))


@styled
def bound_summands(results_dir, out_dir, stem, *, equation, terms, rhs, printed=None):
    """Figures 6-8: the summands of an upper bound on rho_tilde, one point per model.

    Left: the median over images of each summand, of the right-hand side and of rho_tilde
    against median rho_tilde. Right: the alignment term's share of the right-hand side,
    computed per image and then the median.

    Args:
      equation: the inequality's number in the paper, e.g. "(18)".
      terms: per-image columns that sum to `rhs`; the first is the alignment term.
      rhs: the right-hand-side column.
      printed: optional (term, rhs) columns of the form as the paper prints it, drawn dashed.

    Returns:
      The PNG and PDF paths written.
    """
    spec, members = load(results_dir)
    need = (*terms, rhs, "lin_robustness", *(printed or ()))
    tables = [per_image(results_dir, members, i, need) for i in range(len(members["lam"]))]
    x = members["median_lin_robustness"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9.6, 3.8))
    for k, term in enumerate(terms):
        left.plot(x, [np.median(t[term]) for t in tables], marker="o", color=PALETTE[k + 1],
                  label=LABELS[term])
    left.plot(x, [np.median(t[rhs]) for t in tables], marker="s", color=PALETTE[0],
              label=f"right-hand side of {equation}")
    if printed:
        left.plot(x, [np.median(t[printed[0]]) for t in tables], marker="o", ls="--",
                  color=PALETTE[len(terms)], label=LABELS[printed[0]])
        left.plot(x, [np.median(t[printed[1]]) for t in tables], marker="s", ls="--",
                  color=PALETTE[0], label=f"right-hand side of {equation} as printed")
    left.plot(x, x, marker=".", color="0.6", label=LABELS["lin_robustness"] + " (left side)")
    bad, total = _violations(tables, rhs)
    note = f"{equation} violated in {bad} of {total} images"
    if printed:
        note += f"; as printed: {_violations(tables, printed[1])[0]}"
    # Below the axes: summands of very different sizes leave no reliably empty corner.
    left.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=7,
                title=note, title_fontsize=7)
    left.set_xlabel(r"median $\tilde\rho(x)$")
    left.set_ylabel("median over images")
    share = [stats.median_share(t[terms[0]], t[rhs]) for t in tables]
    right.plot(x, share, marker="o", color=PALETTE[1], label=f"{equation}")
    if printed:
        right.plot(x, [stats.median_share(t[terms[0]], t[printed[1]]) for t in tables],
                   marker="o", ls="--", color=PALETTE[1], label=f"{equation} as printed")
    if mark_degenerate(right, x, share, members["degenerate"]) or printed:
        right.legend(loc="best")
    annotate_lambdas(right, x, share, members["lam"])
    right.set_xlabel(r"median $\tilde\rho(x)$")
    right.set_ylabel(f"{LABELS[terms[0]]} / right-hand side,\nper image, then median")
    fig.suptitle(title(spec, f"Summands of inequality {equation}", members), fontsize=9)
    return save(fig, out_dir, stem)
