"""Contingency (overlap) tables between two label maps."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

__all__ = ["contingency", "valid_mask"]


def valid_mask(gt: np.ndarray, ignore: int | Iterable[int] | None) -> np.ndarray | None:
    """Boolean mask of scored pixels (``None`` when every pixel counts)."""
    if ignore is None:
        return None
    values = [ignore] if np.isscalar(ignore) else list(ignore)
    if not values:
        return None
    return ~np.isin(gt, values)


def contingency(
    pred: np.ndarray, gt: np.ndarray, ignore: int | Iterable[int] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Overlap counts between predicted and ground-truth labels.

    Parameters
    ----------
    pred, gt : numpy.ndarray
        Integer label maps of the same shape.
    ignore : int or iterable of int, optional
        Ground-truth values whose pixels are not scored.

    Returns
    -------
    table : numpy.ndarray
        ``(n_pred, n_gt)`` ``int64`` counts, rows and columns in sorted label order.
    pred_ids, gt_ids : numpy.ndarray
        The labels behind the rows and the columns.

    Raises
    ------
    ValueError
        If the shapes differ or the maps are not integer-valued.

    Examples
    --------
    >>> t, p, g = contingency(np.array([1, 1, 2]), np.array([5, 6, 6]))
    >>> t.tolist(), p.tolist(), g.tolist()
    ([[1, 1], [0, 1]], [1, 2], [5, 6])
    """
    pred = np.asarray(pred)
    gt = np.asarray(gt)
    if pred.shape != gt.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from ground truth {gt.shape}")
    for name, a in (("prediction", pred), ("ground truth", gt)):
        if not (np.issubdtype(a.dtype, np.integer) or a.dtype == bool):
            raise ValueError(f"{name} must be an integer label map, got dtype {a.dtype}")
    mask = valid_mask(gt, ignore)
    p = pred.ravel() if mask is None else pred[mask]
    g = gt.ravel() if mask is None else gt[mask]
    pred_ids, pi = np.unique(p, return_inverse=True)
    gt_ids, gi = np.unique(g, return_inverse=True)
    table = np.bincount(pi.astype(np.int64) * len(gt_ids) + gi,
                        minlength=len(pred_ids) * len(gt_ids))
    return table.reshape(len(pred_ids), len(gt_ids)), pred_ids, gt_ids
