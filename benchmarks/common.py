"""Shared benchmark harness: repeat timing, the machine's description, and RESULTS.md rows.

Every benchmark compares against a baseline timed in the same process, because these machines
are noisy: the ratio is the result, the seconds are context.
"""

import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time

import numpy as np

from robust_saliency import environment
from robust_saliency.results import markdown_table

RESULTS = os.path.join(os.path.dirname(__file__), "RESULTS.md")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def time_call(fn, *, repeats=5, warmup=1):
    """Median, min and max wall seconds of `fn()` over `repeats` calls after `warmup` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return {"median": float(np.median(times)), "min": min(times), "max": max(times)}


def mnist_like(n, seed=0):
    """(images, labels): n uniform-random MNIST-shaped float32 images in [0, 1] and int64 labels
    0..9, drawn in that order from one seeded generator, so every benchmark sees the same data."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (n, 28, 28, 1)).astype("float32")
    return x, rng.integers(0, 10, n).astype("int64")


def tensor_batches(x, batch_size):
    """`x` cut into consecutive constant tensors of `batch_size` images (the last may be short)."""
    import tensorflow as tf

    return [tf.constant(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]


def peak_rss_mb():
    """This process's peak resident memory so far, in MB (Linux reports ru_maxrss in KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine():
    """One line naming the CPU, core count, its vector flags, the kernels (oneDNN on/off),
    Python and TensorFlow versions."""
    import tensorflow as tf

    cpu, _ = environment.cpu_info()
    kernels = {True: "oneDNN on", False: "oneDNN off"}.get(environment.onednn_kernels(),
                                                           "oneDNN unknown")
    if os.environ.get("ONEDNN_MAX_CPU_ISA"):  # oneDNN told to use a smaller vector unit
        kernels += f" limited to {os.environ['ONEDNN_MAX_CPU_ISA']}"
    return (f"{cpu}, {os.cpu_count()} cores ({cpu_flags()}), {kernels}, Python "
            f"{platform.python_version()}, TensorFlow {tf.__version__}")


def cpu_flags():
    """The vector-unit flags that decide TensorFlow's CPU kernels (oneDNN is its default only
    with AVX-512), e.g. 'avx2 fma avx512f'."""
    _, flags = environment.cpu_info()
    return " ".join(f for f in ("avx2", "fma", "avx512f") if f in flags) or "no avx2"


def forward_flops(network):
    """Multiply-adds x 2 of one image's forward pass through the Conv2D and Dense layers."""
    total = 0
    for layer in network.layers:
        kernel = getattr(layer, "kernel", None)
        if kernel is None:
            continue
        out = layer.output.shape
        positions = int(np.prod(out[1:-1])) if len(out) > 2 else 1
        total += 2 * positions * int(np.prod(kernel.shape))
    return total


def matmul_gflops(n=2048, repeats=5):
    """This machine's float32 matmul rate in GFLOP/s (an n x n product, median of `repeats`),
    the unit against which a benchmark reports the FLOP rate its stages reach."""
    import tensorflow as tf

    a = tf.random.normal([n, n])
    product = tf.function(lambda a: tf.matmul(a, a))
    product(a).numpy()
    t = time_call(lambda: product(a).numpy(), repeats=repeats)
    return 2 * n ** 3 / t["median"] / 1e9


def run_child(module, *args, env=None):
    """Runs `python -m <module> <args>` in a fresh process from the repository's root and returns
    the JSON of its last output line, the child's result; exits with the child's error output if
    it fails. A fresh process per measurement: no measurement inherits another's threads, devices
    or allocator."""
    command = [sys.executable, "-m", module, *args]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def git_revision():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True, cwd=os.path.dirname(__file__)).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def timing_cells(t):
    return [f"{t['median']:.4f}", f"{t['min']:.4f}-{t['max']:.4f}"]


def record(title, header, rows, notes=""):
    """Print the table and append it, dated and with the machine, to benchmarks/RESULTS.md."""
    table = markdown_table(header, rows)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    section = (f"\n### {title}\n{stamp}, {machine()}, git {git_revision()}\n\n{table}\n"
               + (f"\n{notes}\n" if notes else ""))
    print(section)
    with open(RESULTS, "a") as f:
        f.write(section)


def torch_double_backprop_step(net, opt, inputs, labels, *, penalty_scale, weight_decay):
    """One PyTorch eager step of the project's training loss, the reference the train-step
    benchmarks compare against: mean cross-entropy, plus per image `penalty_scale` times the
    squared norm of its own loss's input gradient (lambda / B^2: the batch-mean convention), plus
    `weight_decay` times the sum of squared weights."""
    import torch
    from torch import nn

    inputs = inputs.clone().requires_grad_(True)
    nll = nn.functional.cross_entropy(net(inputs), labels, reduction="none")
    (grad,) = torch.autograd.grad(nll.sum(), inputs, create_graph=True)
    penalty = penalty_scale * grad.pow(2).sum(dim=(1, 2, 3))
    decay = sum(p.pow(2).sum() for p in net.parameters())
    loss = (nll + penalty).mean() + weight_decay * decay
    opt.zero_grad()
    loss.backward()
    opt.step()
