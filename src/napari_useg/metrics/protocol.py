"""The dataset protocol for matched accuracy on BSDS500 (and any multi-annotator set).

* per image: the mean over annotators of the Hungarian (one-to-one) accuracy
  (:func:`annotator_mean`);
* per method: the mean over images;
* over parameter settings (e.g. ``k`` of k-means): ODS, the one setting best for the
  whole set, and OIS, the best setting of each image (:func:`ods_ois`).

See ``docs/evaluation.md`` for why the figures differ from the ones printed in the
papers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from napari_useg.metrics.accuracy import hungarian_accuracy

__all__ = ["ODSOIS", "annotator_mean", "as_annotators", "bsds_accuracy", "ods_ois"]

Ignore = int | Iterable[int] | None


def as_annotators(gt: np.ndarray | Sequence[np.ndarray], ndim: int = 2) -> list[np.ndarray]:
    """One annotation, a stack (annotator first) or a list, as a list of ``ndim``-D maps."""
    if isinstance(gt, np.ndarray) and gt.dtype != object:
        if gt.ndim == ndim:
            return [gt]
        if gt.ndim == ndim + 1:
            return list(gt)
        raise ValueError(f"ground truth must be {ndim}-D or a stack of {ndim}-D maps "
                         f"(annotator first), got shape {gt.shape}")
    gts = [np.asarray(g) for g in gt]
    if not gts:
        raise ValueError("no ground-truth label maps given")
    for k, g in enumerate(gts):
        if g.ndim != ndim:
            raise ValueError(f"ground truth {k} must be {ndim}-D, got shape {g.shape}")
    return gts


def annotator_mean(pred: np.ndarray, gt: np.ndarray | Sequence[np.ndarray],
                   metric: Callable[..., float] = hungarian_accuracy,
                   ignore: Ignore = None) -> float:
    """Mean of ``metric(pred, g, ignore)`` over the annotators ``g`` of ``gt``.

    Parameters
    ----------
    pred : numpy.ndarray
        Label map.
    gt : numpy.ndarray or sequence of numpy.ndarray
        One annotation or several (list or ``(K, H, W)`` stack).
    metric : callable
        ``metric(pred, gt, ignore) -> float``; Hungarian accuracy by default.
    ignore : int or iterable of int, optional
        Ground-truth values not scored.

    Returns
    -------
    float

    Examples
    --------
    >>> pred = np.array([[1, 1], [2, 2]])
    >>> annotator_mean(pred, [np.array([[1, 1], [2, 2]]), np.array([[1, 1], [1, 1]])])
    0.75
    """
    pred = np.asarray(pred)
    return float(np.mean([metric(pred, g, ignore) for g in as_annotators(gt, pred.ndim)]))


def bsds_accuracy(pred: np.ndarray, gt: np.ndarray | Sequence[np.ndarray],
                  ignore: Ignore = None) -> float:
    """BSDS per-image accuracy: the mean over annotators of the Hungarian accuracy."""
    return annotator_mean(pred, gt, hungarian_accuracy, ignore)


@dataclass(frozen=True)
class ODSOIS:
    """Best parameter setting for a set (ODS) and per image (OIS).

    Attributes
    ----------
    ods : float
        Mean over images at the best single setting.
    ods_index : int
        That setting (column of the score table; first best on ties).
    ois : float
        Mean over images of each image's best score.
    ois_index : numpy.ndarray
        Each image's best setting (first best on ties).
    per_setting : numpy.ndarray
        Mean over images of every setting.
    """

    ods: float
    ods_index: int
    ois: float
    ois_index: np.ndarray
    per_setting: np.ndarray


def ods_ois(scores: np.ndarray, *, higher_is_better: bool = True) -> ODSOIS:
    """ODS and OIS of a table of per-image scores.

    Parameters
    ----------
    scores : array_like
        ``(n_images, n_settings)`` scores (e.g. the annotator-mean Hungarian accuracy of
        each image under each parameter setting). A 1-D array is one setting.
    higher_is_better : bool
        False for scores such as the variation of information.

    Returns
    -------
    ODSOIS

    Raises
    ------
    ValueError
        If the table is empty or holds NaN.

    Examples
    --------
    >>> r = ods_ois([[0.5, 0.9], [0.7, 0.6]])
    >>> round(r.ods, 3), r.ods_index, round(r.ois, 3), r.ois_index.tolist()
    (0.75, 1, 0.8, [1, 0])
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim == 1:
        s = s[:, None]
    if s.ndim != 2 or s.size == 0:
        raise ValueError(f"scores must be a non-empty (n_images, n_settings) table, got "
                         f"shape {s.shape}")
    if np.isnan(s).any():
        raise ValueError("scores hold NaN")
    sign = 1.0 if higher_is_better else -1.0
    mean = s.mean(axis=0)
    k = int(np.argmax(sign * mean))
    best = np.argmax(sign * s, axis=1)
    ois = float(s[np.arange(len(s)), best].mean())
    return ODSOIS(float(mean[k]), k, ois, best, mean)
