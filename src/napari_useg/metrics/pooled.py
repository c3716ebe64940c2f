"""Pooled (whole-set) matched accuracy: one mapping for every image of a set.

The protocol of dataset-level methods (IIC, Ji et al. 2019; InMARS, Mirsadeghi et al.
2021): a model applied to many images gives labels that mean the same in each of
them, so its clusters are matched to the classes *once*, from the contingency tables
of all images summed (every pixel of every image counts once), and that one mapping
scores every pixel. A per-image score (:func:`~napari_useg.metrics.hungarian_accuracy`
image by image) instead lets every image choose its own mapping, which hides a
model whose cluster "nucleus" means background in half of the images.

* :func:`pooled_contingency`: the summed table;
* :func:`pooled_hungarian_match` / :func:`pooled_hungarian_accuracy`: one-to-one;
* :func:`pooled_many_to_one_match` / :func:`pooled_many_to_one_accuracy`: every
  cluster to its majority class (IIC's over-clustering protocol), optionally with the
  mapping estimated on some images (``mapping_on``) and scored on the others.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from napari_useg.metrics.accuracy import MatchResult
from napari_useg.metrics.contingency import _check_maps, dense_ids, valid_mask

__all__ = [
    "pooled_contingency",
    "pooled_hungarian_accuracy",
    "pooled_hungarian_match",
    "pooled_many_to_one_accuracy",
    "pooled_many_to_one_match",
]

Ignore = int | Iterable[int] | None


def _pairs(preds: Sequence[np.ndarray], gts: Sequence[np.ndarray]
           ) -> list[tuple[np.ndarray, np.ndarray]]:
    if isinstance(preds, np.ndarray) or isinstance(gts, np.ndarray):
        raise TypeError("preds and gts must be sequences of label maps (lists), not one array")
    if len(preds) != len(gts):
        raise ValueError(f"got {len(preds)} predictions but {len(gts)} ground truths")
    if not len(preds):
        raise ValueError("no images given")
    out = []
    for k, (p, g) in enumerate(zip(preds, gts, strict=True)):
        try:
            out.append(_check_maps(p, g))
        except ValueError as exc:
            raise ValueError(f"image {k}: {exc}") from None
    return out


def pooled_contingency(preds: Sequence[np.ndarray], gts: Sequence[np.ndarray],
                       ignore: Ignore = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Contingency table summed over a set of images (every pixel counts once).

    Parameters
    ----------
    preds, gts : sequence of numpy.ndarray
        Prediction and ground-truth label maps, pairwise of the same shape (pairs may
        differ in shape). A cluster id must mean the same in every image.
    ignore : int or iterable of int, optional
        Ground-truth values not scored.

    Returns
    -------
    table : numpy.ndarray
        ``(n_pred, n_gt)`` ``int64`` counts over all images.
    pred_ids, gt_ids : numpy.ndarray
        The labels behind rows and columns (union over the images, sorted).

    Raises
    ------
    ValueError
        Different numbers of predictions and ground truths, no images, a pair of
        different shapes, or no pixel left to score.

    Examples
    --------
    >>> t, p, g = pooled_contingency([np.array([1, 2])], [np.array([0, 0])])
    >>> t.tolist(), p.tolist(), g.tolist()
    ([[1], [1]], [1, 2], [0])
    """
    ps, gs = [], []
    for p, g in _pairs(preds, gts):
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
                        minlength=len(pred_ids) * len(gt_ids))
    return table.reshape(len(pred_ids), len(gt_ids)), pred_ids, gt_ids


def _split(n: int, mapping_on: Sequence[int] | None) -> tuple[list[int], list[int]]:
    """Images that estimate the mapping and images that are scored."""
    if mapping_on is None:
        return list(range(n)), list(range(n))
    fit = sorted({int(i) for i in mapping_on})
    if not fit:
        raise ValueError("mapping_on is empty: no image to estimate the mapping on")
    bad = [i for i in fit if not 0 <= i < n]
    if bad:
        raise ValueError(f"mapping_on holds image indices {bad} outside 0..{n - 1}")
    rest = [i for i in range(n) if i not in set(fit)]
    if not rest:
        raise ValueError("mapping_on holds every image: no image left to score")
    return fit, rest


def _score(preds, gts, ignore, mapping: dict[int, int]) -> MatchResult:
    """Accuracy of one mapping on a set (clusters it lacks count as errors)."""
    table, pred_ids, gt_ids = pooled_contingency(preds, gts, ignore)
    n = int(table.sum())
    col = {int(g): j for j, g in enumerate(gt_ids)}
    rows = [i for i, p in enumerate(pred_ids) if mapping.get(int(p)) in col]
    correct = int(table[rows, [col[mapping[int(pred_ids[i])]] for i in rows]].sum()) if rows \
        else 0
    return MatchResult(correct / n, dict(mapping), n)


def pooled_hungarian_match(preds: Sequence[np.ndarray], gts: Sequence[np.ndarray],
                           ignore: Ignore = None,
                           mapping_on: Sequence[int] | None = None) -> MatchResult:
    """One one-to-one mapping for the whole set, from the summed contingency tables.

    Parameters
    ----------
    preds, gts : sequence of numpy.ndarray
        Label maps of a model applied to every image (a cluster id means the same
        in every image).
    ignore : int or iterable of int, optional
        Ground-truth values not scored.
    mapping_on : sequence of int, optional
        Indices of the images the mapping is estimated on; the accuracy is then that
        of the *other* images. Default: estimated on and applied to every image.

    Returns
    -------
    MatchResult
        ``accuracy`` = matched pixels / scored pixels of the scored images;
        ``mapping`` the one cluster -> class mapping.

    Examples
    --------
    Two images each perfectly segmented, but with the cluster ids swapped:

    >>> a = (np.array([1, 1, 2, 2]), np.array([0, 0, 1, 1]))
    >>> b = (np.array([1, 1, 1, 1, 2, 2]), np.array([1, 1, 1, 1, 0, 0]))
    >>> pooled_hungarian_accuracy([a[0], b[0]], [a[1], b[1]])
    0.6
    """
    pairs = _pairs(preds, gts)
    fit, rest = _split(len(pairs), mapping_on)
    table, pred_ids, gt_ids = pooled_contingency([pairs[i][0] for i in fit],
                                                 [pairs[i][1] for i in fit], ignore)
    rows, cols = linear_sum_assignment(table, maximize=True)
    mapping = {int(pred_ids[r]): int(gt_ids[c]) for r, c in zip(rows, cols, strict=True)}
    return _score([pairs[i][0] for i in rest], [pairs[i][1] for i in rest], ignore, mapping)


def pooled_hungarian_accuracy(preds: Sequence[np.ndarray], gts: Sequence[np.ndarray],
                              ignore: Ignore = None,
                              mapping_on: Sequence[int] | None = None) -> float:
    """Pooled Hungarian accuracy (see :func:`pooled_hungarian_match`)."""
    return pooled_hungarian_match(preds, gts, ignore, mapping_on).accuracy


def pooled_many_to_one_match(preds: Sequence[np.ndarray], gts: Sequence[np.ndarray],
                             ignore: Ignore = None,
                             mapping_on: Sequence[int] | None = None) -> MatchResult:
    """Every cluster to the class it overlaps most over the whole set (IIC's over-clustering).

    Parameters are those of :func:`pooled_hungarian_match`. With ``mapping_on`` the
    mapping is estimated on those images and applied to the others (IIC estimates it
    on the training split and scores the test split); a cluster never seen on the
    estimation images counts as an error.

    Examples
    --------
    >>> preds = [np.array([1, 2, 3]), np.array([1, 2, 3])]
    >>> gts = [np.array([0, 1, 1]), np.array([0, 1, 0])]
    >>> pooled_many_to_one_accuracy(preds, gts)
    0.8333333333333334
    >>> pooled_many_to_one_accuracy(preds, gts, mapping_on=[0])
    0.6666666666666666
    """
    pairs = _pairs(preds, gts)
    fit, rest = _split(len(pairs), mapping_on)
    table, pred_ids, gt_ids = pooled_contingency([pairs[i][0] for i in fit],
                                                 [pairs[i][1] for i in fit], ignore)
    best = table.argmax(axis=1)  # ties: the smallest class id
    mapping = {int(p): int(gt_ids[b]) for p, b in zip(pred_ids, best, strict=True)}
    return _score([pairs[i][0] for i in rest], [pairs[i][1] for i in rest], ignore, mapping)


def pooled_many_to_one_accuracy(preds: Sequence[np.ndarray], gts: Sequence[np.ndarray],
                                ignore: Ignore = None,
                                mapping_on: Sequence[int] | None = None) -> float:
    """Pooled many-to-one accuracy (see :func:`pooled_many_to_one_match`)."""
    return pooled_many_to_one_match(preds, gts, ignore, mapping_on).accuracy
