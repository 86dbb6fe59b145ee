"""Measure one trained model: every per-image quantity plus attack robustness.

    python -m experiments.evaluate --run_dir=runs/r --num_images=200
    python -m experiments.evaluate --model_path=m.keras --dataset=fashion_mnist --out_dir=e
    python -m experiments.evaluate --run_dir=runs/r --attack_options=cw.steps=200,bim.steps=10

Writes per_image.csv, maps.npz, summary.json and robust_accuracy.csv into the run folder (or
--out_dir); rerunning after an interruption computes only the missing attacks.
"""

import sys

from absl import app, flags

import experiments
from robust_saliency import attacks

FLAGS = flags.FLAGS
flags.DEFINE_string("run_dir", None, "A folder written by experiments.train.")
flags.DEFINE_string("model_path", None, "Instead of --run_dir: any .keras model to logits.")
flags.DEFINE_string("dataset", None, "With --model_path: the dataset whose validation images "
                    "to measure.")
flags.DEFINE_string("data_dir", None, "With --model_path: the dataset's folder.")
flags.DEFINE_string("out_dir", None, "With --model_path: where to write the results.")
flags.DEFINE_integer("num_images", 1000, "The first N validation images (the paper: 1,000).")
flags.DEFINE_list("attacks", list(attacks.PAPER), "Attack methods.")
flags.DEFINE_integer("batch_size", 100, "Images per batch.")
flags.DEFINE_list("attack_options", [], "method.option=value pairs, e.g. cw.steps=200.")
flags.DEFINE_bool("aggregated_saliency", False, "Also the alignment of SmoothGrad and "
                  "Integrated Gradients maps (columns alignment_smoothgrad, alignment_ig).")
flags.DEFINE_bool("explanation_metrics", False, "Also the explanation-quality metrics of the "
                  "gradient maps (robust_saliency.explanations: deletion, sparseness, ...).")


def _announce(stage, done=None, total=None):
    if not done:
        print(f"evaluating: {stage}")


def main(argv):
    del argv
    from robust_saliency import data, evaluation

    try:
        options = attacks.parse_options(FLAGS.attack_options)
        attacks.check_methods(FLAGS.attacks, options)
        if FLAGS.num_images < 1 or FLAGS.batch_size < 1:
            raise ValueError("--num_images and --batch_size must be >= 1")
        print(experiments.banner(FLAGS.dataset, FLAGS.data_dir), flush=True)
        common = dict(attack_methods=FLAGS.attacks, batch_size=FLAGS.batch_size,
                      attack_options=options, progress=_announce, verbose=True,
                      aggregated_saliency=FLAGS.aggregated_saliency,
                      explanation_metrics=FLAGS.explanation_metrics)
        if FLAGS.run_dir:
            summary = evaluation.evaluate_run(FLAGS.run_dir, num_images=FLAGS.num_images,
                                              **common)
            out_dir = FLAGS.run_dir
        elif FLAGS.model_path and FLAGS.dataset and FLAGS.out_dir:
            import keras

            model = keras.models.load_model(FLAGS.model_path)
            x, y = data.load_arrays(FLAGS.dataset, "validation", FLAGS.data_dir,
                                    num_examples=FLAGS.num_images)
            summary = evaluation.evaluate(
                model, x, y, FLAGS.out_dir, bounds=data.bounds(FLAGS.dataset),
                meta={"model_path": FLAGS.model_path, "dataset": FLAGS.dataset}, **common)
            out_dir = FLAGS.out_dir
        else:
            raise ValueError("give --run_dir, or --model_path with --dataset and --out_dir")
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f"error: {e}")
    medians = summary["medians"]
    shown = ", ".join(f"{k}={medians[k]:.4g}" for k in ("alignment", "lin_robustness",
                                                         *(f"rho_{m}" for m in FLAGS.attacks))
                      if k in medians)
    print(f"evaluated {summary['num_images']} images into {out_dir}: accuracy "
          f"{summary['accuracy']:.3f}; medians {shown}")


if __name__ == "__main__":
    app.run(main)
