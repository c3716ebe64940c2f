"""Mutual-information clustering loss of IMSAT / InMARS, and the KL consistency term.

``L_MI = H(Y|X) - gamma H(Y)`` with ``H(Y|X)`` the mean entropy of the
per-sample cluster distributions and ``H(Y)`` the entropy of their mean (the
marginal estimated over the batch). Minimising it makes each sample's
assignment confident while spreading samples over all clusters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["entropy", "mi_loss", "kl_consistency"]

_LOG_EPS = 1e-8


def entropy(p: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Shannon entropy (nats) of distributions along ``dim``."""
    return -(p * torch.log(p + _LOG_EPS)).sum(dim=dim)


def mi_loss(
    p: torch.Tensor, gamma: float, weights: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``H(Y|X) - gamma H(Y)`` over the rows of ``p`` (``(n, k)`` probabilities).

    Parameters
    ----------
    p : torch.Tensor
        Cluster probabilities, one row per sample (superpixel).
    gamma : float
        Weight of the marginal entropy.
    weights : torch.Tensor, optional
        Non-negative sample weights (``(n,)``); uniform when omitted.

    Returns
    -------
    loss, h_cond, h_marg : torch.Tensor
        The loss and its two entropies (scalars).
    """
    if weights is None:
        h_cond = entropy(p).mean()
        marg = p.mean(dim=0)
    else:
        w = weights / weights.sum().clamp_min(1e-12)
        h_cond = (entropy(p) * w).sum()
        marg = (p * w[:, None]).sum(dim=0)
    h_marg = entropy(marg)
    return h_cond - gamma * h_marg, h_cond, h_marg


def kl_consistency(p_target: torch.Tensor, logits: torch.Tensor,
                   weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean ``KL(p_target || softmax(logits))`` over rows (``p_target`` is not differentiated)."""
    p_target = p_target.detach()
    logq = F.log_softmax(logits, dim=-1)
    kl = (p_target * (torch.log(p_target + _LOG_EPS) - logq)).sum(dim=-1)
    if weights is None:
        return kl.mean()
    w = weights / weights.sum().clamp_min(1e-12)
    return (kl * w).sum()
