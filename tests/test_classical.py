"""Classical baselines: k-means on windows, Felzenszwalb, SLIC."""

from __future__ import annotations

import numpy as np

from napari_useg import segment
from napari_useg.methods.kmeans import window_features
from napari_useg.metrics import hungarian_accuracy
from synthetic import three_regions


def test_kmeans_separates_colours():
    img, gt = three_regions()
    labels = segment(img, "kmeans", n_clusters=3, window=1)
    # noise sigma 12 against colour gaps > 100: every pixel is separable
    assert hungarian_accuracy(labels, gt) >= 0.99


def test_kmeans_window_averages_out_noise():
    img, gt = three_regions(noise=70)
    # with noise of sigma 70 single pixels are misclustered (measured 0.85); the 3x3
    # window's 27 values separate the regions (measured 0.99)
    acc_pixel = hungarian_accuracy(segment(img, "kmeans", n_clusters=3, window=1), gt)
    acc_window = hungarian_accuracy(segment(img, "kmeans", n_clusters=3, window=3), gt)
    assert acc_window >= 0.97
    assert acc_window > acc_pixel + 0.05


def test_window_features_layout():
    data = np.arange(2 * 3 * 4 * 1, dtype=np.float32).reshape(3, 4, 2)[..., :1]
    f = window_features(data, 3)
    assert f.shape == (12, 9)
    # centre of the window of pixel (1, 1) is the pixel itself
    np.testing.assert_array_equal(f.reshape(3, 4, 9)[1, 1, 4], data[1, 1, 0])


def test_felzenszwalb_on_piecewise_image():
    img, gt = three_regions(noise=6)
    labels = segment(img, "felzenszwalb", scale=100, min_size=50)
    assert hungarian_accuracy(labels, gt) >= 0.95


def test_slic_number_of_segments_follows_the_request():
    img, _ = three_regions((96, 96))
    counts = [segment(img, "slic", n_segments=n, compactness=10).max() for n in (16, 64)]
    # SLIC merges superpixels inside flat regions, so fewer than asked, never more than 2x
    assert counts[0] < counts[1] <= 128
    assert counts[1] >= 16


def _discs(shape, centres, radius):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    mask = np.zeros(shape, bool)
    for cy, cx in centres:
        mask |= (yy - cy) ** 2 + (xx - cx) ** 2 < radius**2
    return mask


def test_otsu_finds_dark_nuclei_on_a_light_background():
    """Brightfield or stained tissue: dark objects, found with the default polarity."""
    centres = [(20, 20), (20, 70), (70, 30), (70, 75)]
    nuclei = _discs((96, 96), centres, 8)
    img = np.where(nuclei, 60, 200).astype(np.uint8)
    auto = segment(img, "otsu", min_object_size=4, result="instances")
    assert auto.max() == 4 and np.mean((auto > 0) == nuclei) > 0.99
    # taken as bright objects, the light background is the one object
    bright = segment(img, "otsu", polarity="bright", min_object_size=4)
    assert len(np.unique(bright)) == 2 and bright[0, 0] == bright[50, 50] != bright[20, 20]
    assert np.array_equal(segment(img, "otsu", polarity="dark", min_object_size=4),
                          segment(img, "otsu", min_object_size=4))


def test_otsu_background_subtraction_evens_out_uneven_illumination():
    """A ramp of illumination: one threshold misses the dim side's nuclei without it."""
    centres = [(30, 20), (30, 100), (95, 40), (95, 110)]
    nuclei = _discs((128, 128), centres, 6)
    ramp = np.mgrid[:128, :128][1] / 128 * 100
    img = np.clip(ramp + 70 * nuclei, 0, 255).astype(np.uint8)
    plain = segment(img, "otsu", min_object_size=4, result="instances")
    assert hungarian_accuracy(plain > 0, nuclei) < 0.6  # the bright side's background is in
    flat = segment(img, "otsu", preset="background", min_object_size=4, result="instances")
    assert flat.max() == 4 and np.mean((flat > 0) == nuclei) > 0.99
