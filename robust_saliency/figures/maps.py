"""The map galleries: figure 1 (saliency maps) and figure 10 (the gradients of Theorems 2-3).

Figure 1 of the paper. Rows: the first images of the members' maps.npz; columns: the image x,
then the saliency map g = grad Psi^{i*}(x) of the least and of the most robust evaluated model
(cohort.extremes), each titled with its lambda and alignment alpha(x) (eq. 7). Each map is scaled
symmetrically around 0 on its own, so only its pattern, not its size, compares across panels.

Figure 10 of the paper. For the first images of maps.npz, columns: x; g = grad Psi^{i*}(x) with
alpha(x) (eq. 7); g_dagger = grad (Psi^{i*} - Psi^{j*})(x) with alpha_dagger(x) (eq. 11); the
shifted image xi of Theorem 3; gamma = grad Psi^{i*}(xi) with |<xi, gamma>| / ||gamma||. Rows
alternate the most and the least robust evaluated model (cohort.extremes), odd rows most robust
as in the paper. Each gradient is scaled symmetrically around 0 on its own, as the paper scales
each individually.

    python -m experiments.figures --results_dir=DIR --out_dir=figures --figures=fig01,fig10
"""

import matplotlib.pyplot as plt

from robust_saliency import cohort, figure_inputs, plotting

COLUMNS = (("x", r"$x$", None), ("grad_pred", r"$g$", ("alignment", r"$\alpha$")),
           ("grad_bin", r"$g^\dagger$", ("alignment_bin", r"$\alpha^\dagger$")),
           ("xi", r"$\xi$", None),
           ("gamma", r"$\gamma$", ("alignment_xi", r"$|\langle\xi,\bar\gamma\rangle|$")))


def _extremes_with_maps(results_dir):
    """(spec, members, least, most, {position: maps.npz arrays}) of the least and the most
    robust evaluated members (cohort.extremes), the two models both galleries show."""
    spec, members = figure_inputs.load(results_dir)
    least, most = cohort.extremes(members)
    return spec, members, least, most, {at: figure_inputs.maps(results_dir, members, at)
                                        for at in (least, most)}


@plotting.styled
def saliency(results_dir, out_dir, stem="fig01_saliency", *, num_images=4, display=None):
    """Figure 1: writes <out_dir>/<stem>.png and .pdf; returns their paths.

    Args:
      num_images: rows, the first images of maps.npz.
      display: how to show an input image (plotting.show_image); default by dataset
        (plotting.default_display).
    """
    spec, members, least, most, shown = _extremes_with_maps(results_dir)
    display = display or plotting.default_display(spec)
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
    return plotting.save(fig, out_dir, stem)


@plotting.styled
def gallery(results_dir, out_dir, stem="fig10_gallery", *, num_images=3, display=None):
    """Figure 10: writes <out_dir>/<stem>.png and .pdf; returns their paths.

    Args:
      num_images: images shown, each in two rows (most, then least robust model).
      display: how to show x and xi (plotting.show_image); default by dataset
        (plotting.default_display).
    """
    spec, members, least, most, shown = _extremes_with_maps(results_dir)
    display = display or plotting.default_display(spec)
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
    return plotting.save(fig, out_dir, stem)
