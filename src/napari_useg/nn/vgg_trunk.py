"""The VGG-style trunk and two-head network of IIC segmentation (``net10a`` in the IIC code).

Trunk: 3x3 convolutions without bias, each followed by batch norm and ReLU,
``64; 128; max-pool 2; 256, 256; 512, 512`` (the 512 layers with dilation 2; the
256 layers with dilation ``dilation_256``: 1 in the authors' code, 2 in the
SpaceNet write-up). Padding equals the dilation, so feature maps stay aligned
with the input at half resolution (the authors' code pads 1 px and loses a
border). Heads: a 1x1 convolution to ``k`` (main) and to ``k_over``
(over-clustering) classes; softmax and bilinear up-sampling to the input size
are applied by the caller (the loss may use the native half resolution).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from napari_useg.nn.augment import sobel

__all__ = ["VGGTrunk", "IICNet"]


def _ch(c: int, width: float) -> int:
    return max(4, int(round(c * width)))


class VGGTrunk(nn.Module):
    """VGG-style trunk; output at half the input resolution.

    Parameters
    ----------
    in_channels : int
        Input channels (including any Sobel channels).
    width : float
        Channel multiplier (1.0: the paper's 64...512).
    dilation_256 : int
        Dilation of the two 256-channel layers.
    """

    def __init__(self, in_channels: int, width: float = 1.0, dilation_256: int = 1) -> None:
        super().__init__()
        cfg: list[tuple[int, int] | str] = [(64, 1), (128, 1), "M", (256, dilation_256),
                                            (256, dilation_256), (512, 2), (512, 2)]
        layers: list[nn.Module] = []
        ch = in_channels
        for item in cfg:
            if item == "M":
                layers.append(nn.MaxPool2d(2))
                continue
            c, d = item
            out = _ch(c, width)
            layers += [nn.Conv2d(ch, out, 3, padding=d, dilation=d, bias=False),
                       nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
            ch = out
        self.layers = nn.Sequential(*layers)
        self.out_channels = ch
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features ``(N, C, H/2, W/2)``."""
        return self.layers(x)


class IICNet(nn.Module):
    """Trunk with a main and an over-clustering head (IIC's TwoHead segmentation net).

    Parameters
    ----------
    in_channels : int
        Image channels.
    k, k_over : int
        Classes of the main and over-clustering heads.
    width : float
        Trunk channel multiplier.
    dilation_256 : int
        Dilation of the 256-channel layers.
    use_sobel : bool
        Append horizontal and vertical Sobel responses of the grey image to the input.
    rgb : bool
        Whether the first three channels are RGB (for the grey image of Sobel).

    Examples
    --------
    >>> net = IICNet(3, 3, 12, width=0.125)
    >>> net(torch.zeros(2, 3, 16, 16), "over").shape
    torch.Size([2, 12, 8, 8])
    """

    def __init__(self, in_channels: int, k: int, k_over: int, width: float = 1.0,
                 dilation_256: int = 1, use_sobel: bool = False, rgb: bool = False) -> None:
        super().__init__()
        self.use_sobel = use_sobel
        self.rgb = rgb
        self.trunk = VGGTrunk(in_channels + (2 if use_sobel else 0), width, dilation_256)
        c = self.trunk.out_channels
        self.heads = nn.ModuleDict({"main": nn.Conv2d(c, k, 1, bias=False),
                                    "over": nn.Conv2d(c, k_over, 1, bias=False)})
        for h in self.heads.values():
            nn.init.kaiming_normal_(h.weight, mode="fan_in", nonlinearity="relu")

    def forward(self, x: torch.Tensor, head: str = "main") -> torch.Tensor:
        """Logits ``(N, k, H/2, W/2)`` of ``head`` (``"main"`` or ``"over"``)."""
        if self.use_sobel:
            x = torch.cat([x, sobel(x, self.rgb)], dim=1)
        return self.heads[head](self.trunk(x))

    def probs(self, x: torch.Tensor, head: str = "main") -> torch.Tensor:
        """Softmax of ``head`` up-sampled (bilinear) to the input size ``(N, k, H, W)``."""
        p = F.softmax(self(x, head), dim=1)
        return F.interpolate(p, size=x.shape[-2:], mode="bilinear", align_corners=False)
