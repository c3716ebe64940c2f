"""Tiled prediction: reflection, window reading, equality with whole-image prediction, dask."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from napari_useg import fit
from napari_useg.core.tiling import predict_tiled, read_window, reflect_index


def test_reflect_index_matches_numpy_pad():
    for n in (1, 2, 5):
        a = np.arange(n)
        padded = np.pad(a, 13, mode="reflect") if n > 1 else np.zeros(n + 26, int)
        assert np.array_equal(reflect_index(np.arange(-13, n + 13), n), padded)


def test_read_window_matches_padded_image():
    img = np.random.default_rng(0).random((7, 9, 2))
    padded = np.pad(img, ((5, 6), (4, 8), (0, 0)), mode="reflect")
    win = read_window(img, -5, 13, -4, 17)
    assert np.array_equal(win, padded)


def _local_fn(window):
    """A local 'network': 5x5 box filter of channel 0, thresholded (radius 2)."""
    return (ndimage.uniform_filter(window[..., 0], 5, mode="mirror") > 0.5).astype(np.int32)


def test_tiles_equal_whole_image_for_a_local_function():
    img = np.random.default_rng(1).random((53, 47, 1)).astype(np.float32)
    whole = predict_tiled(img, _local_fn, tile_size=512, margin=4)
    tiled = predict_tiled(img, _local_fn, tile_size=10, margin=4)
    assert np.array_equal(whole, tiled)
    seams = predict_tiled(img, _local_fn, tile_size=10, margin=0)
    assert not np.array_equal(whole, seams)  # without a margin the tile borders show


@pytest.fixture(scope="module")
def iic_model():
    rng = np.random.default_rng(0)
    imgs = [rng.integers(0, 255, (40, 40, 3), np.uint8) for _ in range(2)]
    return fit(imgs, "iic", preset="fast", steps=2, width=0.125, input_size=16, batch_size=2,
               device="cpu")


def test_iic_tiled_equals_whole_image_without_seams(iic_model):
    img = np.random.default_rng(2).integers(0, 255, (90, 70, 3), np.uint8)
    whole = iic_model.predict(img, tile_size=1024)
    tiled = iic_model.predict(img, tile_size=24)
    margin = iic_model.margin()
    assert margin >= iic_model.receptive_radius()
    # scores may differ by float rounding only: labels agree almost everywhere, no seam lines
    assert (whole != tiled).mean() < 1e-3
    probs_w = _probs(iic_model, img, 1024)
    probs_t = _probs(iic_model, img, 24)
    assert np.abs(probs_w - probs_t).max() < 1e-4


def _probs(model, img, tile):
    """Tile-stitched main-head probabilities (via a float-returning window function)."""
    out = []
    for c in range(model.n_labels("main")):
        def fn(w, c=c):
            x = torch.from_numpy(np.ascontiguousarray(w.transpose(2, 0, 1)))[None]
            with torch.no_grad():
                return model.net.probs(x, "main")[0, c].numpy()
        arr = img.astype(np.float32) / 255
        out.append(predict_tiled(arr, fn, tile_size=tile, margin=model.margin(), multiple=2,
                                 dtype=np.float32))
    return np.stack(out)


def test_tiny_margin_shows_seams(iic_model):
    img = np.random.default_rng(3).integers(0, 255, (64, 64, 3), np.uint8)
    whole = _probs(iic_model, img, 1024)
    arr = img.astype(np.float32) / 255

    def fn(w):
        x = torch.from_numpy(np.ascontiguousarray(w.transpose(2, 0, 1)))[None]
        with torch.no_grad():
            return iic_model.net.probs(x, "main")[0, 0].numpy()

    cut = predict_tiled(arr, fn, tile_size=16, margin=0, multiple=2, dtype=np.float32)
    assert np.abs(cut - whole[0]).max() > 1e-3


def test_dask_input_gives_the_same_labels(iic_model):
    da = pytest.importorskip("dask.array")
    img = np.random.default_rng(4).integers(0, 255, (60, 50, 3), np.uint8)
    lazy = da.from_array(img, chunks=(16, 16, 3))
    assert np.array_equal(iic_model.predict(lazy, tile_size=20),
                          iic_model.predict(img, tile_size=20))


def test_bad_tiling_values_raise(iic_model):
    img = np.zeros((20, 20, 3), np.uint8)
    with pytest.raises(ValueError, match="tile_size"):
        iic_model.predict(img, tile_size=0)
    with pytest.raises(ValueError, match="margin"):
        iic_model.predict(img, margin=-1)
