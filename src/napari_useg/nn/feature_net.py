"""The conv + ReLU + batch-norm feature network of Kanezaki 2018 (also used by DFC and MMT)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

__all__ = ["FeatureNet", "seeded"]


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed torch's CPU generator inside the block and restore the caller's state after.

    Networks are always initialised on the CPU inside this block and moved to the
    device afterwards, so the same seed gives the same weights on every device.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


class FeatureNet(nn.Module):
    """M conv components (3x3 conv, ReLU, BN), a 1x1 linear classifier and BN of the response.

    This is the network of Kanezaki (ICASSP 2018), Fig. 1, in the order of the
    authors' code: convolution, then ReLU, then batch normalisation. Batch
    statistics are over the pixels of the image (a batch is one image), and the
    final batch norm normalises every response channel to zero mean and unit
    variance (Eq. 2), which makes the argmax prefer many labels.

    Parameters
    ----------
    in_channels : int
        Image channels.
    n_features : int
        ``p``: filters per conv component.
    n_clusters : int
        ``q``: response channels (the most labels the argmax can give).
    n_conv : int
        ``M``: number of conv components.
    init : {"xavier", "torch"}
        Weight initialisation: Xavier uniform as in the paper, or torch's default
        (Kaiming uniform, as the authors' public code ends up using).
    dims : {2, 3}
        2: images ``(N, C, H, W)``; 3: volumes ``(N, C, Z, Y, X)`` (3x3x3 convolutions).

    Examples
    --------
    >>> net = FeatureNet(3, 8, 8, 2)
    >>> net(torch.zeros(1, 3, 16, 16)).shape
    torch.Size([1, 8, 16, 16])
    >>> FeatureNet(1, 4, 4, 2, dims=3)(torch.zeros(1, 1, 6, 8, 8)).shape
    torch.Size([1, 4, 6, 8, 8])
    """

    def __init__(
        self, in_channels: int, n_features: int, n_clusters: int, n_conv: int,
        init: str = "xavier", dims: int = 2,
    ) -> None:
        super().__init__()
        if dims not in (2, 3):
            raise ValueError(f"dims must be 2 or 3, got {dims!r}")
        conv = nn.Conv2d if dims == 2 else nn.Conv3d
        norm = nn.BatchNorm2d if dims == 2 else nn.BatchNorm3d
        layers: list[nn.Module] = []
        ch = in_channels
        for _ in range(n_conv):
            layers += [conv(ch, n_features, 3, padding=1), nn.ReLU(inplace=True),
                       norm(n_features)]
            ch = n_features
        self.features = nn.Sequential(*layers)
        self.classifier = conv(n_features, n_clusters, 1)
        self.norm = norm(n_clusters)
        if init == "xavier":
            for m in self.modules():
                if isinstance(m, (nn.Conv2d, nn.Conv3d)):
                    nn.init.xavier_uniform_(m.weight)
                    nn.init.zeros_(m.bias)
        elif init != "torch":
            raise ValueError(f"init must be 'xavier' or 'torch', got {init!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised response map ``(N, q, H, W)`` (no softmax)."""
        return self.norm(self.classifier(self.features(x)))
