"""What sharing one compiled forward pass between the attacks on a model saves: the evaluation's
attacks (imagenet_smoke's gradient, BIM and CW settings) on a fresh random-weight ResNet50, each
attack with a forward function of its own (the baseline, as before the shared cache) or all of
them with the cached one, in alternating order so neither variant always runs on a cold cache.

    python -m benchmarks.attack_tracing [--image_size=32] [--images=2] [--repeats=2]

Per model the traces dominate at this size (nearly all of the time is tracing and optimising the
graph, not running it); the distances must agree exactly between the variants.
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks.common import record  # noqa: E402
from experiments import presets  # noqa: E402
from robust_saliency import attacks, data, models  # noqa: E402
from robust_saliency.attacks import verify  # noqa: E402

METHODS = attacks.PAPER


def _unshared(network):
    return tf.function(lambda x: network(x, training=False), autograph=False)


def _run(shared, image_size, x):
    """(CPU seconds, wall seconds, distances) of every attack on a new network."""
    keras.utils.set_random_seed(0)
    network = models.resnet50(input_shape=(image_size, image_size, 3), num_classes=10)
    options = presets.get("imagenet_smoke").attack_options
    cached = verify.logits_function
    if not shared:
        verify.logits_function = _unshared
    try:
        cpu, wall = time.process_time(), time.perf_counter()
        found = [attacks.minimal_distance(network, x, m, data.bounds("imagenet"),
                                          **options.get(m, {})) for m in METHODS]
        return time.process_time() - cpu, time.perf_counter() - wall, np.stack(found)
    finally:
        verify.logits_function = cached


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--image_size", type=int, default=32)
    parser.add_argument("--images", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    low, high = data.bounds("imagenet")
    x = np.random.default_rng(0).uniform(low / 2, high / 2, (args.images, args.image_size,
                                                             args.image_size, 3)).astype("float32")
    times = {False: [], True: []}
    distances = {}
    for rep in range(args.repeats):
        for shared in ((False, True) if rep % 2 == 0 else (True, False)):
            cpu, wall, distances[shared] = _run(shared, args.image_size, x)
            times[shared].append((cpu, wall))
    if not np.array_equal(distances[False], distances[True]):
        raise SystemExit(f"the variants found different distances: {distances}")
    base = np.median([c for c, _ in times[False]])
    rows = []
    for shared, name in ((False, "a forward function per attack (baseline)"),
                         (True, "shipped: one per network, shared")):
        cpu = [c for c, _ in times[shared]]
        wall = [w for _, w in times[shared]]
        rows.append([name, f"{np.median(cpu):.1f}", f"{min(cpu):.1f}-{max(cpu):.1f}",
                     f"{np.median(wall):.1f}", f"{base / np.median(cpu):.2f}x"])
    record(f"attack tracing: {', '.join(METHODS)} (imagenet_smoke settings) on a new ResNet50 "
           f"per run, {args.image_size}x{args.image_size}, {args.images} images, "
           f"{args.repeats} runs each", ["variant", "median CPU s", "min-max CPU s",
                                         "median wall s", "speed-up vs baseline"], rows,
           notes="Distances identical between the variants.")


if __name__ == "__main__":
    main()
