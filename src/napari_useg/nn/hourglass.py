"""Stacked hourglass backbone (Newell, Yang, Deng 2016) at full resolution, as InMARS uses it.

Residual bottleneck blocks (BN-ReLU-conv1x1, BN-ReLU-conv3x3, BN-ReLU-conv1x1,
plus a skip). An hourglass of depth ``d`` keeps an upper branch at the current
resolution and a lower branch that max-pools, recurses (depth ``d - 1``) and
up-samples (nearest), then adds the two. Stacks are chained with the usual
re-injection of features and predictions. InMARS uses two stacks with two
residual blocks per stage; inputs must be divisible by ``2**depth``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Residual", "Hourglass", "StackedHourglass"]


class Residual(nn.Module):
    """Pre-activation bottleneck residual block ``cin -> cout``."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        mid = max(1, cout // 2)
        self.body = nn.Sequential(
            nn.BatchNorm2d(cin), nn.ReLU(inplace=False), nn.Conv2d(cin, mid, 1),
            nn.BatchNorm2d(mid), nn.ReLU(inplace=True), nn.Conv2d(mid, mid, 3, padding=1),
            nn.BatchNorm2d(mid), nn.ReLU(inplace=True), nn.Conv2d(mid, cout, 1),
        )
        self.skip = nn.Identity() if cin == cout else nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.skip(x)


def _blocks(c: int, n: int) -> nn.Sequential:
    return nn.Sequential(*[Residual(c, c) for _ in range(n)])


class Hourglass(nn.Module):
    """One hourglass of ``depth`` levels with ``n_blocks`` residual blocks per stage."""

    def __init__(self, channels: int, depth: int, n_blocks: int) -> None:
        super().__init__()
        self.up = _blocks(channels, n_blocks)
        self.down = _blocks(channels, n_blocks)
        self.inner = Hourglass(channels, depth - 1, n_blocks) if depth > 1 else \
            _blocks(channels, n_blocks)
        self.after = _blocks(channels, n_blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        up = self.up(x)
        low = self.after(self.inner(self.down(F.max_pool2d(x, 2))))
        return up + F.interpolate(low, scale_factor=2, mode="nearest")


class StackedHourglass(nn.Module):
    """Stem + ``n_stacks`` hourglasses; output ``out_channels`` maps at input resolution.

    Parameters
    ----------
    in_channels, out_channels : int
        Image channels and output maps (InMARS: the number of clusters).
    channels : int
        Feature channels inside the hourglasses.
    depth : int
        Levels of each hourglass (input sides must be divisible by ``2**depth``).
    n_stacks, n_blocks : int
        Number of hourglasses, residual blocks per stage.

    Examples
    --------
    >>> net = StackedHourglass(3, 4, channels=8, depth=2, n_stacks=2, n_blocks=1)
    >>> net(torch.zeros(1, 3, 16, 16)).shape
    torch.Size([1, 4, 16, 16])
    """

    def __init__(self, in_channels: int, out_channels: int, channels: int = 64, depth: int = 4,
                 n_stacks: int = 2, n_blocks: int = 2) -> None:
        super().__init__()
        self.multiple = 2 ** depth
        self.stem = nn.Sequential(nn.Conv2d(in_channels, channels, 3, padding=1),
                                  Residual(channels, channels))
        self.hgs = nn.ModuleList([Hourglass(channels, depth, n_blocks) for _ in range(n_stacks)])
        self.feats = nn.ModuleList([
            nn.Sequential(Residual(channels, channels), nn.BatchNorm2d(channels),
                          nn.ReLU(inplace=True), nn.Conv2d(channels, channels, 1))
            for _ in range(n_stacks)])
        self.outs = nn.ModuleList([nn.Conv2d(channels, out_channels, 1) for _ in range(n_stacks)])
        self.merge_f = nn.ModuleList([nn.Conv2d(channels, channels, 1)
                                      for _ in range(n_stacks - 1)])
        self.merge_o = nn.ModuleList([nn.Conv2d(out_channels, channels, 1)
                                      for _ in range(n_stacks - 1)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Output maps ``(N, out_channels, H, W)`` of the last stack."""
        x = self.stem(x)
        out = x
        for i, hg in enumerate(self.hgs):
            f = self.feats[i](hg(x))
            out = self.outs[i](f)
            if i < len(self.hgs) - 1:
                x = x + self.merge_f[i](f) + self.merge_o[i](out)
        return out
