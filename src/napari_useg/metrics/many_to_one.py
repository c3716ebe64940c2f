"""Many-to-one matched accuracy (the over-clustering evaluation of IIC-style methods).

Each predicted cluster is mapped to the ground-truth label it overlaps most; several
clusters may map to the same label. The mapping can be estimated on some images
(:func:`many_to_one_mapping`) and applied to others (``mapping=`` of
:func:`many_to_one_accuracy`), which is how over-clustering heads are scored on a
held-out split.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from napari_useg.metrics.accuracy import MatchResult
from napari_useg.metrics.contingency import _check_maps, contingency, dense_ids, valid_mask

__all__ = ["many_to_one_accuracy", "many_to_one_mapping", "many_to_one_match"]

Ignore = int | Iterable[int] | None


def _mapping_from_table(table: np.ndarray, pred_ids: np.ndarray,
                        gt_ids: np.ndarray) -> dict[int, int]:
    best = table.argmax(axis=1)  # ties: the smallest ground-truth id
    return {int(p): int(gt_ids[b]) for p, b in zip(pred_ids, best, strict=True)}


def many_to_one_match(pred: np.ndarray, gt: np.ndarray, ignore: Ignore = None,
                      mapping: Mapping[int, int] | None = None) -> MatchResult:
    """Many-to-one matching and its accuracy (see :func:`many_to_one_accuracy`).

    Returns
    -------
    MatchResult
        ``mapping`` holds every cluster of ``pred`` that has a target (with a given
        ``mapping``: the clusters it covers); ``recolour`` gives the mapped prediction.
    """
    table, pred_ids, gt_ids = contingency(pred, gt, ignore)
    n = int(table.sum())
    if mapping is None:
        mapping = _mapping_from_table(table, pred_ids, gt_ids)
    else:
        mapping = {int(k): int(v) for k, v in dict(mapping).items()}
    col = {int(g): j for j, g in enumerate(gt_ids)}
    rows = [i for i, p in enumerate(pred_ids) if int(p) in mapping
            and mapping[int(p)] in col]  # one entry per cluster, not per pixel
    cols = [col[mapping[int(pred_ids[i])]] for i in rows]
    correct = int(table[rows, cols].sum()) if rows else 0
    used = {int(p): mapping[int(p)] for p in pred_ids if int(p) in mapping}
    return MatchResult(correct / n, used, n)


def many_to_one_accuracy(pred: np.ndarray, gt: np.ndarray, ignore: Ignore = None,
                         mapping: Mapping[int, int] | None = None) -> float:
    """Pixel accuracy after mapping every cluster to the label it overlaps most.

    Parameters
    ----------
    pred, gt : numpy.ndarray
        Integer label maps of the same shape.
    ignore : int or iterable of int, optional
        Ground-truth values not scored (e.g. 255 for unannotated pixels).
    mapping : dict, optional
        Cluster -> ground-truth label, e.g. from :func:`many_to_one_mapping` on other
        images. Pixels of clusters missing from it count as errors. Estimated on
        ``pred`` and ``gt`` themselves when omitted.

    Returns
    -------
    float
        Correct pixels / scored pixels. Never below the Hungarian (one-to-one) accuracy
        when the mapping is estimated on the same image.

    Examples
    --------
    >>> pred = np.array([1, 1, 2, 3]); gt = np.array([5, 5, 6, 6])
    >>> many_to_one_accuracy(pred, gt)
    1.0
    >>> many_to_one_accuracy(pred, gt, mapping={1: 5, 2: 6})
    0.75
    """
    return many_to_one_match(pred, gt, ignore, mapping).accuracy


def many_to_one_mapping(preds: Sequence[np.ndarray], gts: Sequence[np.ndarray],
                        ignore: Ignore = None) -> dict[int, int]:
    """Estimate the many-to-one mapping on a set of images (pooled overlaps).

    Parameters
    ----------
    preds, gts : sequence of numpy.ndarray
        Prediction and ground-truth label maps, pairwise of the same shape (the pairs
        may differ in shape). Cluster ids must mean the same thing in every image
        (one model applied to all of them).
    ignore : int or iterable of int, optional
        Ground-truth values not scored.

    Returns
    -------
    dict
        Cluster -> the ground-truth label it overlaps most over all the images
        (ties: the smallest label).

    Examples
    --------
    >>> m = many_to_one_mapping([np.array([1, 1, 2])], [np.array([4, 4, 9])])
    >>> m
    {1: 4, 2: 9}
    >>> many_to_one_accuracy(np.array([2, 1]), np.array([9, 9]), mapping=m)
    0.5
    """
    if isinstance(preds, np.ndarray) or isinstance(gts, np.ndarray):
        raise TypeError("preds and gts must be sequences of label maps (lists), not one array")
    if len(preds) != len(gts):
        raise ValueError(f"got {len(preds)} predictions but {len(gts)} ground truths")
    if not len(preds):
        raise ValueError("no images given")
    ps, gs = [], []
    for k, (p, g) in enumerate(zip(preds, gts, strict=True)):
        try:
            p, g = _check_maps(p, g)
        except ValueError as exc:
            raise ValueError(f"image {k}: {exc}") from None
        mask = valid_mask(g, ignore)
        ps.append(p.ravel() if mask is None else p[mask])
        gs.append(g.ravel() if mask is None else g[mask])
    p_all = np.concatenate(ps)
    g_all = np.concatenate(gs)
    if p_all.size == 0:
        raise ValueError("no pixels to score (all ground-truth pixels are ignored)")
    pred_ids, pi = dense_ids(p_all)
    gt_ids, gi = dense_ids(g_all)
    table = np.bincount(pi.astype(np.int64) * len(gt_ids) + gi,
                        minlength=len(pred_ids) * len(gt_ids)).reshape(len(pred_ids), -1)
    return _mapping_from_table(table, pred_ids, gt_ids)
