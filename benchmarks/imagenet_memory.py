"""Peak memory and time of the 1000-class measurement pass on ResNet50, CPU.

    python -m benchmarks.imagenet_memory [--batch=8] [--image_size=224] [--classes=1000]

Runs metrics.measure (every quantity: the chunked 1000-class linearized robustness, the JVP
x-terms, the xi pass) once on random caffe-range images after a small warm-up on the same
shapes, and reports wall time and the process's peak resident memory (ru_maxrss, which includes
TensorFlow itself and the model: the baseline row measures those alone).
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from benchmarks.common import peak_rss_mb, record  # noqa: E402
from robust_saliency import logit_gradients, metrics, models  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--image_size", type=int, default=224)
    parser.add_argument("--classes", type=int, default=1000)
    args = parser.parse_args()
    shape = (args.image_size, args.image_size, 3)
    model = models.resnet50(input_shape=shape, num_classes=args.classes)
    x = np.random.default_rng(0).uniform(-100, 100, (args.batch, *shape)).astype("float32")
    model(x, training=False)
    baseline = peak_rss_mb()
    start = time.perf_counter()
    r = metrics.measure(model, x, batch_size=args.batch, bounds=(-100, 100))
    seconds = time.perf_counter() - start
    chunk = logit_gradients.auto_chunk(args.classes, args.batch, int(np.prod(shape)))
    rows = [["TensorFlow + ResNet50 + one forward pass (baseline)", f"{baseline:.0f}", "-"],
            [f"metrics.measure, {args.classes} classes in chunks of {chunk}",
             f"{peak_rss_mb():.0f}", f"{seconds:.1f}"]]
    assert np.all(np.isfinite(r["lin_robustness"]))
    record(f"1000-class measurement memory, ResNet50 {args.image_size}x{args.image_size}, batch "
           f"{args.batch}, CPU", ["stage", "peak RSS MB", "seconds"], rows,
           notes="Target (issue 6): peak under 4 GB (4096 MB) on CPU.")


if __name__ == "__main__":
    main()
