"""Label-map helpers shared by all methods: sequential relabelling and superpixel voting."""

from __future__ import annotations

import numpy as np

__all__ = ["sequential", "superpixel_vote", "upsample_nearest"]


def sequential(labels: np.ndarray, *, start: int = 1) -> np.ndarray:
    """Relabel to consecutive integers ``start..start+n-1`` in order of first value.

    Labels are renumbered by increasing original id, so the result is a pure
    function of the partition *and* the ids (deterministic), and every segment
    is visible in a napari ``Labels`` layer (no label 0 when ``start=1``).

    Parameters
    ----------
    labels : numpy.ndarray
        Integer label map of any shape.
    start : int
        First label of the result.

    Returns
    -------
    numpy.ndarray
        ``int32`` array of the same shape.

    Examples
    --------
    >>> sequential(np.array([[7, 7], [3, 9]]))
    array([[2, 2],
           [1, 3]], dtype=int32)
    """
    labels = np.asarray(labels)
    _, inverse = np.unique(labels.ravel(), return_inverse=True)
    return (inverse.reshape(labels.shape) + start).astype(np.int32)


def superpixel_vote(labels: np.ndarray, superpixels: np.ndarray, n_superpixels: int | None = None,
                    n_labels: int | None = None) -> np.ndarray:
    """Give every pixel the most frequent label of its superpixel (Kanezaki 2018, Sec. 2.2).

    Vectorised with one ``bincount`` over (superpixel, label) pairs; ties go to
    the smallest label, as in the authors' code (``argmax`` over sorted labels).

    Parameters
    ----------
    labels : numpy.ndarray
        Non-negative integer labels, any shape.
    superpixels : numpy.ndarray
        Superpixel ids ``0..K-1``, same shape as ``labels``.
    n_superpixels, n_labels : int, optional
        ``K`` and the label bound (computed when omitted).

    Returns
    -------
    numpy.ndarray
        Refined labels, same shape and dtype as ``labels``.
    """
    lab = labels.ravel()
    sp = superpixels.ravel()
    if n_superpixels is None:
        n_superpixels = int(sp.max()) + 1
    if n_labels is None:
        n_labels = int(lab.max()) + 1
    counts = np.bincount(sp.astype(np.int64) * n_labels + lab, minlength=n_superpixels * n_labels)
    winner = counts.reshape(n_superpixels, n_labels).argmax(axis=1).astype(labels.dtype)
    return winner[sp].reshape(labels.shape)


def upsample_nearest(labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a 2-D label map to ``shape`` (pixel-centre aligned)."""
    h, w = labels.shape
    if (h, w) == tuple(shape):
        return labels
    rows = np.minimum(((np.arange(shape[0]) + 0.5) * h / shape[0]).astype(np.intp), h - 1)
    cols = np.minimum(((np.arange(shape[1]) + 0.5) * w / shape[1]).astype(np.intp), w - 1)
    return labels[rows[:, None], cols[None, :]]
