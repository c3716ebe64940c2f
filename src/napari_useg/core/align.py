"""Aligning the label ids of one label map to another (Hungarian matching on overlap).

* :func:`align_labels`: rename the ids of a label map to agree with a reference map
  (keeps colours stable between runs or slices);
* :func:`align_to`: the same for a result shown in napari, where id 0 is "no label":
  the background of an objects map stays 0 and never takes an id;
* :func:`matching`: the matched pairs themselves;
* :func:`overlap_permutation` / :func:`channel_permutation`: the same matching as a
  permutation of ``n`` network channels, the label-space alignment of mutual
  mean-teaching (Wu et al. 2020), where both maps are argmaxes over the same ``q``
  channels and unmatched clusters keep their ids.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from napari_useg.metrics.contingency import contingency

__all__ = ["align_labels", "align_to", "channel_permutation", "matching",
           "overlap_permutation"]


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


def align_to(reference: np.ndarray | None, labels: np.ndarray) -> np.ndarray:
    """``labels`` (``int32``) with ids renamed to agree with ``reference``; 0 stays 0.

    Keeps colours when a result is overwritten, and ids from slice to slice of a stack.
    Ids above 0 are matched to the reference's ids above 0 (:func:`align_labels`); pixels
    labelled 0 (the background of an objects map) keep 0, and no other pixel gets 0.
    Without a usable reference (``None``, another shape, not integers) the labels are
    returned as they are.

    Examples
    --------
    >>> ref = np.array([[0, 1, 1, 0, 2, 2]])
    >>> align_to(ref, np.array([[0, 7, 7, 0, 5, 5]]))
    array([[0, 1, 1, 0, 2, 2]], dtype=int32)
    """
    labels = np.asarray(labels)
    if reference is None:
        return labels.astype(np.int32, copy=True)
    ref = np.asarray(reference)
    if ref.shape != labels.shape or not np.issubdtype(ref.dtype, np.integer):
        return labels.astype(np.int32, copy=True)
    # reference pixels without a label (0 or below) get an id of their own, above the rest
    free = int(ref.max(initial=0)) + 1
    ref = np.where(ref > 0, ref, free)
    labelled = labels != 0
    if labelled.all():
        return align_labels(ref, labels).astype(np.int32, copy=False)
    out = np.zeros(labels.shape, np.int32)
    out[labelled] = align_labels(ref[labelled], labels[labelled])
    return out


def overlap_permutation(overlap: np.ndarray) -> np.ndarray:
    """Permutation of ``n`` label ids maximising the overlap with a reference labelling.

    ``overlap[i, j]`` counts the pixels labelled ``i`` in the map to rename and ``j``
    in the reference. The maximum-weight one-to-one assignment
    (``scipy.optimize.linear_sum_assignment``) matches the ids; only pairs with a
    positive overlap count as matched. Every other id keeps its own value when no
    matched id took it, else it gets the smallest id still free (so the result is
    always a permutation, and two clusters never merge).

    Parameters
    ----------
    overlap : numpy.ndarray
        ``(n, n)`` non-negative overlap counts (rows: ids to rename; columns: reference ids).

    Returns
    -------
    numpy.ndarray
        ``int64`` array ``lut`` of length ``n``, a permutation of ``0..n-1``: id ``i``
        becomes ``lut[i]``.

    Raises
    ------
    ValueError
        If ``overlap`` is not a square 2-D array.

    Examples
    --------
    >>> overlap_permutation(np.array([[0, 5, 0], [4, 0, 0], [0, 0, 0]])).tolist()
    [1, 0, 2]
    >>> overlap_permutation(np.array([[0, 0, 0], [0, 0, 0], [6, 0, 0]])).tolist()  # 0 is taken
    [2, 1, 0]
    """
    overlap = np.asarray(overlap)
    if overlap.ndim != 2 or overlap.shape[0] != overlap.shape[1]:
        raise ValueError(f"overlap must be a square matrix, got shape {overlap.shape}")
    n = overlap.shape[0]
    rows, cols = linear_sum_assignment(overlap, maximize=True)
    keep = overlap[rows, cols] > 0
    lut = np.full(n, -1, dtype=np.int64)
    lut[rows[keep]] = cols[keep]
    taken = np.zeros(n, dtype=bool)
    taken[cols[keep]] = True
    own = np.flatnonzero((lut < 0) & ~taken)  # unmatched ids that nobody took: keep them
    lut[own] = own
    taken[own] = True
    rest = np.flatnonzero(lut < 0)  # unmatched ids taken by a matched cluster
    lut[rest] = np.flatnonzero(~taken)[: len(rest)]
    return lut


def channel_permutation(reference: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    """Permutation of the ids ``0..n-1`` of ``labels`` that aligns them with ``reference``.

    Builds the ``(n, n)`` overlap matrix of the two maps with one ``bincount`` and
    solves it with :func:`overlap_permutation`. Use ``lut[labels]`` to rename.

    Parameters
    ----------
    reference, labels : numpy.ndarray
        Integer label maps of the same shape with ids in ``0..n-1`` (e.g. the argmax
        over ``n`` network channels).
    n : int
        Number of ids (channels).

    Returns
    -------
    numpy.ndarray
        ``int64`` permutation of ``0..n-1``.

    Raises
    ------
    ValueError
        If the shapes differ or an id is outside ``0..n-1``.

    Examples
    --------
    >>> ref = np.array([0, 0, 1, 1, 2])
    >>> lab = np.array([2, 2, 0, 0, 1])
    >>> lut = channel_permutation(ref, lab, 3)
    >>> lut[lab].tolist()
    [0, 0, 1, 1, 2]
    """
    reference = np.asarray(reference)
    labels = np.asarray(labels)
    if reference.shape != labels.shape:
        raise ValueError(f"shapes differ: reference {reference.shape}, labels {labels.shape}")
    for name, a in (("reference", reference), ("labels", labels)):
        if not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"{name} must be an integer label map, got dtype {a.dtype}")
        if a.size and (a.min() < 0 or a.max() >= n):
            raise ValueError(f"{name} ids must lie in 0..{n - 1}")
    counts = np.bincount(labels.ravel().astype(np.int64) * n + reference.ravel(),
                         minlength=n * n)
    return overlap_permutation(counts.reshape(n, n))
