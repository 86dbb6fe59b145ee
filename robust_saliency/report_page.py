"""The pages of a report (robust_saliency.report): report.html, self-contained (figures embedded
as data URIs, no link to another file), and report.md, the same text with the figures beside it.

A page is a list of blocks, ("h1" | "h2" | "p", text), ("table", header, rows) or ("figure",
png path, caption), rendered once to HTML and once to Markdown.
"""

import base64
import html
import os

import numpy as np

from robust_saliency import attacks, results, stats

_CSS = """body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;
line-height:1.45;color:#222}table{border-collapse:collapse;margin:0.8rem 0;font-size:0.9rem}
td,th{border:1px solid #ccc;padding:0.25rem 0.5rem;text-align:left;vertical-align:top}
th{background:#f2f2f2}figure{margin:1.2rem 0}img{max-width:min(100%,44rem)}
figcaption{font-size:0.9rem;color:#444}.pass{color:#1a7f37}.warning{color:#9a6700}
.refused{color:#cf222e;font-weight:bold}.skipped{color:#666}"""

VERDICT_WORDS = {
    "pass": "nothing found that would make the numbers misleading",
    "warning": "the numbers are computed; read them with the finding in mind",
    "refused": "the per-image numbers would be wrong or meaningless; fix this first",
    "skipped": "nothing to check (or an earlier check was refused)",
}


def _html(blocks):
    out = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>",
           html.escape(blocks[0][1]), f"</title><style>{_CSS}</style></head><body>"]
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "p"):
            out.append(f"<{kind}>{html.escape(block[1])}</{kind}>")
        elif kind == "table":
            out.append("<table><tr>" + "".join(f"<th>{html.escape(str(h))}</th>"
                                               for h in block[1]) + "</tr>")
            for row in block[2]:
                cells = []
                for cell in row:
                    css = f" class='{cell}'" if cell in VERDICT_WORDS else ""
                    cells.append(f"<td{css}>{html.escape(str(cell))}</td>")
                out.append("<tr>" + "".join(cells) + "</tr>")
            out.append("</table>")
        else:
            with open(block[1], "rb") as f:
                data = base64.b64encode(f.read()).decode("ascii")
            out.append(f"<figure><img alt='{html.escape(block[2])}' "
                       f"src='data:image/png;base64,{data}'><figcaption>"
                       f"{html.escape(block[2])}</figcaption></figure>")
    out.append("</body></html>")
    return "\n".join(out)


def _markdown(blocks, out_dir):
    out = []
    for block in blocks:
        kind = block[0]
        if kind == "h1":
            out.append(f"# {block[1]}")
        elif kind == "h2":
            out.append(f"## {block[1]}")
        elif kind == "p":
            out.append(block[1])
        elif kind == "table":
            out.append(results.markdown_table(block[1], block[2]))
        else:
            out.append(f"![{block[2]}]({os.path.relpath(block[1], out_dir)})\n\n*{block[2]}*")
    return "\n\n".join(out) + "\n"


def _save(out_dir, stem, blocks):
    page, markdown = (os.path.join(out_dir, f"{stem}.{ext}") for ext in ("html", "md"))
    results.write_text(page, _html(blocks))
    results.write_text(markdown, _markdown(blocks, out_dir))
    return page, markdown


def _fmt(value):
    return f"{value:.4g}" if np.isfinite(value) else str(value)


def _spearman(a, b):
    r, (low, high) = stats.spearman(a, b), stats.spearman_interval(a, b)
    return f"{r:.3f} [{low:.3f}, {high:.3f}]"


def _numbers(table, record):
    rho = table["rho_best"]
    usable = np.isfinite(rho) & (rho > 0)
    rows = []
    if record["labels_given"]:
        rows.append(["accuracy on the given labels", f"{np.mean(table['correct']):.1%}"])
    rows += [
        ["median alignment alpha(x) = |<x, g>| / ||g||",
         _fmt(np.median(table["alignment"]))],
        ["median linearized robustness rho_tilde(x)", _fmt(np.median(table["lin_robustness"]))],
        ["median verified robustness rho_best(x) (L2)", _fmt(np.median(rho[usable]))
         if usable.any() else "none found"],
        ["Spearman alignment vs rho_best, 95% interval", _spearman(table["alignment"], rho)],
        ["Spearman rho_tilde vs rho_best, 95% interval",
         _spearman(table["lin_robustness"], rho)],
        ["images with no adversarial found by any attack (rho_best = inf)",
         str(int(np.sum(~np.isfinite(rho))))],
        ["images already misclassified (rho_best = 0)", str(int(np.sum(rho == 0)))],
    ]
    for column in ("alignment_smoothgrad", "alignment_ig"):
        if column in table:
            rows.append([f"median {column.replace('_', ' of ', 1)} maps",
                         _fmt(np.median(table[column]))])
    return rows


def _attack_rows(table, record):
    rows = []
    rho = table["rho_best"]
    for method in record["attacks"]:
        column = table["rho_" + method]
        finite = np.isfinite(column) & (column > 0)
        best = np.isfinite(rho) & (column == rho)
        rows.append([attacks.label("rho_" + method), _fmt(np.median(column[finite]))
                     if finite.any() else "none", f"{np.mean(best):.0%}",
                     str(int(np.sum(~np.isfinite(column))))])
    return rows


def _bounds_rows(table):
    from robust_saliency import theorem_bounds

    return [[name, str(int(np.sum(theorem_bounds.bound_violated(table, column))))]
            for name, column in (("(14)/(18)", "bound14"), ("(15)/(19)", "bound15"),
                                 ("(16)/(20), the form that always holds", "bound16"),
                                 ("(16)/(20) as printed", "bound16_printed"))]


CAPTIONS = {
    "robust_accuracy": "Accuracy under attack: the share of images classified correctly whose "
                       "verified minimal L2 perturbation exceeds the budget, per attack and for "
                       "rho_best (the smallest over all attacks), with its 95% bootstrap band.",
    "alignment": "Alignment alpha(x) against the verified distance rho_best(x), one point per "
                 "image. The paper's claim: more robust images (and models) have saliency maps "
                 "more aligned with the image.",
    "linearized": "rho_tilde(x), the distance to the decision boundary of the model linearized "
                  "at x, against rho_best(x). Near the dashed line the model behaves linearly "
                  "between x and its nearest adversarial; rho_tilde far above it means the "
                  "linearization overestimates robustness.",
    "decomposition": "Left: median shares of the summands of the bounds of Theorems 2 and 3 "
                     "(Figs. 6-8 of the paper). Right: the linear term's share of the "
                     "binarized score Psi^i* - Psi^j* (Fig. 9); near 1 the logits are "
                     "dominated by <x, g> rather than the bias term.",
    "gallery": "The most robust (top) and least robust (bottom) images: the image, its gradient "
               "(the paper's saliency map), SmoothGrad and Integrated Gradients maps, the "
               "minimal adversarial perturbation found, and the adversarial image.",
}


def write(out_dir, figures):
    """report.html and report.md of the report in `out_dir`; their paths."""
    record = results.read_json(os.path.join(out_dir, "report.json"))
    checks = results.read_json(os.path.join(out_dir, "preflight.json"))
    table = results.read_table(os.path.join(out_dir, results.PER_IMAGE_CSV))
    blocks = [
        ("h1", f"Robustness and saliency report: {record['name']}"),
        ("p", f"{record['num_images']} images of shape {tuple(record['image_shape'])} in the "
              f"pixel box {tuple(record['bounds'])}. "
              + "Distances are measured away from the model's own prediction (the paper's "
                "convention); "
              + ("with the labels given, the robust-accuracy curves count an image only where "
                 "the model classifies it correctly." if record["labels_given"]
                 else "no labels were given, so every image counts as correct in the "
                      "robust-accuracy curves.")
              + f" robust_saliency {record['library_version']}, TensorFlow "
              f"{record['versions'].get('tensorflow', '?')}, on "
              f"{record['versions'].get('cpu', '?')}."),
        ("h2", "Preflight: can these numbers be trusted?"),
        ("p", "Each check looks for a way the numbers below could mislead. " + "; ".join(
            f"{v}: {w}" for v, w in VERDICT_WORDS.items()) + "."),
        ("table", ["check", "verdict", "finding", "fix"],
         [[c["name"], c["verdict"], c["finding"], c["fix"] if c["verdict"] != "pass" else ""]
          for c in checks]),
        ("h2", "The numbers"),
        ("p", "Alignment and rho_tilde are exact per image (the paper's eqs. 3 and 9). "
              "rho_best is the smallest verified adversarial L2 perturbation any of the "
              "attacks found: an upper bound on the true distance rho(x), from attacks of "
              "three families because each misses minima the others find. Intervals are 95% "
              "bootstrap intervals over images."),
        ("table", ["quantity", "value"], _numbers(table, record)),
        ("p", "Per attack: the median distance it found (over images where it found one), "
              "how often it gave rho_best, and on how many images it found none."),
        ("table", ["attack", "median distance", "gives rho_best on", "found none on"],
         _attack_rows(table, record)),
        ("p", "Theorems 2 and 3 bound rho_tilde by alignment plus correction terms; a "
              "violation beyond round-off would mean a measurement error (the printed form "
              "of (16) may be violated, see the paper's Theorem 3)."),
        ("table", ["bound", "images violating it"], _bounds_rows(table)),
        ("h2", "Figures"),
    ]
    blocks += [("figure", figures[key], CAPTIONS[key]) for key in CAPTIONS if key in figures]
    blocks += [("h2", "Files"),
               ("p", "per_image.csv: one row per image, every quantity (column names as in "
                     "robust_saliency.metrics.measure); summary.json: medians with their "
                     "intervals; robust_accuracy.csv: the exact robust-accuracy curve at every "
                     "budget where it changes; preflight.json, report.json: the verdicts and "
                     "settings; figures/: PNG and PDF of every figure.")]
    return _save(out_dir, "report", blocks)


def write_pair(out_dir, dirs, names, tables, figures):
    """compare.html and compare.md of two reports on the same images; their paths."""
    growth, gain = _finite_changes(tables)
    rows = [[name, _fmt(np.median(t["alignment"])),
             _fmt(np.median(t["rho_best"][np.isfinite(t["rho_best"]) & (t["rho_best"] > 0)])),
             _fmt(np.median(t["lin_robustness"]))] for name, t in zip(names, tables)]
    blocks = [
        ("h1", f"Two models on the same images: {names[0]} and {names[1]}"),
        ("p", "Reports (relative to this page): "
              + " and ".join(os.path.relpath(d, out_dir) for d in dirs)
              + f", {len(tables[0]['rho_best'])} images each."),
        ("table", ["model", "median alignment", "median rho_best", "median rho_tilde"], rows),
        ("p", f"Per image, rho_best grew (second over first) on {np.mean(growth > 0):.0%} of "
              f"the {len(growth)} images where both are finite and positive, and alignment "
              f"rose on {np.mean(gain > 0):.0%}. Whether the images whose distance grew most "
              "also gained most alignment: Spearman's correlation of the two changes is "
              f"{_spearman(growth, gain)} (95% interval)."),
        ("figure", figures["pair_curves"], "Robust accuracy of rho_best, both models, with "
                                           "95% bootstrap bands over images."),
        ("figure", figures["pair_changes"], "Per image: the growth of rho_best against the "
                                            "change of alignment."),
    ]
    os.makedirs(out_dir, exist_ok=True)
    return _save(out_dir, "compare", blocks)


def _finite_changes(tables):
    from robust_saliency.figures.report import changes

    growth, gain = changes(tables)
    keep = np.isfinite(growth) & np.isfinite(gain)
    return growth[keep], gain[keep]
