"""Matched pixel accuracy: Hungarian (one-to-one) and many-to-one."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from napari_useg.metrics.contingency import contingency

__all__ = ["MatchResult", "hungarian_accuracy", "hungarian_match"]


@dataclass(frozen=True)
class MatchResult:
    """Result of matching predicted clusters to ground-truth labels.

    Attributes
    ----------
    accuracy : float
        Matched pixels / scored pixels.
    mapping : dict
        Predicted label -> ground-truth label (only matched clusters).
    n_scored : int
        Number of pixels scored (ignored ones left out).
    """

    accuracy: float
    mapping: dict[int, int]
    n_scored: int

    def recolour(self, pred: np.ndarray, unmatched: int = 0) -> np.ndarray:
        """Prediction with matched clusters renamed to their ground-truth ids.

        Unmatched clusters get ``unmatched``.
        """
        pred = np.asarray(pred)
        ids, inv = np.unique(pred, return_inverse=True)
        lut = np.array([self.mapping.get(int(i), unmatched) for i in ids], dtype=np.int64)
        return lut[inv].reshape(pred.shape)


def hungarian_match(
    pred: np.ndarray, gt: np.ndarray, ignore: int | Iterable[int] | None = None
) -> MatchResult:
    """One-to-one matching of clusters to ground-truth labels maximising overlap.

    A contingency table of predicted clusters by ground-truth labels is solved by
    ``scipy.optimize.linear_sum_assignment`` (maximum total overlap); pixels of
    clusters left unmatched (more clusters than labels) count as errors.

    Parameters
    ----------
    pred, gt : numpy.ndarray
        Integer label maps of the same shape.
    ignore : int or iterable of int, optional
        Ground-truth values not scored (e.g. 255 for unannotated pixels).

    Returns
    -------
    MatchResult

    Examples
    --------
    >>> pred = np.array([[1, 1], [2, 2]]); gt = np.array([[7, 7], [7, 3]])
    >>> r = hungarian_match(pred, gt)
    >>> r.accuracy, r.mapping
    (0.75, {1: 7, 2: 3})
    """
    table, pred_ids, gt_ids = contingency(pred, gt, ignore)
    n = int(table.sum())
    rows, cols = linear_sum_assignment(table, maximize=True)
    matched = int(table[rows, cols].sum())
    mapping = {int(pred_ids[r]): int(gt_ids[c]) for r, c in zip(rows, cols, strict=True)}
    return MatchResult(matched / n, mapping, n)


def hungarian_accuracy(
    pred: np.ndarray, gt: np.ndarray, ignore: int | Iterable[int] | None = None
) -> float:
    """Hungarian one-to-one matched pixel accuracy (see :func:`hungarian_match`).

    Examples
    --------
    >>> hungarian_accuracy(np.array([1, 1, 2, 2]), np.array([5, 5, 5, 6]))
    0.75
    """
    return hungarian_match(pred, gt, ignore).accuracy
