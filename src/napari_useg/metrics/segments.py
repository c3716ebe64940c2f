"""Segment precision and recall (Kanezaki 2018, Sec. 3).

The segments of a label map are the connected components of each of its labels.
A predicted segment is *correct* when its best intersection over union (IoU) with a
ground-truth segment exceeds a threshold (0.5 and 0.7 in the paper); a ground-truth
segment is *found* when some predicted segment overlaps it with IoU above the
threshold. Segments are ranked by decreasing size, which traces a precision-recall
curve (precision and recall of the ``r`` largest segments, for every ``r``); its
area is the average precision.

Everything is computed from the sparse overlap table of the two component maps
(one ``np.unique`` over pixel pairs), never by looping over segments.
Several annotators are pooled: their segments all count as ground-truth segments,
and a predicted segment is correct when it matches any of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from skimage.measure import label as cc_label

from napari_useg.metrics.contingency import _check_maps, dense_ids, valid_mask

__all__ = ["PRCurve", "SegmentMatches", "segment_components", "segment_matches", "segment_pr"]

Ignore = int | Iterable[int] | None


def segment_components(labels: np.ndarray, connectivity: int = 1) -> np.ndarray:
    """Connected components of every label of ``labels``: ids ``1..n`` (``int64``).

    ``connectivity=1`` joins 4-neighbours, ``2`` also diagonal ones (8-neighbours).
    Every pixel belongs to a component, label 0 included.
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"label maps must be 2-D, got shape {labels.shape}")
    if connectivity not in (1, 2):
        raise ValueError(f"connectivity must be 1 or 2, got {connectivity}")
    _, inv = dense_ids(labels)
    shifted = (inv + 1).reshape(labels.shape)
    return cc_label(shifted, background=0, connectivity=connectivity).astype(np.int64)


@dataclass(frozen=True)
class SegmentMatches:
    """Per-segment match records of one image (or of several, concatenated).

    Attributes
    ----------
    thresholds : tuple of float
        IoU thresholds.
    sizes : numpy.ndarray
        ``(n,)`` scored pixels of each predicted segment, in ranking order
        (decreasing size; ties keep image and component order).
    best_iou : numpy.ndarray
        ``(n,)`` best IoU of each predicted segment with any ground-truth segment.
    new_found : numpy.ndarray
        ``(len(thresholds), n)`` number of ground-truth segments that this predicted
        segment is the first (in ranking order) to find at each threshold.
    n_gt : int
        Number of ground-truth segments (all annotators together).
    """

    thresholds: tuple[float, ...]
    sizes: np.ndarray
    best_iou: np.ndarray
    new_found: np.ndarray
    n_gt: int

    @staticmethod
    def concatenate(parts: Sequence[SegmentMatches]) -> SegmentMatches:
        """Pool the records of several images, re-ranked by size over the whole set."""
        if not parts:
            raise ValueError("no segment records to pool")
        thr = parts[0].thresholds
        if any(p.thresholds != thr for p in parts):
            raise ValueError("segment records use different IoU thresholds")
        sizes = np.concatenate([p.sizes for p in parts])
        order = np.argsort(-sizes, kind="stable")
        return SegmentMatches(
            thr, sizes[order], np.concatenate([p.best_iou for p in parts])[order],
            np.concatenate([p.new_found for p in parts], axis=1)[:, order],
            int(sum(p.n_gt for p in parts)),
        )

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain arrays (for ``np.savez``); :meth:`from_arrays` reads them back."""
        return {"thresholds": np.asarray(self.thresholds, np.float64), "sizes": self.sizes,
                "best_iou": self.best_iou, "new_found": self.new_found,
                "n_gt": np.asarray(self.n_gt)}

    @staticmethod
    def from_arrays(d: dict[str, np.ndarray]) -> SegmentMatches:
        """Inverse of :meth:`to_arrays`."""
        return SegmentMatches(tuple(float(t) for t in d["thresholds"]), np.asarray(d["sizes"]),
                              np.asarray(d["best_iou"]), np.asarray(d["new_found"]),
                              int(d["n_gt"]))


@dataclass(frozen=True)
class PRCurve:
    """Precision-recall curve of segments ranked by decreasing size.

    Attributes
    ----------
    threshold : float
        IoU threshold.
    precision, recall : numpy.ndarray
        Of the ``r`` largest predicted segments, ``r = 1..n``.
    ap : float
        Average precision: ``sum_r (recall_r - recall_{r-1}) * precision_r``.
    """

    threshold: float
    precision: np.ndarray
    recall: np.ndarray
    ap: float

    @property
    def final_precision(self) -> float:
        """Precision of all the segments: correct segments / predicted segments."""
        return float(self.precision[-1]) if self.precision.size else 0.0

    @property
    def final_recall(self) -> float:
        """Recall of all the segments: found ground-truth segments / ground-truth segments."""
        return float(self.recall[-1]) if self.recall.size else 0.0

    @property
    def f(self) -> float:
        """F-measure of :attr:`final_precision` and :attr:`final_recall` (Kanezaki's Fig. 3)."""
        p, r = self.final_precision, self.final_recall
        return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def _as_annotators(gt: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    if isinstance(gt, np.ndarray):
        return [gt] if gt.ndim == 2 else list(gt)
    gts = list(gt)
    if not gts:
        raise ValueError("no ground-truth label maps given")
    return [np.asarray(g) for g in gts]


def segment_matches(pred: np.ndarray, gt: np.ndarray | Sequence[np.ndarray],
                    ignore: Ignore = None, thresholds: Sequence[float] = (0.5, 0.7),
                    connectivity: int = 1) -> SegmentMatches:
    """Match the segments of a prediction with those of one or more annotations.

    Parameters
    ----------
    pred : numpy.ndarray
        2-D integer label map (clusters; their connected components are the segments).
    gt : numpy.ndarray or sequence of numpy.ndarray
        One annotation, or a list (or ``(K, H, W)`` stack) of annotators' label maps.
    ignore : int or iterable of int, optional
        Ground-truth values not scored: those pixels belong to no segment, and are
        left out of the predicted segments' areas.
    thresholds : sequence of float
        IoU thresholds in [0, 1) (a match needs IoU strictly above).
    connectivity : {1, 2}
        4- (1) or 8-connected (2) components.

    Returns
    -------
    SegmentMatches
        Feed it (or several, pooled) to :func:`segment_pr`.

    Raises
    ------
    ValueError
        If every ground-truth pixel of every annotator is an ``ignore`` value (no
        segment to match: no made-up precision or recall).

    Examples
    --------
    >>> pred = np.array([[1, 1, 2, 2], [1, 1, 2, 2]])
    >>> gt = np.array([[1, 1, 1, 2], [1, 1, 1, 2]])
    >>> m = segment_matches(pred, gt)
    >>> m.sizes.tolist(), np.round(m.best_iou, 3).tolist()
    ([4, 4], [0.667, 0.5])
    >>> segment_pr(m, 0.5).final_precision
    0.5
    """
    thr = tuple(float(t) for t in thresholds)
    if not thr or any(not 0.0 <= t < 1.0 for t in thr):
        raise ValueError(f"IoU thresholds must be in [0, 1), got {thresholds}")
    pred = np.asarray(pred)
    annotators = _as_annotators(gt)
    for g in annotators:
        _check_maps(pred, g)
    pcomp = segment_components(pred, connectivity)
    n_pred = int(pcomp.max())
    masks = [valid_mask(g, ignore) for g in annotators]
    if all(m is not None and not m.any() for m in masks):
        raise ValueError("no pixels to score (all ground-truth pixels are ignored)")
    # ground-truth segments of every annotator, numbered consecutively
    gcomps, offset = [], 0
    for g, m in zip(annotators, masks, strict=True):
        c = segment_components(g, connectivity)
        if m is not None:  # ignored pixels belong to no segment; renumber the rest 1..n
            c[~m] = 0
            ids, inv = dense_ids(c)
            c = inv.reshape(c.shape) + (0 if ids[0] == 0 else 1)
        n = int(c.max())
        gcomps.append(np.where(c > 0, c + offset, 0))
        offset += n
    n_gt = offset
    best = np.zeros(n_pred + 1)
    # areas and IoUs are taken per annotator (each annotator's own scored pixels); the
    # size used for ranking is the mean scored area over annotators
    size_sum = np.zeros(n_pred + 1, np.int64)
    pairs_p, pairs_g, pairs_iou = [], [], []
    for c, m in zip(gcomps, masks, strict=True):
        p = pcomp.ravel() if m is None else pcomp[m]
        g = c.ravel() if m is None else c[m]
        psize = np.bincount(p, minlength=n_pred + 1)
        gsize = np.bincount(g, minlength=n_gt + 1)
        size_sum += psize
        key = p * np.int64(n_gt + 1) + g
        uniq, inter = np.unique(key, return_counts=True)
        pi, gi = uniq // (n_gt + 1), uniq % (n_gt + 1)
        keep = gi > 0
        pi, gi, inter = pi[keep], gi[keep], inter[keep]
        iou = inter / (psize[pi] + gsize[gi] - inter)
        np.maximum.at(best, pi, iou)
        pairs_p.append(pi)
        pairs_g.append(gi)
        pairs_iou.append(iou)
    sizes = np.rint(size_sum / len(gcomps)).astype(np.int64)[1:]
    present = sizes > 0
    seg_ids = np.flatnonzero(present) + 1
    order = seg_ids[np.argsort(-sizes[seg_ids - 1], kind="stable")]
    rank = np.full(n_pred + 1, -1, np.int64)
    rank[order] = np.arange(len(order))
    pp = np.concatenate(pairs_p)
    gg = np.concatenate(pairs_g)
    ii = np.concatenate(pairs_iou)
    new_found = np.zeros((len(thr), len(order)), np.int64)
    for k, t in enumerate(thr):  # a few thresholds
        hit = (ii > t) & (rank[pp] >= 0)
        first = np.full(n_gt + 1, len(order), np.int64)
        np.minimum.at(first, gg[hit], rank[pp[hit]])
        first = first[1:]
        new_found[k] = np.bincount(first[first < len(order)], minlength=len(order))
    return SegmentMatches(thr, sizes[order - 1], best[order], new_found, n_gt)


def segment_pr(matches: SegmentMatches | Sequence[SegmentMatches],
               threshold: float = 0.5) -> PRCurve:
    """Precision-recall curve and average precision of size-ranked segments.

    Parameters
    ----------
    matches : SegmentMatches or sequence of them
        From :func:`segment_matches`; a sequence (one per image) is pooled and
        re-ranked by size over the whole set.
    threshold : float
        One of the IoU thresholds the records were made with.

    Returns
    -------
    PRCurve
    """
    if not isinstance(matches, SegmentMatches):
        matches = SegmentMatches.concatenate(list(matches))
    thr = [float(t) for t in matches.thresholds]
    if float(threshold) not in thr:
        raise ValueError(f"threshold {threshold} not among the recorded ones {thr}")
    k = thr.index(float(threshold))
    n = len(matches.sizes)
    if n == 0:
        return PRCurve(float(threshold), np.zeros(0), np.zeros(0), 0.0)
    correct = np.cumsum(matches.best_iou > threshold)
    precision = correct / np.arange(1, n + 1)
    found = np.cumsum(matches.new_found[k])
    recall = found / matches.n_gt if matches.n_gt else np.zeros(n)
    ap = float(np.sum(np.diff(recall, prepend=0.0) * precision))
    return PRCurve(float(threshold), precision, recall, ap)
