"""Aligning the label ids of one label map to another (Hungarian matching on overlap)."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from .metrics.contingency import contingency

__all__ = ["align_labels", "matching"]


def matching(reference: np.ndarray, labels: np.ndarray) -> dict[int, int]:
    """Maximum-overlap one-to-one assignment of ``labels`` ids to ``reference`` ids.

    Returns
    -------
    dict
        ``label id -> reference id`` for the matched pairs (pairs with zero overlap
        are not matched).
    """
    table, lab_ids, ref_ids = contingency(labels, reference)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return {int(lab_ids[r]): int(ref_ids[c]) for r, c in zip(rows, cols, strict=True)
            if table[r, c] > 0}


def align_labels(reference: np.ndarray, labels: np.ndarray, *,
                 keep_unmatched: bool = False) -> np.ndarray:
    """Rename the ids of ``labels`` so that they agree with ``reference`` where they overlap.

    The overlap (contingency) matrix between the two maps is solved for the
    maximum-weight one-to-one assignment (``scipy.optimize.linear_sum_assignment``);
    each matched cluster of ``labels`` takes its partner's id. Use it to keep
    colours stable when a method is re-run, or between consecutive slices of a stack.

    Parameters
    ----------
    reference : numpy.ndarray
        Integer label map whose ids are kept.
    labels : numpy.ndarray
        Integer label map of the same shape to rename.
    keep_unmatched : bool
        Unmatched clusters (more clusters in ``labels`` than in ``reference``)
        keep their own ids when True (the label-space convention of MMT, where both
        maps use the same ``q`` network channels). When False (default) they get
        new ids above every id of ``reference`` and ``labels``, so no two clusters
        ever share an id.

    Returns
    -------
    numpy.ndarray
        The renamed label map (same dtype as ``labels``, same partition).

    Raises
    ------
    ValueError
        If the shapes differ or the maps are not integer-valued.

    Examples
    --------
    >>> ref = np.array([[1, 1, 2, 2]])
    >>> align_labels(ref, np.array([[5, 5, 9, 9]]))
    array([[1, 1, 2, 2]])
    """
    labels = np.asarray(labels)
    reference = np.asarray(reference)
    mapping = matching(reference, labels)
    ids, inverse = np.unique(labels, return_inverse=True)
    if keep_unmatched:
        lut = np.array([mapping.get(int(i), int(i)) for i in ids], dtype=np.int64)
        if len(np.unique(lut)) != len(lut):
            raise ValueError(
                "keep_unmatched=True would merge clusters: an unmatched id is also a matched "
                "reference id; use keep_unmatched=False"
            )
    else:
        next_id = int(max(reference.max(initial=0), labels.max(initial=0))) + 1
        lut = np.empty(len(ids), dtype=np.int64)
        for k, i in enumerate(ids):  # loop over clusters (not pixels): at most a few hundred
            if int(i) in mapping:
                lut[k] = mapping[int(i)]
            else:
                lut[k] = next_id
                next_id += 1
    return lut[inverse].reshape(labels.shape).astype(labels.dtype, copy=False)
