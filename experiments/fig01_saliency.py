"""Figure 1 of the paper: saliency maps of the least and the most robust model.

    python -m experiments.fig01_saliency --results_dir=DIR --out_dir=figures

Rows: the first images of the members' maps.npz; columns: the image x, then the saliency map
g = grad Psi^{i*}(x) of the least and of the most robust evaluated model (cohort.extremes),
each titled with its lambda and alignment alpha(x) (eq. 7). Each map is scaled symmetrically
around 0 on its own, so only its pattern, not its size, compares across panels.
"""

import matplotlib.pyplot as plt
from absl import app

from experiments import figures
from robust_saliency import cohort, plotting

STEM = "fig01_saliency"


@plotting.styled
def plot(results_dir, out_dir, num_images=4, display=None):
    """Writes <out_dir>/fig01_saliency.png and .pdf; returns their paths.

    Args:
      num_images: rows, the first images of maps.npz.
      display: how to show an input image (plotting.show_image); default by dataset
        (plotting.default_display).
    """
    spec, members = plotting.load(results_dir)
    display = display or plotting.default_display(spec)
    least, most = cohort.extremes(members)
    shown = {at: plotting.maps(results_dir, members, at) for at in (least, most)}
    rows = min(num_images, len(shown[most]["x"]))
    fig, axes = plt.subplots(rows, 3, figsize=(5.4, 1.85 * rows + 0.6), squeeze=False,
                             layout="constrained")
    for row in range(rows):
        plotting.show_image(axes[row, 0], shown[most]["x"][row], display)
        axes[row, 0].set_ylabel(f"image {row}")
        for col, (at, which) in enumerate(((least, "least"), (most, "most")), start=1):
            arrays = shown[at]
            plotting.show_map(axes[row, col], arrays["grad_pred"][row])
            axes[row, col].set_title(
                f"{which} robust, {plotting.lam_text(members['lam'][at])}\n"
                rf"$\alpha(x)$={arrays['alignment'][row]:.3g}, pred {arrays['pred'][row]}",
                fontsize=7)
    axes[0, 0].set_title(r"$x$", fontsize=7)
    fig.suptitle(plotting.title(spec, r"Saliency maps $g=\nabla\Psi^{i^*}(x)$ (red > 0 > blue,"
                                " each scaled to its own max)"), fontsize=8)
    return plotting.save(fig, out_dir, STEM)


def main(argv):
    figures.run_command(plot, argv)


if __name__ == "__main__":
    figures.define_flags()
    app.run(main)
