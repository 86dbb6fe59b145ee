"""The imagenet_smoke preset end to end: synthetic TFRecords it writes itself, ResNet50 trained
with the penalty, chunked many-class measurements, attacks in the ImageNet box, then every
figure.

Smaller than the preset itself, through the command's own overrides: nearly all of the preset's
cost is per ResNet50 model and independent of the image count (tracing the double-backprop step,
and each many-class measurement: one sequential backward pass per class, at every epoch end for
the probe and again in the evaluation; measured here, 130 s of execution for 1000 classes on 2
images). So one member (the preset's first lambda) instead of two, 2 measured images instead of
4, 16 training images (2 steps) instead of 64, 101 logits instead of 1000: just above
logit_gradients.UNROLL_MAX_CLASSES, so the measurement takes the same chunked path; and no
per-epoch probe: it is the evaluation's many-class measurement (run here, maps included) called
from a callback whose logic does not depend on the class count, and the callback is
test_experiments_train's business. That 1000 chunked classes give the brute-force answer is
test_models_resnet's test_1000_classes_chunked_equals_brute_force."""

import os
import subprocess
import sys

import numpy as np
import pytest

from robust_saliency import cohort, data, figures, logit_gradients, results

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLASSES = 101


@pytest.mark.slow
def test_imagenet_smoke_cohort_and_figures(tmp_path):
    folder = str(tmp_path / "smoke")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run([sys.executable, "-m", "experiments.cohort", "--preset=imagenet_smoke",
                           f"--results_dir={folder}", "--lambdas=0.01",
                           "--train.data.train_subset=16", "--num_images=2",
                           "--train.probe_size=0", f"--train.model.num_classes={CLASSES}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    spec, table = cohort.read(folder)
    model, dataset = spec["train"]["model"], spec["train"]["data"]["dataset"]
    assert model["name"] == "resnet50" and dataset == "imagenet"
    assert model["num_classes"] == CLASSES > logit_gradients.UNROLL_MAX_CLASSES
    assert list(table["status"]) == ["evaluated"] and list(table["lam"]) == [0.01]
    record = results.read_json(os.path.join(folder, table["run_dir"][0], results.RUN_JSON))
    assert record["history"][-1]["penalty"] > 0  # double backprop through ResNet50 ran
    per_image = results.read_table(os.path.join(folder, table["run_dir"][0], "per_image.csv"))
    assert per_image["pred"].max() < CLASSES and len(per_image["pred"]) == 2
    maps = np.load(os.path.join(folder, table["run_dir"][0], "maps.npz"))
    low, high = data.bounds("imagenet")
    assert maps["x"].shape[1:] == (32, 32, 3)
    assert maps["x"].min() >= low and maps["x"].max() <= high
    # In this process: the figures command's own wrapper is test_figures' business.
    paths, errors = figures.draw_all(folder, str(tmp_path / "figs"))
    assert errors == {}
    # Figures 1-10 and 13 (the strong attacks against rho_best), PNG and PDF each.
    assert len(paths) == 22 and len(os.listdir(tmp_path / "figs")) == 22
