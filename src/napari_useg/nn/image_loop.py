"""Pieces of the per-image training loop shared by Kanezaki 2018, DFC and MMT.

* :func:`image_tensor`: the ``(1, C, H, W)`` input tensor of a ``(H, W, C)`` image;
* :func:`sgd`: the optimiser all three papers use (plain SGD with momentum);
* :class:`ChangeMonitor`: the ``patience`` / ``change_tol`` stop rule of the fast presets;
* :func:`upsample_response`: a working-resolution response map brought back to full
  resolution (bilinear), before the argmax;
* :func:`preview_labels`: a working-resolution label map for a progress snapshot.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from napari_useg.core.labels import upsample_nearest

__all__ = ["ChangeMonitor", "image_tensor", "preview_labels", "sgd", "stop_reason",
           "upsample_response"]


def image_tensor(data: np.ndarray, device: torch.device | str | None) -> torch.Tensor:
    """``(H, W, C)`` float image -> contiguous ``(1, C, H, W)`` tensor on ``device``."""
    return torch.from_numpy(np.ascontiguousarray(data.transpose(2, 0, 1)))[None].to(device)


def sgd(net: nn.Module, lr: float, momentum: float) -> torch.optim.SGD:
    """SGD with momentum over the parameters of ``net`` (lr 0.1, momentum 0.9 in the papers)."""
    return torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum)


class ChangeMonitor:
    """Stop rule: labels changed in under ``tol`` of the pixels for ``patience`` steps in a row.

    Parameters
    ----------
    patience : int
        Consecutive "unchanged" steps needed to stop (0: never stops).
    tol : float
        Fraction of changed pixels below which a step counts as unchanged.

    Examples
    --------
    >>> mon = ChangeMonitor(patience=2, tol=0.1)
    >>> lab = torch.zeros(10, dtype=torch.long)
    >>> [mon.update(lab) for _ in range(3)]
    [False, False, True]
    """

    def __init__(self, patience: int, tol: float) -> None:
        self.patience = int(patience)
        self.tol = float(tol)
        self.stable = 0
        self._prev: torch.Tensor | None = None

    def update(self, labels: torch.Tensor) -> bool:
        """Record this step's labels; True once they have been stable for ``patience`` steps."""
        if self._prev is not None:
            changed = (labels != self._prev).float().mean().item()
            self.stable = self.stable + 1 if changed < self.tol else 0
        self._prev = labels
        return bool(self.patience) and self.stable >= self.patience


def stop_reason(n_labels: int, min_labels: int, settled: bool, patience: int) -> str | None:
    """Why a per-image run stops now, or ``None`` to go on.

    The authors' rule (the argmax gives ``min_labels`` labels or fewer) first, then the
    labels-stable rule of :class:`ChangeMonitor` (``settled``).
    """
    if n_labels <= min_labels:
        return f"{n_labels} labels <= min_labels {min_labels}"
    if settled:
        return f"labels stable for {patience} iterations"
    return None


def upsample_response(resp: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of a ``(q, h, w)`` or ``(N, q, h, w)`` response map to ``size``.

    Returns the input unchanged when it already has that size.
    """
    if tuple(resp.shape[-2:]) == tuple(size):
        return resp
    batch = resp if resp.ndim == 4 else resp[None]
    up = F.interpolate(batch, size=tuple(size), mode="bilinear", align_corners=False)
    return up if resp.ndim == 4 else up[0]


def preview_labels(labels: torch.Tensor, work_shape: tuple[int, int],
                   full_shape: tuple[int, int]) -> np.ndarray:
    """Flat working-resolution labels -> full-resolution numpy label map (nearest neighbour)."""
    return upsample_nearest(labels.view(work_shape).cpu().numpy(), full_shape)
