"""Named experiment configurations: data with docstrings giving command, cost and expectation.

A preset is a training template (robust_saliency.runs.TrainConfig without lambda), the lambda
sweep of its cohort, and its evaluation protocol.
"""

import dataclasses

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


def get(name):
    """The preset registered under `name`."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; valid: {', '.join(sorted(PRESETS))}")
    return PRESETS[name]
