"""Figure 4 of the paper: pointwise alignment against linearized robustness for one model.

    python -m experiments.fig04_pointwise_alignment --results_dir=DIR --out_dir=figures --member=3

One point per measured image of one member: alpha(x) (eq. 7) against rho_tilde(x) (eq. 9), with
their Pearson correlation. The paper finds them highly correlated on MNIST and uncorrelated on
ImageNet. Default member: the most robust evaluated one (largest median rho_best, else median
rho_tilde; cohort.extremes), the same model figures 1 and 10 call most robust.
"""

import matplotlib.pyplot as plt
import numpy as np
from absl import app

from experiments import figures
from robust_saliency import plotting

STEM = "fig04_pointwise_alignment"


@plotting.styled
def plot(results_dir, out_dir, member=None):
    """Writes <out_dir>/fig04_pointwise_alignment.png and .pdf; returns their paths.

    Args:
      member: member index (cohort.csv column `member`); None: the most robust evaluated one
        (cohort.extremes).
    """
    spec, members = plotting.load(results_dir)
    at = plotting.pick(members, member)
    table = plotting.per_image(results_dir, members, at, ("lin_robustness", "alignment"))
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
    return plotting.save(fig, out_dir, STEM)


def main(argv):
    figures.run_command(plot, argv, member=figures.FLAGS.member)


if __name__ == "__main__":
    figures.define_flags(member=True)
    app.run(main)
