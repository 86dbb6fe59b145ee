"""Tightness and cost of every L2 attack, and of rho_best, against a reference of three attack
families at 10x the steps with restarts, made in the same run.

    python -m benchmarks.attack_tightness --run_dirs=DIR[,DIR...] [--images=200] [--preset=NAME]
        [--previous=NAME,NAME,...] [--also='NAME:JSON;...']

Each DIR is a trained member (run.json with model.keras or its committed weights file). Per
model, every attack runs at the settings of --preset on the first validation images; rho_best
is their per-image minimum.

The reference is the per-image minimum of three families, each at 10x the steps it ships with
and restarted: decoupled direction and norm (DDN, FMN, and FMN restarted from DDN's points),
augmented Lagrangian (ALMA at two first step lengths) and boundary projection (FAB with random
restarts). None of it reuses a shipped run's points, so a minimum the shipped attacks all miss
shows as a tail: per family, the table says on how many tail images (rho_best more than 5% above
the reference) that family found the reference's point, and on how many it alone was more than
5% below rho_best.

Cost: the whole shipped stage against two baselines timed in the same run: the paper's three as
first measured (BIM and CW through Foolbox), and --previous, the stage before the current
attack set (default: the five attacks of mnist_quick before ALMA and FAB, and DDN+FMN for the
converged preset). Reported per attack: seconds, images per second, the FLOP rate of the compiled
loops (forward + input-gradient passes, counted as two forward passes of the network, against
the matmul rate timed in the same run), and the median and 90th percentile of distance /
reference over the images where both are finite and non-zero, with the share more than 5%
above. Per attack, rho_best without it and the stage's time without it: what that attack adds.
`--also` adds rows for other settings against the same reference, in neither the stage
nor rho_best.
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
from robust_saliency.attacks import minimal_norm, through_foolbox, verify  # noqa: E402


def settings(preset):
    """(attack, options) for every attack as `preset` runs it."""
    p = presets.get(preset)
    return tuple((name, p.attack_options.get(name, {})) for name in p.attacks)


REFERENCE_FACTOR = 10
# The stages before ALMA and FAB joined rho_best: the cost baseline of --previous.
PREVIOUS = {"mnist_quick": ("gradient", "bim", "cw", "ddn", "fmn"),
            "mnist_converged": ("gradient", "bim", "cw", "ddn", "fmn", "ddn_fmn")}
PREVIOUS_OPTIONS = {"ddn": {"steps": 300}, "fmn": {"steps": 300}}


def run_attack(model, x, name, options, attack=None):
    attack = attack or attacks.get(name, **options)
    start = time.perf_counter()
    dist, points = verify.find_adversarials(model, x, attack, (0.0, 1.0))
    return dist, points, time.perf_counter() - start, attack.image_steps


def ratios(dist, reference):
    ok = np.isfinite(dist) & np.isfinite(reference) & (reference > 0)
    if not ok.any():
        return np.nan, np.nan, np.nan, int((~ok).sum())
    r = dist[ok] / reference[ok]
    return np.median(r), np.percentile(r, 90), np.mean(r > 1.05), int((~ok).sum())


def _steps(chosen, name, key="steps"):
    """`name`'s shipped number of steps (its preset option, else its default), times 10."""
    shipped = chosen.get(name, {}).get(key, attacks.ATTACKS[name].defaults[key])
    return REFERENCE_FACTOR * shipped


def reference_families(model, x, chosen):
    """({family: per-image minimum distance of its runs}, seconds): three attack families at 10x
    their shipped steps, each restarted (another start or another step length)."""
    start = time.perf_counter()
    ddn, ddn_points, _, _ = run_attack(model, x, "ddn", {"steps": _steps(chosen, "ddn")})
    fmn, _, _, _ = run_attack(model, x, "fmn", {"steps": _steps(chosen, "fmn")})
    restart = np.full(len(x), np.inf)
    has_start = np.isfinite(ddn) & (ddn > 0)
    if has_start.any():
        attacker = verify.Attacker(model.network, (0.0, 1.0))
        labels = attacker.predict(x)
        restarter = minimal_norm.DDNFMN(steps=_steps(chosen, "ddn_fmn"))
        points = restarter.restart(attacker, x[has_start], labels[has_start],
                                   ddn_points[has_start])
        ok, d, _ = attacker.verify_or_push(x[has_start], points, labels[has_start])
        restart[np.flatnonzero(has_start)[ok]] = d[ok]
    alma = [run_attack(model, x, "alma", {"steps": _steps(chosen, "alma"),
                                          "init_lr_distance": lr})[0]
            for lr in (attacks.ATTACKS["alma"].defaults["init_lr_distance"], 0.5)]
    fab, _, _, _ = run_attack(model, x, "fab", {"steps": _steps(chosen, "fab"), "restarts": 2})
    families = {"DDN / FMN (10x, FMN restarted from DDN)": np.minimum.reduce([ddn, fmn, restart]),
                "ALMA (10x, two first step lengths)": np.minimum(*alma),
                "FAB (10x, all classes, 2 starts)": fab}
    return families, time.perf_counter() - start


def family_rows(best, families, reference):
    """Per family: the tail images (rho_best > 1.05 reference) whose reference it found, and
    the images where it is more than 5% below rho_best."""
    ok = np.isfinite(best) & np.isfinite(reference) & (reference > 0)
    tail = ok & (best > 1.05 * reference)
    rows = []
    for family, dist in families.items():
        wins = tail & (dist <= reference * (1 + 1e-6))
        below = ok & (dist < best / 1.05)
        med, p90, above, _ = ratios(dist, reference)
        rows.append([family, f"{int(tail.sum())} tail images", "-", "-", "-", f"{med:.4f}",
                     f"{p90:.4f}", f"{above:.1%}; wins {int(wins.sum())} of the tail; "
                     f"> 5% below rho_best on {int(below.sum())}"])
    return rows


def measure(run_dir, num_images, gflops, chosen, previous, also=()):
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
    # The previous stage's attacks that the current one does not run as they were.
    previous_seconds = 0.0
    for name in previous:
        options = PREVIOUS_OPTIONS.get(name, dict(chosen).get(name, {}))
        if name in seconds and dict(chosen).get(name, {}) == options:
            previous_seconds += seconds[name]
        else:
            previous_seconds += run_attack(model, x, name, options)[2]
    # Other settings measured against the same reference, outside the shipped stage and rho_best.
    extra = []
    for name, options in also:
        dist, _, sec, _ = run_attack(model, x, name, options)
        extra.append((name, options, dist, sec))
    foolbox, foolbox_seconds = {}, {}
    for name, kind in (("bim", through_foolbox.FoolboxBIM), ("cw", through_foolbox.FoolboxCW)):
        options = dict(chosen)[name]
        foolbox[name], _, foolbox_seconds[name], _ = run_attack(model, x, name, options,
                                                                kind(**options))
    best = np.min(np.stack([d for d, _ in found.values()]), axis=0)
    families, ref_seconds = reference_families(model, x, dict(chosen))
    reference = np.min(np.stack(list(families.values())), axis=0)
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
    # What each attack adds: rho_best without it, and the stage's time without it. An attack
    # whose removal leaves the tightness unchanged is a candidate to leave the default set.
    for name, _, sec, _ in rows:
        rest = [d for other, (d, _) in found.items() if other != name]
        med, p90, above, _ = ratios(np.min(np.stack(rest), axis=0), reference)
        out.append([f"rho_best without {name}", "minimum of the others",
                    f"{sum(seconds.values()) - sec:.1f}", "-", "-", f"{med:.4f}", f"{p90:.4f}",
                    f"{above:.1%}"])
    out += family_rows(best, families, reference)
    stage = sum(seconds.values())
    note = (f"{os.path.basename(os.path.normpath(run_dir))}: reference median "
            f"{np.median(reference[np.isfinite(reference) & (reference > 0)]):.4f}, made in "
            f"{ref_seconds:.0f} s; the paper's three with Foolbox's BIM and CW (the baseline) "
            f"took {baseline:.1f} s, the previous stage ({', '.join(previous)}) "
            f"{previous_seconds:.1f} s, all {len(chosen)} as shipped {stage:.1f} s (ratio "
            f"{stage / baseline:.2f} to the baseline, {stage / previous_seconds:.2f} to the "
            f"previous stage); {'; '.join(agreement)}; {skipped} images without a finite "
            "non-zero reference left out.")
    return out, note


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run_dirs", required=True)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--preset", default="mnist_quick",
                        help="whose attack settings to measure (mnist_quick: make demo's)")
    parser.add_argument("--previous", default=None,
                        help="the attacks of the stage to compare the cost with, comma-separated "
                             "(default: the preset's stage before ALMA and FAB, PREVIOUS)")
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
        previous = (args.previous.split(",") if args.previous
                    else PREVIOUS.get(args.preset, PREVIOUS["mnist_quick"]))
        rows, note = measure(run_dir, args.images, gflops, settings(args.preset), previous, also)
        record(f"attack tightness and cost, {os.path.basename(os.path.normpath(run_dir))}, "
               f"{args.images} images, {args.preset} settings (matmul {gflops:.0f} GFLOP/s)",
               header, rows, note)


if __name__ == "__main__":
    main()
