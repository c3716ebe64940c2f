"""Countable objects from a segmentation: the ``instances`` output.

A method gives *classes* (every nucleus carries the same label). Objects are the
connected pieces of the foreground class:

1. foreground: the class(es) the user names, or every class but the *background*, the
   class owning the largest connected region (the medium around the nuclei);
2. 6-connected (face-connected; 4-connected in 2-D) components of the foreground;
3. optionally, touching objects split by a watershed of the Euclidean distance to the
   background, computed in physical units (``spacing``), from one marker per distance
   maximum in an ellipsoid of ``split_radius`` (physical units) around it (maxima
   closer than that, as on a plateau, make one marker);
4. objects of fewer than ``min_size`` voxels dropped; ids renumbered ``1..n``, 0 =
   background.

Everything is whole-array scipy/scikit-image operations (no loop over objects).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from scipy import ndimage as ndi
from skimage.feature import peak_local_max
from skimage.measure import label as connected
from skimage.segmentation import watershed

__all__ = ["background_class", "foreground_mask", "label_objects", "instances"]


def _spacing(spacing: Sequence[float] | None, ndim: int) -> tuple[float, ...]:
    if spacing is None:
        return (1.0,) * ndim
    out = tuple(float(s) for s in spacing)
    if len(out) != ndim:
        raise ValueError(f"spacing needs {ndim} values, got {len(out)}")
    return out


def background_class(classes: np.ndarray) -> int:
    """The class owning the largest face-connected region.

    Examples
    --------
    >>> background_class(np.array([[1, 1, 2], [1, 1, 2], [2, 1, 1]]))
    1
    """
    classes = np.asarray(classes)
    outside = int(classes.min()) - 1  # a value no pixel has: every pixel is in a region
    if classes.dtype.kind not in "iu" or outside < np.iinfo(classes.dtype).min:
        classes = classes.astype(np.int64)  # e.g. uint8 labels from 0: -1 would wrap
    regions = connected(classes, background=outside, connectivity=1)
    sizes = np.bincount(regions.ravel())
    sizes[0] = 0
    largest = int(np.argmax(sizes))
    return int(classes.ravel()[np.flatnonzero(regions.ravel() == largest)[0]])


def foreground_mask(classes: np.ndarray, foreground: int | Iterable[int] | None = None
                    ) -> np.ndarray:
    """Boolean mask of the foreground class(es) (default: all but :func:`background_class`)."""
    classes = np.asarray(classes)
    if foreground is None:
        return classes != background_class(classes)
    values = np.atleast_1d(np.asarray(list(foreground) if not np.isscalar(foreground)
                                      else [foreground]))
    present = np.isin(values, classes)
    if not present.any():
        raise ValueError(f"foreground class {foreground!r} does not occur in the labels "
                         f"(labels 1..{int(classes.max())})")
    return np.isin(classes, values)


def _remove_small(objects: np.ndarray, min_size: int) -> np.ndarray:
    sizes = np.bincount(objects.ravel())
    small = sizes < min_size
    small[0] = False
    out = np.where(small[objects], 0, objects)
    ids = np.unique(out)
    ids = ids[ids != 0]
    lut = np.zeros(int(out.max()) + 1, dtype=np.int32)
    lut[ids] = np.arange(1, len(ids) + 1, dtype=np.int32)
    return lut[out]


def _ellipsoid(radius: float, spacing: tuple[float, ...]) -> np.ndarray:
    half = [max(1, int(np.floor(radius / s))) for s in spacing]
    grids = np.meshgrid(*[np.arange(-h, h + 1) * s for h, s in zip(half, spacing, strict=True)],
                        indexing="ij")
    return sum(g**2 for g in grids) <= radius**2


def label_objects(mask: np.ndarray, *, spacing: Sequence[float] | None = None,
                  split: bool = False, min_size: int = 64,
                  split_radius: float | None = None) -> np.ndarray:
    """Objects of a foreground mask: connected components, optional watershed split.

    Parameters
    ----------
    mask : numpy.ndarray
        Boolean foreground, 2-D or 3-D.
    spacing : sequence of float, optional
        Pixel/voxel size per axis (the distance transform and the split use it).
    split : bool
        Split touching objects with a distance-transform watershed.
    min_size : int
        Drop objects of fewer pixels/voxels.
    split_radius : float, optional
        Smallest distance between two markers, in physical units (default: twice the
        largest spacing value).

    Returns
    -------
    numpy.ndarray
        ``int32`` objects ``1..n``, 0 = background.
    """
    mask = np.asarray(mask, dtype=bool)
    sp = _spacing(spacing, mask.ndim)
    structure = ndi.generate_binary_structure(mask.ndim, 1)
    objects, _ = ndi.label(mask, structure=structure)
    objects = _remove_small(objects.astype(np.int32), min_size)
    if split and objects.max() > 0:
        kept = objects > 0
        dist = ndi.distance_transform_edt(kept, sampling=sp)
        radius = 2.0 * max(sp) if split_radius is None else float(split_radius)
        footprint = _ellipsoid(radius, sp)
        peaks = peak_local_max(dist, footprint=footprint, labels=objects,
                               exclude_border=False)
        at_peak = np.zeros(objects.shape, dtype=bool)
        at_peak[tuple(peaks.T)] = True
        # maxima closer than the radius (a plateau of the distance) make one marker
        near, _ = ndi.label(ndi.binary_dilation(at_peak, footprint) & kept, structure)
        markers = np.where(at_peak, near, 0).astype(np.int32)
        objects = watershed(-dist, markers, mask=kept, connectivity=structure)
        objects = _remove_small(objects.astype(np.int32), min_size)
    return objects.astype(np.int32, copy=False)


def instances(classes: np.ndarray, *, foreground: int | Iterable[int] | None = None,
              spacing: Sequence[float] | None = None, split: bool = False,
              min_size: int = 64, split_radius: float | None = None) -> np.ndarray:
    """Countable objects of a class map (see the module docstring).

    Parameters
    ----------
    classes : numpy.ndarray
        Label map of a method (2-D or 3-D).
    foreground : int or iterable of int, optional
        Class label(s) holding the objects; default every class but the background.
    spacing, split, min_size, split_radius
        As :func:`label_objects`.

    Returns
    -------
    numpy.ndarray
        ``int32`` objects ``1..n``, 0 = background.

    Examples
    --------
    >>> classes = np.ones((20, 20), int); classes[2:6, 2:6] = 2; classes[10:15, 10:15] = 2
    >>> objs = instances(classes, min_size=4)
    >>> int(objs.max()), int((objs == 2).sum())
    (2, 25)
    """
    mask = foreground_mask(classes, foreground)
    return label_objects(mask, spacing=spacing, split=split, min_size=min_size,
                         split_radius=split_radius)
