"""Superpixels and the superpixel vote of Kanezaki-style refinement (scikit-image underneath)."""

from __future__ import annotations

import numpy as np
import torch
from skimage.segmentation import slic

from napari_useg.core.labels import sequential

__all__ = ["slic_superpixels", "superpixel_vote"]


def slic_superpixels(image: np.ndarray, n_segments: int, compactness: float,
                     is_rgb: bool, spacing: tuple[float, ...] | None = None) -> np.ndarray:
    """SLIC superpixel ids ``0..K-1`` of a ``float32`` ``(H, W, C)`` image in ``[0, 1]``.

    A volume ``(Z, Y, X, C)`` gives SLIC supervoxels; ``spacing`` (one value per spatial
    axis) makes their shape follow physical distances (scikit-image's ``spacing``).

    RGB images are clustered in CIELAB (scikit-image's default, and what the
    authors' code intends); other channel layouts are scaled to ``[0, 100]``,
    the range of CIELAB lightness, so ``compactness`` means the same trade-off.

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W, C)`` float image in ``[0, 1]``.
    n_segments : int
        Approximate number of superpixels ``K``.
    compactness : float
        Colour versus space trade-off (100 in the authors' code).
    is_rgb : bool
        Whether the channels are RGB.
    spacing : tuple of float, optional
        Pixel/voxel size per spatial axis (default isotropic).

    Returns
    -------
    numpy.ndarray
        ``int64`` superpixel ids, consecutive from 0.
    """
    n_segments = int(max(1, min(n_segments, int(np.prod(image.shape[:-1])))))
    extra = {} if spacing is None else {"spacing": np.asarray(spacing, dtype=np.float64)}
    if is_rgb:
        sp = slic(image, n_segments=n_segments, compactness=compactness, start_label=0,
                  channel_axis=-1, convert2lab=True, **extra)
    else:
        sp = slic(image * 100.0, n_segments=n_segments, compactness=compactness,
                  start_label=0, channel_axis=-1, convert2lab=False, **extra)
    return sequential(sp, start=0).astype(np.int64)


def superpixel_vote(labels: torch.Tensor, superpixels: torch.Tensor, n_superpixels: int,
                    n_labels: int) -> torch.Tensor:
    """Give every pixel the most frequent label of its superpixel (Kanezaki 2018, Sec. 2.2).

    Vectorised with one ``bincount`` over (superpixel, label) pairs, on the tensors'
    device; ties go to the smallest label, as in the authors' code (``argmax`` over
    sorted labels).

    Parameters
    ----------
    labels : torch.Tensor
        Flat ``int64`` labels ``0..n_labels-1``.
    superpixels : torch.Tensor
        Flat ``int64`` superpixel ids ``0..n_superpixels-1``, same length.
    n_superpixels, n_labels : int
        Bounds of the two id ranges.

    Returns
    -------
    torch.Tensor
        The voted labels, same shape as ``labels``.

    Examples
    --------
    >>> sp = torch.tensor([0, 0, 0, 1, 1])
    >>> superpixel_vote(torch.tensor([2, 2, 1, 0, 1]), sp, 2, 3)
    tensor([2, 2, 2, 0, 0])
    """
    counts = torch.bincount(superpixels * n_labels + labels,
                            minlength=n_superpixels * n_labels)
    return counts.view(n_superpixels, n_labels).argmax(dim=1)[superpixels]
