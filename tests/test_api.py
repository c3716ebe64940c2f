"""The public Python API: segment, iter_segment, list_methods, devices, determinism."""

from __future__ import annotations

import numpy as np
import pytest

import napari_useg
from napari_useg import iter_segment, list_methods, segment
from synthetic import three_regions

SMALL_KANEZAKI = dict(n_features=16, n_clusters=16, max_iter=8, n_superpixels=100)


def test_list_methods_has_foundation_methods():
    names = list_methods()
    for m in ("kanezaki", "kmeans", "felzenszwalb", "slic"):
        assert m in names


@pytest.mark.parametrize("method,params", [
    ("kanezaki", SMALL_KANEZAKI),
    ("kmeans", {"n_clusters": 3}),
    ("felzenszwalb", {}),
    ("slic", {"n_segments": 20}),
])
def test_segment_returns_contiguous_int_labels(method, params):
    img, _ = three_regions((40, 52))
    labels = segment(img, method=method, device="cpu", **params)
    assert labels.shape == (40, 52)
    assert labels.dtype == np.int32
    ids = np.unique(labels)
    # labels 1..n without gaps: every segment is visible in a napari Labels layer
    np.testing.assert_array_equal(ids, np.arange(1, len(ids) + 1))


def test_iter_segment_yields_progress_and_previews():
    img, _ = three_regions((32, 40))
    snaps = list(iter_segment(img, "kanezaki", device="cpu", preview_every=2, seed=1,
                              **{**SMALL_KANEZAKI, "min_labels": 1, "patience": 0}))
    assert snaps[-1].done and snaps[-1].labels is not None
    assert not any(s.done for s in snaps[:-1])
    steps = [s.step for s in snaps]
    assert steps == sorted(steps) and snaps[-1].step == 8
    assert all(s.total == 8 for s in snaps)
    assert all(s.loss is not None and np.isfinite(s.loss) for s in snaps)
    with_labels = [s.step for s in snaps[:-1] if s.labels is not None]
    assert with_labels == [2, 4, 6]
    for s in snaps:
        if s.labels is not None:
            assert s.labels.shape == (32, 40) and s.labels.min() == 1


def test_iteration_can_stop_between_steps():
    img, _ = three_regions((32, 40))
    it = iter_segment(img, "kanezaki", device="cpu", preview_every=1,
                      **{**SMALL_KANEZAKI, "max_iter": 50, "min_labels": 1})
    first = next(it)
    it.close()
    assert first.step == 1 and first.labels is not None and not first.done


def test_same_seed_same_labels_and_seed_matters():
    img, _ = three_regions((32, 40), seed=3)
    a = segment(img, "kanezaki", seed=5, device="cpu", **SMALL_KANEZAKI)
    b = segment(img, "kanezaki", seed=5, device="cpu", **SMALL_KANEZAKI)
    np.testing.assert_array_equal(a, b)
    k1 = segment(img, "kmeans", seed=2, n_clusters=4)
    k2 = segment(img, "kmeans", seed=2, n_clusters=4)
    np.testing.assert_array_equal(k1, k2)


def test_seed_does_not_touch_global_torch_rng():
    import torch

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    img, _ = three_regions((24, 24))
    segment(img, "kanezaki", seed=7, device="cpu", **SMALL_KANEZAKI)
    torch.testing.assert_close(torch.rand(3), expected)


def test_device_auto_and_cpu_and_missing_device():
    assert napari_useg.resolve_device("cpu").type == "cpu"
    assert napari_useg.resolve_device("auto").type in ("cpu", "cuda", "mps")
    assert napari_useg.available_devices()[:2] == ["auto", "cpu"]
    img, _ = three_regions((24, 24))
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            segment(img, "kanezaki", device="cuda", **SMALL_KANEZAKI)
    with pytest.raises(ValueError, match="unknown device"):
        segment(img, "kanezaki", device="tpu9", **SMALL_KANEZAKI)


def test_presets_and_explicit_params():
    m = napari_useg.get_method("kanezaki")
    paper = m.build("paper")
    assert (paper.n_features, paper.n_clusters, paper.n_superpixels, paper.compactness) == \
        (100, 100, 10000, 100.0)
    # the paper: T = 500 without the 3-label stop; the authors' code: stop at 3 within 1000
    assert (paper.max_iter, paper.min_labels, paper.lr, paper.momentum) == (500, 1, 0.1, 0.9)
    authors = m.build("authors")
    assert (authors.max_iter, authors.min_labels, authors.init) == (1000, 3, "torch")
    assert (authors.n_features, authors.n_clusters, authors.n_conv) == (100, 100, 2)
    assert m.default_preset == "fast"
    fast = m.build(None)
    assert fast.max_side > 0 and fast.n_features < paper.n_features
    # explicit values override the preset
    assert m.build("paper", {"max_iter": 5}).max_iter == 5
