"""Rank and correlation statistics and bootstrap intervals, from scipy.stats, and the median
shares and ratios of the bound figures; shared by the claims, the figures, the cross-method
comparison, the evaluation summaries and the saliency randomisation check, and below all of
them, so none imports another for them (and a claim judges the very number its figure draws).

The confidence level, the number of resamples and the seed of every interval are fixed here,
once: the same data always give the same interval.
"""

import warnings

import numpy as np
import scipy.stats

CONFIDENCE = 0.95
RESAMPLES = 2000
SEED = 0


def ranks(values):
    """Ranks 1..D along the last axis of a (D,) or (N, D) array, tied values sharing their mean
    rank (the ranks Spearman's correlation needs)."""
    return scipy.stats.rankdata(np.asarray(values, dtype=np.float64), axis=-1)


def _finite_pairs(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    keep = np.isfinite(a) & np.isfinite(b)
    return a[keep], b[keep]


def pearson(a, b):
    """Pearson correlation over the pairs where both are finite; nan with < 3 pairs or a
    constant side."""
    a, b = _finite_pairs(a, b)
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(scipy.stats.pearsonr(a, b).statistic)


def spearman(a, b):
    """Spearman rank correlation over the finite pairs; nan with < 3 pairs or a constant side."""
    a, b = _finite_pairs(a, b)
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(scipy.stats.spearmanr(a, b).statistic)


def _interval(result):
    low, high = result.confidence_interval
    return float(low), float(high)


def seed_range(lam, values):
    """Per distinct lambda (sorted): the median, min and max of `values` over that lambda's
    members whose value is finite, and how many those are (nan where none). A collapsed
    classifier's undefined distance or infinite rho_tilde is left out, not spread over the range.
    The seed range the figures draw and claims.md tabulates: one rule for both.

    Returns (lambdas, centre, low, high, count).
    """
    lam, values = np.asarray(lam, np.float64), np.asarray(values, np.float64)
    lams = np.unique(lam)
    finite = [values[(lam == v) & np.isfinite(values)] for v in lams]
    centre, low, high = (np.array([f(v) if len(v) else np.nan for v in finite])
                         for f in (np.median, np.min, np.max))
    return lams, centre, low, high, np.array([len(v) for v in finite])


def median_interval(values):
    """The CONFIDENCE percentile-bootstrap interval (RESAMPLES resamples, seeded) of the median
    of `values`, over its finite entries; (nan, nan) with fewer than 2."""
    values = np.asarray(values, np.float64)
    values = values[np.isfinite(values)]
    if len(values) < 2:
        return float("nan"), float("nan")
    return _interval(scipy.stats.bootstrap(
        (values,), np.median, n_resamples=RESAMPLES, confidence_level=CONFIDENCE,
        method="percentile", vectorized=True, rng=np.random.default_rng(SEED)))


def spearman_interval(a, b):
    """The CONFIDENCE percentile-bootstrap interval of spearman(a, b), resampling the finite
    pairs together (RESAMPLES resamples, seeded); (nan, nan) with fewer than 4 pairs."""
    a, b = _finite_pairs(a, b)
    if len(a) < 4:
        return float("nan"), float("nan")
    return _interval(scipy.stats.bootstrap(
        (a, b), _spearman_rows, paired=True, vectorized=True, n_resamples=RESAMPLES,
        confidence_level=CONFIDENCE, method="percentile", rng=np.random.default_rng(SEED)))


def _spearman_rows(a, b, axis=-1):
    """Spearman's correlation of many resamples at once (rows along `axis`)."""
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", scipy.stats.ConstantInputWarning)
        r = scipy.stats.pearsonr(ranks(np.moveaxis(a, axis, -1)),
                                 ranks(np.moveaxis(b, axis, -1)), axis=-1).statistic
    # A resample that ties one side completely has no rank correlation; counting it as 0 (no
    # evidence of a trend) keeps the interval defined and errs towards 'inconclusive'.
    return np.nan_to_num(r)


def overlap(first, second):
    """Whether two (low, high) intervals share a point; an undefined (nan) one overlaps all."""
    if not all(np.isfinite(v) for v in (*first, *second)):
        return True
    return first[0] <= second[1] and second[0] <= first[1]


def median_share(part, whole):
    """The median over images of part / whole (a summand's share of a bound, Figs. 6-8), over
    the images where the share is finite: 0/0, x/0 and inf/inf are undefined shares, left out
    rather than counted as 0 or inf."""
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.asarray(part, np.float64) / np.asarray(whole, np.float64)
    return float(np.median(share[np.isfinite(share)]))


def median_magnitude_ratio(numerator, denominator):
    """(M|numerator| / M|denominator|, M|numerator|, M|denominator|): Fig. 9's ratio of medians
    (not a median of ratios) with its two medians."""
    top, bottom = (float(np.median(np.abs(v))) for v in (numerator, denominator))
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(top) / bottom), top, bottom


INCONCLUSIVE = "inconclusive"
TREND_THRESHOLD = 0.6  # the Spearman correlation a 'rises with' claim asks for


def trend_verdict(rho, interval, threshold=TREND_THRESHOLD):
    """A 'rises with' claim from Spearman's rho and its bootstrap interval: holds when rho >=
    threshold and the interval lies above 0, fails when the interval lies below the threshold,
    is inconclusive otherwise; None when rho is undefined."""
    if not np.isfinite(rho):
        return None
    if interval[1] < threshold:
        return False
    return True if rho >= threshold and interval[0] > 0 else INCONCLUSIVE


def mean_band(hits):
    """The CONFIDENCE percentile-bootstrap band of the column means of `hits` (N, E), resampling
    the N rows (images) together (RESAMPLES resamples, seeded): a (low, high) pair of (E,)
    arrays, e.g. around a robust-accuracy curve at E budgets."""
    hits = np.asarray(hits, np.float64)
    n = len(hits)
    rng = np.random.default_rng(SEED)
    # Row counts of each resample (multinomial) instead of index arrays: (RESAMPLES, N) numbers
    # rather than (RESAMPLES, N, E) copies.
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=RESAMPLES)
    means = counts @ hits / n
    tail = 50 * (1 - CONFIDENCE)
    return np.percentile(means, tail, axis=0), np.percentile(means, 100 - tail, axis=0)


def robust_at(correct, distance, eps):
    """Per image and budget, whether the image counts as robust: classified correctly and its
    minimal perturbation larger than the budget ((N, E) booleans for budgets `eps` (E,); the
    robust accuracy is their mean over images)."""
    return np.asarray(correct, bool)[:, None] & (np.asarray(distance)[:, None] > eps[None])
