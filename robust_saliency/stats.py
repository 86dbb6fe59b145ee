"""Rank and correlation statistics shared by the claims, the cross-method comparison and the
saliency randomisation check; below all three, so none imports another for them.

A small API on purpose (ranks, pearson, spearman): the bodies may later be scipy.stats calls.
"""

import numpy as np


def ranks(values):
    """Ranks 1..D along the last axis of a (D,) or (N, D) array, tied values sharing their mean
    rank (the ranks Spearman's correlation needs)."""
    values = np.asarray(values, dtype=np.float64)
    a = values.reshape(-1, values.shape[-1])
    n, d = a.shape
    order = np.argsort(a, axis=1, kind="stable")
    s = np.take_along_axis(a, order, axis=1)
    # Sorted runs of equal values form groups; each group's members get the group's mean rank.
    starts = np.concatenate([np.ones((n, 1), bool), s[:, 1:] != s[:, :-1]], axis=1)
    group = (np.cumsum(starts, axis=1) - 1 + d * np.arange(n)[:, None]).ravel()
    position = np.tile(np.arange(1, d + 1, dtype=np.float64), n)
    mean_rank = np.bincount(group, position, n * d) / np.maximum(np.bincount(group, None, n * d), 1)
    out = np.empty((n, d))
    np.put_along_axis(out, order, mean_rank[group].reshape(n, d), axis=1)
    return out.reshape(values.shape)


def pearson(a, b):
    """Pearson correlation over the pairs where both are finite; nan with < 3 pairs."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    keep = np.isfinite(a) & np.isfinite(b)
    if keep.sum() < 3 or np.std(a[keep]) == 0 or np.std(b[keep]) == 0:
        return float("nan")
    return float(np.corrcoef(a[keep], b[keep])[0, 1])


def spearman(a, b):
    """Spearman rank correlation over the finite pairs."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    keep = np.isfinite(a) & np.isfinite(b)
    if keep.sum() < 3:
        return float("nan")
    return pearson(ranks(a[keep]), ranks(b[keep]))
