"""One training step of ResNet-20 (models.resnet_cifar: 28x28x1 inputs, 10 classes, batch-norm
momentum 0.999) as the fashion_resnet preset trains it, in four forms:

  plain     RobustModel at lambda = 0 (the same step without the inner tape): the baseline;
  double    double backprop as shipped: runs.build_model of fashion_resnet's TrainConfig at
            lambda = 10 (batch-mean penalty, B fixed at 16 by the preset; SGD lr 1e-4, momentum
            0.99; weight decay 1e-4), batch 32;
  mirrored  the same under MirroredStrategy over two logical CPU devices, global batch 32 as
            2 x 16, kernels on one thread each (train_process.split_cpu_single_threaded), as
            `experiments.cohort --preset=fashion_resnet --strategy=mirrored --cpu_replicas=2`
            trains it;
  mirrored_pool  the mirrored form with TensorFlow's default intra-op pool (a thread per core),
            shared by the replicas' kernels: how the cohort trained before it trained apart
            (train_process's module doc); with --fit only;
  torch     PyTorch eager double backprop (autograd.grad(..., create_graph=True)) of the same
            network, optimiser, weight decay and penalty, when torch is importable.

    python -m benchmarks.resnet_step [--processes=5] [--steps=40] [--repeats=3] [--fit] [--quick]

Each measurement is a fresh process (`--child=<form>`): the mirrored form's logical devices are
fixed when TensorFlow starts, and no form inherits another's threads or allocator. A child warms
up (traces) Keras' compiled train function (what `fit` calls per batch), times `repeats` runs of
`steps` steps on one constant batch, waiting for each (train_step.step_seconds), and reports its
median seconds per step, wall and CPU (process_time, all threads). The parent launches the forms
in turn (plain, double, mirrored, torch, plain, ...), so that a slow phase of a shared machine
hits all alike, and records each process's median, their median, min and max; the ratios (of
the medians); the double-backprop FLOP rate against the float32 matmul rate
(common.matmul_gflops, measured once per round while no child runs). With --fit a child
instead times whole `fit` epochs of `steps` batches (after one warm-up epoch), fed as the cohort
feeds them (data.make_dataset, shuffled full batches; Keras splits each between the replicas),
PyTorch a loop over the same batches: what a training run pays per step beyond the step itself.

FLOPs: profile_train_step.step_flops, convolutions and Dense only: each layer's forward
multiply-adds x 2, times 6 passes (5 for the first layer, whose input gradient plain backprop
skips): the forward pass, the inner input gradient, the outer gradient through the forward
(weights and input) and through the inner gradient's ops (their filters and incoming
gradients). Batch norm, ReLU, padding and pooling are left out: the rate is a lower bound.

Goals: double / PyTorch below 1.0; double / plain at most 2.4.
PyTorch's OpenMP threads spin while they wait: on a machine other processes load, its step
slows many times over; OMP_WAIT_POLICY=PASSIVE avoids it (the notes record the setting).
--quick is a smoke run: 2 processes per form of 3 steps, 1 repeat, nothing written.
"""

import argparse
import importlib.util
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from benchmarks.common import (  # noqa: E402
    matmul_gflops,
    mnist_like,
    record,
    run_child,
    torch_double_backprop_step,
)
from benchmarks.profile_train_step import conv_macs, step_flops  # noqa: E402
from benchmarks.train_step import step_seconds  # noqa: E402

FORMS = {"plain": "plain step, lambda=0 (baseline)", "double": "double backprop as shipped",
         "mirrored": "double backprop, MirroredStrategy 2 x 16",
         "mirrored_pool": "the same, replicas sharing the default kernel pool",
         "torch": "PyTorch eager double backprop"}
BATCH, REPLICAS = 32, 2
# fashion_resnet's settings, written out for the PyTorch step; the TensorFlow children take them
# from the preset and check that they still agree.
LAM, PENALTY_BATCH, LR, MOMENTUM, WEIGHT_DECAY, BN_MOMENTUM = 10.0, 16, 1e-4, 0.99, 1e-4, 0.999


def timed(run, *, steps, repeats, warmup):
    """(wall, cpu) seconds per step of each repeat of `run(steps)`, after `run(warmup)`."""
    run(warmup)
    wall, cpu = [], []
    for _ in range(repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        run(steps)
        wall.append((time.perf_counter() - start) / steps)
        cpu.append((time.process_time() - cpu_start) / steps)
    return wall, cpu


def preset_config(form):
    """fashion_resnet's training configuration for `form` (lambda 0 for the plain step), from
    scratch; an error if its settings no longer match the ones the PyTorch step copies."""
    from experiments import presets

    config = presets.get("fashion_resnet").train.replace(
        model={"init_weights": None}, penalty={"lam": 0.0 if form == "plain" else LAM})
    settings = (config.batch_size, config.penalty.batch_size, config.optimizer.learning_rate,
                config.optimizer.momentum, config.optimizer.weight_decay)
    if settings != (BATCH, PENALTY_BATCH, LR, MOMENTUM, WEIGHT_DECAY):
        raise ValueError(f"fashion_resnet's settings changed to {settings}: update the "
                         "constants of benchmarks/resnet_step.py that the PyTorch step copies")
    return config


def tf_model(form):
    """The form's compiled RobustModel, built in its strategy's scope, with its train function."""
    from robust_saliency import distribute, train_process

    # Both before TensorFlow's first operation.
    if form == "mirrored":
        train_process.split_cpu_single_threaded(REPLICAS)
    elif form == "mirrored_pool":
        distribute.split_cpu(REPLICAS)
    import keras

    from robust_saliency import runs

    config = preset_config(form)
    keras.utils.set_random_seed(0)
    strategy = distribute.get_strategy("mirrored" if form.startswith("mirrored") else "default")
    with strategy.scope():
        model = runs.build_model(config)
    model.make_train_function()
    return model


def tf_step(form):
    """The form's compiled step: a function of one (images, labels) batch, as step_seconds calls
    it (the mirrored one splits the batch between its replicas as a distributed dataset does)."""
    model = tf_model(form)
    if not form.startswith("mirrored"):
        return lambda data: model.train_function([data])
    share, strategy = BATCH // REPLICAS, model.distribute_strategy

    def split(data):
        return strategy.experimental_distribute_values_from_function(
            lambda ctx: tuple(t[ctx.replica_id_in_sync_group * share:][:share] for t in data))

    return lambda data: model.train_function([split(data)])


def tf_fit_epoch(form, x, y):
    """One `fit` epoch of the form's model over (x, y), fed as the cohort feeds it
    (data.make_dataset: shuffled full batches of BATCH, split between the replicas by Keras)."""
    from robust_saliency import data

    model = tf_model(form)
    dataset = data.make_dataset(x, y, BATCH, shuffle=True, drop_remainder=True)
    return lambda: model.fit(dataset, epochs=1, verbose=0)


def torch_resnet20():
    """models.resnet_cifar(depth=20) in PyTorch: the same layers, strides, padding and option-A
    shortcuts (initialisation aside, which does not change the step's time)."""
    from torch import nn

    relu, pad = nn.functional.relu, nn.functional.pad

    class ConvBN(nn.Module):
        def __init__(self, c_in, c_out, stride=1):
            super().__init__()
            self.stride = stride
            self.conv = nn.Conv2d(c_in, c_out, 3, stride, padding=2 - stride, bias=False)
            self.bn = nn.BatchNorm2d(c_out, eps=1e-3, momentum=1 - BN_MOMENTUM)

        def forward(self, x):
            # TensorFlow's 'same' padding of a stride-2 3x3 convolution on an even size: one
            # row and column after the image, none before (PyTorch's padding is symmetric).
            return self.bn(self.conv(pad(x, (0, 1, 0, 1)) if self.stride == 2 else x))

    class Block(nn.Module):
        def __init__(self, c_in, c_out, stride):
            super().__init__()
            self.stride, self.extra = stride, c_out - c_in
            self.first, self.second = ConvBN(c_in, c_out, stride), ConvBN(c_out, c_out)

        def forward(self, x):
            shortcut = x if self.stride == 1 else pad(
                x[:, :, ::self.stride, ::self.stride], (0, 0, 0, 0, 0, self.extra))
            return relu(shortcut + self.second(relu(self.first(x))))

    blocks, c_in = [], 16
    for stage, filters in enumerate((16, 32, 64)):
        for block in range(3):
            blocks.append(Block(c_in, filters, 2 if stage > 0 and block == 0 else 1))
            c_in = filters
    return nn.Sequential(ConvBN(1, 16), nn.ReLU(), *blocks, nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(64, 10))


def torch_step(x, y):
    """PyTorch eager double-backprop step on batch i of x, as train_step.torch_step for
    small_net."""
    # triton, the GPU kernel compiler of PyPI's CUDA wheels, crashes this process when torch
    # probes for it (its LLVM beside TensorFlow's, which `import benchmarks` loads): hidden, as
    # an eager CPU step never uses it.
    sys.modules.setdefault("triton", None)
    import torch

    torch.set_num_threads(os.cpu_count())
    torch.manual_seed(0)
    net = torch_resnet20().train()
    opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM)
    images = torch.tensor(np.transpose(x, (0, 3, 1, 2)).copy()).split(BATCH)
    labels = torch.tensor(y).split(BATCH)

    def step(i=0):
        torch_double_backprop_step(net, opt, images[i], labels[i],
                                   penalty_scale=LAM / PENALTY_BATCH**2,
                                   weight_decay=WEIGHT_DECAY)

    return step


def child(form, args):
    """Times one form in this process and prints its result as one JSON line: seconds per step
    of `steps` calls on one batch or, with --fit, of `fit` epochs of `steps` batches."""
    if args.fit:
        x, y = mnist_like(BATCH * args.steps)
        if form == "torch":
            step = torch_step(x, y)
            epoch = lambda: [step(i) for i in range(args.steps)]  # noqa: E731
        else:
            epoch = tf_fit_epoch(form, x, y)
        wall, cpu = timed(lambda n: [epoch() for _ in range(n)], steps=1, repeats=args.repeats,
                          warmup=1)
        wall, cpu = np.divide(wall, args.steps), np.divide(cpu, args.steps)
    else:
        x, y = mnist_like(BATCH)
        step = torch_step(x, y) if form == "torch" else tf_step(form)

        def run(n):
            if form != "torch":
                return step_seconds(step, x, y, steps=n, repeats=1, warmup=0)
            for _ in range(n):
                step()

        wall, cpu = timed(run, steps=args.steps, repeats=args.repeats, warmup=args.warmup)
    print(json.dumps({"form": form, "wall": float(np.median(wall)), "cpu": float(np.median(cpu))}))


def launch(form, args):
    return run_child("benchmarks.resnet_step", f"--child={form}", f"--steps={args.steps}",
                     f"--repeats={args.repeats}", f"--warmup={args.warmup}",
                     *(["--fit"] if args.fit else []))


def goal(name, ratio, met, target):
    return f"{name} = {ratio:.2f} (goal {target}: {'met' if met else 'not met'})"


def report(results, gflops, args):
    from robust_saliency import models
    from robust_saliency.results import markdown_table

    wall = {form: [r["wall"] for r in rs] for form, rs in results.items()}
    mid = {form: float(np.median(t)) for form, t in wall.items()}
    rows = [[FORMS[form], ", ".join(f"{t * 1e3:.0f}" for t in times), f"{mid[form] * 1e3:.1f}",
             f"{min(times) * 1e3:.1f}-{max(times) * 1e3:.1f}",
             f"{np.median([r['cpu'] for r in results[form]]) * 1e3:.0f}",
             f"{mid[form] / mid['plain']:.2f}"] for form, times in wall.items()]
    ratio = mid["double"] / mid["plain"]
    notes = [goal("double backprop / plain", ratio, ratio <= 2.4, "<= 2.4"),
             f"mirrored / single-device double backprop = {mid['mirrored'] / mid['double']:.2f}"]
    if "mirrored_pool" in mid:
        notes.append("mirrored sharing the default pool / mirrored as shipped = "
                     f"{mid['mirrored_pool'] / mid['mirrored']:.2f}")
    if "torch" in mid:
        ratio = mid["double"] / mid["torch"]
        notes.append(goal("ours / PyTorch", ratio, ratio < 1.0, "< 1.0") + f" (PyTorch: "
                     f"{os.cpu_count()} threads, OMP_WAIT_POLICY "
                     f"{os.environ.get('OMP_WAIT_POLICY', 'unset')})")
    else:
        notes.append("PyTorch not importable: no PyTorch row")
    flops = step_flops(conv_macs(models.resnet_cifar(bn_momentum=BN_MOMENTUM), BATCH), True)
    peak = float(np.median(gflops))
    rates = ", ".join(f"{form} {flops / mid[form] / 1e9:.1f} GFLOP/s "
                      f"({flops / mid[form] / 1e9 / peak:.0%})" for form in ("double", "mirrored"))
    notes.append(f"double-backprop step {flops / 1e9:.2f} GFLOP (module docstring): {rates} of "
                 f"the float32 matmul rate {peak:.0f} GFLOP/s (median of "
                 + ", ".join(f"{g:.0f}" for g in gflops) + ", one per round)")
    timing = (f"one warm-up epoch, then the median of {args.repeats} `fit` epochs of "
              f"{args.steps} batches (PyTorch: a loop over the same batches)" if args.fit else
              f"{args.warmup} warm-up steps, then the median of {args.repeats} repeats of "
              f"{args.steps} steps")
    notes.append(f"each process: {timing}; CPU ms: median over processes of process_time per "
                 "step")
    title = (f"resnet_step{' in a fit epoch' if args.fit else ''}, ResNet-20 28x28x1, batch "
             f"{BATCH}, lambda={LAM:g}, {len(wall['plain'])} fresh processes per form, "
             "interleaved")
    header = ["step", "per-process medians ms", "median ms", "min-max ms", "CPU ms",
              "ratio to plain"]
    if args.quick:
        print(f"\n### {title} (--quick: not recorded)\n\n{markdown_table(header, rows)}\n\n"
              + "; ".join(notes))
    else:
        record(title, header, rows, notes="; ".join(notes))


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, default=5, help="fresh processes per form")
    for name, default in (("steps", 40), ("repeats", 3), ("warmup", 5)):
        parser.add_argument(f"--{name}", type=int, default=default)
    parser.add_argument("--fit", action="store_true",
                        help="time `fit` epochs of `steps` batches instead of single steps")
    parser.add_argument("--quick", action="store_true", help="smoke run; records nothing")
    parser.add_argument("--child", choices=tuple(FORMS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.processes, args.steps, args.repeats, args.warmup = 2, 3, 1, 2
    if args.child:
        return child(args.child, args)
    forms = [f for f in FORMS if (f != "torch" or importlib.util.find_spec("torch"))
             and (f != "mirrored_pool" or args.fit)]
    results, gflops = {form: [] for form in forms}, []
    for i in range(args.processes):
        for form in forms:
            results[form].append(launch(form, args))
            print(f"round {i + 1}/{args.processes}, {form}: "
                  f"{results[form][-1]['wall'] * 1e3:.1f} ms per step", flush=True)
        gflops.append(matmul_gflops())  # between rounds, while no child runs
    report(results, gflops, args)


if __name__ == "__main__":
    main()
