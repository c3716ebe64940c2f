"""IIC: the IID loss, the transform inversion, the network and a tiny training run."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from napari_useg import fit, segment
from napari_useg.metrics import hungarian_accuracy
from napari_useg.nn.augment import colour_jitter, invert, random_affine, warp
from napari_useg.nn.iid_loss import EPS, iid_segmentation_loss, joint_distributions
from napari_useg.nn.vgg_trunk import IICNet


def _softmax_maps(seed, n=2, k=3, h=7, w=6):
    g = torch.Generator().manual_seed(seed)
    return F.softmax(torch.randn(n, k, h, w, generator=g, dtype=torch.float64), dim=1)


def _loop_loss(x1, x2, T, lamb):
    """The IID loss written as an explicit loop over displacements (reference)."""
    n, k, h, w = x1.shape
    losses = []
    for dy in range(-T, T + 1):
        for dx in range(-T, T + 1):
            p = torch.zeros(k, k, dtype=x1.dtype)
            for y in range(h):
                for x in range(w):
                    yy, xx = y + dy, x + dx
                    if 0 <= yy < h and 0 <= xx < w:
                        p = p + torch.einsum("ni,nj->ij", x1[:, :, yy, xx], x2[:, :, y, x])
            p = p / p.sum()
            p = (p + p.t()) / 2
            pi = p.sum(1, keepdim=True).clamp_min(EPS)
            pj = p.sum(0, keepdim=True).clamp_min(EPS)
            p = p.clamp_min(EPS)
            losses.append(-(p * (p.log() - lamb * pi.log() - lamb * pj.log())).sum())
    return torch.stack(losses).mean()


@pytest.mark.parametrize("T,lamb", [(0, 1.0), (2, 1.5)])
def test_iid_loss_equals_explicit_loop(T, lamb):
    a = _softmax_maps(0).requires_grad_(True)
    b = _softmax_maps(1).requires_grad_(True)
    fast = iid_segmentation_loss(a, b, T, lamb)
    ga, gb = torch.autograd.grad(fast, (a, b))
    a2, b2 = a.detach().clone().requires_grad_(True), b.detach().clone().requires_grad_(True)
    ref = _loop_loss(a2, b2, T, lamb)
    ra, rb = torch.autograd.grad(ref, (a2, b2))
    assert abs(fast.item() - ref.item()) < 1e-10
    assert torch.allclose(ga, ra, atol=1e-10) and torch.allclose(gb, rb, atol=1e-10)


def test_joint_index_convention():
    a, b = _softmax_maps(2), _softmax_maps(3)
    p = joint_distributions(a, b, 1)
    # displacement (dy, dx) = (1, 0): x1 one row below x2
    want = torch.einsum("niyx,njyx->ij", a[:, :, 1:, :], b[:, :, :-1, :])
    assert torch.allclose(p[2, 1], want, atol=1e-12)


def test_identical_confident_views_give_minus_mutual_information():
    # two equally likely, perfectly predictable clusters: I = log 2, loss = -log 2 (lamb 1, T 0)
    x = torch.zeros(1, 2, 4, 4, dtype=torch.float64)
    x[:, 0, :, :2] = 1
    x[:, 1, :, 2:] = 1
    assert abs(float(iid_segmentation_loss(x, x, 0, 1.0)) + np.log(2)) < 1e-9


def test_flip_inversion_is_exact():
    x = torch.rand(3, 5, 9, 10)
    theta = random_affine(3, np.random.default_rng(0), flip_p=1.0)
    flipped = warp(x, theta)
    assert torch.allclose(flipped, torch.flip(x, dims=[-1]), atol=1e-6)
    assert torch.allclose(warp(flipped, invert(theta)), x, atol=1e-6)


def test_affine_inversion_exact_on_linear_maps():
    # bilinear re-sampling is exact for maps linear in the coordinates: forward + inverse warp
    # must reproduce them wherever both samples fall inside the image (tolerance 1e-4)
    h, w = 40, 48
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    ramp = (0.3 * yy + 0.6 * xx + 0.05)[None, None].repeat(4, 1, 1, 1)
    theta = random_affine(4, np.random.default_rng(1), rotation=30, shear=10, scale=(0.8, 1.2),
                          flip_p=0.5)
    eye = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]])
    full = torch.cat([theta, torch.tensor([[[0, 0, 1.0]]]).repeat(4, 1, 1)], 1)
    inv = torch.cat([invert(theta), torch.tensor([[[0, 0, 1.0]]]).repeat(4, 1, 1)], 1)
    assert torch.allclose((full @ inv)[:, :2], eye.expand(4, 2, 3), atol=1e-6)
    back = warp(warp(ramp, theta), invert(theta))
    ones = warp(warp(torch.ones_like(ramp), theta), invert(theta))
    inside = ones > 1 - 1e-6  # pixels whose both samples were fully inside
    assert inside.float().mean() > 0.3
    assert (back - ramp)[inside].abs().max() < 1e-4


def test_colour_jitter_leaves_extra_channels():
    x = torch.rand(4, 4, 16, 16)
    y = colour_jitter(x, np.random.default_rng(0), strength=0.4, rgb=True)
    assert torch.equal(y[:, 3], x[:, 3])
    assert not torch.allclose(y[:, :3], x[:, :3])
    assert y.min() >= 0 and y.max() <= 1


def test_network_shapes_and_sobel():
    net = IICNet(4, 3, 10, width=0.125, use_sobel=True, rgb=True).eval()
    x = torch.rand(2, 4, 20, 22)
    assert net(x, "main").shape == (2, 3, 10, 11)
    assert net.probs(x, "over").shape == (2, 10, 20, 22)


def _two_texture_set(n=6, size=48, seed=0):
    """Grey images: fine stripes vs. smooth noise of the same mean, random split positions."""
    rng = np.random.default_rng(seed)
    imgs, gts = [], []
    for _ in range(n):
        cut = int(rng.integers(size // 4, 3 * size // 4))
        gt = np.zeros((size, size), int)
        gt[:, cut:] = 1
        stripes = np.where((np.arange(size) // 2) % 2 == 0, 60.0, 196.0)[None].repeat(size, 0)
        img = np.where(gt == 0, stripes, 128.0) + rng.normal(0, 6, (size, size))
        if rng.random() < 0.5:
            img, gt = img.T.copy(), gt.T.copy()
        imgs.append(np.clip(img, 0, 255).astype(np.uint8))
        gts.append(gt)
    return imgs, gts


def test_tiny_training_separates_two_textures():
    imgs, gts = _two_texture_set()
    model = fit(imgs, "iic", preset="fast", n_clusters=2, n_overcluster=4, width=0.125,
                input_size=24, batch_size=6, steps=80, half_window=1, jitter=0.3, seed=0,
                device="cpu")
    test_img, test_gt = _two_texture_set(n=2, seed=5)
    accs = [hungarian_accuracy(model.predict(i), g) for i, g in zip(test_img, test_gt,
                                                                     strict=True)]
    assert min(accs) > 0.85, accs


def test_segment_runs_and_is_deterministic():
    img = _two_texture_set(n=1, size=32)[0][0]
    kw = dict(method="iic", steps=3, input_size=16, batch_size=2, width=0.125, device="cpu")
    a = segment(img, seed=3, **kw)
    b = segment(img, seed=3, **kw)
    assert a.shape == img.shape and np.array_equal(a, b)


def test_bad_parameters_raise_before_training():
    with pytest.raises(ValueError, match="even"):
        fit([np.zeros((16, 16), np.uint8)], "iic", input_size=15)
    with pytest.raises(ValueError, match="per image"):
        fit([np.zeros((16, 16), np.uint8)], "kmeans")
