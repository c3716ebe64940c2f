"""Bad input is refused with a clear error before any computation starts."""

from __future__ import annotations

import numpy as np
import pytest

from napari_useg import iter_segment, segment


@pytest.fixture
def rgb():
    return np.random.default_rng(0).integers(0, 255, (16, 20, 3), dtype=np.uint8)


@pytest.mark.parametrize("image,exc,match", [
    (np.zeros((0, 5)), ValueError, "empty"),
    (np.zeros(10), ValueError, "2-D"),
    (np.zeros((2, 3, 8, 8)), ValueError, "2-D"),
    (np.zeros((8, 8, 7)), ValueError, "channel_axis"),
    (np.full((8, 8), np.nan), ValueError, "NaN"),
    (np.full((8, 8), np.inf), ValueError, "NaN or infinite"),
    (np.zeros((2, 8)), ValueError, "too small"),
    (np.array([["a", "b"], ["c", "d"]]), TypeError, "numbers"),
    ("image.png", TypeError, "path"),
    (None, TypeError, "None"),
])
def test_bad_images(image, exc, match):
    with pytest.raises(exc, match=match):
        segment(image, "kmeans")


def test_bad_channel_axis(rgb):
    with pytest.raises(ValueError, match="out of range"):
        segment(rgb, "kmeans", channel_axis=5)
    with pytest.raises(ValueError, match="needs a 3-D array"):
        segment(rgb[..., 0], "kmeans", channel_axis=0)
    with pytest.raises(TypeError, match="channel_axis must be an integer"):
        segment(rgb, "kmeans", channel_axis="last")


@pytest.mark.parametrize("params,exc,match", [
    ({"max_iter": 0}, ValueError, "max_iter"),
    ({"lr": -1.0}, ValueError, "lr"),
    ({"lr": float("nan")}, ValueError, "finite"),
    ({"n_clusters": 1}, ValueError, "n_clusters"),
    ({"n_features": "many"}, TypeError, "integer"),
    ({"n_features": 3.5}, TypeError, "integer"),
    ({"min_labels": 50, "n_clusters": 10}, ValueError, "min_labels"),
    ({"init": "zeros"}, ValueError, "one of"),
    ({"bogus": 1}, TypeError, "unknown parameter"),
])
def test_bad_parameters(rgb, params, exc, match):
    with pytest.raises(exc, match=match):
        iter_segment(rgb, "kanezaki", **params)


def test_bad_method_preset_seed(rgb):
    with pytest.raises(ValueError, match="unknown method"):
        segment(rgb, "nope")
    with pytest.raises(ValueError, match="no preset"):
        segment(rgb, "kanezaki", preset="turbo")
    with pytest.raises(ValueError, match="seed"):
        segment(rgb, "kmeans", seed=-1)
    with pytest.raises(TypeError, match="seed"):
        segment(rgb, "kmeans", seed=1.5)
    with pytest.raises(ValueError, match="window must be odd"):
        segment(rgb, "kmeans", window=4)


def test_errors_are_raised_before_iteration(rgb):
    # iter_segment validates eagerly: no next() needed to see the error
    with pytest.raises(ValueError):
        iter_segment(rgb, "kanezaki", max_iter=-3)
