"""InMARS: mutual-information maximisation and adversarial regularisation over superpixels.

Mirsadeghi, Royat, Rezatofighi, "Unsupervised image segmentation by mutual
information maximization and adversarial regularization", IEEE RA-L 2021.

A dataset-level method. SLIC superpixels are computed once per training image.
A fully convolutional backbone (two-stack hourglass as in the paper, or a UNet)
maps a crop to ``k`` maps at full resolution; the region-wise embedding (RWE,
:mod:`napari_useg.nn.region_embedding`) turns the maps inside each superpixel
into ``k`` cluster logits (SPP + FC by default, as the paper's final model; max
or mean pooling, or interpolation + FC). Per step, over all superpixels of a
batch of crops:

``L = 1/2 R_adv + 1/2 R_geo + lambda (H(Y|X) - gamma H(Y))``

* ``H(Y|X)``: mean entropy of the superpixels' cluster distributions; ``H(Y)``:
  entropy of their batch mean; ``lambda = 4``, ``gamma`` decays linearly from 1 to 0.1;
* ``R_adv``: KL between the predictions for ``x`` and ``x + r``, ``r`` found by one
  power iteration (VAT) with ``||r||_2 = eps`` per crop (all values); by default
  (``vat_radius="relative"``) IMSAT's radius, which InMARS follows: ``eps = 0.25 x``
  the distance from the crop to its 10th nearest crop of the batch (the farthest one
  in smaller batches); ``vat_radius="absolute"`` takes ``vat_eps`` as the norm itself
  (0.25 as a norm over a whole crop is a perturbation of about 0.002 per value
  on a 96 px RGB crop: the adversarial term is then negligible, measured in
  docs/dataset_methods.md);
* ``R_geo``: KL between the predictions for ``x`` and for a random affine warp of
  ``x`` (rotation, shear, scale, translation) whose superpixel map is warped
  alike (nearest neighbour), per superpixel still visible;
* the clean predictions are the (constant) targets of both KLs, and batch-norm
  running statistics are updated by the clean forward only.

Adam, lr 1e-5 decayed by 0.96 per epoch in the paper preset.

Outputs (variants of the paper, chosen at prediction time)
----------------------------------------------------------
``backbone`` (InMARS-b)
    argmax of the backbone's ``k`` maps per pixel.
``region`` (InMARS)
    superpixels computed on the image at the training density, each labelled
    by the RWE head.
``multiscale`` (InMARS+)
    per-pixel average of the RWE probabilities over three superpixel
    resolutions, ``N``, ``2N`` and ``N^2`` superpixels, then argmax. In the
    paper ``N`` is the number of ground-truth classes and training uses ``2N``
    superpixels per (200 x 200) image; here the density is given per
    ``input_size^2`` of image area and ``N`` is half the training density, so with
    the default density (``2k``) ``N = k`` exactly as in the paper.

``backbone_weight`` (not in the paper, 0 in the paper preset) adds the same MI
loss on the superpixel means of the backbone maps, which keeps InMARS-b
meaningful when the RWE head has FC layers. ``crop_placement="structure"`` (not in the
paper, ``uniform`` in the paper preset, ``structure`` in ``fast``) places training crops
where an image differs from its median (:func:`napari_useg.nn.training.structure_weights`):
on nuclei collections, where nuclei are a tenth of the pixels, crops of plain background
otherwise dominate the batches (measured in docs/benchmarks.md). The ``fast`` preset's
default output is ``backbone``, with each image's classes refined by its own values on
collections of objects on a plain background (``refine="auto"``,
:mod:`napari_useg.core.refinement`): on both dev sets (nuclei, land cover) it scored as
well as ``region`` or better, per image and pooled, and it labels without superpixels.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from napari_useg.core.fitting import fit_and_label
from napari_useg.core.image import PreparedImage
from napari_useg.core.model import Model, model_class
from napari_useg.core.params import param
from napari_useg.core.progress import Progress
from napari_useg.core.refinement import RefineParams
from napari_useg.core.registry import Method, RunContext, register
from napari_useg.core.superpixels import slic_superpixels
from napari_useg.nn.augment import random_affine, warp
from napari_useg.nn.feature_net import seeded
from napari_useg.nn.hourglass import StackedHourglass
from napari_useg.nn.mi_loss import kl_consistency, mi_loss
from napari_useg.nn.region_embedding import RWE_MODES, RegionEmbedding
from napari_useg.nn.training import (
    Checkpoint,
    CropSampler,
    crop_placement_param,
    fingerprint,
    resume,
    save_state,
)
from napari_useg.nn.training import run_params as _run_params
from napari_useg.nn.unet import UNet
from napari_useg.nn.vat import bn_frozen, relative_radius, vat_perturbation

__all__ = ["InMARSParams", "InMARSModel", "InMARSNet", "METHOD"]

OUTPUTS = ("region", "backbone", "multiscale")


@dataclass(frozen=True)
class InMARSParams(RefineParams):
    """Parameters of InMARS."""

    n_clusters: int = param(3, "k: clusters (the paper: number of classes N_gt)", low=2, high=256)
    backbone: str = param("hourglass", "fully convolutional backbone",
                          choices=("hourglass", "unet"))
    channels: int = param(64, "feature channels (hourglass: every stage; UNet: first level)",
                          low=4, high=512)
    depth: int = param(4, "poolings of each hourglass / of the UNet (input divisible by "
                          "2**depth)", low=1, high=6)
    n_stacks: int = param(2, "hourglass stacks", low=1, high=8)
    n_blocks: int = param(2, "residual blocks per hourglass stage", low=1, high=8)
    rwe: str = param("spp", "region-wise embedding: spp (+FC), max, mean, interp (+FC)",
                     choices=RWE_MODES)
    spp_levels: int = param(3, "SPP levels (1, 2, 4, ... bins per side)", low=1, high=5)
    interp_size: int = param(4, "grid side of the interpolation embedding", low=1, high=16)
    fc_hidden: int = param(128, "hidden units of the RWE's FC layers", low=4, high=4096)
    superpixels: float = param(0.0, "SLIC superpixels per input_size^2 of image area (0: 2k, "
                                     "the paper's 2 N_gt)", low=0.0, high=100000.0)
    compactness: float = param(5.0, "SLIC compactness (paper: 5)", low=1e-3, high=1e4)
    input_size: int = param(192, "side of the square training crops", low=8, high=4096)
    batch_size: int = param(32, "crops per step", low=1, high=4096)
    epochs: int = param(100, "epochs (epoch: crops covering the collection's area once)", low=1,
                        high=100000)
    steps: int = param(0, "training steps in total (0: epochs x steps per epoch)", low=0,
                       high=10_000_000)
    lr: float = param(1e-5, "Adam learning rate", low=1e-8, high=1.0)
    lr_decay: float = param(0.96, "learning-rate factor per epoch", low=0.1, high=1.0)
    lam: float = param(4.0, "lambda: weight of the MI loss", low=0.0, high=1000.0)
    gamma_start: float = param(1.0, "gamma (marginal-entropy weight) at the start", low=0.0,
                               high=100.0)
    gamma_end: float = param(0.1, "gamma at the end (linear decay)", low=0.0, high=100.0)
    vat_eps: float = param(0.25, "eps of the adversarial perturbation: factor of the distance "
                                 "to the 10th nearest crop (vat_radius relative, IMSAT) or "
                                 "its L2 norm per crop (absolute)", low=0.0, high=1000.0)
    vat_radius: str = param("relative", "how vat_eps sets the perturbation's norm: relative "
                                        "(IMSAT: eps x distance to the 10th nearest crop of "
                                        "the batch) or absolute", choices=("relative", "absolute"))
    vat_xi: float = param(1e-6, "finite-difference step of the VAT power iteration", low=1e-12,
                          high=10.0)
    adv_weight: float = param(0.5, "weight of R_adv", low=0.0, high=100.0)
    geo_weight: float = param(0.5, "weight of R_geo", low=0.0, high=100.0)
    geo_rotation: float = param(15.0, "R_geo: maximum rotation (degrees)", low=0.0, high=180.0)
    geo_shear: float = param(10.0, "R_geo: maximum shear (degrees)", low=0.0, high=45.0)
    geo_scale: float = param(0.1, "R_geo: scale drawn in [1 - s, 1 + s]", low=0.0, high=0.9)
    geo_translate: float = param(0.1, "R_geo: maximum shift (fraction of the half side)",
                                 low=0.0, high=1.0)
    backbone_weight: float = param(0.0, "weight of the MI loss on superpixel means of the "
                                         "backbone maps (not in the paper)", low=0.0, high=100.0)
    output: str = param("multiscale", "default prediction: region (InMARS), backbone "
                                      "(InMARS-b), multiscale (InMARS+)", choices=OUTPUTS)
    crop_placement: str = crop_placement_param()

    def check(self) -> None:
        """Cross-parameter checks."""
        m = 2 ** self.depth
        if self.input_size % m:
            raise ValueError(f"input_size ({self.input_size}) must be divisible by 2**depth ({m})")

    @property
    def density(self) -> float:
        """Training superpixels per ``input_size**2`` of image area."""
        return self.superpixels if self.superpixels > 0 else 2.0 * self.n_clusters


PRESETS = {
    "paper": {},
    "fast": {
        "backbone": "unet",
        "channels": 16,
        "depth": 3,
        "input_size": 96,
        "batch_size": 8,
        "epochs": 15,
        "lr": 1e-3,
        "superpixels": 48.0,
        "compactness": 10.0,
        "vat_eps": 2.0,
        "vat_radius": "absolute",
        "backbone_weight": 0.5,
        "output": "backbone",
        "crop_placement": "structure",
        "refine": "auto",
    },
}


class InMARSNet(nn.Module):
    """Backbone (``k`` maps at input resolution) plus the region-wise embedding head."""

    def __init__(self, p: InMARSParams, n_channels: int) -> None:
        super().__init__()
        k = p.n_clusters
        if p.backbone == "hourglass":
            self.backbone: nn.Module = StackedHourglass(n_channels, k, p.channels, p.depth,
                                                        p.n_stacks, p.n_blocks)
        else:
            self.backbone = UNet(n_channels, k, p.channels, p.depth)
        self.rwe = RegionEmbedding(p.rwe, k, k, p.spp_levels, p.interp_size, p.fc_hidden)

    def forward(self, x: torch.Tensor, sp: torch.Tensor,
                n_sp: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Region logits ``(S, k)``, their pixel counts ``(S,)`` and the backbone maps."""
        feat = self.backbone(x)
        logits, count = self.rwe(feat, sp, n_sp)
        return logits, count, feat


def _region_mean(feat: torch.Tensor, sp: torch.Tensor, n_sp: int) -> torch.Tensor:
    """Mean of the backbone maps per superpixel ``(S, k)``."""
    d = feat.shape[1]
    flat = feat.permute(0, 2, 3, 1).reshape(-1, d)
    ids = sp.reshape(-1)
    ok = ids >= 0
    s = torch.zeros(n_sp, d, dtype=feat.dtype, device=feat.device).index_add(0, ids[ok], flat[ok])
    c = torch.bincount(ids[ok], minlength=n_sp).clamp_min(1)
    return s / c[:, None].to(feat.dtype)


def _n_segments(density: float, area: int, input_size: int) -> int:
    """Superpixels for ``area`` pixels at ``density`` per ``input_size**2`` (1 to area/16)."""
    n = int(round(density * area / float(input_size * input_size)))
    return max(1, min(n, area // 16 if area >= 16 else 1))


@model_class("inmars")
class InMARSModel(Model):
    """A trained InMARS network; outputs ``"region"``, ``"backbone"`` and ``"multiscale"``."""

    outputs = OUTPUTS

    @classmethod
    def build_net(cls, params: InMARSParams, n_channels: int, is_rgb: bool) -> nn.Module:
        return InMARSNet(params, n_channels)

    @property
    def multiple(self) -> int:
        return 2 ** self.params.depth

    @property
    def default_output(self) -> str:
        return self.params.output

    def n_labels(self, output: str | None = None) -> int:
        self.check_output(output)
        return self.params.n_clusters

    def pixel_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.backbone(x)

    def densities(self, output: str) -> list[float]:
        """Superpixel densities (per ``input_size**2``) used by ``output``."""
        d = self.params.density
        if output == "multiscale":
            n = d / 2.0
            return [n, 2.0 * n, n * n]
        return [d]

    def extra_margin(self, output: str) -> int:
        if output == "backbone":
            return 0
        side = self.params.input_size / math.sqrt(min(self.densities(output)))
        return int(min(2 * self.params.input_size, math.ceil(2 * side)))

    def _scores(self, window: np.ndarray, output: str) -> torch.Tensor:
        """Class scores ``(k, h, w)``: backbone logits, or superpixel class probabilities."""
        x = torch.from_numpy(np.ascontiguousarray(window.transpose(2, 0, 1)))[None].to(self.device)
        feat = self.net.backbone(x)
        if output == "backbone":
            return feat[0]
        h, w = window.shape[:2]
        rgb = self.is_rgb and window.shape[2] == 3
        acc = torch.zeros(self.params.n_clusters, h * w, device=self.device)
        scales = self.densities(output)
        for dens in scales:  # 1 or 3 scales
            n = _n_segments(dens, h * w, self.params.input_size)
            sp_np = slic_superpixels(window, n, self.params.compactness, rgb)
            n_sp = int(sp_np.max()) + 1
            sp = torch.from_numpy(sp_np)[None].to(self.device)
            logits, _ = self.net.rwe(feat, sp, n_sp)
            prob = F.softmax(logits, dim=1)  # S, k
            acc += prob[sp.reshape(-1)].t()
        return acc.view(-1, h, w)

    def label_window(self, window: np.ndarray, output: str) -> np.ndarray:
        return self._scores(window, output).argmax(dim=0).cpu().numpy()

    def window_probs(self, window: np.ndarray, output: str) -> np.ndarray:
        s = self._scores(window, output)
        p = F.softmax(s, dim=0) if output == "backbone" else s / len(self.densities(output))
        return p.detach().cpu().numpy()


def _warp_ids(sp: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Warp an id map ``(N, H, W)`` (``-1`` = none) like the image; outside gives ``-1``."""
    shifted = (sp + 1).to(torch.float32)[:, None]
    out = warp(shifted, theta, mode="nearest")[:, 0]
    return out.round().to(torch.int64) - 1


def fit(images: list[PreparedImage], p: InMARSParams, ctx: RunContext) -> Iterator[Progress]:
    """Train InMARS on a collection (module docstring); the last snapshot holds the model."""
    rgb = bool(getattr(ctx, "rgb", images[0].is_rgb))
    n_ch = images[0].n_channels
    dev = ctx.device
    sps = []
    for im in images:  # SLIC once per image
        h, w = im.shape
        n = _n_segments(p.density, h * w, p.input_size)
        sps.append(slic_superpixels(im.data, n, p.compactness, rgb and n_ch == 3))
    sampler = CropSampler([im.data for im in images], p.input_size, sps,
                          placement=p.crop_placement)
    spe = sampler.steps_per_epoch(p.batch_size)
    total = p.steps if p.steps > 0 else p.epochs * spe
    with seeded(ctx.seed):
        net = InMARSNet(p, n_ch)
    net = net.to(dev).train()
    opt = torch.optim.Adam(net.parameters(), lr=p.lr)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=p.lr_decay)
    rng = np.random.default_rng(ctx.seed)
    gen = torch.Generator().manual_seed(ctx.seed)
    key = fingerprint({"method": "inmars", "params": _run_params(p), "seed": ctx.seed,
                       "shapes": [im.data.shape for im in images], "rgb": rgb,
                       "sums": [float(im.data[::7, ::7].sum()) for im in images]})
    ckpt = Checkpoint(getattr(ctx, "checkpoint", None), getattr(ctx, "checkpoint_every", 50), key)
    start, extra = resume(ckpt, net, opt, rng, gen, sched)
    last = dict(extra.get("last", {}))
    step = start
    for step in range(start + 1, total + 1):
        frac = (step - 1) / max(1, total - 1)
        gamma = p.gamma_start + (p.gamma_end - p.gamma_start) * frac
        x, sp, n_sp = sampler.sample(rng, p.batch_size)
        x, sp = x.to(dev), sp.to(dev)
        net.train()
        logits, count, feat = net(x, sp, n_sp)
        present = count > 0
        prob = F.softmax(logits[present], dim=1)
        l_mi, h_cond, h_marg = mi_loss(prob, gamma)
        loss = p.lam * l_mi
        r_adv = r_geo = torch.zeros((), device=dev)
        with bn_frozen(net):
            if p.adv_weight > 0:
                def fwd(xp: torch.Tensor, sp=sp, n_sp=n_sp, present=present) -> torch.Tensor:
                    return net(xp, sp, n_sp)[0][present]

                eps = (relative_radius(x, p.vat_eps) if p.vat_radius == "relative"
                       else p.vat_eps)
                r = vat_perturbation(fwd, x, prob.detach(), eps=eps, xi=p.vat_xi,
                                     generator=gen)
                r_adv = kl_consistency(prob, fwd(x + r))
                loss = loss + p.adv_weight * r_adv
            if p.geo_weight > 0:
                theta = random_affine(x.shape[0], rng, rotation=p.geo_rotation,
                                      shear=p.geo_shear,
                                      scale=(1.0 - p.geo_scale, 1.0 + p.geo_scale),
                                      translate=p.geo_translate)
                spg = _warp_ids(sp, theta)
                lg, cg, _ = net(warp(x, theta), spg, n_sp)
                both = present & (cg > 0)
                if bool(both.any()):
                    pt = F.softmax(logits[both], dim=1)
                    r_geo = kl_consistency(pt, lg[both])
                    loss = loss + p.geo_weight * r_geo
        if p.backbone_weight > 0:
            pb = F.softmax(_region_mean(feat, sp, n_sp)[present], dim=1)
            loss = loss + p.backbone_weight * p.lam * mi_loss(pb, gamma)[0]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % spe == 0:
            sched.step()
        last = {"loss": float(loss.item()), "h_cond": float(h_cond.item()),
                "h_marg": float(h_marg.item()), "r_adv": float(r_adv.item()),
                "r_geo": float(r_geo.item())}
        if ckpt.due(step, total):
            save_state(ckpt, step, net, opt, rng, gen, sched, extra={"last": last})
        if step < total:
            yield Progress(step=step, total=total, loss=last["loss"],
                           message=f"epoch {(step - 1) // spe + 1}, H(Y|X) {last['h_cond']:.3f}"
                                   f", H(Y) {last['h_marg']:.3f}", info=dict(last))
    net.eval()
    model = InMARSModel(p, net, n_channels=n_ch, is_rgb=rgb, device=dev,
                        training={"steps": total, "seed": ctx.seed, "steps_per_epoch": spe,
                                  "final": last})
    yield Progress(step=step, total=total, loss=last.get("loss"), done=True,
                   message=f"trained {total} steps", info={"model": model, **last})


def run(image: PreparedImage, p: InMARSParams, ctx: RunContext) -> Iterator[Progress]:
    """Fit on the one image given, then label it with the default output."""
    yield from fit_and_label(fit, image, p, ctx)


METHOD = register(
    Method(
        name="inmars",
        title="InMARS (Mirsadeghi et al. 2021)",
        summary="Superpixel-level clustering by mutual-information maximisation with adversarial "
                "(VAT) and geometric consistency, trained on a collection and applied to any "
                "image.",
        reference="S. E. Mirsadeghi, A. Royat, H. Rezatofighi, Unsupervised image segmentation "
                  "by mutual information maximization and adversarial regularization, IEEE RA-L "
                  "2021",
        params=InMARSParams,
        run=run,
        fit=fit,
        presets=PRESETS,
        default_preset="fast",
        kind="dataset",
        uses_torch=True,
    )
)
