"""IIC: Invariant Information Clustering for segmentation (Ji, Henriques, Vedaldi, ICCV 2019).

A dataset-level method: a VGG-style network (:mod:`napari_useg.nn.vgg_trunk`)
with a main head (``k`` classes) and an over-clustering head (``k_over``) is
trained on random crops of a collection so that the cluster of each pixel is
predictable from the cluster of its neighbours in a transformed copy of the
crop. Per step (one head at a time; heads alternate every epoch as in the
authors' code, or every ``alternate_every`` steps):

1. view 1 is a random crop; view 2 the same crop with colour jitter (RGB
   channels only; brightness/contrast for grayscale or fluorescence), then an
   optional random affine and a random horizontal flip;
2. softmax maps of both views, bilinearly up-sampled to the crop size (paper)
   or kept at the head's native half resolution (``loss_at="native"``);
3. view 2's map is warped back into view 1's frame with the exact inverse
   matrix (:mod:`napari_useg.nn.augment`);
4. IID loss over the ``(2T+1)^2`` displacements (:mod:`napari_useg.nn.iid_loss`),
   ``lamb_main`` for the main head and ``lamb_over`` for the over-clustering one;
5. Adam step.

Prediction (:class:`IICModel`): softmax of a head, bilinear up-sampling, argmax;
tiled with a margin equal to the network's receptive radius, so large images
give the same labels as a whole-image pass.

Presets
-------
``paper``
    The authors' Potsdam-3 configuration: crops 200, batch 75, Adam lr 1e-5,
    ``k = 3``, ``k_over = 24``, ``T = 10``, lamb 1.5 / 1.0, colour jitter 0.1,
    flip, no affine, no Sobel, full-width trunk (256-channel layers undilated as
    in ``net10a``), loss at input resolution.
``fast`` (default)
    CPU-sized: trunk at a quarter of the width, crops 64, batch 8, ``T = 2`` at the
    head's native resolution, heads alternating every step, lr 1e-3 (step costs
    measured in docs/benchmarks.md; the learning rate was not tuned); not in the paper:
    crops placed where the image differs from its median (``crop_placement``, as
    InMARS's), and each image's classes refined by its own values on collections of
    objects on a plain background (``refine="auto"``, :mod:`napari_useg.core.refinement`).
"""

from __future__ import annotations

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
from napari_useg.nn.augment import colour_jitter, invert, random_affine, warp
from napari_useg.nn.feature_net import seeded
from napari_useg.nn.iid_loss import iid_segmentation_loss
from napari_useg.nn.training import (
    Checkpoint,
    CropSampler,
    crop_placement_param,
    fingerprint,
    resume,
    save_state,
)
from napari_useg.nn.training import run_params as _run_params
from napari_useg.nn.vgg_trunk import IICNet

__all__ = ["IICParams", "IICModel", "METHOD"]


@dataclass(frozen=True)
class IICParams(RefineParams):
    """Parameters of IIC segmentation (the ``refine`` ones: :class:`RefineParams`)."""

    n_clusters: int = param(3, "k: classes of the main head", low=2, high=256)
    n_overcluster: int = param(24, "k_over: classes of the over-clustering head", low=2,
                               high=1024)
    input_size: int = param(200, "side of the square training crops (even)", low=8, high=4096)
    batch_size: int = param(75, "crops per step", low=1, high=4096)
    epochs: int = param(30, "passes over the collection per head (epoch: crops covering its "
                            "area once)", low=1, high=100000)
    steps: int = param(0, "training steps in total (0: 2 x epochs x steps per epoch)", low=0,
                       high=10_000_000)
    lr: float = param(1e-5, "Adam learning rate", low=1e-8, high=1.0)
    half_window: int = param(10, "T: displacements up to T pixels, (2T+1)^2 of them", low=0,
                             high=64)
    lamb_main: float = param(1.5, "lambda of the main head (marginal-entropy weight)", low=0.0,
                             high=10.0)
    lamb_over: float = param(1.0, "lambda of the over-clustering head", low=0.0, high=10.0)
    loss_at: str = param("input", "resolution of the loss: 'input' (heads up-sampled, paper) or "
                                  "'native' (half resolution)", choices=("input", "native"))
    width: float = param(1.0, "trunk width multiplier (1: 64...512 channels as the paper)",
                         low=0.03, high=4.0)
    dilation_256: int = param(1, "dilation of the 256-channel layers (1: authors' code, 2: "
                                 "SpaceNet write-up)", low=1, high=2)
    jitter: float = param(0.1, "colour jitter strength of view 2", low=0.0, high=1.0)
    flip: bool = param(True, "random horizontal flip of view 2")
    affine: bool = param(False, "random affine of view 2 (rotation 30, shear 10 deg, scale "
                                "0.8-1.2)")
    sobel: bool = param(False, "append Sobel dx, dy of the grey image to the input")
    alternate_every: int = param(0, "switch the trained head every this many steps (0: every "
                                    "epoch, as the authors)", low=0, high=10_000_000)
    crop_placement: str = crop_placement_param()

    def check(self) -> None:
        """Cross-parameter checks."""
        if self.input_size % 2:
            raise ValueError(f"input_size must be even, got {self.input_size}")


PRESETS = {
    "paper": {},
    "fast": {
        "width": 0.25,
        "input_size": 64,
        "batch_size": 8,
        "epochs": 20,
        "half_window": 2,
        "loss_at": "native",
        "lr": 1e-3,
        "alternate_every": 1,
        "crop_placement": "structure",
        "refine": "auto",
    },
}


@model_class("iic")
class IICModel(Model):
    """A trained IIC network; outputs ``"main"`` (``k`` classes) and ``"over"`` (``k_over``)."""

    outputs = ("main", "over")

    @classmethod
    def build_net(cls, params: IICParams, n_channels: int, is_rgb: bool) -> nn.Module:
        return IICNet(n_channels, params.n_clusters, params.n_overcluster, params.width,
                      params.dilation_256, params.sobel, is_rgb)

    @property
    def multiple(self) -> int:
        return 2

    def n_labels(self, output: str | None = None) -> int:
        output = self.check_output(output)
        return self.params.n_clusters if output == "main" else self.params.n_overcluster

    def pixel_logits(self, x: torch.Tensor) -> torch.Tensor:
        z = self.net(x, "main")
        return F.interpolate(z, size=x.shape[-2:], mode="bilinear", align_corners=False)

    def _probs(self, window: np.ndarray, output: str) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(window.transpose(2, 0, 1)))[None]
        return self.net.probs(x.to(self.device), output)[0]

    def label_window(self, window: np.ndarray, output: str) -> np.ndarray:
        return self._probs(window, output).argmax(dim=0).cpu().numpy()

    def window_probs(self, window: np.ndarray, output: str) -> np.ndarray:
        return self._probs(window, output).detach().cpu().numpy()


def _head_for(step: int, period: int) -> str:
    """Head trained at 0-based ``step``: over-clustering first, as the authors' loop."""
    return "over" if (step // period) % 2 == 0 else "main"


def fit(images: list[PreparedImage], p: IICParams, ctx: RunContext) -> Iterator[Progress]:
    """Train IIC on a collection (see the module docstring); the last snapshot holds the model."""
    rgb = bool(getattr(ctx, "rgb", images[0].is_rgb))
    n_ch = images[0].n_channels
    dev = ctx.device
    sampler = CropSampler([im.data for im in images], p.input_size, placement=p.crop_placement)
    spe = sampler.steps_per_epoch(p.batch_size)
    total = p.steps if p.steps > 0 else 2 * p.epochs * spe
    period = p.alternate_every or spe
    with seeded(ctx.seed):
        net = IICModel.build_net(p, n_ch, rgb)
    net = net.to(dev).train()
    opt = torch.optim.Adam(net.parameters(), lr=p.lr)
    rng = np.random.default_rng(ctx.seed)
    gen = torch.Generator().manual_seed(ctx.seed)
    key = fingerprint({"method": "iic", "params": _run_params(p), "seed": ctx.seed,
                       "shapes": [im.data.shape for im in images], "rgb": rgb,
                       "sums": [float(im.data[::7, ::7].sum()) for im in images]})
    ckpt = Checkpoint(getattr(ctx, "checkpoint", None), getattr(ctx, "checkpoint_every", 50), key)
    start, extra = resume(ckpt, net, opt, rng, gen)
    losses: dict[str, float] = dict(extra.get("losses", {}))
    rot, shear, scale = (30.0, 10.0, (0.8, 1.2)) if p.affine else (0.0, 0.0, (1.0, 1.0))
    step = start
    for step in range(start + 1, total + 1):
        head = _head_for(step - 1, period)
        lamb = p.lamb_main if head == "main" else p.lamb_over
        x, _, _ = sampler.sample(rng, p.batch_size)
        x = x.to(dev)
        theta = random_affine(x.shape[0], rng, rotation=rot, shear=shear, scale=scale,
                              flip_p=0.5 if p.flip else 0.0)
        x2 = warp(colour_jitter(x, rng, strength=p.jitter, rgb=rgb), theta)
        p1 = F.softmax(net(x, head), dim=1)
        p2 = F.softmax(net(x2, head), dim=1)
        if p.loss_at == "input":
            p1 = F.interpolate(p1, size=x.shape[-2:], mode="bilinear", align_corners=False)
            p2 = F.interpolate(p2, size=x.shape[-2:], mode="bilinear", align_corners=False)
        p2_back = warp(p2, invert(theta))
        loss = iid_segmentation_loss(p1, p2_back, p.half_window, lamb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses[head] = float(loss.item())
        if ckpt.due(step, total):
            save_state(ckpt, step, net, opt, rng, gen, extra={"losses": losses})
        if step < total:
            yield Progress(step=step, total=total, loss=losses[head],
                           message=f"epoch {(step - 1) // (2 * spe) + 1}, head {head}",
                           info={"head": head})
    net.eval()
    model = IICModel(p, net, n_channels=n_ch, is_rgb=rgb, device=dev,
                     training={"steps": total, "seed": ctx.seed, "steps_per_epoch": spe,
                               "final_loss": losses})
    yield Progress(step=step, total=total, loss=losses.get("main", losses.get("over")),
                   done=True, message=f"trained {total} steps", info={"model": model})


def run(image: PreparedImage, p: IICParams, ctx: RunContext) -> Iterator[Progress]:
    """Fit on the one image given, then label it with the main head."""
    yield from fit_and_label(fit, image, p, ctx)


METHOD = register(
    Method(
        name="iic",
        title="IIC (Ji et al. 2019)",
        summary="Invariant Information Clustering: a network trained on a collection to give "
                "each pixel a cluster predictable from its neighbours in a jittered, flipped "
                "copy; then applied to any image.",
        reference="X. Ji, J. F. Henriques, A. Vedaldi, Invariant information clustering for "
                  "unsupervised image classification and segmentation, ICCV 2019",
        params=IICParams,
        run=run,
        fit=fit,
        presets=PRESETS,
        default_preset="fast",
        kind="dataset",
        uses_torch=True,
    )
)
