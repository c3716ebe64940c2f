"""Mutual mean-teaching for segmentation (Wu et al. 2020): mean models, accuracy, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_useg import get_method, iter_segment, segment
from napari_useg.metrics import hungarian_accuracy
from napari_useg.nn.feature_net import FeatureNet, seeded
from napari_useg.nn.mean_teacher import ema_alpha, ema_update, make_mean_model
from synthetic import three_regions


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny images: one torch thread is faster, and immune to a busy machine (restored after)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# 16 channels and up to 60 iterations: measured 0.95 / 1.00 / 0.96 for seeds 0-2
SYNTH = dict(n_features=16, n_clusters=16, max_iter=60, patience=0)


def test_separates_three_colour_regions():
    img, gt = three_regions()
    snaps = list(iter_segment(img, "mmt", seed=0, device="cpu", **SYNTH))
    assert hungarian_accuracy(snaps[-1].labels, gt) >= 0.9
    assert snaps[-1].info["output"] == "mean model 1"
    assert 0.0 <= snaps[-1].info["agreement"] <= 1.0


def test_same_seed_same_labels():
    img, _ = three_regions()
    a = segment(img, "mmt", seed=2, device="cpu", **{**SYNTH, "max_iter": 15})
    b = segment(img, "mmt", seed=2, device="cpu", **{**SYNTH, "max_iter": 15})
    assert np.array_equal(a, b)


def test_working_resolution_returns_full_resolution_labels():
    img, gt = three_regions((96, 128))
    labels = segment(img, "mmt", seed=1, device="cpu", max_side=48, **SYNTH)
    assert labels.shape == (96, 128)
    assert hungarian_accuracy(labels, gt) >= 0.85


def test_paper_preset_is_the_papers_setting():
    m = get_method("mmt")
    paper = m.defaults("paper")
    assert (paper["n_conv"], paper["n_clusters"], paper["max_iter"]) == (3, 100, 1000)
    assert (paper["alpha"], paper["lr"], paper["momentum"]) == (0.999, 0.1, 0.9)
    # fixed alpha from theta_mean^0 = theta^0 and no 3-label stop
    assert (paper["warmup"], paper["min_labels"]) == (False, 1)
    assert m.defaults("fast")["warmup"] is True
    assert m.default_preset == "fast"


def test_ema_without_warm_up_uses_alpha_from_the_start():
    net = FeatureNet(3, 4, 4, 1)
    mean = make_mean_model(net)
    before = [p.clone() for p in mean.parameters()]
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    ema_update(mean, net, 0, 0.9, warmup=False)
    for b, m_, n in zip(before, mean.parameters(), net.parameters(), strict=True):
        torch.testing.assert_close(m_, 0.9 * b + 0.1 * n)


def test_ema_warm_up():
    assert ema_alpha(0, 0.999) == 0.0  # first update copies the network
    assert ema_alpha(1, 0.999) == 0.5
    assert ema_alpha(10_000, 0.999) == 0.999  # capped


def test_mean_model_is_the_running_average_during_warm_up():
    with seeded(0):
        net = FeatureNet(3, 4, 4, 1)
    mean = make_mean_model(net)
    history = []
    for t in range(4):
        with torch.no_grad():
            for p in net.parameters():
                p.add_(float(t + 1))  # stand-in for an optimiser step
        history.append([p.detach().clone() for p in net.parameters()])
        ema_update(mean, net, t, alpha=0.999)
    for k, mp in enumerate(mean.parameters()):
        expected = torch.stack([h[k] for h in history]).mean(dim=0)
        assert torch.allclose(mp, expected, atol=1e-6)


def test_mean_model_has_no_gradients_and_no_running_statistics():
    with seeded(0):
        net = FeatureNet(3, 4, 4, 2)
    mean = make_mean_model(net)
    assert not any(p.requires_grad for p in mean.parameters())
    assert [name for name, _ in net.named_buffers() if "running_mean" in name]
    assert not [name for name, _ in mean.named_buffers()]  # no running statistics at all
    # batch statistics in eval mode too: same output in train and eval mode
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        assert torch.allclose(mean.eval()(x), mean.train()(x))
    with pytest.raises(ValueError, match="different parameters"):
        ema_update(make_mean_model(FeatureNet(3, 4, 4, 1)), net, 0, 0.9)


def test_min_labels_larger_than_q_is_rejected():
    img, _ = three_regions()
    with pytest.raises(ValueError, match="min_labels"):
        segment(img, "mmt", n_clusters=4, min_labels=5)
