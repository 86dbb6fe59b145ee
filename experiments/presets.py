"""Named experiment configurations: data with docstrings giving command, cost and expectation.

A preset is a training template (robust_saliency.runs.TrainConfig without lambda), the lambda
sweep of its cohort, and its evaluation protocol.
"""

import dataclasses
import os

import numpy as np

from robust_saliency.cohort import CohortSpec
from robust_saliency.runs import TrainConfig


@dataclasses.dataclass(frozen=True)
class Preset:
    name: str
    doc: str
    train: TrainConfig
    lambdas: tuple
    num_images: int = 1000
    attacks: tuple = ("gradient", "bim", "cw")
    attack_options: dict = dataclasses.field(default_factory=dict)
    # A synthetic ImageNet-shaped TFRecord set the preset writes itself when no data_dir is
    # given (keyword arguments of imagenet_synthetic.write_synthetic_set), or None.
    synthetic_data: dict | None = None

    def cohort_spec(self, *, lambdas=None, num_images=None, attacks=None, attack_options=None,
                    **train_overrides):
        """The CohortSpec of this preset, with any field overridden."""
        return CohortSpec(
            name=self.name, train=dataclasses.replace(self.train, **train_overrides),
            lambdas=tuple(lambdas or self.lambdas), num_images=num_images or self.num_images,
            attacks=tuple(attacks or self.attacks),
            attack_options=self.attack_options if attack_options is None else attack_options)

    def describe(self):
        lines = [f"preset {self.name}", "", self.doc.strip(), "",
                 "lambdas: " + ", ".join(f"{lam:g}" for lam in self.lambdas),
                 f"num_images: {self.num_images}", f"attacks: {', '.join(self.attacks)}",
                 f"attack_options: {self.attack_options}", "train:"]
        lines += [f"  {k} = {v!r}" for k, v in dataclasses.asdict(self.train).items()]
        return "\n".join(lines)


_MNIST_PAPER_TRAIN = TrainConfig(
    dataset="mnist", model="small_net", epochs=200, batch_size=100, learning_rate=1e-3,
    momentum=0.9, lr_schedule="step", lr_decay_epochs=80, lr_decay_factor=0.1,
    weight_decay=1e-6, penalty_convention="batch_mean", sensitivity_mode="nll")

PRESETS = {
    "mnist_paper": Preset(
        name="mnist_paper",
        doc="""
The paper's MNIST cohort: 16 small_nets, lambda log-spaced from 10 to 180,000 (the authors'
batch-mean convention at B = 100), 200 epochs of SGD (lr 1e-3, momentum 0.9, x0.1 every 80
epochs), weight decay 1e-6, measured on the first 1,000 validation images with the gradient,
BIM and CW attacks.
Command: python -m experiments.cohort --preset=mnist_paper
Cost: 200 epochs x 16 models; on one modern GPU roughly 1-2 minutes per epoch with the penalty,
so days in all (not practical on a 2-core CPU).
Expected (paper, Fig. 3): median alignment rises with median robustness, saturating for the
most robust models; the models degenerate beyond lambda = 180,000.""",
        train=_MNIST_PAPER_TRAIN,
        lambdas=tuple(float(f"{v:.4g}") for v in np.geomspace(10, 180_000, 16))),
    "mnist_quick": Preset(
        name="mnist_quick",
        doc="""
The paper's protocol shrunk to minutes on 2 CPU cores. Same network, optimizer family, penalty
convention and lambda range (10 .. 180,000, batch-mean convention at B = 100); shrunk: 5 lambdas
instead of 16, 10,000 training images instead of 50,000, 3 epochs instead of 200 with a constant
learning rate of 1e-2 (the paper's 1e-3 barely moves in 3 epochs), validation loss on 1,000
images, 200 measured images instead of 1,000, and a cheaper CW (100 steps of size 0.05 per
binary-search step instead of 500 of size 0.01: 5x faster, slightly larger distances).
Command: python -m experiments.cohort --preset=mnist_quick --dataset=fashion_mnist
Expected: the same qualitative trend as the paper (alignment and robustness rise with lambda);
absolute numbers are those of briefly trained models.""",
        train=dataclasses.replace(_MNIST_PAPER_TRAIN, epochs=3, learning_rate=1e-2,
                                  lr_schedule="constant", train_subset=10_000,
                                  val_subset=1_000),
        lambdas=(10.0, 150.0, 2_000.0, 20_000.0, 180_000.0),
        num_images=200,
        attack_options={"cw": {"steps": 100, "stepsize": 0.05}}),
}


_IMAGENET_PAPER_TRAIN = TrainConfig(
    dataset="imagenet", model="resnet50", weights="imagenet", image_size=256, epochs=35,
    batch_size=32, penalty_batch_size=16, learning_rate=1e-4, momentum=0.99,
    lr_schedule="plateau", weight_decay=1e-4, penalty_convention="batch_mean",
    sensitivity_mode="nll", val_subset=10_000, probe_size=16)

PRESETS["imagenet_paper"] = Preset(
    name="imagenet_paper",
    doc="""
The paper's ImageNet cohort: ResNet50 from Keras' ImageNet weights fine-tuned for 35 epochs,
global batch 32 (the paper: 2 GPUs x 16; the penalty's batch-mean scale is fixed at B = 16 as in
the authors' per-GPU code, so the lambdas mean the same on any number of GPUs), SGD lr 1e-4 with
momentum 0.99 divided by 10 when the validation loss stops improving, weight decay 1e-4, batch-
norm momentum 0.999, lambda = 10^4, 10^4.5, ..., 10^7 (7 models); 256x256 crops, caffe BGR
preprocessing, attack box (-130, 155); 1,000 validation images measured.
Command: python -m experiments.cohort --preset=imagenet_paper --data_dir=/path/to/tfrecords \
    --strategy=mirrored
Cost: 35 epochs over 1.28M images with double backpropagation per model: days per model on two
GPUs of the paper's generation; the linearized robustness needs 1,000 backward passes per image.
Expected (paper, Fig. 2): median alignment rises steadily with median robustness; pointwise,
alignment and linearized robustness are nearly uncorrelated (Fig. 4).""",
    train=_IMAGENET_PAPER_TRAIN,
    lambdas=tuple(float(f"{10 ** e:.6g}") for e in np.arange(4.0, 7.01, 0.5)),
    num_images=1000)

PRESETS["imagenet_smoke"] = Preset(
    name="imagenet_smoke",
    doc="""
The imagenet_paper code path end to end on CPU in minutes: the same ResNet50 (random weights,
1000 logits), caffe preprocessing, TFRecord pipeline, chunked 1000-class measurements and
attacks in the ImageNet box, on a synthetic ImageNet-shaped TFRecord set the preset writes
itself (64 training and 16 validation JPEGs of 10 colour-coded classes), with 32x32 crops,
1 epoch at lr 1e-6, lambdas 0.01 and 1, 4 measured images and cheap attack settings.
Command: python -m experiments.cohort --preset=imagenet_smoke
Expected: it runs; the numbers mean nothing.""",
    train=dataclasses.replace(_IMAGENET_PAPER_TRAIN, weights=None, image_size=32, epochs=1,
                              batch_size=8, penalty_batch_size=None, lr_schedule="constant",
                              learning_rate=1e-6, train_subset=64, val_subset=16,
                              probe_size=4),
    # A random-weight ResNet50 on caffe-scale inputs has huge input gradients: the paper's
    # lambdas (chosen for a pretrained net) and lr make it diverge at once.
    lambdas=(1e-2, 1.0),
    num_images=4,
    attack_options={"cw": {"steps": 20, "binary_search_steps": 2},
                    "bim": {"steps": 3, "search_steps": 3, "initial_epsilon": 100.0},
                    "gradient": {"grid_size": 30, "refine_steps": 8}},
    synthetic_data={"num_train": 64, "num_validation": 16, "num_classes": 10})


def with_data(preset, config, folder):
    """`config` with its data_dir set to `folder`, writing the preset's synthetic TFRecord set
    there first if the preset has one and the folder lacks it. Other configs are returned as
    they are."""
    if preset.synthetic_data is None or config.data_dir is not None:
        return config
    from robust_saliency.imagenet_synthetic import write_synthetic_set

    write_synthetic_set(folder, **preset.synthetic_data)
    return dataclasses.replace(config, data_dir=os.path.abspath(folder))


def get(name):
    """The preset registered under `name`."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; valid: {', '.join(sorted(PRESETS))}")
    return PRESETS[name]
