"""Labels on a figure's points that overlap nothing: lambda beside the points of a curve.

Each label goes to the one of a few places around its point (beside, above, below) that
covers no marker, no other text and no legend, stays inside the axes and crosses the fewest
lines and bars; a label with no such place is left out, except that the ends of a curve and its
degenerate points may also sit a little further off, tied to their point by a leader line.
Labels are placed in an order that keeps the ends and spreads the rest (`spread`), so a crowded
stretch of a curve keeps every other label or fewer, never a pile of overlapping ones.
"""

import numpy as np

# Where a label may sit relative to its point (offset in points, alignment), in order of
# preference: beside, then above or below, then level with it.
_PLACES = ((-4, 3, "right", "bottom"), (4, 3, "left", "bottom"), (4, -3, "left", "top"),
           (-4, -3, "right", "top"), (0, 6, "center", "bottom"), (0, -6, "center", "top"),
           (-7, 0, "right", "center"), (7, 0, "left", "center"))
# Further off, for the labels that must be there (ends, degenerate points), with a leader line.
_FAR = ((-12, 12, "right", "bottom"), (12, 12, "left", "bottom"), (12, -12, "left", "top"),
        (-12, -12, "right", "top"), (0, 18, "center", "bottom"), (0, -18, "center", "top"),
        (-20, 0, "right", "center"), (20, 0, "left", "center"))
_ROOM = 3  # pixels kept free around a placed label


def spread(count, first=()):
    """0 .. count-1 in labelling order: `first`, the two ends, then halving the gaps, so that
    the labels that fit are spread along the curve."""
    order, gaps = [*first, 0, count - 1], [(0, count - 1)]
    while gaps:
        a, b = gaps.pop(0)
        if b - a > 1:
            order.append((a + b) // 2)
            gaps += [(a, (a + b) // 2), ((a + b) // 2, b)]
    return list(dict.fromkeys(i for i in order if 0 <= i < count))


def _trace(xy, step=3.0):
    """Points every `step` pixels along a polyline (display coordinates; nan breaks it)."""
    xy = np.asarray(xy, np.float64).reshape(-1, 2)
    a, b = xy[:-1], xy[1:]
    ok = np.isfinite(a).all(1) & np.isfinite(b).all(1)
    out = [xy[np.isfinite(xy).all(1)]]
    for p, q in zip(a[ok], b[ok]):
        n = int(np.hypot(*(q - p)) // step)
        out.append(p + np.linspace(0, 1, n + 2)[1:-1, None] * (q - p))
    return np.concatenate(out) if out else np.zeros((0, 2))


def _obstacles(ax, renderer):
    """(boxes, points) in display pixels: what a label must not cover (markers, texts, the
    legend) and what it had better not cover (lines, bars and their caps, sampled)."""
    scale = ax.figure.dpi / 72
    boxes, points = [np.zeros((0, 4))], [np.zeros((0, 2))]
    for line in ax.lines:
        xy = line.get_transform().transform(line.get_xydata())
        xy = xy[np.isfinite(xy).all(1)]
        if line.get_marker() in ("|", "_"):  # error bars' caps: crossing one is like a bar
            points.append(xy)
        elif line.get_marker() not in ("None", "none", "", " ", None) and len(xy):
            r = line.get_markersize() * scale / 2 + 1
            boxes.append(np.column_stack([xy - r, xy + r]))
        if line.get_linestyle() not in ("None", "none", "", " "):
            points.append(_trace(line.get_transform().transform(line.get_xydata())))
    for collection in ax.collections:
        transform = collection.get_transform()
        for segment in getattr(collection, "get_segments", lambda: [])():
            points.append(_trace(transform.transform(segment)))
    extras = [*ax.texts, *([ax.get_legend()] if ax.get_legend() else [])]
    boxes += [np.array([e.get_window_extent(renderer).extents]) for e in extras]
    return np.concatenate(boxes), np.concatenate(points)


def _place(ax, renderer, text, xy, places, inside, boxes, points, **style):
    """The free place of `places` for `text` at `xy` crossing the fewest line points, as
    (offset, ha, va, box), or None."""
    best = None
    for dx, dy, ha, va in places:
        label = ax.annotate(text, xy, xytext=(dx, dy), textcoords="offset points", ha=ha, va=va,
                            **style)
        x0, y0, x1, y1 = label.get_window_extent(renderer).extents
        label.remove()
        if x0 < inside[0] or y0 < inside[1] or x1 > inside[2] or y1 > inside[3]:
            continue
        if np.any((boxes[:, 0] < x1) & (boxes[:, 2] > x0) & (boxes[:, 1] < y1)
                  & (boxes[:, 3] > y0)):
            continue
        crossed = np.sum((points[:, 0] > x0) & (points[:, 0] < x1) & (points[:, 1] > y0)
                         & (points[:, 1] < y1))
        if best is None or crossed < best[0]:
            best = (crossed, (dx, dy), ha, va, (x0, y0, x1, y1))
    return best and best[1:]


def annotate_lambdas(ax, x, y, lams, *, degenerate=None, color="0.3"):
    """Small lambda labels beside points (x, y), each where it covers no marker, other text or
    the legend and stays inside the axes, crossing as few lines as it can; a label with no such
    place is left out, so that none overlap (the ends and degenerate points first, then spread
    along the curve). Those first ones may also sit a little further off, tied to their point
    by a thin line. A degenerate point's label says so. Call it after every curve and any
    legend inside the axes are drawn."""
    fig = ax.figure
    fig.canvas.draw()  # Final limits and layout: display positions as they will be saved.
    renderer = fig.canvas.get_renderer()
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    bad = np.zeros(len(x), bool) if degenerate is None else np.asarray(degenerate, bool)
    inside = ax.get_window_extent(renderer).extents
    boxes, points = _obstacles(ax, renderer)
    style = {"fontsize": 6, "color": color}
    first = [*np.flatnonzero(bad), 0, len(x) - 1]
    for i in spread(len(x), first=first):
        if not (np.isfinite(x[i]) and np.isfinite(y[i])):
            continue
        text = f"{lams[i]:g}" + (" (degenerate)" if bad[i] else "")
        place, leader = _place(ax, renderer, text, (x[i], y[i]), _PLACES, inside, boxes, points,
                               **style), {}
        if place is None and i in first:
            place = _place(ax, renderer, text, (x[i], y[i]), _FAR, inside, boxes, points,
                           **style)
            leader = {"arrowprops": {"arrowstyle": "-", "lw": 0.4, "color": "0.6",
                                     "shrinkA": 0, "shrinkB": 3}}
        if place is not None:
            (dx, dy), ha, va, box = place
            ax.annotate(text, (x[i], y[i]), xytext=(dx, dy), textcoords="offset points", ha=ha,
                        va=va, **style, **leader)
            # A little room around it, so that neighbouring labels do not read as one; no later
            # label may cover its leader line either.
            taken = [np.add(box, (-_ROOM, -_ROOM, _ROOM, _ROOM))]
            if leader:
                start = ax.transData.transform((x[i], y[i]))
                line = _trace([start, start + np.multiply((dx, dy), fig.dpi / 72)], step=2)
                taken.append(np.column_stack([line - 1, line + 1]))
            boxes = np.vstack([boxes, *taken])
