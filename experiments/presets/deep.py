"""The deep-network presets: the paper's ImageNet cohort and its CPU smoke test, and the paper's
ImageNet protocol on Fashion-MNIST (a ResNet-20 cohort and, as the controlled test of the
linearity conjecture, small_net under the very same protocol)."""

import dataclasses
import os

import numpy as np

from experiments.presets.base import ATTACKS, CONVERGED_ATTACKS, preset
from experiments.presets.mnist import mnist_converged
from robust_saliency.attacks import STRONG_OPTIONS
from robust_saliency.cohort import CohortSpec
from robust_saliency.train_config import TrainConfig

_IMAGENET_PAPER_TRAIN = TrainConfig.of(
    data={"dataset": "imagenet", "image_size": 256, "val_subset": 10_000},
    model={"name": "resnet50", "weights": "imagenet"}, batch_size=32, probe_size=16,
    schedule={"kind": "plateau", "epochs": 35},
    optimizer={"learning_rate": 1e-4, "momentum": 0.99, "weight_decay": 1e-4},
    penalty={"convention": "batch_mean", "batch_size": 16, "sensitivity_mode": "nll"})


@preset
def imagenet_paper():
    """The paper's ImageNet cohort: ResNet50 from Keras' ImageNet weights fine-tuned for 35 epochs,
    global batch 32 (the paper: 2 GPUs x 16; the penalty's batch-mean scale is fixed at B = 16 as in
    the authors' per-GPU code, so the lambdas mean the same on any number of GPUs), SGD lr 1e-4 with
    momentum 0.99 divided by 10 when the validation loss stops improving, weight decay 1e-4, batch-
    norm momentum 0.999, lambda = 10^4, 10^4.5, ..., 10^7 (7 models); 256x256 crops, caffe BGR
    preprocessing, attack box (-130, 155); 1,000 validation images measured.
    Command: python -m experiments.cohort --preset=imagenet_paper \
    --train.data.data_dir=/path/to/tfrecords --strategy=mirrored
    Cost: 35 epochs over 1.28M images with double backpropagation per model, on GPUs (the
    estimate: docs/imagenet.md); the linearized robustness needs 1,000 backward passes per image.
    Expected (paper, Fig. 2): median alignment rises steadily with median robustness; pointwise,
    alignment and linearized robustness are nearly uncorrelated (Fig. 4)."""
    return CohortSpec(
        name="imagenet_paper", train=_IMAGENET_PAPER_TRAIN,
        lambdas=tuple(float(f"{10 ** e:.6g}") for e in np.arange(4.0, 7.01, 0.5)),
        num_images=1000, attacks=ATTACKS, attack_options=STRONG_OPTIONS)


@preset(synthetic_data={"num_train": 64, "num_validation": 16, "num_classes": 10})
def imagenet_smoke():
    """The imagenet_paper code path end to end on CPU in minutes: the same ResNet50 (random weights,
    1000 logits), caffe preprocessing, TFRecord pipeline, chunked 1000-class measurements and
    attacks in the ImageNet box, on a synthetic ImageNet-shaped TFRecord set the preset writes
    itself (64 training and 16 validation JPEGs of 10 colour-coded classes), with 32x32 crops, 1
    epoch at lr 1e-6, lambdas 0.01 and 1, 4 measured images and cheap attack settings.
    Command: python -m experiments.cohort --preset=imagenet_smoke
    Expected: it runs; the numbers mean nothing."""
    return CohortSpec(
        name="imagenet_smoke",
        train=_IMAGENET_PAPER_TRAIN.replace(
            model={"weights": None}, data={"image_size": 32, "train_subset": 64, "val_subset": 16},
            schedule={"kind": "constant", "epochs": 1}, optimizer={"learning_rate": 1e-6},
            batch_size=8, penalty={"batch_size": 8}, probe_size=4),
        # A random-weight ResNet50 on caffe-scale inputs has huge input gradients: the paper's
        # lambdas (chosen for a pretrained net) and lr make it diverge at once.
        lambdas=(1e-2, 1.0), num_images=4, attacks=ATTACKS,
        attack_options={"cw": {"steps": 20, "binary_search_steps": 2},
                        "bim": {"steps": 3, "search_steps": 3, "initial_epsilon": 100.0},
                        "gradient": {"grid_size": 30, "refine_steps": 8},
                        "ddn": {"steps": 10}, "fmn": {"steps": 10}, "alma": {"steps": 10},
                        "fab": {"steps": 5, "candidates": 3}})



# --- The deep-network cohort: the paper's ImageNet protocol on Fashion-MNIST ----------------
# A lambda = 0 pretraining run per network (He et al.'s CIFAR recipe, shortened), then one
# fine-tuning cohort from its weights with the paper's ImageNet protocol: ResNet-20 (batch
# norm) and, as the controlled test of the linearity conjecture, small_net under the very same
# protocol. A fine-tuning preset finds its pretrained weights by convention, in the folder the
# pretraining preset's cohort writes (its init_weights, shown by --print_preset; override with
# --train.model.init_weights=PATH).


def _pretrained_run(preset_name, dataset="fashion_mnist"):
    """The run folder of the lambda = 0 member of preset `preset_name`'s cohort, where
    `python -m experiments.cohort --preset=<preset_name>` writes it by default."""
    return os.path.join("results", f"{preset_name}_{dataset}", "m00_lam0")


# He et al. (2016), Sec. 4.2: SGD with momentum 0.9, lr 0.1 divided by 10 at 50% and 75% of
# training (64,000 steps of batch 128: 164 epochs of 50,000 images), weight decay 1e-4; here 8
# epochs of the 50,000 training images, shortened to fit a CPU budget (the time it takes:
# results/fashion_resnet_fashion_mnist/README.md, Budget). Batch norm's
# momentum is theirs too (0.9: PyTorch's 0.1): at 0.999 the moving statistics trail weights moving
# at lr 0.1 by ~1,000 steps, and the network evaluated is not the one trained.
_FASHION_PRETRAIN_TRAIN = TrainConfig.of(
    data={"dataset": "fashion_mnist"}, model={"name": "resnet_cifar", "bn_momentum": 0.9},
    batch_size=128, probe_size=0,
    schedule={"kind": "milestones", "epochs": 8, "milestones": "4,6", "decay_factor": 0.1},
    optimizer={"learning_rate": 0.1, "momentum": 0.9, "weight_decay": 1e-4},
    penalty={"convention": "batch_mean", "batch_size": 128, "sensitivity_mode": "nll"})
# The paper's ImageNet protocol (_IMAGENET_PAPER_TRAIN: SGD lr 1e-4, momentum 0.99, x0.1 at
# each validation-loss plateau of 2 epochs, weight decay 1e-4, global batch 32, the batch-mean
# penalty at B = 16 per replica, batch-norm momentum 0.999) on Fashion-MNIST. Its 35 epochs of
# 1,562 steps do not fit a CPU budget (an epoch's time: results/fashion_resnet_fashion_mnist/
# README.md, Budget): capped at 4, whether the members stopped improving is read from their
# validation history.
_FASHION_FINETUNE_TRAIN = _IMAGENET_PAPER_TRAIN.replace(
    data={"dataset": "fashion_mnist", "image_size": None, "val_subset": None},
    model={"name": "resnet_cifar", "weights": None,
           "init_weights": _pretrained_run("fashion_resnet_pretrain")},
    schedule={"epochs": 4, "patience": 2, "max_decays": 2}, probe_size=100)
# Seven half-decade strengths per network, chosen by a pilot of one fine-tuning epoch on 20,000
# images (results/fashion_resnet_fashion_mnist/README.md) by one rule for both: the least
# regularised barely moves from the pretrained network, the most regularised keeps 0.9 of its
# accuracy (the cohort's degeneracy rule), robustness spans what lies between.
_RESNET_LAMBDAS = tuple(float(f"{10 ** e:.6g}") for e in np.arange(-3.0, 0.01, 0.5))
_SMALL_LAMBDAS = tuple(float(f"{10 ** e:.6g}") for e in np.arange(-1.0, 2.01, 0.5))


@preset
def fashion_resnet_pretrain():
    """ResNet-20 (models.resnet_cifar: He et al.'s CIFAR ResNet, batch norm with momentum 0.9 as
    theirs) trained without penalty (lambda = 0) on the 50,000 Fashion-MNIST training images:
    He et al.'s CIFAR recipe shortened to 8 epochs (SGD, momentum 0.9, batch 128, lr 0.1
    divided by 10 after epochs 4 and 6, i.e. at 50% and 75%, weight decay 1e-4); the
    "pretrained model" fashion_resnet fine-tunes. Measured afterwards on the first 1,000
    validation images (the metrics and the gradient attack only).
    Command: python -m experiments.cohort --preset=fashion_resnet_pretrain
    Results, cost: results/fashion_resnet_fashion_mnist/README.md."""
    return CohortSpec(name="fashion_resnet_pretrain", train=_FASHION_PRETRAIN_TRAIN,
                      lambdas=(0.0,), num_images=1000, attacks=("gradient",))


@preset
def fashion_resnet():
    """The paper's ImageNet protocol on Fashion-MNIST with a batch-normalised ResNet-20: every
    member fine-tunes fashion_resnet_pretrain's lambda = 0 network (init_weights: that cohort's
    m00_lam0 folder) with double backpropagation: SGD lr 1e-4, momentum 0.99, divided by 10
    when the validation loss (10,000 validation images) has not improved for 2 epochs, at most
    4 epochs (the paper: 35 of ImageNet), weight decay 1e-4, batch-norm momentum 0.999, global
    batch 32 as two replicas of 16 (MirroredStrategy over two logical CPU devices, or two
    GPUs), the batch-mean penalty at B = 16 per replica as the authors; 7 lambdas, 10^-3 ..
    10^0 in half decades (chosen by a pilot); the first 1,000 validation images measured with
    the attacks of the converged MNIST cohort (the paper's gradient, BIM and CW; DDN, FMN, FMN
    from DDN's points, ALMA and FAB for rho_best) and the explanation-quality metrics.
    Command: python -m experiments.cohort --preset=fashion_resnet_pretrain, then
    python -m experiments.cohort --preset=fashion_resnet --strategy=mirrored --cpu_replicas=2
    (a pretraining written elsewhere: add --train.model.init_weights=<its folder>/m00_lam0)
    Expected (paper, Figs. 2-4 on ImageNet): alignment rises with robustness; pointwise,
    alignment and linearized robustness are nearly uncorrelated in this deep network.
    Results, pilot, cost: results/fashion_resnet_fashion_mnist/README.md."""
    return CohortSpec(name="fashion_resnet", train=_FASHION_FINETUNE_TRAIN,
                      lambdas=_RESNET_LAMBDAS, num_images=1000, attacks=CONVERGED_ATTACKS,
                      attack_options=mnist_converged().attack_options, explanation_metrics=True)


@preset
def fashion_small_pretrain():
    """fashion_resnet_pretrain for small_net (the authors' MNIST network: no batch norm, max-
    pooling, dropout): the same data, epochs, batch, momentum, weight decay and milestones, at
    lr 0.05 (small_net's stable rate in mnist_quick/mnist_converged; 0.1 is He et al.'s for a
    batch-normalised network).
    Command: python -m experiments.cohort --preset=fashion_small_pretrain
    Results, cost: results/fashion_resnet_fashion_mnist/README.md."""
    return CohortSpec(name="fashion_small_pretrain",
                      train=_FASHION_PRETRAIN_TRAIN.replace(
                          model={"name": "small_net", "bn_momentum": None},
                          optimizer={"learning_rate": 0.05}),
                      lambdas=(0.0,), num_images=1000, attacks=("gradient",))


@preset
def fashion_small():
    """fashion_resnet's protocol with small_net, fine-tuned from fashion_small_pretrain's
    lambda = 0 network: the controlled test of the paper's linearity conjecture (the same data,
    training and measurements; only the network differs: shallow, no batch norm), its 7 lambdas
    10^-1 .. 10^2 in half decades, chosen by the same pilot and rule as fashion_resnet's.
    Command: python -m experiments.cohort --preset=fashion_small_pretrain, then
    python -m experiments.cohort --preset=fashion_small --strategy=mirrored --cpu_replicas=2
    Expected (the conjecture): alignment follows robustness more closely here than in
    fashion_resnet, as for the MNIST cohort.
    Results, pilot, cost: results/fashion_resnet_fashion_mnist/README.md."""
    spec = fashion_resnet()
    return dataclasses.replace(spec, name="fashion_small", lambdas=_SMALL_LAMBDAS,
                               train=spec.train.replace(model={
                                   "name": "small_net",
                                   "init_weights": _pretrained_run("fashion_small_pretrain")}))


# The same pipeline (pretraining, two fine-tunes from its weights, evaluation) on a few images,
# with ResNet-8 (n = 1), the shallowest of the family, whose kernels trace fastest (how much:
# benchmarks/RESULTS.md, measurements moved from the code).
_TINY = {"data.train_subset": 64, "data.val_subset": 32, "batch_size": 32,
         "schedule.epochs": 2, "probe_size": 0, "model.depth": 8}
_TINY_ATTACKS = ("gradient", "bim")
_TINY_OPTIONS = {"bim": {"steps": 3, "search_steps": 3},
                 "gradient": {"grid_size": 20, "refine_steps": 4}}


@preset
def fashion_resnet_tiny_pretrain():
    """fashion_resnet_pretrain's pipeline on 64 training images with ResNet-8 (depth 8): 2
    epochs of batch 32 (lr x0.1 after the first), 8 measured images, the gradient and BIM
    attacks at a few steps.
    Command: python -m experiments.cohort --preset=fashion_resnet_tiny_pretrain
    Expected: it runs in seconds; the numbers mean nothing."""
    return CohortSpec(name="fashion_resnet_tiny_pretrain", lambdas=(0.0,), num_images=8,
                      train=_FASHION_PRETRAIN_TRAIN.replace(
                          **_TINY, **{"schedule.milestones": "1", "penalty.batch_size": 32}),
                      attacks=_TINY_ATTACKS, attack_options=_TINY_OPTIONS)


@preset
def fashion_resnet_tiny():
    """fashion_resnet's pipeline on a few images: two ResNet-8 members (lambda 1 and 100)
    fine-tuned from fashion_resnet_tiny_pretrain's network for 2 epochs of 64 images (two
    replicas of 16
    under --strategy=mirrored --cpu_replicas=2), 8 measured images with the explanation
    metrics and the gradient and BIM attacks at a few steps.
    Command: python -m experiments.cohort --preset=fashion_resnet_tiny_pretrain, then
    python -m experiments.cohort --preset=fashion_resnet_tiny --strategy=mirrored --cpu_replicas=2
    Expected: it runs in seconds; the numbers mean nothing."""
    return CohortSpec(
        name="fashion_resnet_tiny", lambdas=(1.0, 100.0), num_images=8,
        train=_FASHION_FINETUNE_TRAIN.replace(
            **_TINY, **{"model.init_weights": _pretrained_run("fashion_resnet_tiny_pretrain")}),
        attacks=_TINY_ATTACKS, attack_options=_TINY_OPTIONS, explanation_metrics=True)
