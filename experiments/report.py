"""A robustness-and-saliency report of a model: preflight, measurements, figures, one page.

    python -m experiments.report --model_path=model.keras --data=images.npz --out_dir=report
    python -m experiments.report --model_path=mnist_converged:10 --data=mnist:validation \
        --num_images=200 --second_model_path=mnist_converged:93670 --out_dir=report

--model_path: a .keras file, a run folder, or a released checkpoint <cohort>:<lambda>[:<seed>].
--data: an .npz (x, optional y), a folder of image files (class subfolders give labels), or
<dataset>:<split>. Writes <out_dir>/report.html (open it offline) and report.md beside the
per-image table; with --second_model_path, the second model's report in <out_dir>/second and
both side by side in <out_dir>/compare.html. A rerun resumes where the last one stopped.
"""

import os
import sys

from absl import app, flags

import experiments

FLAGS = flags.FLAGS
flags.DEFINE_string("model_path", None, "A .keras file, a run folder or <cohort>:<lambda>.")
flags.DEFINE_string("second_model_path", None, "Optional: a second model, reported on the same "
                    "images and compared side by side.")
flags.DEFINE_string("data", None, "An .npz file, an image folder or <dataset>:<split>.")
flags.DEFINE_string("out_dir", None, "The report's folder.")
flags.DEFINE_integer("num_images", 1000, "The first N images.")
flags.DEFINE_list("bounds", None, "low,high pixel box (default: the dataset's, else 0,1).")
flags.DEFINE_list("attacks", None, "The L2 attacks of rho_best (default: the strong ones).")
flags.DEFINE_bool("paper_attacks", False, "Also the paper's gradient, BIM and CW attacks.")
flags.DEFINE_list("attack_options", [], "method.option=value pairs, e.g. ddn.steps=500.")
flags.DEFINE_bool("explanation_metrics", False, "Also the explanation-quality metrics.")
flags.DEFINE_integer("gallery_images", 3, "Most and least robust images in the gallery.")
flags.DEFINE_bool("force", False, "Measure even where the preflight refuses.")
flags.mark_flags_as_required(["model_path", "data", "out_dir"])


def main(argv):
    del argv
    from robust_saliency import attacks, data, reports, user_data

    try:
        print(experiments.banner(), flush=True)
        model = user_data.load_model(FLAGS.model_path)
        shape = tuple(model.input_shape[1:]) if getattr(model, "inputs", None) else None
        x, y, bounds, dataset = user_data.load_images(FLAGS.data, num_images=FLAGS.num_images,
                                                      image_shape=shape)
        if FLAGS.bounds:
            bounds = tuple(float(b) for b in FLAGS.bounds)
        common = dict(bounds=bounds or (0.0, 1.0),
                      attack_methods=tuple(FLAGS.attacks or reports.ATTACKS),
                      attack_options=attacks.parse_options(FLAGS.attack_options),
                      paper_attacks=FLAGS.paper_attacks,
                      explanation_metrics=FLAGS.explanation_metrics,
                      gallery_images=FLAGS.gallery_images, force=FLAGS.force,
                      display=data.display(dataset) if dataset else None)
        print(f"data: {len(x)} images from {FLAGS.data}"
              + (", with labels" if y is not None else ", no labels"), flush=True)
        first = reports.report(model, x, y, out_dir=FLAGS.out_dir, name=FLAGS.model_path,
                               **common)
        print(f"report: {first['page']}")
        if FLAGS.second_model_path:
            second = reports.report(user_data.load_model(FLAGS.second_model_path), x, y,
                                    out_dir=os.path.join(FLAGS.out_dir, "second"),
                                    name=FLAGS.second_model_path, **common)
            pair = reports.compare(FLAGS.out_dir, second["out_dir"], FLAGS.out_dir)
            print(f"second model: {second['page']}\nside by side: {pair['page']}")
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    app.run(main)
