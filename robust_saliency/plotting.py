"""Shared pieces of the figure commands: style, saving, image panels, curves over lambda and
their labels.

What the figures read from a cohort folder, and the MissingResults error when it is absent, is
robust_saliency.figure_inputs. Labels use the paper's symbols, keyed in LABELS by the
per-image column names that metrics.measure documents. Curves joining a cohort's models draw a
degenerate model (cohort.degenerate) hollow and join no line to it (errorbars,
degenerate_legend); their lambda labels go where they overlap nothing
(robust_saliency.figures.labels). The figures themselves are in robust_saliency.figures.
"""

import functools
import importlib
import logging
import os

import matplotlib

matplotlib.use("Agg")  # Figures are files; never open a window (CI has no display).

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import cbook, lines  # noqa: E402
from matplotlib.rcsetup import cycler  # noqa: E402  (what matplotlib.cycler is)

from robust_saliency import attacks, cohort, results, stats  # noqa: E402

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
    "axes.prop_cycle": cycler(color=PALETTE),
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
# Attacks added after this module was written (Tol's muted scheme: apart from PALETTE's).
_MORE_LOOKS = (("#882255", "h"), ("#44AA99", "p"), ("#999933", "d"), ("#AA4499", "8"),
               ("#332288", "H"))
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


def styled(function):
    """Runs a figure function under STYLE, leaving the caller's rcParams untouched."""
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(STYLE):
            return function(*args, **kwargs)
    return wrapper


def title(spec, what, members=None):
    """`what`, then the dataset and preset, and how many models are in when some are not."""
    line = f"{spec['train']['data']['dataset']}, preset {spec['name']}"
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


def per_lambda(members, values):
    """by_lambda of per-member `values` (one per row of `members`): the median over a lambda's
    seeds with their range as band, no band for one seed."""
    return by_lambda({"lam": members["lam"], "value": np.asarray(values, np.float64)}, "value")


def lambda_curve(ax, values, *, members, x, degenerate, **style):
    """Per-member `values` drawn per lambda (per_lambda: the median over its seeds, their range
    as bars) against the per-lambda abscissa `x` (centre, low, high), degenerate lambdas hollow
    and not joined (errorbars); returns the curve's centres."""
    _, *y, _ = per_lambda(members, values)
    errorbars(ax, x, y, degenerate=degenerate, **style)
    return y[0]


def lambda_degenerate(members):
    """Per lambda (sorted, as by_lambda gives them): whether any of its members is degenerate
    (cohort.degenerate), so that its point is drawn hollow and not joined."""
    flags = np.asarray(members["degenerate"], bool)
    return np.array([flags[members["lam"] == lam].any() for lam in np.unique(members["lam"])])


def _bars(centre, low, high, keep):
    # None where there is no band at all: errorbar would still draw a cap on every point.
    bars = np.nan_to_num(np.array([(centre - low)[keep], (high - centre)[keep]]))
    return bars if bars.any() else None


def errorbars(ax, x, y, *, label, degenerate=None, **style):
    """Points (x, y) joined in order, with the bands by_lambda gave them as bars.

    Args:
      x, y: (centre, low, high) arrays each; points where a centre is not finite are skipped
        (the line joins across them).
      degenerate: optional bool per point: these are drawn hollow and the line breaks there
        instead of joining them to their neighbours.
      style: Line2D keywords (marker, color, ...).
    """
    (xc, xlo, xhi), (yc, ylo, yhi) = ([np.asarray(v, np.float64) for v in t] for t in (x, y))
    keep = np.isfinite(xc) & np.isfinite(yc)
    bad = np.zeros(len(xc), bool) if degenerate is None else np.asarray(degenerate, bool)
    # nan in place of a degenerate point: the line ends before it and starts again after it.
    cut = np.where(bad, np.nan, 1.0)
    drawn = ax.errorbar((xc * cut)[keep], (yc * cut)[keep], xerr=_bars(xc, xlo, xhi, keep),
                        yerr=_bars(yc, ylo, yhi, keep), label=label, capsize=2,
                        elinewidth=0.8, **style)
    if (keep & bad).any():
        colour = drawn.lines[0].get_color()
        style = cbook.normalize_kwargs(style, lines.Line2D)
        ax.errorbar(xc[keep & bad], yc[keep & bad], xerr=_bars(xc, xlo, xhi, keep & bad),
                    yerr=_bars(yc, ylo, yhi, keep & bad), capsize=2, elinewidth=0.8,
                    **{**style, "color": colour, "linestyle": "none",
                       "markerfacecolor": "white", "markeredgecolor": colour})


def lam_text(lam):
    return rf"$\lambda$={lam:g}"


def degenerate_legend(ax, members):
    """Adds the legend entry of the hollow, unjoined points when any lambda of `members` has a
    degenerate model (lambda_degenerate); returns whether it did."""
    flags = lambda_degenerate(members)
    if flags.any():
        seeds = max(int((members["lam"] == lam).sum()) for lam in np.unique(members["lam"]))
        ax.plot([], [], ls="none", marker="o", markerfacecolor="white", markeredgecolor="0.3",
                label=f"degenerate (hollow, not joined): accuracy < {cohort.DEGENERATE_SHARE:g}"
                " x the least regularised" + (" (any seed)" if seeds > 1 else ""))
    return bool(flags.any())


def legend_entries(ax):
    """`ax`'s legend handles and labels with the degenerate entry (degenerate_legend) last."""
    entries = list(zip(*ax.get_legend_handles_labels()))
    entries.sort(key=lambda entry: entry[1].startswith("degenerate"))
    return [h for h, _ in entries], [n for _, n in entries]


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


def _unit(image):
    image = np.asarray(image, np.float64)
    low, high = image.min(), image.max()
    return (image - low) / (high - low) if high > low else np.zeros_like(image)


def default_display(spec):
    """How to show a cohort's input images: undo ImageNet's caffe preprocessing, else None
    (min-max scaling, right for MNIST-format images)."""
    if spec["train"]["data"]["dataset"] == "imagenet":
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


def estimate_look(key, index=0):
    """(label, colour, marker) of a robustness estimate (a per-image column: lin_robustness,
    rho_best or rho_<attack>): ESTIMATES' where it has one; an attack added since gets a colour
    of its own, the `index`-th of the spare ones, and its class's label."""
    if key in ESTIMATES:
        return ESTIMATES[key]
    colour, marker = _MORE_LOOKS[index % len(_MORE_LOOKS)]
    name = key[len("rho_"):]
    label = attacks.ATTACKS[name].label if name in attacks.ATTACKS else name
    return f"{label} (L2) attack", colour, marker


def attack_columns(columns, prefix="rho_"):
    """The L2 attack columns among `columns` (`prefix` + an attack's name), as
    (paper, strong): the paper's gradient, BIM and CW (attacks.PAPER, in its order), and every
    other L2 attack, registered (attacks.ATTACKS, norm 2, in its order) or not yet (any other
    name not ending in _linf, after them); rho_best, the minimum over all of them, is neither.
    """
    names = [c[len(prefix):] for c in columns if c.startswith(prefix)]
    names = [n for n in names if n != "best" and not results.is_linf(n)
             and getattr(attacks.ATTACKS.get(n), "norm", 2) == 2]
    paper = [prefix + n for n in attacks.PAPER if n in names]
    registered = [n for n in attacks.ATTACKS if n in names and n not in attacks.PAPER]
    strong = registered + sorted(n for n in names if n not in attacks.ATTACKS)
    return paper, [prefix + n for n in strong]


def __getattr__(name):
    # Figures 2-3 and 6-8 were drawn here before they moved to robust_saliency.figures; the old
    # names still resolve (tests and notebooks call plotting.alignment_vs_robustness).
    moved = {"alignment_vs_robustness": "alignment", "bound_summands": "bounds"}
    if name in moved:
        module = importlib.import_module(f"robust_saliency.figures.{moved[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
