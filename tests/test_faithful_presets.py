"""Faithful details of the papers: InMARS's VAT radius (IMSAT's relative reading) and
IIC keeping every channel of a multichannel (RGB + infrared) tile."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from napari_useg import fit
from napari_useg.methods.inmars import InMARSNet, InMARSParams
from napari_useg.nn.mi_loss import kl_consistency
from napari_useg.nn.vat import l2_normalise, relative_radius, vat_perturbation


def test_relative_radius_is_a_fraction_of_the_tenth_neighbour_distance():
    x = torch.arange(12, dtype=torch.float32).view(12, 1) ** 2  # distances all different
    r = relative_radius(x, 0.25)
    d = torch.cdist(x, x)
    expected = 0.25 * d.sort(dim=1).values[:, 10]
    assert torch.allclose(r, expected)
    small = relative_radius(x[:3], 1.0)  # fewer than 10 neighbours: the farthest
    assert small.tolist() == pytest.approx([4.0, 3.0, 4.0])
    assert relative_radius(torch.tensor([[0.0, 2.0]]), 1.0).item() == pytest.approx(np.sqrt(2))


@pytest.mark.parametrize("seed", range(5))
def test_vat_perturbation_has_the_requested_norm_per_sample(seed):
    torch.manual_seed(seed)
    net = torch.nn.Linear(6, 3)
    x = torch.randn(4, 6, generator=torch.Generator().manual_seed(seed))
    p = F.softmax(net(x), dim=1).detach()
    eps = torch.tensor([0.1, 0.5, 1.0, 2.0])
    r = vat_perturbation(net, x, p, eps=eps, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(r.norm(dim=1), eps, rtol=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_adversarial_direction_raises_the_kl_more_than_a_random_one(seed):
    p = InMARSParams(n_clusters=3, backbone="unet", channels=4, depth=2, input_size=16,
                     rwe="mean")
    torch.manual_seed(seed)
    net = InMARSNet(p, 3).eval()
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(12, 3, 16, 16, generator=gen)
    sp = (torch.arange(16)[None, :, None] // 8 * 2 + torch.arange(16)[None, None, :] // 8)
    sp = (sp + 4 * torch.arange(12)[:, None, None]).expand(12, 16, 16).contiguous()
    n_sp = 48

    def fwd(xp):
        return net(xp, sp, n_sp)[0]

    with torch.no_grad():
        prob = F.softmax(fwd(x), dim=1)
    eps = relative_radius(x, 0.25)
    r_adv = vat_perturbation(fwd, x, prob, eps=eps, generator=gen)
    rand = l2_normalise(torch.randn(x.shape, generator=gen)) * eps.view(-1, 1, 1, 1)
    assert torch.allclose(r_adv.flatten(1).norm(dim=1), eps, rtol=1e-4)
    with torch.no_grad():
        kl_adv = kl_consistency(prob, fwd(x + r_adv)).item()
        kl_rand = kl_consistency(prob, fwd(x + rand)).item()
    assert kl_adv > kl_rand > 0


def test_inmars_paper_preset_uses_the_relative_radius():
    p = InMARSParams()
    assert p.vat_radius == "relative" and p.vat_eps == 0.25


def test_inmars_trains_with_both_radius_readings():
    imgs = [np.random.default_rng(i).integers(0, 255, (32, 32, 3), np.uint8) for i in range(2)]
    for radius in ("relative", "absolute"):
        m = fit(imgs, "inmars", steps=2, channels=4, depth=2, input_size=16, batch_size=3,
                superpixels=8, device="cpu", vat_radius=radius)
        assert m.params.vat_radius == radius
        assert np.isfinite(m.training["final"]["r_adv"])


def test_iic_keeps_the_infrared_channel_end_to_end():
    """A 4-channel RGB + IR tile: the model is 4-channel and its labels follow channel 4."""
    rng = np.random.default_rng(0)
    tiles = []
    for k in range(2):
        t = rng.integers(100, 110, (48, 48, 4)).astype(np.uint8)  # flat RGB
        t[..., 3] = 20
        t[8 + 4 * k:30 + 4 * k, 10:36, 3] = 230  # the structure is only in the IR channel
        tiles.append(t)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "a varying 4th channel is kept"
        m = fit(tiles, "iic", rgb=True, channel_axis=-1, steps=30, width=0.125, input_size=16,
                batch_size=4, n_clusters=2, device="cpu", seed=0)
        assert m.n_channels == 4 and m.is_rgb
        labels = m.predict(tiles[0], channel_axis=-1)
        no_ir = tiles[0].copy()
        no_ir[..., 3] = 20
        flat = m.predict(no_ir, channel_axis=-1)
    first = next(mod for mod in m.net.modules() if isinstance(mod, torch.nn.Conv2d))
    assert first.in_channels == 4
    assert first.weight[:, 3].abs().sum() > 0
    inside = tiles[0][..., 3] > 100
    # the IR square is told apart from its surroundings, and without IR it is gone
    assert labels[inside].mean() != pytest.approx(labels[~inside].mean())
    assert len(np.unique(flat)) < len(np.unique(labels)) or (labels != flat).mean() > 0.1
    with pytest.raises(ValueError, match="4 channel"):
        m.predict(tiles[0][..., :3])
