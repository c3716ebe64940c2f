"""Input normalisation: dtypes, channels, percentiles."""

from __future__ import annotations

import numpy as np

from napari_useg.core.image import prepare_image


def test_uint8_scaled_by_255():
    img = np.array([0, 255, 51, 102] * 4, np.uint8).reshape(4, 4)
    out = prepare_image(img)
    assert out.data.shape == (4, 4, 1) and out.data.dtype == np.float32
    assert out.data.max() == 1.0 and out.data.min() == 0.0
    assert not out.is_rgb


def test_uint16_microscopy_uses_robust_percentiles():
    rng = np.random.default_rng(0)
    img = rng.integers(100, 1100, (64, 64)).astype(np.uint16)
    img[0, 0] = 65535  # one hot pixel must not squash the rest
    out = prepare_image(img).data[..., 0]
    assert out.max() == 1.0 and out.min() == 0.0
    # the bulk of the pixels keeps its spread instead of collapsing near 0
    assert out[1:, 1:].std() > 0.2


def test_float_in_unit_range_unchanged_and_other_floats_scaled():
    img = np.linspace(0.2, 0.6, 64, dtype=np.float64).reshape(8, 8)
    np.testing.assert_allclose(prepare_image(img).data[..., 0], img, rtol=1e-6)
    big = img * 1000 - 50
    out = prepare_image(big).data
    assert out.min() >= 0 and out.max() <= 1 and out.max() > 0.9


def test_rgba_drops_alpha_and_channel_axis_moves():
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 255
    out = prepare_image(rgba)
    assert out.data.shape == (8, 8, 3) and out.is_rgb
    chw = np.zeros((4, 8, 10), np.uint16)
    chw[3] = 1000
    chw[3, 0, 0] = 0
    out = prepare_image(chw, channel_axis=0)
    assert out.data.shape == (8, 10, 4) and not out.is_rgb
    assert out.data[..., 3].max() == 1.0


def test_constant_image_does_not_divide_by_zero():
    out = prepare_image(np.full((8, 8), 7, np.uint16)).data
    assert np.isfinite(out).all() and (out == 0).all()
