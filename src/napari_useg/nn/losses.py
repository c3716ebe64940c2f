"""Spatial regularisers of the response map: Kim 2020's continuity loss and the total variation.

Both take the normalised response ``(N, q, H, W)`` of a
:class:`~napari_useg.nn.feature_net.FeatureNet` (no softmax) and penalise the L1
differences between neighbouring pixels; they differ only in the pixels they cover
and in how they are normalised.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["spatial_continuity_loss", "total_variation_loss"]


def spatial_continuity_loss(resp: torch.Tensor,
                            weights: Sequence[float] | None = None) -> torch.Tensor:
    """Spatial continuity loss of Kim, Kanezaki and Tanaka (TIP 2020), Eq. (4).

    The mean absolute difference between vertically adjacent pixels plus the mean
    absolute difference between horizontally adjacent pixels, each mean taken over
    all its elements, i.e. over ``N·(H-1)·W·q`` and ``N·H·(W-1)·q`` values
    respectively, exactly as the authors' ``L1Loss`` against a zero target (without
    building that target). A volume ``(N, q, Z, Y, X)`` adds the same term along z.

    Parameters
    ----------
    resp : torch.Tensor
        ``(N, q, H, W)`` response map, or ``(N, q, Z, Y, X)`` for a volume.
    weights : sequence of float, optional
        One weight per spatial axis (default: all 1, the paper). For an anisotropic
        volume, ``min(spacing) / spacing`` makes each term a difference per unit length:
        neighbours further apart along z are allowed to differ more.

    Returns
    -------
    torch.Tensor
        Scalar loss.

    Examples
    --------
    >>> r = torch.zeros(1, 1, 2, 3); r[..., 1, :] = 1.0  # bottom row differs
    >>> float(spatial_continuity_loss(r))  # vertical mean 1, horizontal mean 0
    1.0
    >>> v = torch.zeros(1, 1, 2, 2, 2); v[:, :, 1] = 1.0  # the second z-slice differs
    >>> float(spatial_continuity_loss(v, weights=(0.5, 1.0, 1.0)))
    0.5
    """
    if resp.ndim not in (4, 5):
        raise ValueError(f"response must be (N, q, H, W) or (N, q, Z, Y, X), got shape "
                         f"{tuple(resp.shape)}")
    spatial = resp.ndim - 2
    if min(resp.shape[2:]) < 2:
        raise ValueError(f"response needs at least 2 pixels along every spatial axis, got "
                         f"{tuple(resp.shape[2:])}")
    if weights is None:
        weights = (1.0,) * spatial
    if len(weights) != spatial:
        raise ValueError(f"weights needs {spatial} values (one per spatial axis), got "
                         f"{len(weights)}")
    total = resp.new_zeros(())
    for axis, weight in zip(range(2, resp.ndim), weights, strict=True):
        n = resp.shape[axis]
        diff = resp.narrow(axis, 1, n - 1) - resp.narrow(axis, 0, n - 1)
        total = total + float(weight) * diff.abs().mean()
    return total


def total_variation_loss(resp: torch.Tensor, reduction: str = "mean",
                         weights: Sequence[float] | None = None) -> torch.Tensor:
    """Anisotropic total variation of the response, as written in Wu et al. 2020 (MMT), Sec. 3.2.

    ``sum_{i<W-1, j<H-1} |y[j, i+1] - y[j, i]|_1 + |y[j+1, i] - y[j, i]|_1``: the L1
    norms (over the ``q`` channels) of the horizontal and vertical forward
    differences, summed over the ``(H-1) x (W-1)`` pixels that have both neighbours.
    A volume ``(N, q, Z, Y, X)`` adds the differences along z, over the voxels that have
    all three neighbours.

    Parameters
    ----------
    resp : torch.Tensor
        ``(N, q, H, W)`` response map, or ``(N, q, Z, Y, X)``.
    reduction : {"mean", "sum"}
        ``"sum"``: the formula above (summed over the batch too). ``"mean"``: divided
        by ``N·(H-1)·(W-1)·q``, the number of differences per direction, so that a
        weight ``beta`` means the same thing as Kim 2020's ``mu`` whatever the image
        size and ``q`` (the paper gives no value for ``beta``).
    weights : sequence of float, optional
        One weight per spatial axis (default all 1), as in
        :func:`spatial_continuity_loss`.

    Returns
    -------
    torch.Tensor
        Scalar loss.

    Examples
    --------
    >>> r = torch.zeros(1, 1, 3, 3); r[..., 0, 0] = 1.0  # one corner differs from both neighbours
    >>> float(total_variation_loss(r, "sum")), float(total_variation_loss(r))
    (2.0, 0.5)
    """
    if resp.ndim not in (4, 5):
        raise ValueError(f"response must be (N, q, H, W) or (N, q, Z, Y, X), got shape "
                         f"{tuple(resp.shape)}")
    if min(resp.shape[2:]) < 2:
        raise ValueError(f"response needs at least 2 pixels along every spatial axis, got "
                         f"{tuple(resp.shape[2:])}")
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    spatial = resp.ndim - 2
    weights = (1.0,) * spatial if weights is None else tuple(weights)
    if len(weights) != spatial:
        raise ValueError(f"weights needs {spatial} values (one per spatial axis), got "
                         f"{len(weights)}")
    core = resp[(Ellipsis, *[slice(None, -1)] * spatial)]
    tv = resp.new_zeros(())
    for k in reversed(range(spatial)):  # the last axis first: the 2-D formula's order
        shifted = [slice(None, -1)] * spatial
        shifted[k] = slice(1, None)
        tv = tv + float(weights[k]) * (resp[(Ellipsis, *shifted)] - core).abs().sum()
    if reduction == "sum":
        return tv
    return tv / core.numel()
