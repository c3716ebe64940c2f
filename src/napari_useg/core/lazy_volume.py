"""Volumes read a window at a time: dask, zarr and memory-mapped arrays larger than memory.

A volume method that trains on patches and predicts tile by tile (``Method.lazy_volumes``)
never needs the whole volume at once. For such a method, a volume given as a lazy array
(anything array-like that is not an in-memory NumPy array: a ``dask.array``, a
``zarr.Array``, a ``numpy.memmap``) is not read into memory: :func:`prepare_lazy_volume`
wraps it in a :class:`LazyVolume`, which reads and scales only the window asked for.

Scaling follows :func:`~napari_useg.core.image.prepare_image`'s rules through
:func:`~napari_useg.core.image.channel_ranges`: ``uint8`` divided by 255, floats in
``[0, 1]`` kept, anything else stretched between the 1st and 99.8th percentiles per
channel, here estimated from a regular subsample of at most ``max_samples`` voxels (all of
them in a small volume, where the result equals the in-memory preparation). NaN and
infinite values are reported where a window holding them is read.
"""

from __future__ import annotations

from typing import Any

import dask.array as da
import numpy as np

from napari_useg.core.image import PreparedImage, apply_ranges, channel_ranges, channels_last

__all__ = ["LazyVolume", "is_lazy_array", "prepare_lazy_volume"]


def is_lazy_array(image: Any) -> bool:
    """True for array-likes whose pixels are not all in memory (dask, zarr, memmap)."""
    if isinstance(image, np.memmap):
        return True
    if isinstance(image, np.ndarray):
        return False
    if not all(hasattr(image, a) for a in ("shape", "dtype", "__getitem__", "ndim")):
        return False
    try:  # a NumPy dtype (dask, zarr, h5py...); torch tensors and others are read as before
        np.dtype(image.dtype)
    except TypeError:
        return False
    return True


class LazyVolume:
    """A raw ``(Z, Y, X, C)`` volume that reads and scales one window per indexing.

    Parameters
    ----------
    raw : array_like
        Lazy ``(Z, Y, X, C)`` array (channels last, see
        :func:`~napari_useg.core.image.channels_last`).
    lo, hi : numpy.ndarray
        Per-channel ranges (:func:`~napari_useg.core.image.channel_ranges`).

    Examples
    --------
    >>> import numpy as np
    >>> vol = LazyVolume(np.full((4, 5, 6, 1), 51, np.uint8), np.zeros(1), np.full(1, 255.0))
    >>> window = vol[1:3, :2, :2]  # read and scaled: only this window
    >>> vol.shape, window.shape, window.dtype, round(float(window.max()), 3)
    ((4, 5, 6, 1), (2, 2, 2, 1), dtype('float32'), 0.2)
    """

    ndim = 4
    dtype = np.dtype(np.float32)

    def __init__(self, raw: Any, lo: np.ndarray, hi: np.ndarray) -> None:
        self.raw = raw
        self.lo = np.asarray(lo, dtype=np.float64)
        self.hi = np.asarray(hi, dtype=np.float64)
        self.shape = tuple(int(n) for n in raw.shape)

    def __getitem__(self, window: Any) -> np.ndarray:
        block = np.asarray(self.raw[window])
        if block.ndim != 4:
            raise IndexError("index a LazyVolume with slices that keep its 4 axes")
        if np.issubdtype(block.dtype, np.floating) and not np.isfinite(block).all():
            raise ValueError("volume contains NaN or infinite values (in the window "
                             f"{window!r})")
        return apply_ranges(block, self.lo, self.hi)


def prepare_lazy_volume(image: Any, channel_axis: int | None = None,
                        max_samples: int = 4_000_000) -> PreparedImage:
    """A :class:`~napari_useg.core.image.PreparedImage` whose ``data`` is a :class:`LazyVolume`.

    Parameters
    ----------
    image : array_like
        ``(Z, Y, X)`` lazy array, or 4-D with ``channel_axis``.
    channel_axis : int, optional
        Axis holding the channels.
    max_samples : int
        Voxels read (on a regular grid) to estimate the scaling percentiles.

    Raises
    ------
    TypeError, ValueError
        As :func:`~napari_useg.core.image.prepare_image` for a volume, for non-numeric
        data or a bad layout.
    """
    if not hasattr(image, "compute"):  # zarr, memmap...: dask reads them chunk by chunk
        image = da.from_array(image, chunks="auto")
    arr, _ = channels_last(image, channel_axis, spatial_dims=3)
    lo, hi = channel_ranges([arr], max_samples)
    return PreparedImage(LazyVolume(arr, lo, hi), False, np.dtype(arr.dtype))
