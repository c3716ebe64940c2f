"""Temporal-average ("mean") models of mutual mean-teaching (Ge et al. ICLR 2020; Wu et al. 2020).

A mean model is a copy of a network whose parameters follow the network's by an
exponential moving average after every optimiser step:

``theta_mean <- a_t * theta_mean + (1 - a_t) * theta``, with
``a_t = min(1 - 1 / (t + 1), alpha)`` for the ``t``-th update (``t = 0, 1, ...``).

The warm-up ``1 - 1/(t+1)`` (MMT's code) makes the mean model the plain average of
all the network's iterates until ``a_t`` reaches ``alpha``: at ``t = 0`` it is a copy
of the updated network, so it does not stay frozen at the random initialisation.

Batch norm: only parameters are averaged (the BN affine weights and biases are
parameters, so they are averaged too). The mean model keeps no running
statistics: its BN layers always normalise with the statistics of the batch they
see, which for per-image segmentation is the image being segmented, the same
statistics the training network normalises with (MMT's code gets the same effect
by running its teachers in train mode).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

import torch
from torch import nn
from torch.optim.swa_utils import update_bn

__all__ = ["ema_alpha", "ema_update", "make_mean_model", "with_batch_statistics"]


def make_mean_model(net: nn.Module) -> nn.Module:
    """Copy of ``net`` to serve as its mean model: no gradients, BN without running statistics.

    Examples
    --------
    >>> from napari_useg.nn.feature_net import FeatureNet
    >>> mean = make_mean_model(FeatureNet(3, 4, 4, 1))
    >>> any(p.requires_grad for p in mean.parameters())
    False
    """
    mean = copy.deepcopy(net)
    for p in mean.parameters():
        p.requires_grad_(False)
    for m in mean.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.track_running_stats = False
            m.running_mean = None
            m.running_var = None
            m.num_batches_tracked = None
    return mean


def ema_alpha(t: int, alpha: float) -> float:
    """Averaging weight of the ``t``-th update (0-based): ``min(1 - 1/(t+1), alpha)``.

    Examples
    --------
    >>> [round(ema_alpha(t, 0.999), 3) for t in (0, 1, 3, 5000)]
    [0.0, 0.5, 0.75, 0.999]
    """
    return min(1.0 - 1.0 / (t + 1), float(alpha))


@torch.no_grad()
def ema_update(mean: nn.Module, net: nn.Module, t: int, alpha: float, *,
               warmup: bool = True) -> None:
    """``theta_mean <- a_t theta_mean + (1 - a_t) theta`` over the parameters (in place).

    ``warmup=False``: ``a_t = alpha`` from the first update (Wu et al.'s fixed momentum,
    the mean model starting from the network's initialisation).
    """
    a = ema_alpha(t, alpha) if warmup else float(alpha)
    mp = list(mean.parameters())
    np_ = [p.detach() for p in net.parameters()]
    if len(mp) != len(np_):
        raise ValueError("mean model and network have different parameters")
    torch._foreach_mul_(mp, a)
    torch._foreach_add_(mp, np_, alpha=1.0 - a)


@torch.no_grad()
def with_batch_statistics(mean: nn.Module, batches: Iterable[torch.Tensor]) -> nn.Module:
    """A copy of a mean model whose batch norms carry running statistics, in eval mode.

    A mean model normalises with the statistics of whatever batch it sees; to label a
    volume tile by tile (every tile normalised alike) it needs fixed statistics. They are
    recomputed for the averaged weights over ``batches`` (inputs of the training kind:
    random patches) by :func:`torch.optim.swa_utils.update_bn`, the recalibration used
    for weight averages, into a copy (the mean model itself is left as it is).

    Examples
    --------
    >>> from napari_useg.nn.feature_net import FeatureNet
    >>> mean = make_mean_model(FeatureNet(1, 4, 4, 1))
    >>> fixed = with_batch_statistics(mean, [torch.rand(1, 1, 8, 8) for _ in range(3)])
    >>> fixed.training, any(m.running_mean is not None for m in fixed.modules()
    ...                     if isinstance(m, nn.BatchNorm2d))
    (False, True)
    """
    model = copy.deepcopy(mean)
    dev = next(model.parameters()).device
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.track_running_stats = True
            m.register_buffer("running_mean", torch.zeros(m.num_features, device=dev))
            m.register_buffer("running_var", torch.ones(m.num_features, device=dev))
            m.register_buffer("num_batches_tracked", torch.tensor(0, device=dev))
    update_bn(batches, model)
    return model.eval()
