"""Tightness and cost of every L2 attack, and of rho_best, against a 10x reference made in the
same run.

    python -m benchmarks.attack_tightness --run_dirs=DIR[,DIR...] [--images=200] [--preset=NAME]
        [--also='NAME:JSON;...']

Each DIR is a trained member (run.json with model.keras or its committed weights file). Per
model, every attack runs at the settings of --preset on the first validation images; rho_best
is their per-image minimum.
The baseline is the paper's three as first measured (BIM and CW through Foolbox), timed in the
same run:
the cost target is the whole shipped stage (the paper's three plus the strong ones) against it.
The reference is the per-image minimum of the same strong attacks at 10x the steps, FMN once
more started from DDN's 10x points (attacks.DDNFMN's restart at 10x its steps), and every
cheaper result. Reported per attack:
seconds, images per second, the FLOP rate of the compiled loops (forward + input-gradient
passes, counted as two forward passes of the network, against the matmul rate timed in the same
run), and the median and 90th percentile of distance / reference over the images where
both are finite and non-zero, with the share more than 5% above. `--also` adds rows for other
settings (e.g. DDN's margin form) against the same reference, in neither the stage nor rho_best.
"""

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from benchmarks.common import forward_flops, matmul_gflops, record  # noqa: E402
from experiments import presets  # noqa: E402
from robust_saliency import attacks, evaluation, results, runs  # noqa: E402
from robust_saliency.attacks import engine  # noqa: E402


def settings(preset):
    """(attack, options) for every attack as `preset` runs it."""
    p = presets.get(preset)
    return tuple((name, p.attack_options.get(name, {})) for name in p.attacks)


REFERENCE_FACTOR = 10


class _FoolboxCW(attacks.CW):
    """The paper's CW as first measured, through Foolbox: the baseline the compiled one
    replaces."""

    def run(self, attacker, x, labels):
        return attacker.cw(x, labels, **self.options)


class _FoolboxBIM(attacks.BIM):
    """The paper's BIM as first measured, through Foolbox (every image run at every epsilon of
    the search): the baseline the compiled one replaces."""

    def run(self, attacker, x, labels):
        return attacker.bim(x, labels, **self.options)


def run_attack(model, x, name, options, attack=None):
    attack = attack or attacks.get(name, **options)
    start = time.perf_counter()
    dist, points = engine.find_adversarials(model, x, attack, (0.0, 1.0))
    return dist, points, time.perf_counter() - start, attack.image_steps


def ratios(dist, reference):
    ok = np.isfinite(dist) & np.isfinite(reference) & (reference > 0)
    r = dist[ok] / reference[ok]
    return np.median(r), np.percentile(r, 90), np.mean(r > 1.05), int((~ok).sum())


def measure(run_dir, num_images, gflops, chosen, also=()):
    record_ = results.read_json(os.path.join(run_dir, results.RUN_JSON))
    model = runs.load_model(run_dir)
    x, _ = evaluation.validation_arrays(record_["config"], num_images)
    # One attack step: a forward pass and the gradient with respect to the input only (no
    # weight gradients), which for these layers costs about one more forward pass.
    flops = 2 * forward_flops(model.network)
    found, rows, seconds = {}, [], {}
    for name, options in chosen:
        dist, points, sec, steps = run_attack(model, x, name, options)
        found[name], seconds[name] = (dist, points), sec
        rows.append((name, options, sec, steps))
    # Other settings measured against the same reference, outside the shipped stage and rho_best.
    extra = []
    for name, options in also:
        dist, _, sec, _ = run_attack(model, x, name, options)
        extra.append((name, options, dist, sec))
    foolbox, foolbox_seconds = {}, {}
    for name, kind in (("bim", _FoolboxBIM), ("cw", _FoolboxCW)):
        options = dict(chosen)[name]
        foolbox[name], _, foolbox_seconds[name], _ = run_attack(model, x, name, options,
                                                                kind(**options))
    best = np.min(np.stack([d for d, _ in found.values()]), axis=0)
    reference = [best]
    ref_seconds = 0.0
    for name in attacks.STRONG:
        options = dict(chosen)[name]
        dist, points, sec, _ = run_attack(model, x, name,
                                          {**options, "steps": REFERENCE_FACTOR * options["steps"]})
        reference.append(dist)
        ref_seconds += sec
        if name == "ddn":
            start_points = points
    start = time.perf_counter()
    has_start = np.isfinite(reference[-2]) & (reference[-2] > 0)
    restart = np.full(len(x), np.inf)
    if has_start.any():
        attacker = engine._Attacker(model.network, (0.0, 1.0))
        labels = attacker.predict(x)
        restarter = attacks.get("ddn_fmn",
                                steps=REFERENCE_FACTOR * attacks.DDNFMN.defaults["steps"])
        pts = restarter.restart(attacker, x[has_start], labels[has_start],
                                start_points[has_start])
        ok, d, _ = attacker.verify_or_push(x[has_start], pts, labels[has_start])
        restart[np.flatnonzero(has_start)[ok]] = d[ok]
    reference.append(restart)
    ref_seconds += time.perf_counter() - start
    reference = np.min(np.stack(reference), axis=0)
    out = []
    baseline = seconds["gradient"] + sum(foolbox_seconds.values())
    for name, options, sec, steps in rows:
        med, p90, above, skipped = ratios(found[name][0], reference)
        rate = f"{steps * flops / sec / 1e9:.1f} ({steps * flops / sec / 1e9 / gflops:.0%})" \
            if steps else "-"
        out.append([name, str(options or "defaults"), f"{sec:.1f}", f"{len(x) / sec:.1f}", rate,
                    f"{med:.4f}", f"{p90:.4f}", f"{above:.1%}"])
    for name, options, dist, sec in extra:
        for label, d in ((f"{name} (not shipped)", dist),
                         (f"rho_best with this {name}", np.minimum(best, dist))):
            med, p90, above, _ = ratios(d, reference)
            out.append([label, str(options), f"{sec:.1f}", f"{len(x) / sec:.1f}", "-",
                        f"{med:.4f}", f"{p90:.4f}", f"{above:.1%}"])
    agreement = []
    for name, dist in foolbox.items():
        med, p90, above, _ = ratios(dist, reference)
        sec = foolbox_seconds[name]
        out.append([f"{name}, Foolbox 3.3.4 (baseline)", str(dict(chosen)[name] or "defaults"),
                    f"{sec:.1f}", f"{len(x) / sec:.1f}", "-", f"{med:.4f}", f"{p90:.4f}",
                    f"{above:.1%}"])
        both = np.isfinite(dist) & np.isfinite(found[name][0])
        ours = found[name][0][both]
        agreement.append(
            f"compiled {name.upper()} against Foolbox's: median ratio "
            f"{np.median(ours) / np.median(dist[both]):.5f}, 90th percentile of the per-image "
            f"|ratio - 1| {np.percentile(np.abs(ours / dist[both] - 1), 90):.2g}, "
            f"{seconds[name] / sec:.2f}x its time")
    med, p90, above, skipped = ratios(best, reference)
    out.append(["rho_best", "minimum of the above", f"{sum(seconds.values()):.1f}",
                f"{len(x) / sum(seconds.values()):.1f}", "-", f"{med:.4f}", f"{p90:.4f}",
                f"{above:.1%}"])
    note = (f"{os.path.basename(os.path.normpath(run_dir))}: reference median "
            f"{np.median(reference[np.isfinite(reference) & (reference > 0)]):.4f}, made in "
            f"{ref_seconds:.0f} s; the paper's three with Foolbox's BIM and CW (the baseline) "
            f"took {baseline:.1f} s, all {len(chosen)} as shipped {sum(seconds.values()):.1f} s "
            f"(ratio {sum(seconds.values()) / baseline:.2f}); {'; '.join(agreement)}; {skipped} "
            "images without a finite non-zero reference left out.")
    return out, note


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run_dirs", required=True)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--preset", default="mnist_quick",
                        help="whose attack settings to measure (mnist_quick: make demo's)")
    parser.add_argument("--also", default="",
                        help="other settings to measure against the same reference, outside "
                             "the shipped stage: NAME:JSON[;NAME:JSON...], e.g. "
                             "'ddn:{\"loss\": \"margin\", \"steps\": 300}'")
    args = parser.parse_args()
    also = [(spec.split(":", 1)[0], json.loads(spec.split(":", 1)[1]))
            for spec in args.also.split(";") if spec]
    gflops = matmul_gflops()
    header = ["attack", "options", "seconds", "images/s", "GFLOP/s (of matmul)",
              "median dist/ref", "p90 dist/ref", "> 5% above"]
    for run_dir in args.run_dirs.split(","):
        rows, note = measure(run_dir, args.images, gflops, settings(args.preset), also)
        record(f"attack tightness and cost, {os.path.basename(os.path.normpath(run_dir))}, "
               f"{args.images} images, {args.preset} settings (matmul {gflops:.0f} GFLOP/s)",
               header, rows, note)


if __name__ == "__main__":
    main()
