"""The imagenet_smoke preset end to end: synthetic TFRecords it writes itself, ResNet50 with 1000
logits, chunked 1000-class measurements, attacks in the ImageNet box, then every figure."""

import os
import subprocess
import sys

import numpy as np
import pytest

from robust_saliency import cohort, data, results

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_imagenet_smoke_cohort_and_figures(tmp_path):
    folder = str(tmp_path / "smoke")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run([sys.executable, "-m", "experiments.cohort", "--preset=imagenet_smoke",
                           f"--results_dir={folder}"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    spec, table = cohort.read(folder)
    assert spec["train"]["model"] == "resnet50" and spec["train"]["dataset"] == "imagenet"
    assert list(table["status"]) == ["evaluated", "evaluated"]
    per_image = results.read_table(os.path.join(folder, table["run_dir"][0], "per_image.csv"))
    assert per_image["pred"].max() < 1000 and len(per_image["pred"]) == 4
    maps = np.load(os.path.join(folder, table["run_dir"][0], "maps.npz"))
    low, high = data.bounds("imagenet")
    assert maps["x"].shape[1:] == (32, 32, 3)
    assert maps["x"].min() >= low and maps["x"].max() <= high
    figures = subprocess.run([sys.executable, "-m", "experiments.figures",
                              f"--results_dir={folder}", f"--out_dir={tmp_path / 'figs'}"],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert figures.returncode == 0, figures.stderr[-3000:]
    assert len(os.listdir(tmp_path / "figs")) == 20
