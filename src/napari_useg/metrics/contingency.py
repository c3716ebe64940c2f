"""Contingency (overlap) tables between two label maps."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = ["contingency", "dense_ids", "valid_mask", "check_ignore"]


def check_ignore(ignore: Any) -> tuple[int, ...] | None:
    """The ignore value(s) as a tuple of ints; ``TypeError`` for anything but integers.

    A string such as ``'255'`` or a float is refused rather than silently matching
    no pixel.
    """
    if ignore is None:
        return None
    values = [ignore] if np.isscalar(ignore) or isinstance(ignore, str) else list(ignore)
    for v in values:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"ignore must be an integer label value or a list of them, got "
                            f"{ignore!r}")
    return tuple(int(v) for v in values) or None


def valid_mask(gt: np.ndarray, ignore: int | Iterable[int] | None) -> np.ndarray | None:
    """Boolean mask of scored pixels (``None`` when every pixel counts).

    Raises
    ------
    TypeError
        If ``ignore`` is not an integer or a list of integers.
    """
    values = check_ignore(ignore)
    if values is None:
        return None
    return ~np.isin(gt, values)


def dense_ids(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values of ``a`` and the index of each element among them.

    Same result as ``np.unique(a, return_inverse=True)`` (flattened), in linear time
    through a look-up table when the values are small non-negative integers (label
    maps usually are), by sorting otherwise.

    Parameters
    ----------
    a : numpy.ndarray
        Integer or boolean array (any shape; read flattened).

    Returns
    -------
    ids : numpy.ndarray
        The distinct values, sorted.
    inverse : numpy.ndarray
        ``intp`` array of ``a.size`` elements with ``ids[inverse] == a.ravel()``.

    Examples
    --------
    >>> ids, inv = dense_ids(np.array([7, 3, 7, 9]))
    >>> ids.tolist(), inv.tolist()
    ([3, 7, 9], [1, 0, 1, 2])
    """
    flat = np.asarray(a).ravel()
    if flat.dtype == bool:
        present = np.bincount(flat.view(np.uint8), minlength=2) > 0
        lut = np.cumsum(present, dtype=np.intp) - 1
        return np.flatnonzero(present).astype(bool), lut[flat.view(np.uint8)]
    if flat.size and np.issubdtype(flat.dtype, np.integer):
        lo, hi = int(flat.min()), int(flat.max())
        if lo >= 0 and hi <= max(4 * flat.size, 1 << 16):
            present = np.bincount(flat, minlength=hi + 1) > 0
            ids = np.flatnonzero(present).astype(flat.dtype)
            lut = np.cumsum(present, dtype=np.intp) - 1
            return ids, lut[flat]
    ids, inverse = np.unique(flat, return_inverse=True)
    return ids, inverse.ravel().astype(np.intp, copy=False)


def _check_maps(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred)
    gt = np.asarray(gt)
    if pred.shape != gt.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from ground truth {gt.shape}")
    if pred.size == 0:
        raise ValueError(f"nothing to score: the label maps are empty (shape {pred.shape})")
    for name, a in (("prediction", pred), ("ground truth", gt)):
        if not (np.issubdtype(a.dtype, np.integer) or a.dtype == bool):
            raise ValueError(f"{name} must be an integer label map, got dtype {a.dtype}")
    return pred, gt


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
        If the shapes differ, the maps are not integer-valued or empty, or every
        pixel is ignored (nothing to score: no score is made up from nothing).
    TypeError
        If ``ignore`` is not an integer or a list of integers.

    Examples
    --------
    >>> t, p, g = contingency(np.array([1, 1, 2]), np.array([5, 6, 6]))
    >>> t.tolist(), p.tolist(), g.tolist()
    ([[1, 1], [0, 1]], [1, 2], [5, 6])
    """
    pred, gt = _check_maps(pred, gt)
    mask = valid_mask(gt, ignore)
    p = pred.ravel() if mask is None else pred[mask]
    g = gt.ravel() if mask is None else gt[mask]
    if g.size == 0:
        raise ValueError("no pixels to score (all ground-truth pixels are ignored)")
    pred_ids, pi = dense_ids(p)
    gt_ids, gi = dense_ids(g)
    table = np.bincount(pi.astype(np.int64) * len(gt_ids) + gi,
                        minlength=len(pred_ids) * len(gt_ids))
    return table.reshape(len(pred_ids), len(gt_ids)), pred_ids, gt_ids
