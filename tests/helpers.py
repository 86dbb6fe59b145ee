"""Plain helpers that several test files share: reference computations (exact distances of
affine classifiers, closed-form gradients, the bias terms of Theorem 1), small models and
hand-made results. Not a test file (pytest collects test_*.py only) and not a conftest: these
are functions called with arguments, some at import time (module constants, parametrize) or
inside module- and session-scoped fixtures, so a test file imports them from here
(`from helpers import ...`); fixtures live in conftest.py. No test file imports another."""

import os

import keras
import numpy as np
import tensorflow as tf

from robust_saliency import models, results


def randomize_biases(model, rng, scale=0.1):
    """Give every bias, BN beta/gamma and BN moving statistic a random value.

    Keras initialises biases and BN statistics to 0/1, which would make the bias terms of
    Theorem 1 vanish trivially; the theory tests need them non-zero.
    """
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.moving_mean.shape
            layer.moving_mean.assign(rng.normal(0, scale, n))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, n))
            layer.beta.assign(rng.normal(0, scale, n))
            layer.gamma.assign(rng.uniform(0.5, 1.5, n))
        elif getattr(layer, "bias", None) is not None:
            layer.bias.assign(rng.normal(0, scale, layer.bias.shape))
    return model


def tiny_cohort_spec(lambdas=(1.0, 1000.0)):
    """Two synthetic members trained one epoch, measured on 12 images with cheap attacks."""
    from robust_saliency import cohort, runs

    # No per-epoch probe: the cohort tests measure after training; the train command's test
    # checks the probe.
    train = runs.TrainConfig.of(
        data={"dataset": "synthetic", "train_subset": 300, "val_subset": 100},
        schedule={"epochs": 1, "kind": "constant"},
        optimizer={"learning_rate": 1e-2}, batch_size=50, probe_size=0)
    return cohort.CohortSpec(name="tiny", train=train, lambdas=lambdas, num_images=12,
                             attacks=("gradient", "bim", "cw"),
                             attack_options={"cw": {"steps": 20, "binary_search_steps": 2},
                                             "bim": {"steps": 3, "search_steps": 3}})


def assert_exact_inside_box(found, adversarials, exact, low=0.0, high=1.0):
    """An attack's verified distances on an affine classifier against the exact ones: never
    below (that would be a verification bug), within 1e-4 relative above, every point in the
    box."""
    ratio = found / exact
    assert np.all(ratio >= 1 - 1e-9), "below the exact distance: a verification bug"
    assert np.all(ratio - 1 <= 1e-4)
    assert adversarials.min() >= low and adversarials.max() <= high


def linear_weights(model):
    layer = model.get_layer("logits")
    w = np.asarray(layer.kernel)  # (D, n)
    b = np.asarray(layer.bias) if layer.use_bias else np.zeros(w.shape[1])
    return w, b


def exact_linear_distance(x, w, b, dual_ord=2):
    """Distance to the decision boundary of argmax(W x + b), in closed form: L2 by default,
    L-infinity with dual_ord=1 (Hoelder: the margin over the dual norm of the weight gap)."""
    xf = x.reshape(len(x), -1)
    scores = xf @ w + b
    pred = scores.argmax(1)
    dist = np.full(len(x), np.inf)
    for j in range(w.shape[1]):
        dw = w[:, pred] - w[:, [j]]
        margin = scores[np.arange(len(x)), pred] - scores[:, j]
        with np.errstate(divide="ignore", invalid="ignore"):  # j == pred, masked below
            d = margin / np.linalg.norm(dw, ord=dual_ord, axis=0)
        dist = np.where(pred == j, dist, np.minimum(dist, d))
    return dist


def bias_variables(model):
    """Every additive parameter: Dense/Conv biases, BN beta and BN moving mean."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            found += [layer.beta, layer.moving_mean]
        elif getattr(layer, "bias", None) is not None:
            found.append(layer.bias)
    return [v.value for v in found]


def sum_of_bias_terms(model, x, classes=None):
    """sum_k b_k dPsi^i/db_k per image and class i (all, or `classes`), by differentiating
    w.r.t. the biases."""
    biases = bias_variables(model)
    assert biases, "model has no bias terms"
    classes = list(range(model.output_shape[-1])) if classes is None else list(classes)
    out = np.zeros((len(x), len(classes)))
    for b in range(len(x)):
        with tf.GradientTape(persistent=True) as tape:
            for v in biases:
                tape.watch(v)
            scores = tf.unstack(tf.gather(model(x[b:b + 1], training=False)[0], classes))
        for i, score in enumerate(scores):
            grads = tape.gradient(score, biases)
            out[b, i] = sum(float(tf.reduce_sum(v * g)) for v, g in zip(biases, grads))
        del tape
    return out


def exact_box_distance(x, w, b, low, high):
    """L2 distance to the decision boundary of argmax(W x + b) inside the box [low, high]: per
    other class j the smallest ||e|| with (w_j - w_y) . e >= margin_j and x + e in the box is
    e = clip(t a, low - x, high - x) for the t >= 0 that meets the margin (KKT), found by
    bisection in float64; the distance is the smallest over j."""
    xf = x.reshape(len(x), -1)
    scores = xf @ w + b
    pred = scores.argmax(1)
    out = np.full(len(x), np.inf)
    for i in range(len(x)):
        lo, hi = low - xf[i], high - xf[i]
        for j in range(w.shape[1]):
            if j == pred[i]:
                continue
            a, margin = w[:, j] - w[:, pred[i]], scores[i, pred[i]] - scores[i, j]

            def reach(t, a=a, lo=lo, hi=hi):
                return a @ np.clip(t * a, lo, hi)

            if reach(1e12) < margin:
                continue  # the box does not reach this boundary
            t0, t1 = 0.0, 1.0
            while reach(t1) < margin:
                t1 *= 2
            for _ in range(200):
                t = 0.5 * (t0 + t1)
                t0, t1 = (t, t1) if reach(t) < margin else (t0, t)
            out[i] = min(out[i], np.linalg.norm(np.clip(t1 * a, lo, hi)))
    return out


def box_case(num_classes, seed=3, n=24):
    """A float64 affine classifier and MNIST-like images (60% of the pixels at the low bound),
    so that the nearest boundary point leaves the box for every image."""
    rng = np.random.default_rng(seed)
    keras.utils.set_random_seed(seed)
    model = randomize_biases(models.linear_classifier(num_classes=num_classes, dtype="float64"),
                             rng, scale=0.5)
    x = rng.uniform(0, 1, (n, 28, 28, 1))
    x[rng.uniform(size=x.shape) < 0.6] = 0.0
    w, b = linear_weights(model)
    return model, x, exact_box_distance(x, w, b, 0.0, 1.0), exact_linear_distance(x, w, b)


def random_float64_net(n=7):
    """An untrained float64 small_net with random biases, n uniform images and its own labels:
    the compiled-against-eager tests compare two code paths on it to float64 precision."""
    keras.utils.set_random_seed(0)
    net = models.small_net(dtype="float64")
    randomize_biases(net, np.random.default_rng(0))
    x = np.random.default_rng(1).uniform(0, 1, (n, 28, 28, 1))
    return net, x, np.argmax(net(x), axis=1).astype(np.int32)


def linear_setup(seed=7, num_classes=10, dual_ord=2):
    """(model, images, exact distances) of a random affine classifier; dual_ord=1 gives the
    L-infinity distances (see exact_linear_distance)."""
    rng = np.random.default_rng(seed)
    keras.utils.set_random_seed(seed)
    model = randomize_biases(models.linear_classifier(num_classes=num_classes), rng, scale=0.5)
    # Pixels well inside (0, 1), so the nearest boundary point stays in the box.
    x = rng.uniform(0.3, 0.7, (24, 28, 28, 1)).astype("float32")
    w, b = linear_weights(model)
    exact = exact_linear_distance(x.astype(np.float64), w.astype(np.float64), b, dual_ord)
    return model, x, exact


def cohort_member(rng, n, *, scale, correlated, linear_share=None):
    """Hand-made per-image results whose median rho_tilde is about `scale`; the share of
    alignment_bin in (18) falls from 0.82 (scale 1) to 0.53 (scale 4), the shares in (19) and
    (20) are constant (0.4, 0.25), and M|<x, g_dagger>| / M|Psi_dagger| is `linear_share`
    (default 1 / scale)."""
    lin = rng.uniform(0.5, 1.5, n) * scale
    noise = rng.normal(0, 0.05 * scale, n)
    share = 1 / scale if linear_share is None else linear_share
    return {
        "index": np.arange(n), "label": np.zeros(n, int), "correct": np.ones(n, int),
        "lin_robustness": lin,
        "alignment": lin * 2 + noise if correlated else rng.uniform(0, 3 * scale, n),
        "alignment_bin": lin * 0.9, "bias_term": lin * 0.2 * scale,
        "alignment_xi": lin,
        "bound14": lin * 0.9 + lin * 0.2 * scale, "bound15": lin * 5, "bound16": lin * 4,
        "bound16_printed": lin * 0.5,  # below rho_tilde: the printed form fails here
        "x_term_bin": lin * share, "b_term_bin": lin * (1 - share), "psi_bin": lin,
        "grad_bin_norm": np.ones(n),
        # <x, g_bar> of either sign, centred: M[alpha] is its dispersion (the ImageNet reading).
        "x_term_pred": np.resize([1.0, -1.0], n) * np.repeat(lin[::2], 2)[:n],
        "grad_pred_norm": np.full(n, 2.0),
        "rho_cw": lin * 1.1, "rho_bim": lin * 1.2, "rho_gradient": lin * 1.5,
    }


def write_hand_cohort(folder, members, dataset="fashion_mnist", alignment=None, accuracy=None,
                      model="small_net"):
    """A cohort folder of `members`; `alignment` replaces their median alignments, `accuracy`
    their accuracies (default 0.9 each)."""
    rows = {"member": [], "lam": [], "seed": [], "status": [], "run_dir": [], "accuracy": [],
            "num_images": []}
    medians = {}
    for i, m in enumerate(members):
        run_dir = f"m{i:02d}"
        results.write_table(os.path.join(folder, run_dir, results.PER_IMAGE_CSV), m)
        rows["member"].append(i)
        rows["lam"].append(10.0 ** i)
        rows["seed"].append(0)
        rows["status"].append("evaluated")
        rows["run_dir"].append(run_dir)
        rows["accuracy"].append(0.9 if accuracy is None else accuracy[i])
        rows["num_images"].append(len(m["label"]))
        for key in ("alignment", "lin_robustness", "rho_cw", "rho_bim", "rho_gradient"):
            medians.setdefault("median_" + key, []).append(np.median(m[key]))
    if alignment is not None:
        medians["median_alignment"] = list(alignment)
    results.write_table(os.path.join(folder, results.COHORT_CSV), {**rows, **medians})
    write_cohort_json(folder, "hand", rows["lam"], dataset=dataset, model=model)


def write_cohort_json(folder, name, lambdas, *, dataset="mnist", model="small_net"):
    """A cohort.json of the current layout for a cohort a test writes by hand: its name,
    lambdas, and a training template of that dataset and network."""
    from robust_saliency import runs

    train = runs.TrainConfig.of(data={"dataset": dataset}, model={"name": model})
    results.write_json(os.path.join(folder, results.COHORT_JSON),
                       {results.SCHEMA_KEY: results.SCHEMA_VERSION, "name": name,
                        "train": train.to_json(), "lambdas": list(lambdas)})


def numpy_softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def closed_form_gradients(w, b, x, y, lam, convention, mode, weight_decay):
    """dL/dW, dL/db of mean NLL + lam * penalty + wd ||theta||^2 for Psi = W^T x + b."""
    batch, n = len(x), w.shape[1]
    c = lam / batch**2 if convention == "batch_mean" else lam
    z = x @ w + b
    p = numpy_softmax(z)
    r = p - np.eye(n)[y]  # dNLL/dz
    gw = x.T @ r / batch + 2 * weight_decay * w
    gb = r.mean(axis=0) + 2 * weight_decay * b
    if mode == "nll":
        # P_i = c ||W r_i||^2 with r_i = softmax(z_i) - e_y, z_i = W^T x_i + b.
        for i in range(batch):
            wr = w @ r[i]
            u = 2 * c * (w.T @ wr)                                  # dP/dr
            v = (np.diag(p[i]) - np.outer(p[i], p[i])) @ u          # dP/dz
            gw += (2 * c * np.outer(wr, r[i]) + np.outer(x[i], v)) / batch
            gb += v / batch
    else:
        # P_i = c ||W e_y||^2 = c ||w_y||^2, independent of x and b.
        for i in range(batch):
            gw[:, y[i]] += 2 * c * w[:, y[i]] / batch
    return gw, gb


# --- Result folders of the oldest layout, for the upgrade's tests ---------------------------


def upgradable_spec():
    """The tiny cohort with the authors' penalty scale, as older folders held it."""
    import dataclasses

    spec = tiny_cohort_spec()
    # The authors' scale at B = the whole batch of one replica: what a flat folder meant.
    train = spec.train.replace(penalty={"convention": "batch_mean", "batch_size": 50})
    return dataclasses.replace(spec, train=train)


def flat_layout(config_json, *, drop=("penalty.convention", "penalty.batch_size",
                                "penalty.sensitivity_mode")):
    """The flat layout of a nested config, without the fields flat files predate."""
    from robust_saliency import upgrade

    flat_of = {dotted: flat for flat, dotted in upgrade.FLAT_TRAIN_CONFIG.items()}
    flat = {}
    for part, value in config_json.items():
        for leaf, leaf_value in (value.items() if isinstance(value, dict) else [(None, value)]):
            dotted = f"{part}.{leaf}" if leaf else part
            if dotted not in drop:
                flat[flat_of[dotted]] = leaf_value
    return flat


def write_current_cohort(folder):
    """A cohort folder of one member as the current code writes it (cohort.json, run.json,
    per_image.csv, summary.json)."""
    from robust_saliency import cohort, table_summary

    spec = upgradable_spec()
    member = cohort.member_dir(folder, 0, spec.lambdas[0])
    config = spec.train.replace(penalty={"lam": spec.lambdas[0]})
    results.write_json(os.path.join(folder, results.COHORT_JSON),
                       {**spec.to_json(), "data": None})
    results.write_json(os.path.join(member, results.RUN_JSON),
                       {results.SCHEMA_KEY: results.SCHEMA_VERSION, "config": config.to_json(),
                        "status": "completed", "strategy": "default", "replicas": 1})
    rng = np.random.default_rng(0)
    table = {"index": np.arange(30), "label": rng.integers(0, 10, 30),
             "correct": np.ones(30, int),
             "alignment": rng.uniform(1, 2, 30), "lin_robustness": rng.uniform(0, 1, 30)}
    results.write_table(os.path.join(member, results.PER_IMAGE_CSV), table)
    summary = {"num_images": 30, "accuracy": 1.0, "attacks": []}
    results.write_json(os.path.join(member, results.SUMMARY_JSON),
                       {**summary, **table_summary.summarize(table, meta=summary)})
    return spec, member


def downgrade_to_oldest_layout(folder, member):
    """The same folder in the oldest layout: flat configs, no version, no cohort fields added
    since, no bootstrap intervals, no seed or degenerate column."""
    from robust_saliency import upgrade

    path = os.path.join(folder, results.COHORT_JSON)
    saved = results.read_json(path)
    old = {k: v for k, v in saved.items()
           if k not in (results.SCHEMA_KEY, *upgrade.COHORT_FIELDS_ADDED)}
    results.write_json(path, {**old, "train": flat_layout(saved["train"])})
    path = os.path.join(member, results.RUN_JSON)
    record = results.read_json(path)
    del record[results.SCHEMA_KEY], record["replicas"]
    results.write_json(path, {**record, "config": flat_layout(record["config"])})
    path = os.path.join(member, results.SUMMARY_JSON)
    summary = results.read_json(path)
    del summary["median_intervals"]
    results.write_json(path, summary)
    path = os.path.join(folder, results.COHORT_CSV)
    table = results.read_table(path)
    results.write_table(path, {k: v for k, v in table.items() if k not in ("seed", "degenerate")})


def file_bytes(folder):
    """{path relative to `folder`: bytes} of every file under it."""
    found = {}
    for root, _, names in os.walk(folder):
        for name in names:
            with open(os.path.join(root, name), "rb") as f:
                found[os.path.relpath(os.path.join(root, name), folder)] = f.read()
    return found


# Tiny MNIST-format IDX folders (tests of robust_saliency.data and data_sources).

NUM_FAKE_TRAIN = 60
NUM_FAKE_TEST = 12


def fake_images(n, offset):
    """n uint8 28x28 images; image i is filled with offset + i, so content names the image."""
    return np.repeat(np.arange(offset, offset + n, dtype=np.uint8), 28 * 28).reshape(n, 28, 28)


def fake_labels(n, offset):
    return ((np.arange(n) + offset) % 10).astype(np.uint8)


def write_fake_idx_folder(folder, suffix=".gz"):
    """Writes the four standard IDX files (NUM_FAKE_TRAIN train, NUM_FAKE_TEST test images)."""
    from robust_saliency import data_sources, idx

    folder.mkdir(parents=True, exist_ok=True)
    for split, n, offset in (("train", NUM_FAKE_TRAIN, 0), ("test", NUM_FAKE_TEST, 100)):
        images_name, labels_name = data_sources.IDX_FILES[split]
        idx.write_idx(folder / (images_name + suffix), fake_images(n, offset))
        idx.write_idx(folder / (labels_name + suffix), fake_labels(n, offset))
    return folder


# Tiny ImageNet-layout shards of solid colours (tests of imagenet and imagenet_records).

# Distinct solid colours; red first, so channel order is visible.
SOLID_COLOURS = [(255, 0, 0), (0, 200, 0), (30, 60, 240), (200, 120, 40), (90, 90, 90)]
SOLID_SIZES = [(40, 60), (70, 50), (50, 50), (45, 80), (64, 48)]


def solid_image(colour, size):
    """A uint8 RGB image of `size` (H, W) filled with `colour`."""
    return np.broadcast_to(np.array(colour, np.uint8), size + (3,)).copy()


def jpeg_of_solid(colour=(10, 20, 30), size=(4, 6)):
    return tf.io.encode_jpeg(solid_image(colour, size), quality=95).numpy()


def write_solid_shards(folder, split, labels, num_shards=2):
    """Writes image i in SOLID_COLOURS[i] and SOLID_SIZES[i] with labels[i]; the shard paths."""
    from robust_saliency import imagenet_records

    images = [solid_image(SOLID_COLOURS[i], SOLID_SIZES[i]) for i in range(len(labels))]
    return imagenet_records.write_tfrecords(folder, split, images, labels, num_shards=num_shards)
