"""Virtual adversarial training (Miyato et al.), as IMSAT and InMARS use it.

``r_adv`` is the direction of largest KL change of the network's prediction,
found by one power iteration from a random unit direction, scaled to
``||r||_2 = eps`` per image (over all its values), so ``||r_adv|| <= eps``.
Batch-norm running statistics are not updated by the extra forwards.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
from torch import nn

from napari_useg.nn.mi_loss import kl_consistency

__all__ = ["bn_frozen", "vat_perturbation", "l2_normalise"]


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
    norm = flat.norm(dim=1).clamp_min(1e-12)
    return (flat / norm[:, None]).view_as(d)


def vat_perturbation(
    forward: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    p_clean: torch.Tensor,
    *,
    eps: float,
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
    eps : float
        Norm of the returned perturbation of each sample.
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
    return (eps * l2_normalise(grad)).detach()
