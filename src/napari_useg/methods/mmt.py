"""Mutual mean-teaching for segmentation: Wu, Guo, Zhang, Xu, "Unsupervised image segmentation
using mutual mean-teaching", arXiv 2012.08922, 2020 (after Ge, Chen, Li, MMT, ICLR 2020).

Two networks of the same architecture (:class:`~napari_useg.nn.feature_net.FeatureNet`,
M = 3, q = 100) start from different random initialisations; each has a mean model,
the temporal average of its parameters (:mod:`napari_useg.nn.mean_teacher`: EMA with
alpha = 0.999 after a ``1 - 1/(t+1)`` warm-up). Every iteration trains them in turn
(Algorithm 1 of the paper):

1. network 1: the labels of mean model 2 (argmax of its response) are aligned into
   network 1's label space, i.e. renamed by the maximum-overlap one-to-one assignment
   between them and network 1's own argmax labels (Hungarian algorithm on the q x q
   overlap matrix, :func:`napari_useg.core.align.overlap_permutation`; unmatched clusters
   keep their ids); loss = cross-entropy to these pseudo-labels + beta x total
   variation of the response (:func:`~napari_useg.nn.losses.total_variation_loss`);
   SGD step (lr 0.1, momentum 0.9); mean model 1 is updated;
2. the converse: network 2 learns from the aligned labels of the (just updated) mean
   model 1, then mean model 2 is updated.

Output
------
The labels of **mean model 1** after the last iteration. Mean models rather than
networks because the temporal average is what MMT makes stable (the networks
follow noisy pseudo-labels step by step; their averages move slowly), as in MMT's
own evaluation. Mean model 1 because its labels are exactly the pseudo-labels
network 2 was taught with in the last iteration, so they are the labels the stop
rule saw and no extra forward pass is needed; both mean models are trained
symmetrically and agree up to alignment once training has settled
(``info["agreement"]`` in the final snapshot: the fraction of pixels where network
2's labels equal mean model 1's aligned labels).

Stopping: after ``max_iter`` iterations (T = 1000 in the paper), or once mean model
1 gives ``min_labels`` labels or fewer (as the authors' baselines do; the paper
states no rule), or with the labels-stable rule of the fast preset.

The paper gives no value of beta and writes both losses as sums over pixels; here
cross-entropy is a mean over pixels and the total variation a mean over its
differences, so beta = 1 weighs it like Kim 2020's mu = 1.

Presets
-------
``paper``
    p = q = 100, M = 3, T = 1000, alpha = 0.999, full resolution.
``fast`` (default)
    Fewer channels, a working resolution, fewer iterations and a shorter averaging
    window; chosen by measurement (docs/dfc_mmt.md).
``volume`` (default for volumes)
    3x3x3 convolutions; both networks train on the same patch of about ``patch_size``
    voxels per iteration (focused on blocks that stand out, as DFC's volume mode),
    the total variation covers z, y and x, each weighted by ``min(spacing) / spacing``.
    The mean models normalise with the batch they see, which tile-by-tile prediction
    would change from tile to tile: before it labels the volume, mean model 1's batch
    norms get running statistics recomputed over a fixed set of random patches
    (:func:`~napari_useg.nn.mean_teacher.with_batch_statistics`). Measured in
    docs/volumes.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from napari_useg.core.align import overlap_permutation
from napari_useg.core.image import PreparedImage, to_working_resolution
from napari_useg.core.params import param
from napari_useg.core.progress import Progress
from napari_useg.core.registry import Method, RunContext, register
from napari_useg.methods._backprop import BackpropParams, backprop_memory, shared
from napari_useg.methods._hierarchy import method_hierarchy
from napari_useg.methods._volume import (
    PatchSampler,
    axis_weights,
    focus_blocks,
    iterate_volume,
    volume_memory,
    volume_patch,
)
from napari_useg.nn.allocator import reuse_large_blocks
from napari_useg.nn.feature_net import FeatureNet, seeded
from napari_useg.nn.image_loop import (
    ChangeMonitor,
    image_tensor,
    preview_labels,
    sgd,
    stop_reason,
    upsample_response,
)
from napari_useg.nn.losses import total_variation_loss
from napari_useg.nn.mean_teacher import ema_update, make_mean_model, with_batch_statistics
from napari_useg.nn.volume_loop import volume_tensor

__all__ = ["MmtParams", "METHOD", "aligned_targets"]


@dataclass(frozen=True)
class MmtParams(BackpropParams):
    """Parameters of mutual mean-teaching for segmentation (Wu et al. 2020)."""

    n_conv: int = param(3, "M: number of conv components (3x3 conv, ReLU, BN)", low=1, high=10)
    max_iter: int = param(1000, "T: maximum number of iterations (each trains both networks)",
                          low=1, high=100000)
    min_labels: int = param(3, "stop once mean model 1 gives this many labels or fewer", low=1,
                            high=1024)
    patience: int = param(0, "stop when mean model 1's labels change in < change_tol of the "
                             "pixels for this many iterations in a row (0: off)", low=0,
                          high=100000)
    beta: float = param(1.0, "weight of the total-variation loss", low=0.0, high=1000.0)
    alpha: float = param(0.999, "EMA momentum of the mean models (after the warm-up)",
                         low=0.0, high=0.999999)
    warmup: bool = param(True, "mean models average all iterates until the momentum reaches "
                               "alpha (Ge et al.'s warm-up); off: fixed alpha from the "
                               "initialisation (Wu et al.)")
    patch_size: int = shared("patch_size")
    patch_focus: float = shared("patch_focus", help="volumes: fraction of training patches "
                                "centred on a block of the volume that stands out from its "
                                "intensity (for rare objects in a large volume)")


PRESETS = {
    # Wu et al. 2020: T = 1000, M = 3, q = 100, alpha = 0.999 fixed from theta_mean^0 =
    # theta^0, no stop on the number of labels (min_labels 1 never triggers before the end)
    "paper": {"warmup": False, "min_labels": 1},
    "fast": {
        "n_features": 32,
        "n_clusters": 32,
        "max_iter": 100,
        "max_side": 160,
        "beta": 3.0,
        "alpha": 0.9,
        "patience": 10,
        "change_tol": 0.002,
    },
    # volumes: DFC's volume preset (patches of 32 voxels focused on blocks that stand out,
    # q = 32 merging to at least 2 labels, lr 0.01) with MMT's pair of networks, the
    # total variation along z, y and x weighted by the spacing, and fast's averaging; the
    # result cut from the hierarchy of its 3-D regions at 0.15, as DFC's
    "volume": {"n_features": 16, "n_clusters": 32, "max_iter": 150, "min_labels": 2,
               "lr": 0.01, "beta": 1.0, "alpha": 0.9, "patch_size": 32, "patch_focus": 1.0,
               "cut": 0.15},
}

#: Random patches over which mean model 1's batch-norm statistics are recomputed before
#: it labels a volume tile by tile.
CALIBRATION_PATCHES = 20


def aligned_targets(pseudo: torch.Tensor, own: torch.Tensor, q: int) -> torch.Tensor:
    """Rename ``pseudo`` labels (another model's argmax) into the label space of ``own``.

    The ``q x q`` overlap matrix is one ``bincount``; the permutation comes from
    :func:`napari_useg.core.align.overlap_permutation` (Hungarian, maximum overlap;
    unmatched clusters keep their ids when free).

    Parameters
    ----------
    pseudo, own : torch.Tensor
        Flat ``int64`` label tensors with values in ``0..q-1``.
    q : int
        Number of channels.

    Returns
    -------
    torch.Tensor
        ``pseudo`` renamed, same device.
    """
    overlap = torch.bincount(pseudo * q + own, minlength=q * q).view(q, q)
    lut = overlap_permutation(overlap.cpu().numpy())
    return torch.from_numpy(lut).to(pseudo.device)[pseudo]


def run(image: PreparedImage, p: MmtParams, ctx: RunContext) -> Iterator[Progress]:
    """Iterate mutual mean-teaching on one image or volume (see the module docstring)."""
    with reuse_large_blocks():  # keep large activation buffers in the heap (glibc)
        if image.spatial_dims == 3:
            yield from _iterate_volume(image, p, ctx)
        else:
            yield from _iterate(image, p, ctx)


def _iterate_volume(image: PreparedImage, p: MmtParams, ctx: RunContext
                    ) -> Iterator[Progress]:
    """Algorithm 1 on one patch per iteration (:mod:`napari_useg.methods._volume`); mean
    model 1, its batch norms recalibrated on :data:`CALIBRATION_PATCHES` patches
    (:func:`~napari_useg.nn.mean_teacher.with_batch_statistics`), labels the volume."""
    dev = ctx.device
    q = p.n_clusters
    weights = axis_weights(ctx)
    patch = volume_patch(image, p, ctx)
    focus = focus_blocks(image, p, ctx)
    with seeded(ctx.seed):  # two draws from one seeded stream: different initialisations
        nets = [FeatureNet(image.n_channels, p.n_features, q, p.n_conv, init=p.init, dims=3)
                for _ in range(2)]
    nets = [n.to(dev).train() for n in nets]
    means = [make_mean_model(n) for n in nets]
    opts = [sgd(n, p.lr, p.momentum) for n in nets]
    updates = [0]

    def train_step(x: torch.Tensor, crop: tuple[slice, ...]) -> tuple[float, torch.Tensor]:
        losses = []
        for i in (0, 1):
            with torch.no_grad():
                pseudo = means[1 - i](x)[0].argmax(dim=0).ravel()
            opts[i].zero_grad(set_to_none=True)
            out = nets[i](x)
            resp = out[0].reshape(q, -1).t()
            own = resp.detach().argmax(dim=1)
            loss = F.cross_entropy(resp, aligned_targets(pseudo, own, q))
            if p.beta:
                loss = loss + p.beta * total_variation_loss(out, weights=weights)
            loss.backward()
            opts[i].step()
            ema_update(means[i], nets[i], updates[0], p.alpha, warmup=p.warmup)
            losses.append(float(loss.item()))
        updates[0] += 1
        return float(np.mean(losses)), pseudo  # the second pass: mean model 1's labels

    def predictor() -> torch.nn.Module:
        # the same calibration patches every time, so previews do not change the result
        draw = PatchSampler(image.shape, patch, focus, p.patch_focus,
                            np.random.default_rng(ctx.seed + 1))
        return with_batch_statistics(
            means[0], (volume_tensor(image.data[draw()], dev) for _ in range(CALIBRATION_PATCHES)))

    yield from iterate_volume(image, p, ctx, train_step, predictor=predictor, patch=patch,
                              focus=focus)


def _iterate(image: PreparedImage, p: MmtParams, ctx: RunContext) -> Iterator[Progress]:
    dev = ctx.device
    full_h, full_w = image.shape
    work, _ = to_working_resolution(image.data, p.max_side)
    h, w = work.shape[:2]
    q = p.n_clusters
    with seeded(ctx.seed):  # two draws from one seeded stream: different initialisations
        nets = [FeatureNet(image.n_channels, p.n_features, q, p.n_conv, init=p.init)
                for _ in range(2)]
    nets = [n.to(dev).train() for n in nets]
    means = [make_mean_model(n) for n in nets]
    opts = [sgd(n, p.lr, p.momentum) for n in nets]
    x = image_tensor(work, dev)

    monitor = ChangeMonitor(p.patience, p.change_tol)
    why = f"reached {p.max_iter} iterations"
    for step in range(1, p.max_iter + 1):
        losses = []
        for i in (0, 1):
            other = 1 - i
            with torch.no_grad():
                mean_out = means[other](x)[0]  # (q, h, w)
                pseudo = mean_out.argmax(dim=0).ravel()
            opts[i].zero_grad(set_to_none=True)
            out = nets[i](x)
            resp = out[0].permute(1, 2, 0).reshape(-1, q)
            own = resp.detach().argmax(dim=1)
            target = aligned_targets(pseudo, own, q)
            loss = F.cross_entropy(resp, target)
            if p.beta:
                loss = loss + p.beta * total_variation_loss(out)
            loss.backward()
            opts[i].step()
            ema_update(means[i], nets[i], step - 1, p.alpha, warmup=p.warmup)
            losses.append(float(loss.item()))
        # in the second half, `pseudo` / `mean_out` are mean model 1's labels / response
        labels1, resp1 = pseudo, mean_out
        agreement = float((target == own).float().mean().item())
        n_labels = int(torch.bincount(labels1, minlength=q).count_nonzero().item())
        stop = stop_reason(n_labels, p.min_labels, monitor.update(labels1), p.patience)
        if stop:
            why = stop
        if stop or step == p.max_iter:
            break
        labels = None
        if ctx.wants_preview(step, p.max_iter):
            labels = preview_labels(labels1, (h, w), (full_h, full_w))
        yield Progress(step=step, total=p.max_iter, loss=float(np.mean(losses)),
                       n_labels=n_labels, labels=labels)

    up = upsample_response(resp1, (full_h, full_w))
    labels, hierarchy = method_hierarchy(image, up.argmax(dim=0).cpu().numpy(), up, p)
    yield Progress(step=step, total=p.max_iter, loss=float(np.mean(losses)),
                   n_labels=None if p.cut > 0 else n_labels, labels=labels, done=True,
                   message=f"stopped: {why}",
                   info={"output": "mean model 1", "agreement": agreement,
                         "hierarchy": hierarchy})


def memory(shape: tuple[int, ...], n_channels: int, p: MmtParams, *, lazy: bool = False) -> int:
    """Peak bytes: :func:`backprop_memory` of four networks for an image; for a volume (read
    whole, or a window at a time with ``lazy``), two trained networks and two mean models
    on one patch (:func:`~napari_useg.methods._volume.volume_memory`)."""
    if len(shape) == 2:
        return backprop_memory(shape, n_channels, p, networks=4)
    return volume_memory(shape, n_channels, p, networks=4, lazy=lazy)


METHOD = register(
    Method(
        name="mmt",
        title="Mutual mean-teaching (Wu 2020)",
        summary="Two CNNs teach each other with the aligned labels of each other's temporal "
                "average; the result is more stable across seeds than a single network.",
        reference="Z. Wu, L. Guo, H. Zhang, D. Xu, Unsupervised image segmentation using mutual "
                  "mean-teaching, arXiv 2012.08922, 2020",
        params=MmtParams,
        run=run,
        presets=PRESETS,
        default_preset="fast",
        uses_torch=True,
        memory=memory,
        volumes=True,
        volume_preset="volume",
        lazy_volumes=True,
    )
)
