"""Training on random patches of a volume and predicting it tile by tile.

A volume method's memory must follow the patch, not the volume: each step trains on one
random crop (:func:`random_patch`) of :func:`patch_shape` voxels, and the label map of the
whole volume is predicted in tiles of that shape plus a halo
(:func:`predict_volume_labels`, windows from :func:`napari_useg.core.tiling.clipped_windows`).
With the batch norms in evaluation mode (their running statistics) and a halo at least
the receptive-field radius of the network, the tiled prediction equals the prediction on
the whole volume at once, up to floating-point summation order.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from napari_useg.core.tiling import clipped_windows

__all__ = ["patch_shape", "random_patch", "focused_patch", "focus_probability",
           "supervoxel_focus", "volume_tensor", "predict_volume_labels"]


def patch_shape(shape: tuple[int, ...], side: int, spacing: tuple[float, ...]
                ) -> tuple[int, ...]:
    """Voxels per axis of a patch about ``side`` voxels of the finest axis across in every
    physical direction (coarser axes get proportionally fewer voxels), clipped to ``shape``.

    ``side=0`` gives the whole volume.

    Examples
    --------
    >>> patch_shape((51, 120, 122), 40, (1.75, 0.8, 0.8))
    (18, 40, 40)
    """
    if side <= 0:
        return tuple(int(n) for n in shape)
    finest = min(spacing)
    return tuple(int(min(n, max(4, round(side * finest / s))))
                 for n, s in zip(shape, spacing, strict=True))


def random_patch(shape: tuple[int, ...], patch: tuple[int, ...],
                 rng: np.random.Generator) -> tuple[slice, ...]:
    """Slices of one random crop of ``patch`` voxels inside ``shape``."""
    starts = [int(rng.integers(0, n - p + 1)) for n, p in zip(shape, patch, strict=True)]
    return tuple(slice(s, s + p) for s, p in zip(starts, patch, strict=True))


def focus_probability(count: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Probability of centring a training patch on each region of a partition.

    Proportional to the region's size (``count`` voxels) times the distance of its mean
    intensity ``mean`` from the size-weighted median of the regions' means: rare bright
    (or dark) structures in a large volume get picked as often as the background around
    them. Uniform by size when every region has the median intensity.

    Examples
    --------
    >>> focus_probability(np.array([90.0, 10.0]), np.array([0.1, 0.9])).round(2)
    array([0., 1.])
    """
    order = np.argsort(mean)
    half = np.searchsorted(np.cumsum(count[order]), count.sum() / 2.0)
    median = mean[order[min(half, len(mean) - 1)]]
    weight = count * np.abs(mean - median)
    total = weight.sum()
    return weight / total if total > 0 else count / count.sum()


def supervoxel_focus(data: np.ndarray, supervoxels: np.ndarray, n: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Centroids of the supervoxels and how much each stands out from the volume.

    Returns ``(centroids, prob)``: ``(n, 3)`` voxel centroids and the probability of
    picking each supervoxel (:func:`focus_probability` of its size and mean intensity,
    mean over channels). Computed one z-slice at a time (no volume-sized temporaries).
    """
    zdim, ydim, xdim = supervoxels.shape
    yy, xx = np.indices((ydim, xdim), dtype=np.float64)
    count = np.zeros(n)
    sums = np.zeros((n, 4))  # z, y, x, intensity
    for z in range(zdim):  # one slice at a time: memory of a slice, not of the volume
        ids = supervoxels[z].ravel()
        in_slice = np.bincount(ids, minlength=n)
        count += in_slice
        sums[:, 0] += z * in_slice
        weights = (yy.ravel(), xx.ravel(), data[z].mean(axis=-1, dtype=np.float64).ravel())
        for c, w in enumerate(weights, start=1):
            sums[:, c] += np.bincount(ids, weights=w, minlength=n)
    size = np.maximum(count, 1.0)
    return sums[:, :3] / size[:, None], focus_probability(count, sums[:, 3] / size)


def focused_patch(shape: tuple[int, ...], patch: tuple[int, ...], centre: np.ndarray,
                  rng: np.random.Generator) -> tuple[slice, ...]:
    """Slices of a crop of ``patch`` voxels around ``centre`` (jittered by up to a quarter
    patch), kept inside ``shape``."""
    starts = []
    for n, p, c in zip(shape, patch, centre, strict=True):
        jitter = int(rng.integers(-(p // 4), p // 4 + 1))
        starts.append(int(np.clip(round(c) - p // 2 + jitter, 0, n - p)))
    return tuple(slice(s, s + p) for s, p in zip(starts, patch, strict=True))


def volume_tensor(data: np.ndarray, device: torch.device | str | None) -> torch.Tensor:
    """``(Z, Y, X, C)`` float volume (or a crop) -> contiguous ``(1, C, Z, Y, X)`` tensor."""
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(data, -1, 0)))[None].to(device)


@torch.no_grad()
def predict_volume_labels(net: nn.Module, data: np.ndarray, tile: tuple[int, ...], halo: int,
                          device: torch.device | str | None) -> np.ndarray:
    """Argmax of the network's response over a ``(Z, Y, X, C)`` volume, tile by tile.

    The network runs in evaluation mode (batch norms use their running statistics) on
    windows of ``tile`` plus ``halo`` voxels; only each window's core is kept.

    Returns
    -------
    numpy.ndarray
        Labels of shape ``(Z, Y, X)``, in the smallest unsigned integer type that holds
        the network's output channels (``uint8`` up to 256: a large volume's labels
        cost one byte per voxel).
    """
    was_training = net.training
    net.eval()
    out: np.ndarray | None = None
    try:
        for window, core in clipped_windows(data.shape[:-1], tile, halo):
            resp = net(volume_tensor(data[window], device))[0]
            # argmax over the channels of voxel-major rows: about twice as fast as over
            # the leading (strided) axis on a CPU; the same labels (first maximum)
            labels = (resp.reshape(resp.shape[0], -1).t().contiguous().argmax(dim=1)
                      .view(resp.shape[1:]).cpu().numpy())
            if out is None:
                out = np.empty(data.shape[:-1], dtype=np.min_scalar_type(resp.shape[0] - 1))
            out[tuple(slice(w.start + c.start, w.start + c.stop)
                      for w, c in zip(window, core, strict=True))] = labels[core]
    finally:
        net.train(was_training)
    return out if out is not None else np.zeros(data.shape[:-1], dtype=np.uint8)
