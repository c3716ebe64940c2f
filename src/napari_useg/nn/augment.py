"""Random geometric and photometric transforms of image batches, and their exact inverses.

Geometry is expressed as a batch of ``(2, 3)`` *sampling* matrices ``theta`` in
normalised coordinates (``[-1, 1]``, ``align_corners=False``): the transformed
image is ``warp(x, theta)(p) = x(theta @ [p, 1])``. A prediction ``y2`` made on
the transformed image is brought back to the frame of the original with
``warp(y2, invert(theta))``. A horizontal flip is the matrix ``diag(-1, 1)`` and
maps pixel centres exactly onto pixel centres, so flip-only inversion is exact
to float rounding (~1e-6); a rotation/shear/scale needs bilinear re-sampling, exact
for functions linear in the coordinates and accurate to interpolation error for
others. Because normalised coordinates do not depend on the resolution, the same
matrix warps a network's half-resolution output consistently.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["random_affine", "invert", "warp", "valid_mask", "colour_jitter", "sobel"]


def random_affine(
    n: int,
    rng: np.random.Generator,
    *,
    rotation: float = 0.0,
    shear: float = 0.0,
    scale: tuple[float, float] = (1.0, 1.0),
    translate: float = 0.0,
    flip_p: float = 0.0,
) -> torch.Tensor:
    """``n`` random sampling matrices ``(n, 2, 3)`` (``float32``).

    Parameters
    ----------
    n : int
        Batch size.
    rng : numpy.random.Generator
        Source of randomness (keeps training reproducible and resumable).
    rotation, shear : float
        Maximum absolute angle in degrees (uniform in ``[-a, a]``).
    scale : (float, float)
        Range of the isotropic scale factor.
    translate : float
        Maximum shift as a fraction of the half-side (normalised units).
    flip_p : float
        Probability of a horizontal flip.

    Notes
    -----
    The linear part is the one of the IIC code,
    ``[[cos a * s, -sin(a + sh) * s], [sin a * s, cos(a + sh) * s]]``, and a flip
    negates its first column (mirror the output, then transform).
    """
    a = np.deg2rad(rng.uniform(-rotation, rotation, n))
    sh = np.deg2rad(rng.uniform(-shear, shear, n))
    s = rng.uniform(scale[0], scale[1], n)
    t = rng.uniform(-translate, translate, (n, 2))
    flip = rng.random(n) < flip_p
    m = np.zeros((n, 2, 3))
    m[:, 0, 0] = np.cos(a) * s
    m[:, 0, 1] = -np.sin(a + sh) * s
    m[:, 1, 0] = np.sin(a) * s
    m[:, 1, 1] = np.cos(a + sh) * s
    m[:, :, 2] = t
    m[flip, :, 0] *= -1.0
    return torch.from_numpy(m.astype(np.float32))


def invert(theta: torch.Tensor) -> torch.Tensor:
    """Inverse sampling matrices (computed in float64)."""
    n = theta.shape[0]
    full = torch.zeros(n, 3, 3, dtype=torch.float64)
    full[:, :2] = theta.to(torch.float64)
    full[:, 2, 2] = 1.0
    return torch.linalg.inv(full)[:, :2].to(theta.dtype)


def warp(x: torch.Tensor, theta: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """Sample ``x`` (``(N, C, H, W)``) at ``theta @ p``; outside the image gives zeros."""
    grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode=mode, padding_mode="zeros", align_corners=False)


def valid_mask(theta: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """``(N, 1, H, W)`` float mask of output pixels whose sample lies inside the source."""
    n = theta.shape[0]
    grid = F.affine_grid(theta, [n, 1, *shape], align_corners=False)
    h, w = shape
    # a bilinear sample is fully inside when the point is within the outer pixel centres
    lim_x, lim_y = 1.0 - 1.0 / w + 1e-6, 1.0 - 1.0 / h + 1e-6
    ok = (grid[..., 0].abs() <= lim_x) & (grid[..., 1].abs() <= lim_y)
    return ok[:, None].to(theta.dtype)


def colour_jitter(
    x: torch.Tensor,
    rng: np.random.Generator,
    *,
    strength: float,
    rgb: bool,
) -> torch.Tensor:
    """Random brightness, contrast, saturation and hue changes, one draw per image.

    Parameters
    ----------
    x : torch.Tensor
        ``(N, C, H, W)`` in ``[0, 1]``.
    rng : numpy.random.Generator
        Source of randomness.
    strength : float
        Each factor is drawn from ``[1 - s, 1 + s]`` (hue: a rotation of up to
        ``s`` turns of the chroma plane), as torchvision's ``ColorJitter(s, s, s, s)``.
    rgb : bool
        When true the first three channels are RGB and get all four changes;
        further channels (infrared...) are left as they are. Otherwise every
        channel gets brightness and contrast changes only (grayscale,
        fluorescence).

    Returns
    -------
    torch.Tensor
        Jittered copy, clipped to ``[0, 1]``.
    """
    if strength <= 0:
        return x
    n = x.shape[0]

    def fac() -> torch.Tensor:
        v = rng.uniform(max(0.0, 1 - strength), 1 + strength, n)
        return torch.from_numpy(v.astype(np.float32)).view(n, 1, 1, 1).to(x.device)

    if rgb and x.shape[1] >= 3:
        c, rest = x[:, :3], x[:, 3:]
        c = c * fac()
        grey = (0.299 * c[:, 0] + 0.587 * c[:, 1] + 0.114 * c[:, 2])[:, None]
        c = (c - grey.mean(dim=(2, 3), keepdim=True)) * fac() + grey.mean(dim=(2, 3), keepdim=True)
        grey = (0.299 * c[:, 0] + 0.587 * c[:, 1] + 0.114 * c[:, 2])[:, None]
        c = grey + (c - grey) * fac()
        ang = torch.from_numpy((rng.uniform(-strength, strength, n) * 2 * math.pi).astype(
            np.float32)).to(x.device)
        # rotate chroma in YIQ space
        to_yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322],
                               [0.211, -0.523, 0.312]], device=x.device)
        yiq = torch.einsum("ij,njhw->nihw", to_yiq, c)
        cos, sin = torch.cos(ang).view(n, 1, 1), torch.sin(ang).view(n, 1, 1)
        i2 = yiq[:, 1] * cos - yiq[:, 2] * sin
        q2 = yiq[:, 1] * sin + yiq[:, 2] * cos
        yiq = torch.stack([yiq[:, 0], i2, q2], dim=1)
        c = torch.einsum("ij,njhw->nihw", torch.linalg.inv(to_yiq), yiq)
        return torch.cat([c.clamp(0, 1), rest], dim=1)
    out = x * fac()
    mean = out.mean(dim=(2, 3), keepdim=True)
    out = (out - mean) * fac() + mean
    return out.clamp(0, 1)


def sobel(x: torch.Tensor, rgb: bool) -> torch.Tensor:
    """Horizontal and vertical Sobel responses ``(N, 2, H, W)`` of the grey image.

    Grey is the luminance of the RGB channels when ``rgb`` is true, else the mean
    of all channels; kernels ``[[1, 0, -1], [2, 0, -2], [1, 0, -1]]`` and its
    transpose, zero padding, no normalisation (as the IIC code).
    """
    if rgb and x.shape[1] >= 3:
        grey = 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]
    else:
        grey = x.mean(dim=1, keepdim=True)
    kx = torch.tensor([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]], device=x.device,
                      dtype=x.dtype)
    k = torch.stack([kx, kx.t()])[:, None]
    return F.conv2d(grey, k, padding=1)
