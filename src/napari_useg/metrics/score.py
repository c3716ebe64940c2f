"""Every region score of one prediction at once (:func:`score_all`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from napari_useg.metrics.contingency import _check_maps, dense_ids, valid_mask
from napari_useg.metrics.partition import ari_from_table, ri_from_table, voi_from_table
from napari_useg.metrics.protocol import as_annotators

__all__ = ["SCORE_KEYS", "score_all", "covering_from_table"]

#: Keys of :func:`score_all`, in display order.
SCORE_KEYS = ("hungarian", "many_to_one", "covering", "pri", "voi", "ari")


def covering_from_table(table: np.ndarray) -> tuple[float, float]:
    """Covering numerator and denominator of the column labels by the row labels.

    ``sum_j |G_j| max_i IoU(S_i, G_j)`` and ``sum_j |G_j|`` for a contingency table with
    predicted segments ``S_i`` as rows and ground-truth regions ``G_j`` as columns.
    """
    t = np.asarray(table, dtype=np.float64)
    rows = t.sum(axis=1)
    cols = t.sum(axis=0)
    union = rows[:, None] + cols[None, :] - t
    iou = t / np.where(union == 0, 1, union)
    return float((cols * iou.max(axis=0, initial=0.0)).sum()), float(cols.sum())


def score_all(pred: np.ndarray, gt: np.ndarray | Sequence[np.ndarray],
              ignore: int | Iterable[int] | None = None) -> dict[str, float]:
    """Matched accuracies, covering, PRI, VOI and ARI of a prediction in one call.

    Parameters
    ----------
    pred : numpy.ndarray
        Integer label map (clusters or segments).
    gt : numpy.ndarray or sequence of numpy.ndarray
        One annotation, or several annotators' maps (list or ``(K, H, W)`` stack).
    ignore : int or iterable of int, optional
        Ground-truth values not scored (e.g. 255 for unannotated satellite pixels).

    Returns
    -------
    dict
        ``hungarian``: one-to-one matched pixel accuracy (mean over annotators);
        ``many_to_one``: accuracy with every cluster mapped to its majority label
        (mean over annotators);
        ``covering``: segmentation covering of the annotations by the prediction,
        pooled over annotators as in the BSDS benchmark (every ground-truth label is a
        region here, 0 included, unless ignored);
        ``pri``: probabilistic Rand index (mean Rand index over annotators);
        ``voi``: variation of information in bits (mean over annotators; lower is better);
        ``ari``: adjusted Rand index (mean over annotators).

    Raises
    ------
    ValueError
        If shapes differ, maps are not integer-valued, or no pixel is scored.

    Examples
    --------
    >>> pred = np.array([[1, 1], [2, 2]]); gt = np.array([[1, 1], [1, 2]])
    >>> s = score_all(pred, gt)
    >>> s["hungarian"], s["many_to_one"], round(s["covering"], 4)
    (0.75, 0.75, 0.625)
    """
    pred = np.asarray(pred)
    gts = as_annotators(gt, pred.ndim)
    for g in gts:
        _check_maps(pred, g)
    acc = {k: 0.0 for k in SCORE_KEYS}
    cov_num = cov_den = 0.0
    cached = None if ignore is not None else dense_ids(pred)
    for g in gts:
        mask = valid_mask(g, ignore)
        if mask is None:
            pids, pinv = cached if cached is not None else dense_ids(pred)
            gids, ginv = dense_ids(g)
        else:
            pids, pinv = dense_ids(pred[mask])
            gids, ginv = dense_ids(g[mask])
        if pinv.size == 0:
            raise ValueError("no pixels to score (all ground-truth pixels are ignored)")
        table = np.bincount(pinv.astype(np.int64) * len(gids) + ginv,
                            minlength=len(pids) * len(gids)).reshape(len(pids), len(gids))
        n = float(pinv.size)
        rows, cols = linear_sum_assignment(table, maximize=True)
        acc["hungarian"] += float(table[rows, cols].sum()) / n
        acc["many_to_one"] += float(table.max(axis=1).sum()) / n
        num, den = covering_from_table(table)
        cov_num += num
        cov_den += den
        acc["pri"] += ri_from_table(table)
        acc["voi"] += voi_from_table(table)
        acc["ari"] += ari_from_table(table)
    k = len(gts)
    out = {key: acc[key] / k for key in SCORE_KEYS}
    out["covering"] = cov_num / cov_den
    return out
