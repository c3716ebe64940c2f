"""Object-level scores of an instance segmentation (nuclei, cells): matched objects at IoU.

A predicted object and a true object *match* at threshold ``t`` when their
intersection over union exceeds ``t``. For ``t >= 0.5`` an object can match at most one
object of the other map (two objects overlapping one object by more than half of the
union would have to share more than half of its voxels), so counting the pairs above the
threshold in the contingency table gives the optimal one-to-one matching with no
assignment problem to solve: everything is one table and a comparison per threshold.

* precision = TP / predicted objects, recall = TP / true objects,
  F1 = 2 TP / (predicted + true objects) (0 when both are empty: 1.0);
* :func:`instance_scores` gives them at every threshold of ``0.5, 0.55, ..., 0.95`` (the
  COCO/StarDist range), plus the mean F1 over those thresholds.

Label 0 is background in both maps and is never an object.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from napari_useg.metrics.contingency import contingency

__all__ = ["InstanceScores", "instance_scores", "iou_table", "THRESHOLDS"]

#: IoU thresholds of the mean scores (0.5 to 0.95 by 0.05).
THRESHOLDS = np.round(np.arange(0.5, 0.951, 0.05), 2)


@dataclass(frozen=True)
class InstanceScores:
    """Object-level scores of one prediction against one annotation.

    Attributes
    ----------
    thresholds : numpy.ndarray
        IoU thresholds.
    tp : numpy.ndarray
        Matched objects at each threshold.
    n_pred, n_true : int
        Numbers of predicted and true objects.
    precision, recall, f1 : numpy.ndarray
        Per threshold.
    """

    thresholds: np.ndarray
    tp: np.ndarray
    n_pred: int
    n_true: int
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray

    def at(self, threshold: float) -> dict[str, float]:
        """``precision``, ``recall`` and ``f1`` at one of the thresholds."""
        i = int(np.argmin(np.abs(self.thresholds - threshold)))
        if abs(self.thresholds[i] - threshold) > 1e-9:
            raise ValueError(f"no threshold {threshold}; thresholds: {self.thresholds.tolist()}")
        return {"precision": float(self.precision[i]), "recall": float(self.recall[i]),
                "f1": float(self.f1[i])}

    @property
    def f1_50(self) -> float:
        """F1 at IoU 0.5."""
        return self.at(0.5)["f1"]

    @property
    def mean_f1(self) -> float:
        """F1 averaged over the thresholds (0.5..0.95)."""
        return float(self.f1.mean())


def iou_table(pred: np.ndarray, true: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IoU of every (predicted, true) pair of objects (label 0 excluded).

    Returns
    -------
    iou : numpy.ndarray
        ``(n_pred, n_true)`` float64.
    pred_ids, true_ids : numpy.ndarray
        Object labels of the rows and columns.

    Examples
    --------
    >>> iou, _, _ = iou_table(np.array([0, 1, 1, 2]), np.array([0, 1, 1, 1]))
    >>> iou.round(3).tolist()
    [[0.667], [0.333]]
    """
    table, pred_ids, true_ids = contingency(pred, true)
    areas_p = table.sum(axis=1)
    areas_t = table.sum(axis=0)
    keep_p = pred_ids != 0
    keep_t = true_ids != 0
    inter = table[np.ix_(keep_p, keep_t)].astype(np.float64)
    union = areas_p[keep_p][:, None] + areas_t[keep_t][None, :] - inter
    return inter / np.maximum(union, 1), pred_ids[keep_p], true_ids[keep_t]


def instance_scores(pred: np.ndarray, true: np.ndarray,
                    thresholds: np.ndarray | None = None) -> InstanceScores:
    """Precision, recall and F1 of matched objects at each IoU threshold (all ``>= 0.5``).

    Parameters
    ----------
    pred, true : numpy.ndarray
        Integer instance maps of the same shape (0 = background), any number of dimensions.
    thresholds : array_like, optional
        IoU thresholds, each in ``[0.5, 1)`` (default :data:`THRESHOLDS`).

    Returns
    -------
    InstanceScores

    Examples
    --------
    >>> true = np.array([1, 1, 0, 2, 2, 0])
    >>> s = instance_scores(np.array([1, 1, 0, 2, 0, 3]), true)
    >>> s.n_pred, s.n_true, s.f1_50
    (3, 2, 0.4)
    """
    th = THRESHOLDS if thresholds is None else np.asarray(thresholds, dtype=np.float64)
    if th.ndim != 1 or th.size == 0 or th.min() < 0.5 or th.max() >= 1.0:
        raise ValueError(f"thresholds must lie in [0.5, 1) (one-to-one matches), got {th}")
    iou, pred_ids, true_ids = iou_table(pred, true)
    n_pred, n_true = len(pred_ids), len(true_ids)
    pairs = iou[iou > 0.5]  # only these can ever match (see the module docstring)
    tp = (pairs[None, :] > th[:, None]).sum(axis=1).astype(np.int64)
    precision = tp / n_pred if n_pred else np.ones(len(th)) * float(n_true == 0)
    recall = tp / n_true if n_true else np.ones(len(th)) * float(n_pred == 0)
    denom = n_pred + n_true
    f1 = 2.0 * tp / denom if denom else np.ones(len(th))
    return InstanceScores(th, tp, n_pred, n_true, np.asarray(precision, float),
                          np.asarray(recall, float), np.asarray(f1, float))
