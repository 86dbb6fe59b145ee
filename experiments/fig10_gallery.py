"""Figure 10 of the paper: the gradients of Theorems 2 and 3 for the most and least robust model.

    python -m experiments.fig10_gallery --results_dir=DIR --out_dir=figures

For the first images of maps.npz, columns: x; g = grad Psi^{i*}(x) with alpha(x) (eq. 7);
g_dagger = grad (Psi^{i*} - Psi^{j*})(x) with alpha_dagger(x) (eq. 11); the shifted image xi of
Theorem 3; gamma = grad Psi^{i*}(xi) with |<xi, gamma>| / ||gamma||. Rows alternate the most and
the least robust evaluated model (cohort.extremes), odd rows most robust as in the paper. Each
gradient is scaled symmetrically around 0 on its own, as the paper scales each individually.
"""

import matplotlib.pyplot as plt
from absl import app

from experiments import figures
from robust_saliency import cohort, plotting

STEM = "fig10_gallery"
COLUMNS = (("x", r"$x$", None), ("grad_pred", r"$g$", ("alignment", r"$\alpha$")),
           ("grad_bin", r"$g^\dagger$", ("alignment_bin", r"$\alpha^\dagger$")),
           ("xi", r"$\xi$", None),
           ("gamma", r"$\gamma$", ("alignment_xi", r"$|\langle\xi,\bar\gamma\rangle|$")))


@plotting.styled
def plot(results_dir, out_dir, num_images=3, display=None):
    """Writes <out_dir>/fig10_gallery.png and .pdf; returns their paths.

    Args:
      num_images: images shown, each in two rows (most, then least robust model).
      display: how to show x and xi (plotting.show_image); default by dataset
        (plotting.default_display).
    """
    spec, members = plotting.load(results_dir)
    display = display or plotting.default_display(spec)
    least, most = cohort.extremes(members)
    shown = {at: plotting.maps(results_dir, members, at) for at in (least, most)}
    count = min(num_images, len(shown[most]["x"]))
    fig, axes = plt.subplots(2 * count, len(COLUMNS), figsize=(7.2, 3.0 * count + 0.7),
                             squeeze=False, layout="constrained")
    for image in range(count):
        for half, (at, which) in enumerate(((most, "most"), (least, "least"))):
            row, arrays = 2 * image + half, shown[at]
            for col, (key, symbol, alignment) in enumerate(COLUMNS):
                ax = axes[row, col]
                if key in ("x", "xi"):
                    plotting.show_image(ax, arrays[key][image], display)
                else:
                    plotting.show_map(ax, arrays[key][image])
                text = symbol
                if alignment:
                    text += f": {alignment[1]}={arrays[alignment[0]][image]:.3g}"
                elif key == "x":
                    text += rf": $\tilde\rho$={arrays['lin_robustness'][image]:.3g}"
                ax.set_title(text, fontsize=7)
            axes[row, 0].set_ylabel(f"image {image}\n{which} robust\n"
                                    f"{plotting.lam_text(members['lam'][at])}", fontsize=7)
    fig.suptitle(plotting.title(spec, "Gradients of Theorems 2 and 3 (red > 0 > blue, each "
                                "scaled to its own max)"), fontsize=8)
    return plotting.save(fig, out_dir, STEM)


def main(argv):
    figures.run_command(plot, argv)


if __name__ == "__main__":
    figures.define_flags()
    app.run(main)
