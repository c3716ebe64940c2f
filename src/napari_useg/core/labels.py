"""Label-map helpers shared by all methods: sequential relabelling and superpixel voting."""

from __future__ import annotations

import numpy as np

__all__ = ["sequential", "upsample_nearest"]


#: Elements relabelled at once by :func:`sequential`'s lookup table (whole first-axis rows).
_SLAB_ELEMENTS = 1 << 20


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
    if labels.size and labels.dtype.kind in "ui":
        lo, hi = int(labels.min()), int(labels.max())
        if lo >= 0 and hi < max(2 * labels.size, 1 << 16):
            # ids in a compact range: a lookup table instead of np.unique's sort, applied
            # slab by slab along the first axis (fancy indexing makes an intp copy of its
            # index), so a large volume costs its int32 result and no volume-sized
            # int64 temporaries
            if labels.ndim:
                rows = max(1, _SLAB_ELEMENTS // max(1, labels[:1].size))
                slabs = [slice(i, i + rows) for i in range(0, labels.shape[0], rows)]
            else:
                slabs = [Ellipsis]
            present = np.zeros(hi + 1, dtype=bool)
            for sl in slabs:
                present[labels[sl]] = True
            lut = (np.cumsum(present, dtype=np.int64) - 1 + start).astype(np.int32)
            out = np.empty(labels.shape, dtype=np.int32)
            for sl in slabs:
                out[sl] = lut[labels[sl]]
            return out
    _, inverse = np.unique(labels.ravel(), return_inverse=True)
    return (inverse.reshape(labels.shape) + start).astype(np.int32)


def upsample_nearest(labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a 2-D label map to ``shape`` (pixel-centre aligned)."""
    h, w = labels.shape
    if (h, w) == tuple(shape):
        return labels
    rows = np.minimum(((np.arange(shape[0]) + 0.5) * h / shape[0]).astype(np.intp), h - 1)
    cols = np.minimum(((np.arange(shape[1]) + 0.5) * w / shape[1]).astype(np.intp), w - 1)
    return labels[rows[:, None], cols[None, :]]
