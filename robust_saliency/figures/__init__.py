"""Every figure of a cohort folder, by name: the paper's ten and figures 11-13 beyond it.

    python -m experiments.figures --results_dir=DIR --out_dir=figures
    python -m experiments.figures --results_dir=DIR --out_dir=figures --figures=fig05 --member=2

FIGURES maps each figure's name (its file stem: <out_dir>/<name>.png and .pdf) to how it is
drawn. Every figure reads only the files experiments.cohort wrote (cohort.json, cohort.csv,
each member's per_image.csv and maps.npz) and raises figure_inputs.MissingResults, naming the
file or column and the command that writes it, when something is absent. `draw` draws one figure,
`draw_all` any subset (`select`) and reports the ones it could not draw. Figures beyond the
paper that need measurements not every cohort has (the explanation metrics for 11-12, a strong
L2 attack for 13) are left out of `draw_all`'s default where those are absent.

The figure across robustification methods, which reads several cohorts, is
robust_saliency.figures.methods (command: python -m experiments.fig_methods).
"""

import dataclasses
import importlib
import os
import typing

from robust_saliency import results


@dataclasses.dataclass(frozen=True)
class Figure:
    """How one figure is drawn: `function` ("module:name" under robust_saliency) is called as
    function(results_dir, out_dir, name, **options, **the caller's options)."""

    function: str
    summary: str
    options: typing.Mapping = dataclasses.field(default_factory=dict)
    per_member: bool = False  # takes member=: one member's images, not the whole cohort
    explanations: bool = False  # needs the explanation-metric columns (--explanation_metrics)
    strong_attacks: bool = False  # needs an L2 attack column beyond the paper's three

    def draw(self, results_dir, out_dir, name, **options):
        module, attribute = self.function.split(":")
        function = getattr(importlib.import_module(f"robust_saliency.{module}"), attribute)
        return function(results_dir, out_dir, name, **self.options, **options)


FIGURES = {
    "fig01_saliency": Figure(
        "figures.maps:saliency", "saliency maps of the least and most robust model"),
    "fig02_alignment_robustness": Figure(
        "figures.alignment:alignment_vs_robustness",
        "median alignment against median robustness: the paper's estimates and rho_best "
        "(the paper's ImageNet)"),
    "fig03_alignment_robustness": Figure(
        "figures.alignment:alignment_vs_robustness",
        "median alignment against median robustness: the paper's estimates and rho_best "
        "(the paper's MNIST)"),
    "fig04_pointwise_alignment": Figure(
        "figures.pointwise:alignment", "alpha(x) against rho_tilde(x), one model",
        per_member=True),
    "fig05_pointwise_attack": Figure(
        "figures.pointwise:attack", "rho(x) by attack against rho_tilde(x), one model",
        per_member=True),
    "fig06_bound18": Figure(
        "figures.bounds:bound_summands", "the summands of inequality (18)",
        {"equation": "(18)", "terms": ("alignment_bin", "bias_term"), "rhs": "bound14"}),
    "fig07_bound19": Figure(
        "figures.bounds:bound_summands", "the summands of inequality (19)",
        {"equation": "(19)", "terms": ("alignment", "angle_term", "bias_term"),
         "rhs": "bound15"}),
    "fig08_bound20": Figure(
        "figures.bounds:bound_summands", "the summands of inequality (20)",
        {"equation": "(20)", "terms": ("alignment_xi", "angle_term_xi"), "rhs": "bound16",
         "printed": ("angle_term_xi_printed", "bound16_printed")}),
    "fig09_linear_share": Figure(
        "figures.decomposition:linear_share",
        "the linear term's share of the binarized score (Theorem 1)"),
    "fig10_gallery": Figure(
        "figures.maps:gallery", "the gradients of Theorems 2 and 3, most and least robust"),
    "fig11_explanation_metrics": Figure(
        "figures.explanations:metrics_vs_robustness",
        "explanation-quality metrics against median rho_best, beside alignment",
        explanations=True),
    "fig12_explanation_gallery": Figure(
        "figures.explanations:gallery", "gradient maps with their explanation metrics",
        explanations=True),
    "fig13_strong_attacks": Figure(
        "figures.strong_attacks:strong_attacks",
        "each strong L2 attack against rho_best: per lambda and per image",
        strong_attacks=True),
}
NAMES = tuple(FIGURES)
PAPER_FIGURES = tuple(n for n in NAMES
                      if not (FIGURES[n].explanations or FIGURES[n].strong_attacks))
EXPLANATION_FIGURES = tuple(n for n in NAMES if FIGURES[n].explanations)
STRONG_ATTACK_FIGURES = tuple(n for n in NAMES if FIGURES[n].strong_attacks)


def select(names):
    """The names of FIGURES that `names` (full names or their figNN prefixes) pick, in table
    order; None or empty: all of them."""
    if not names:
        return NAMES
    chosen = set()
    for name in names:
        found = [n for n in NAMES if n == name or n.split("_")[0] == name]
        if not found:
            raise ValueError(f"unknown figure {name!r}; the figures are {', '.join(NAMES)} "
                             f"(or their prefixes fig01 .. {NAMES[-1].split('_')[0]})")
        chosen.update(found)
    return tuple(n for n in NAMES if n in chosen)


def draw(name, results_dir, out_dir, *, member=None, **options):
    """Draws figure `name` of FIGURES; returns the paths written (its .png and .pdf).

    Args:
      name: a key of FIGURES.
      results_dir: the cohort folder.
      out_dir: where the figure goes.
      member: member index (cohort.csv column `member`) for the per-member figures 4 and 5;
        None: the most robust evaluated member (cohort.extremes). Ignored by the others.
      **options: the figure function's own options (e.g. num_images of figures 1 and 10).
    """
    if name not in FIGURES:
        raise ValueError(f"unknown figure {name!r}; the figures are {', '.join(NAMES)}")
    figure = FIGURES[name]
    if figure.per_member:
        options["member"] = member
    return figure.draw(results_dir, out_dir, name, **options)


def _measures_explanations(results_dir):
    path = os.path.join(results_dir, results.COHORT_JSON)
    return os.path.exists(path) and bool(results.read_json(path).get("explanation_metrics"))


def _measures_strong_attacks(results_dir):
    path = os.path.join(results_dir, results.COHORT_CSV)
    if not os.path.exists(path):
        return False
    from robust_saliency import plotting

    return bool(plotting.attack_columns(results.read_table(path), prefix="median_rho_")[1])


def draw_all(results_dir, out_dir, *, member=None, names=None):
    """Draws every figure it can, of those `names` picks (select).

    Args:
      results_dir: the cohort folder.
      out_dir: where the figures go.
      member: member index for figures 4 and 5 (None: their default).
      names: figure names or figNN prefixes; None: all. Figures 11 and 12 are left out, not
        failed, for a cohort not measured with the explanation metrics, and figure 13 for one
        that ran no strong L2 attack, unless named.

    Returns:
      (paths, errors): the files written, and {name: message} for each figure not drawn.
    """
    chosen = select(names)
    if not names and not _measures_explanations(results_dir):
        chosen = tuple(n for n in chosen if not FIGURES[n].explanations)
    if not names and not _measures_strong_attacks(results_dir):
        chosen = tuple(n for n in chosen if not FIGURES[n].strong_attacks)
    paths, errors = [], {}
    for name in chosen:
        try:
            paths += draw(name, results_dir, out_dir, member=member)
        except (ValueError, FileNotFoundError) as e:  # MissingResults is a ValueError.
            errors[name] = str(e)
    return paths, errors
