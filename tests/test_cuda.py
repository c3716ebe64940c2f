"""The CUDA path end to end (skipped without a CUDA device: CI has none).

Each method runs on the GPU, gives the segmentation the CPU tests expect of it, and
repeats itself with the same seed on the same device.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_useg import fit, segment
from napari_useg.core.superpixels import superpixel_vote
from napari_useg.metrics.accuracy import hungarian_accuracy
from napari_useg.metrics.instances import instance_scores
from napari_useg.metrics.many_to_one import many_to_one_accuracy
from synthetic import three_regions
from volumes_synthetic import blob_volume

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

SMALL = dict(n_features=8, n_clusters=8)


@pytest.mark.parametrize("method", ["kanezaki", "dfc", "mmt"])
def test_per_image_methods_on_cuda(method):
    img, gt = three_regions()
    extra = {"n_superpixels": 100} if method == "kanezaki" else {}
    a = segment(img, method, device="cuda", seed=0, **SMALL, **extra)
    b = segment(img, method, device="cuda", seed=0, **SMALL, **extra)
    np.testing.assert_array_equal(a, b)
    assert hungarian_accuracy(a, gt) > 0.9, method


def test_superpixel_vote_on_cuda_equals_cpu():
    rng = np.random.default_rng(0)
    labels = torch.from_numpy(rng.integers(0, 5, 10000))
    sp = torch.from_numpy(rng.integers(0, 300, 10000))
    cpu = superpixel_vote(labels, sp, 300, 5)
    gpu = superpixel_vote(labels.cuda(), sp.cuda(), 300, 5)
    assert gpu.device.type == "cuda"
    np.testing.assert_array_equal(gpu.cpu().numpy(), cpu.numpy())


def test_volume_mode_on_cuda():
    vol, truth = blob_volume()
    objects = segment(vol, "kanezaki", spatial_dims=3, spacing=(2.5, 1.0, 1.0), device="cuda",
                      result="instances", min_object_size=20, max_iter=40, n_superpixels=2000)
    assert instance_scores(objects, truth).f1_50 >= 0.85


@pytest.mark.parametrize("method", ["dfc", "mmt"])
def test_dfc_and_mmt_volume_modes_on_cuda(method):
    vol, truth = blob_volume()
    kw = dict(spatial_dims=3, spacing=(2.5, 1.0, 1.0), device="cuda", max_iter=60, seed=0)
    labels = segment(vol, method, **kw)
    assert many_to_one_accuracy(labels, (truth > 0).astype(np.int64)) >= 0.97
    np.testing.assert_array_equal(segment(vol, method, **kw), labels)


def test_dataset_model_on_cuda():
    images = [three_regions(seed=s)[0] for s in range(3)]
    model = fit(images, "iic", device="cuda", seed=0, preset="fast", steps=30, input_size=32,
                batch_size=4)
    labels = model.predict(images[0])
    assert labels.shape == images[0].shape[:2] and labels.max() >= 2
