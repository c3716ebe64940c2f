"""The segmentation IID loss of IIC (Ji, Henriques, Vedaldi, ICCV 2019), uncollapsed form.

For softmax maps ``x1`` and ``x2`` (``(n, k, h, w)``, ``x2`` already warped back
into ``x1``'s frame), the joint distribution of the cluster of a pixel ``u + t``
in view 1 and of pixel ``u`` in view 2 is, for every displacement ``t`` in a
``(2T+1)^2`` window, ``P_t[i, j] = sum_n sum_u x1[n, i, u + t] x2[n, j, u]``
(zero outside the map). All displacements come out of one convolution whose
batch is the classes of ``x1`` and whose kernels are the whole maps of ``x2``.
Each ``P_t`` is normalised to sum to one and symmetrised, its marginals taken,
everything clamped at machine epsilon, and

``L = mean_t sum_ij -P_t[i, j] (log P_t[i, j] - lamb log p_i - lamb log p_j)``.

``lamb > 1`` weights the marginal entropies up (against collapse); the paper
uses 1.5 for the main head with few classes and 1.0 for the over-clustering head.
"""

from __future__ import annotations

import sys

import torch
import torch.nn.functional as F

__all__ = ["iid_segmentation_loss", "joint_distributions", "EPS"]

#: Clamp value of probabilities before the logarithm (Python's float epsilon, as the IIC code).
EPS = sys.float_info.epsilon


def joint_distributions(x1: torch.Tensor, x2: torch.Tensor, T: int) -> torch.Tensor:
    """Unnormalised joints ``(2T+1, 2T+1, k, k)``, indexed ``[dy + T, dx + T, i, j]``.

    ``P[dy + T, dx + T, i, j] = sum_n sum_(y, x) x1[n, i, y + dy, x + dx] * x2[n, j, y, x]``.
    """
    if x1.shape != x2.shape or x1.dim() != 4:
        raise ValueError(f"x1 and x2 must be (n, k, h, w) of one shape, got {x1.shape}, {x2.shape}")
    a = x1.transpose(0, 1)  # k, n, h, w: conv batch = classes i
    b = x2.transpose(0, 1)  # k, n, h, w: conv kernels = classes j
    p = F.conv2d(a, b, padding=T)  # k_i, k_j, 2T+1, 2T+1
    return p.permute(2, 3, 0, 1)


def iid_segmentation_loss(
    x1: torch.Tensor,
    x2: torch.Tensor,
    T: int,
    lamb: float = 1.0,
    mask: torch.Tensor | None = None,
    eps: float = EPS,
) -> torch.Tensor:
    """Uncollapsed IID segmentation loss (averaged over the ``(2T+1)^2`` displacements).

    Parameters
    ----------
    x1, x2 : torch.Tensor
        ``(n, k, h, w)`` softmax outputs; ``x2`` warped back into ``x1``'s frame.
    T : int
        Half side of the displacement window.
    lamb : float
        Weight of the marginal-entropy terms.
    mask : torch.Tensor, optional
        ``(n, 1, h, w)`` or ``(n, h, w)`` weights; pixels with 0 drop out of ``P``.
    eps : float
        Clamp of ``P`` and its marginals before the logarithm.

    Returns
    -------
    torch.Tensor
        Scalar loss (minimising it maximises the mutual information when ``lamb = 1``).
    """
    if mask is not None:
        m = mask if mask.dim() == 4 else mask[:, None]
        x1 = x1 * m
        x2 = x2 * m
    p = joint_distributions(x1, x2, T)  # D, D, k, k
    total = p.sum(dim=(2, 3), keepdim=True)
    p = p / total.clamp_min(eps)
    p = 0.5 * (p + p.transpose(2, 3))
    pi = p.sum(dim=3, keepdim=True)
    pj = p.sum(dim=2, keepdim=True)
    p = p.clamp_min(eps)
    pi = pi.clamp_min(eps)
    pj = pj.clamp_min(eps)
    per_t = -(p * (torch.log(p) - lamb * torch.log(pi) - lamb * torch.log(pj))).sum(dim=(2, 3))
    return per_t.mean()
