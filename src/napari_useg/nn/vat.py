"""Virtual adversarial training (Miyato et al.), as IMSAT and InMARS use it.

``r_adv`` is the direction of largest KL change of the network's prediction,
found by one power iteration from a random unit direction, scaled to
``||r||_2 = eps`` per image (over all its values), so ``||r_adv|| <= eps``.
Batch-norm running statistics are not updated by the extra forwards.

The radius: IMSAT (Hu et al. 2017), whose regulariser InMARS adopts, sets it per
sample relative to the data, ``eps_n = 0.25 * sigma_n`` with ``sigma_n`` the L2 distance
from sample ``n`` to its 10th nearest neighbour (:func:`relative_radius`, here among the
crops of the batch). An absolute ``eps = 0.25`` on a whole image crop is almost no
perturbation at all (a 96 x 96 RGB crop has 27,648 values: about 0.0015 per value).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
from torch import nn

from napari_useg.nn.mi_loss import kl_consistency

__all__ = ["bn_frozen", "vat_perturbation", "l2_normalise", "relative_radius"]


@contextlib.contextmanager
def bn_frozen(module: nn.Module) -> Iterator[None]:
    """Inside the block, batch norms use batch statistics but do not update running ones."""
    bns = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.track_running_stats for m in bns]
    try:
        for m in bns:
            m.track_running_stats = False
        yield
    finally:
        for m, s in zip(bns, saved, strict=True):
            m.track_running_stats = s


def l2_normalise(d: torch.Tensor) -> torch.Tensor:
    """Scale every sample of ``d`` (first axis) to unit L2 norm over all its other axes."""
    flat = d.flatten(1)
    # scale by the largest magnitude first (as Miyato et al.'s code): a power-iteration
    # gradient can be ~1e-13 in float32, which a plain norm with a floor would shrink
    big = flat.abs().amax(dim=1, keepdim=True)
    flat = flat / torch.where(big > 0, big, torch.ones_like(big))
    norm = flat.norm(dim=1).clamp_min(1e-12)
    return (flat / norm[:, None]).view_as(d)


def relative_radius(x: torch.Tensor, factor: float, neighbour: int = 10) -> torch.Tensor:
    """IMSAT's per-sample radius: ``factor`` x distance to the ``neighbour``-th nearest sample.

    Parameters
    ----------
    x : torch.Tensor
        ``(N, ...)`` batch; distances are L2 over all values of a sample.
    factor : float
        IMSAT's ``alpha`` (0.25).
    neighbour : int
        Which neighbour (IMSAT: the 10th); with fewer other samples in the batch, the
        farthest one (``min(neighbour, N - 1)``-th). A batch of one sample uses the
        distance of the sample to its own mean value (its spread).

    Returns
    -------
    torch.Tensor
        ``(N,)`` radii (detached).

    Examples
    --------
    >>> x = torch.tensor([[0.0], [1.0], [3.0]])
    >>> relative_radius(x, 0.5, neighbour=1).tolist()
    [0.5, 0.5, 1.0]
    """
    flat = x.detach().flatten(1).to(torch.float64)
    n = flat.shape[0]
    if n < 2:
        return (factor * (flat - flat.mean(dim=1, keepdim=True)).norm(dim=1)).to(x.dtype)
    d = torch.cdist(flat, flat)
    k = min(int(neighbour), n - 1)
    kth = d.sort(dim=1).values[:, k]  # column 0 is the sample itself (distance 0)
    return (factor * kth).to(x.dtype)


def vat_perturbation(
    forward: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    p_clean: torch.Tensor,
    *,
    eps: float | torch.Tensor,
    xi: float = 1e-6,
    generator: torch.Generator | None = None,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Adversarial perturbation ``r`` of ``x`` with ``||r_n||_2 = eps`` for every sample ``n``.

    Parameters
    ----------
    forward : callable
        Maps a perturbed input (same shape as ``x``) to logits ``(m, k)`` whose
        rows match those of ``p_clean``.
    x : torch.Tensor
        ``(N, ...)`` input batch.
    p_clean : torch.Tensor
        Clean probabilities ``(m, k)`` (treated as constant).
    eps : float or torch.Tensor
        Norm of the returned perturbation of each sample: one value, or ``(N,)`` values
        (e.g. :func:`relative_radius`).
    xi : float
        Size of the finite-difference step of the power iteration.
    generator : torch.Generator, optional
        Source of the random start direction (CPU generator).
    weights : torch.Tensor, optional
        Row weights of the KL.

    Returns
    -------
    torch.Tensor
        ``r`` (detached), same shape as ``x``.
    """
    d = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
    d = (xi * l2_normalise(d)).requires_grad_(True)
    kl = kl_consistency(p_clean, forward(x.detach() + d), weights)
    (grad,) = torch.autograd.grad(kl, d)
    unit = l2_normalise(grad)
    flat_zero = grad.flatten(1).abs().amax(dim=1) == 0  # KL flat at float precision
    if bool(flat_zero.any()):  # keep the random start direction for those samples
        start = l2_normalise(d.detach())
        unit = torch.where(flat_zero.view(-1, *([1] * (unit.dim() - 1))), start, unit)
    if isinstance(eps, torch.Tensor):
        eps = eps.to(unit).view(-1, *([1] * (unit.dim() - 1)))
    return (eps * unit).detach()
