"""A small UNet (Ronneberger et al. 2015) backbone, the alternative InMARS backbone."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["UNet"]


def _double(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """UNet with ``depth`` poolings; channels ``base * 2**level``; same-size output.

    Parameters
    ----------
    in_channels, out_channels : int
        Image channels and output maps.
    base : int
        Channels of the first level.
    depth : int
        Number of 2x poolings (input sides must be divisible by ``2**depth``).

    Examples
    --------
    >>> UNet(1, 3, base=4, depth=2)(torch.zeros(1, 1, 16, 16)).shape
    torch.Size([1, 3, 16, 16])
    """

    def __init__(self, in_channels: int, out_channels: int, base: int = 32,
                 depth: int = 4) -> None:
        super().__init__()
        self.multiple = 2 ** depth
        chans = [base * 2 ** i for i in range(depth + 1)]
        self.down = nn.ModuleList([_double(in_channels, chans[0])] +
                                  [_double(chans[i], chans[i + 1]) for i in range(depth)])
        self.upconv = nn.ModuleList([nn.ConvTranspose2d(chans[i + 1], chans[i], 2, stride=2)
                                     for i in range(depth)])
        self.up = nn.ModuleList([_double(2 * chans[i], chans[i]) for i in range(depth)])
        self.out = nn.Conv2d(chans[0], out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Output maps ``(N, out_channels, H, W)``."""
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        x = skips.pop()
        for i in reversed(range(len(self.up))):
            x = self.up[i](torch.cat([skips[i], self.upconv[i](x)], dim=1))
        return self.out(x)
