"""Backprop clustering: Kanezaki, "Unsupervised image segmentation by backpropagation", ICASSP 2018.

Algorithm 1 of the paper, per iteration:

1. forward the image through M conv components (3x3 conv, ReLU, BN; p filters),
   a 1x1 linear classifier to q channels and batch norm of the response;
2. labels = argmax over the q channels;
3. refinement: every pixel takes the most frequent label of its SLIC superpixel
   (one ``bincount`` over (superpixel, label) pairs, no loop over superpixels);
4. cross-entropy of the normalised response against the refined labels,
   backpropagation, SGD step (lr 0.1, momentum 0.9).

The run stops after ``max_iter`` iterations or, as in the authors' code, once the
number of labels given by the argmax (before refinement) falls to ``min_labels``.
The result is the refined label map of the last iteration: the labels the stop
rule saw, not those of an extra forward pass.

Presets
-------
``paper``
    The paper: p = q = 100, M = 2, K = 10000 superpixels with compactness 100,
    T = 500 iterations without the stop on the number of labels, full resolution.
``authors``
    The authors' script: as ``paper`` but up to 1000 iterations, stopping once the
    argmax gives 3 labels, torch's default initialisation.
``fast`` (default)
    Interactive on a CPU laptop: fewer channels, training at a working
    resolution (longest side ``max_side``), stop also when the refined labels
    change in fewer than ``change_tol`` of the pixels for ``patience``
    iterations; the last response map is brought back to full resolution
    (bilinear). The result is the cut at 0.6 of the run's hierarchy (never
    fewer than ``min_labels`` segments): Felzenszwalb regions (scale 275) merged by
    colour and the network's response, each merge's cost weighted by the colour
    gradient on the two regions' common boundary (``edge_power`` 4), regions under
    0.1 % of the image merged first (``absorb_fraction``). Chosen by measurement on
    BSDS500 val (docs/kanezaki.md).

``volume`` (default for volumes)
    3x3x3 convolutions, two response channels (foreground, background); each
    iteration trains on one random patch of about ``patch_size`` voxels across
    (fewer along a coarser z), refined by SLIC supervoxels computed once with the
    voxel spacing; the labels of the whole volume are then predicted tile by tile
    with a halo of ``n_conv`` voxels (batch norms in evaluation mode); those voxel
    labels are the result (``final_vote=True`` votes them over the supervoxels
    instead). Training patches are centred on supervoxels drawn in proportion to
    how much their intensity stands out (``patch_focus=1``), so rare objects are
    seen as often as the background. Memory follows the patch, not the volume.
    Chosen on the nuclei volumes (docs/volumes.md), where the result depends
    strongly on the seed:
    ``runs`` (a consensus of several seeds) is the remedy offered.

Every 2-D preset returns the hierarchy of its result in the final snapshot's
``info["hierarchy"]`` (docs/hierarchy.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from napari_useg.core.image import PreparedImage, to_working_resolution
from napari_useg.core.params import param
from napari_useg.core.progress import Progress
from napari_useg.core.registry import Method, RunContext, register
from napari_useg.core.resources import patch_memory
from napari_useg.core.superpixels import slic_superpixels, superpixel_vote
from napari_useg.methods._backprop import FAST_TRAINING, BackpropParams, backprop_memory, shared
from napari_useg.methods._hierarchy import cut_note, method_hierarchy
from napari_useg.methods._volume import (
    iterate_volume,
    sgd_step,
    tile_with_halo,
    volume_network,
    volume_patch,
    volume_spacing,
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
from napari_useg.nn.volume_loop import supervoxel_focus

__all__ = ["KanezakiParams", "METHOD"]


@dataclass(frozen=True)
class KanezakiParams(BackpropParams):
    """Parameters of backprop clustering (Kanezaki 2018)."""

    n_superpixels: int = param(10000, "K: SLIC superpixels at full resolution", low=1,
                               high=10_000_000)
    compactness: float = param(100.0, "SLIC compactness (colour vs space)", low=1e-3, high=1e4)
    init: str = param("xavier", "weight initialisation (paper: Xavier)",
                      choices=("xavier", "torch"))
    patch_size: int = shared("patch_size")
    final_vote: bool = param(True, "volumes: vote the final labels over the supervoxels "
                                   "(off: the network's own voxel labels, sharper objects)")
    patch_focus: float = shared("patch_focus", help="volumes: fraction of training patches "
                                "centred on a supervoxel that stands out from the volume's "
                                "intensity (for rare objects in a large volume)")


PRESETS = {
    # the paper (Algorithm 1): T = 500 iterations, no stop on the number of labels
    "paper": {"max_iter": 500, "min_labels": 1},
    # the authors' script: up to 1000 iterations, stop once the argmax gives 3 labels,
    # torch's default initialisation
    "authors": {"max_iter": 1000, "min_labels": 3, "init": "torch"},
    "fast": {
        **FAST_TRAINING,
        # result: the hierarchy over Felzenszwalb regions (scale 275) merged by colour and
        # the network's response, regions apart by a strong colour boundary merging later
        # (edge_power 4) after regions under 0.1 % of the image joined their most similar
        # neighbour (no slivers along edges), cut at 0.6 (the finer end of the plateau where
        # Hungarian accuracy, covering and segment AP are all high on BSDS500 val, see
        # docs/kanezaki.md; scale 300 joins the sample cat's eye with the background in
        # one region)
        "regions": "felzenszwalb",
        "region_scale": 275.0,
        "feature_weight": 1.0,
        "edge_power": 4.0,
        "absorb_fraction": 0.001,
        "cut": 0.6,
    },
    "volume": {
        "n_features": 16,
        "n_clusters": 2,
        "max_iter": 150,
        "min_labels": 1,
        "lr": 0.01,
        "n_superpixels": 10000,
        "compactness": 1.0,
        "patch_size": 32,
        # the network's own voxel labels: sharper objects than the supervoxel vote
        # (nucleus F1@0.5 with split objects, mean of seeds 0-4: 0.48 against 0.33 and
        # 0.25 against 0.17 on the two nuclei volumes, docs/volumes.md)
        "final_vote": False,
        # every training patch centred on a supervoxel that stands out from the volume
        # (F1@0.5 with split objects, mean of seeds 0-9: 0.78 against 0.64 and 0.32
        # against 0.22 on the two nuclei volumes, docs/volumes.md)
        "patch_focus": 1.0,
    },
}


def run(image: PreparedImage, p: KanezakiParams, ctx: RunContext) -> Iterator[Progress]:
    """Iterate Kanezaki's algorithm on one image (see the module docstring).

    Large activation buffers are kept in the heap between iterations while the
    run is active (:func:`napari_useg.nn.allocator.reuse_large_blocks`).
    """
    with reuse_large_blocks():
        if image.spatial_dims == 3:
            yield from _iterate_volume(image, p, ctx)
        else:
            yield from _iterate(image, p, ctx)


def _iterate_volume(image: PreparedImage, p: KanezakiParams, ctx: RunContext
                    ) -> Iterator[Progress]:
    """Kanezaki's iterations on patches of a volume (the ``volume`` preset's doc)."""
    dev = ctx.device
    sp_np = slic_superpixels(image.data, p.n_superpixels, p.compactness, image.is_rgb,
                             spacing=volume_spacing(ctx))
    n_sp = int(sp_np.max()) + 1
    q = p.n_clusters
    focus = supervoxel_focus(image.data, sp_np, n_sp) if p.patch_focus > 0 else None

    def patch_loss(out: torch.Tensor, crop: tuple[slice, ...]
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        resp = out[0].reshape(q, -1).t()
        _, sp_local = torch.unique(torch.from_numpy(sp_np[crop].ravel()), return_inverse=True)
        sp_local = sp_local.to(dev)
        with torch.no_grad():
            target = resp.argmax(dim=1)
            refined = superpixel_vote(target, sp_local, int(sp_local.max()) + 1, q)
        return F.cross_entropy(resp, refined), target

    def vote(labels: np.ndarray) -> np.ndarray:
        return superpixel_vote(torch.from_numpy(labels.ravel()), torch.from_numpy(sp_np.ravel()),
                               n_sp, q).view(image.shape).numpy()

    net = volume_network(image, p, ctx.seed).to(dev).train()
    yield from iterate_volume(image, p, ctx, sgd_step(net, p, patch_loss), predictor=lambda: net,
                              patch=volume_patch(image, p, ctx), focus=focus,
                              finish=vote if p.final_vote else None)


def _iterate(image: PreparedImage, p: KanezakiParams, ctx: RunContext) -> Iterator[Progress]:
    dev = ctx.device
    full_h, full_w = image.shape
    work, _ = to_working_resolution(image.data, p.max_side)
    h, w = work.shape[:2]
    area_ratio = (h * w) / (full_h * full_w)
    n_sp_work = max(1, round(p.n_superpixels * area_ratio))
    sp_np = slic_superpixels(work, n_sp_work, p.compactness, image.is_rgb)
    n_sp = int(sp_np.max()) + 1
    sp = torch.from_numpy(sp_np.ravel()).to(dev)
    q = p.n_clusters

    with seeded(ctx.seed):
        net = FeatureNet(image.n_channels, p.n_features, q, p.n_conv, init=p.init)
    net = net.to(dev).train()
    opt = sgd(net, p.lr, p.momentum)
    x = image_tensor(work, dev)

    monitor = ChangeMonitor(p.patience, p.change_tol)
    resp_last: torch.Tensor | None = None
    refined_last: torch.Tensor | None = None
    why = f"reached {p.max_iter} iterations"
    for step in range(1, p.max_iter + 1):
        opt.zero_grad(set_to_none=True)
        out = net(x)[0]  # (q, h, w)
        resp = out.permute(1, 2, 0).reshape(-1, q)
        with torch.no_grad():
            target = resp.argmax(dim=1)
            n_labels = int(torch.unique(target).numel())
            refined = superpixel_vote(target, sp, n_sp, q)
        loss = F.cross_entropy(resp, refined)
        loss.backward()
        opt.step()
        resp_last, refined_last = resp.detach(), refined

        stop = stop_reason(n_labels, p.min_labels, monitor.update(refined), p.patience)
        if stop:
            why = stop
        if stop or step == p.max_iter:
            break
        labels = None
        if ctx.wants_preview(step, p.max_iter):
            labels = preview_labels(refined, (h, w), (full_h, full_w))
        yield Progress(step=step, total=p.max_iter, loss=float(loss.item()), n_labels=n_labels,
                       labels=labels)

    assert resp_last is not None and refined_last is not None
    up = upsample_response(resp_last.view(h, w, q).permute(2, 0, 1), (full_h, full_w))
    if (h, w) == (full_h, full_w):
        final = refined_last.view(h, w).cpu().numpy()
    else:
        final = _full_resolution_labels(up, image, p)
    labels, hierarchy = method_hierarchy(image, final, up, p)
    message = f"stopped: {why}"
    if p.cut > 0:
        message += "; " + cut_note(hierarchy, p)
    yield Progress(step=step, total=p.max_iter, loss=float(loss.item()),
                   n_labels=None if p.cut > 0 else n_labels, labels=labels, done=True,
                   message=message, info={"hierarchy": hierarchy})


def _full_resolution_labels(up: torch.Tensor, image: PreparedImage,
                            p: KanezakiParams) -> np.ndarray:
    """Argmax of the full-resolution response ``(q, H, W)``, full-resolution superpixel vote."""
    full_h, full_w = image.shape
    q = up.shape[0]
    target = up.argmax(dim=0).ravel().cpu()
    sp_np = slic_superpixels(image.data, p.n_superpixels, p.compactness, image.is_rgb)
    sp = torch.from_numpy(sp_np.ravel())
    return superpixel_vote(target, sp, int(sp_np.max()) + 1, q).view(full_h, full_w).numpy()


def memory(shape: tuple[int, ...], n_channels: int, p: KanezakiParams) -> int:
    """Peak bytes: :func:`backprop_memory` for an image; for a volume, the network on one
    patch (activations and gradients, plus a tile with its halo at prediction) and a few
    copies of the volume (data, supervoxels, labels, vote table)."""
    if len(shape) == 2:
        return backprop_memory(shape, n_channels, p)
    patch = tile_with_halo(shape, p)
    per_voxel = 4 * (3 * p.n_conv * p.n_features + 5 * p.n_clusters + n_channels) * 2
    # per voxel of the volume, at the peak (inside SLIC): the prepared data, SLIC's
    # copies of it, its coordinate grid, distances and int64 labels; measured 44 bytes
    # per voxel with one channel (benchmarks/volumes.py --synthetic, docs/volumes.md)
    return patch_memory(shape, n_channels, patch, per_voxel, volume_copies=52)


METHOD = register(
    Method(
        name="kanezaki",
        title="Backprop clustering (Kanezaki 2018)",
        summary="A small CNN learns to cluster the pixels of one image by training on its own "
                "argmax labels refined over SLIC superpixels.",
        reference="A. Kanezaki, Unsupervised image segmentation by backpropagation, ICASSP 2018",
        params=KanezakiParams,
        run=run,
        presets=PRESETS,
        default_preset="fast",
        uses_torch=True,
        memory=memory,
        volumes=True,
        volume_preset="volume",
    )
)
