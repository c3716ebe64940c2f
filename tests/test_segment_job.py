"""Segmentation jobs on napari layers (napari_useg.viewer.segment_job) on napari's ViewerModel:
no window, no Qt."""

from __future__ import annotations

import numpy as np
import pytest
from napari.components import ViewerModel

import napari_useg
from napari_useg import segment
from napari_useg.viewer.output import META_KEY, checksum, is_edited
from napari_useg.viewer.segment_job import make_job

KM = {"method": "kmeans", "n_clusters": 2, "window": 1}


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """True when two label maps differ only by a renaming of their ids."""
    pairs = np.unique(np.stack([a.ravel(), b.ravel()]), axis=1).shape[1]
    return pairs == np.unique(a).size == np.unique(b).size


def two_regions(h: int = 24, w: int = 32, dtype=np.uint8, hi: int = 200) -> np.ndarray:
    """Left half dark, right half bright, plus a little deterministic noise."""
    rng = np.random.default_rng(1)
    img = np.full((h, w), 40, np.float64)
    img[:, w // 2:] = hi
    img += rng.normal(0, 3, img.shape)
    return np.clip(img, 0, np.iinfo(dtype).max).astype(dtype)


def test_run_on_layer_writes_labels_with_metadata():
    viewer = ViewerModel()
    img = two_regions()
    viewer.add_image(img, name="cells", scale=(0.5, 2.0), translate=(10.0, -3.0))
    out = napari_useg.run_on_layer(viewer, "cells", **KM, seed=4)
    assert out.name == "cells kmeans"
    assert out.data.shape == img.shape and out.data.dtype == np.int32
    np.testing.assert_allclose(out.scale, (0.5, 2.0))
    np.testing.assert_allclose(out.translate, (10.0, -3.0))
    # same labels as the plain API with the same seed (the console path)
    np.testing.assert_array_equal(out.data, segment(img, **KM, seed=4))
    meta = out.metadata[META_KEY]
    assert meta["method"] == "kmeans" and meta["seed"] == 4 and meta["device"] == "cpu"
    assert meta["params"] == {"n_clusters": 2, "window": 1, "n_init": 3, "max_iter": 30}
    assert meta["version"] == napari_useg.__version__
    assert meta["runtime"] > 0 and meta["status"] == "done" and meta["n_labels"] == 2
    assert meta["checksum"] == checksum(out.data) and not is_edited(out)


def test_console_path_segment_and_add_labels():
    # the documented console line, with a fast method
    viewer = ViewerModel()
    viewer.add_image(two_regions(), name="image")
    layer = viewer.add_labels(segment(viewer.layers["image"].data, method="kmeans",
                                      n_clusters=2, window=1))
    assert layer.data.shape == (24, 32) and set(np.unique(layer.data)) == {1, 2}


def halves(h: int, w: int, left: int, right: int) -> np.ndarray:
    out = np.full((h, w), left, np.int32)
    out[:, w // 2:] = right
    return out


def test_rerun_updates_same_layer_and_keeps_colours(fake_methods):
    # "echotest" returns its scribbles relabelled 1..n in increasing value order, so
    # swapping the two values swaps the raw ids: a re-run must still keep the colours
    viewer = ViewerModel()
    viewer.add_image(two_regions(), name="im")
    scrib = viewer.add_labels(halves(24, 32, 3, 5), name="scribbles")
    first = napari_useg.run_on_layer(viewer, "im", method="echotest", scribbles="scribbles")
    before = first.data.copy()
    np.testing.assert_array_equal(before, halves(24, 32, 1, 2))
    scrib.data = halves(24, 32, 5, 3)
    assert np.array_equal(segment(two_regions(), "echotest", scribbles=scrib.data),
                          halves(24, 32, 2, 1))
    again = napari_useg.run_on_layer(viewer, "im", method="echotest", scribbles="scribbles")
    assert again is first and len(viewer.layers) == 3
    np.testing.assert_array_equal(again.data, before)
    # a new region gets a new id, never one already used (nor 0)
    scrib.data = np.where(np.arange(32) < 8, 7, halves(24, 32, 5, 3)).astype(np.int32)
    third = napari_useg.run_on_layer(viewer, "im", method="echotest", scribbles="scribbles")
    assert third is first
    assert set(np.unique(third.data[:, 8:16])) == {1}
    assert set(np.unique(third.data[:, 16:])) == {2}
    new = np.unique(third.data[:, :8])
    assert new.size == 1 and new[0] not in (0, 1, 2)


def test_edited_layer_is_never_overwritten_silently():
    viewer = ViewerModel()
    viewer.add_image(two_regions(), name="im")
    out = napari_useg.run_on_layer(viewer, "im", **KM)
    out.data[0, :5] = 9  # the user paints
    out.refresh()
    edited = out.data.copy()
    assert is_edited(out)
    with pytest.raises(ValueError, match="edited"):
        napari_useg.run_on_layer(viewer, "im", **KM, on_edited="error")
    new = napari_useg.run_on_layer(viewer, "im", **KM)  # default: add a new layer
    assert new is not out and len(viewer.layers) == 3
    np.testing.assert_array_equal(out.data, edited)
    over = napari_useg.run_on_layer(viewer, "im", **KM, on_edited="overwrite")
    assert over is out and not is_edited(out) and (out.data != 9).all()
    both = napari_useg.run_on_layer(viewer, "im", **KM, keep_both=True)
    assert both is not out and len(viewer.layers) == 4
    # a layer napari-useg never wrote counts as edited
    viewer.add_labels(np.zeros((24, 32), np.int32), name="x kmeans")
    assert is_edited(viewer.layers["x kmeans"])


def test_stack_slice_by_slice():
    img = two_regions()
    stack = np.stack([img, 255 - img, img[:, ::-1]])
    viewer = ViewerModel()
    viewer.add_image(stack, name="z", scale=(3.0, 1.0, 1.0))
    out = napari_useg.run_on_layer(viewer, "z", **KM)
    assert out.data.shape == stack.shape
    np.testing.assert_allclose(out.scale, (3.0, 1.0, 1.0))
    for k in range(3):  # each slice is the partition of segmenting that slice alone
        assert same_partition(out.data[k], segment(stack[k], **KM))
    meta = out.metadata[META_KEY]
    assert meta["n_slices"] == 3 and meta["slices_done"] == 3


def test_stack_ids_aligned_from_slice_to_slice(fake_methods):
    viewer = ViewerModel()
    viewer.add_image(np.stack([two_regions()] * 3), name="z")
    scrib = np.stack([halves(24, 32, 3, 5), halves(24, 32, 5, 3), halves(24, 32, 3, 5)])
    # alone, slice 1 would get swapped ids
    raw = [segment(two_regions(), "echotest", scribbles=s) for s in scrib]
    assert not np.array_equal(raw[0], raw[1])
    out = napari_useg.run_on_layer(viewer, "z", method="echotest", scribbles=scrib)
    for k in range(3):
        np.testing.assert_array_equal(out.data[k], raw[0])


def test_objects_of_a_stack_keep_background_zero_on_every_slice():
    """Counted objects: slice after slice the background stays 0, ids follow the objects."""
    stack = np.zeros((3, 40, 40), np.uint8)
    stack[:, 5:15, 5:15] = 200
    stack[:, 25:35, 20:30] = 200
    stack[2, 5:15, 5:15] = 0  # the first object is gone from the last slice
    viewer = ViewerModel()
    viewer.add_image(stack, name="z")
    out = napari_useg.run_on_layer(viewer, "z", method="otsu", result="instances").data
    for k in range(3):  # the background of each slice alone, and no more
        alone = segment(stack[k], "otsu", result="instances")
        np.testing.assert_array_equal(out[k] == 0, alone == 0)
    assert out[0, 10, 10] == out[1, 10, 10] and out[0, 30, 25] == out[1, 30, 25]
    assert out[2, 30, 25] == out[0, 30, 25] and len(np.unique(out[2])) == 2


def test_job_progress_reports_slices_and_fraction():
    viewer = ViewerModel()
    viewer.add_image(np.stack([two_regions()] * 2), name="t")
    job = make_job("t", viewer=viewer, preview_every=0, **KM)
    snaps = list(job.iter())
    slices = [jp.slice_index for jp in snaps]
    assert slices == sorted(slices) and set(slices) == {0, 1}
    assert [jp.done for jp in snaps].count(True) == 1 and snaps[-1].done
    fractions = [jp.fraction for jp in snaps]
    assert fractions == sorted(fractions)
    end_of_first = [jp for jp in snaps if jp.slice_index == 0][-1]
    assert end_of_first.fraction == pytest.approx(0.5)
    assert snaps[-1].fraction == pytest.approx(1.0)
    assert "slice 2/2" in snaps[-1].describe()


def test_rgb_multichannel_combined_and_16bit():
    viewer = ViewerModel()
    rgb = np.stack([two_regions(), two_regions()[:, ::-1], two_regions()], axis=-1)
    viewer.add_image(rgb, name="rgb", rgb=True, scale=(2.0, 2.0))
    out = napari_useg.run_on_layer(viewer, "rgb", **KM)
    assert out.data.shape == (24, 32)
    np.testing.assert_array_equal(out.data, segment(rgb, **KM))
    # (C, Y, X) multichannel layer with its channel axis; scale loses the channel entry
    chw = np.moveaxis(rgb, -1, 0)
    viewer.add_image(chw, name="chw", scale=(1.0, 0.25, 0.5))
    out = napari_useg.run_on_layer(viewer, "chw", channel_axis=0, **KM)
    assert out.data.shape == (24, 32)
    np.testing.assert_allclose(out.scale, (0.25, 0.5))
    np.testing.assert_array_equal(out.data, segment(chw, channel_axis=0, **KM))
    assert out.metadata[META_KEY]["channel_axis"] == 0
    # several single-channel 16-bit layers combined as channels
    a, b = two_regions(dtype=np.uint16, hi=4000), two_regions(dtype=np.uint16, hi=900)[:, ::-1]
    viewer.add_image(a, name="dapi")
    viewer.add_image(b, name="gfp")
    out = napari_useg.run_on_layer(viewer, ["dapi", "gfp"], **KM)
    assert out.name == "dapi+gfp kmeans"
    np.testing.assert_array_equal(out.data, segment(np.stack([a, b], -1), channel_axis=-1, **KM))
    assert out.metadata[META_KEY]["source_layers"] == ["dapi", "gfp"]


def test_bad_input_raises_before_anything_is_added():
    viewer = ViewerModel()
    viewer.add_image(two_regions(), name="im")
    viewer.add_image(two_regions(12, 12), name="small")
    viewer.add_labels(np.zeros((24, 32), np.int32), name="lab")
    nan = two_regions().astype(np.float32)
    nan[3, 3] = np.nan
    viewer.add_image(nan, name="nan")
    n = len(viewer.layers)
    cases = [
        (TypeError, dict(layer="lab"), "not an Image layer"),
        (ValueError, dict(layer="nope"), "no layer named"),
        (ValueError, dict(layer="im", n_clusters=0), "n_clusters"),
        (TypeError, dict(layer="im", bogus=1), "bogus"),
        (ValueError, dict(layer="im", channel_axis=0), "at least 3 dimensions"),
        (ValueError, dict(layer=["im", "small"]), "same shape"),
        (ValueError, dict(layer="nan"), "NaN"),
        (ValueError, dict(layer="im", device="cuda:7"), "device"),
        (ValueError, dict(layer="im", on_edited="maybe"), "on_edited"),
    ]
    for exc, kwargs, match in cases:
        kwargs = {**KM, **kwargs}
        layer = kwargs.pop("layer")
        with pytest.raises(exc, match=match):
            napari_useg.run_on_layer(viewer, layer, **kwargs)
    assert len(viewer.layers) == n


def test_extra_inputs_follow_the_slices(fake_methods):
    viewer = ViewerModel()
    viewer.add_image(np.stack([two_regions()] * 2), name="s")
    scrib = np.zeros((2, 24, 32), np.int32)
    scrib[0, :, :10] = 3  # slice 0: two regions split at column 10
    scrib[1, :12] = 5  # slice 1: split at row 12
    viewer.add_labels(scrib, name="scribbles")
    out = napari_useg.run_on_layer(viewer, "s", method="echotest", scribbles="scribbles")
    assert (out.data[0, :, :10] == out.data[0, 0, 0]).all()
    assert (out.data[0, :, 10:] != out.data[0, 0, 0]).all()
    assert (out.data[1, :12] == out.data[1, 0, 0]).all()
    assert (out.data[1, 12:] != out.data[1, 0, 0]).all()
    assert out.metadata[META_KEY]["inputs"] == ["scribbles"]
    with pytest.raises(ValueError, match="shape"):
        napari_useg.run_on_layer(viewer, "s", method="echotest", scribbles=scrib[0])
    with pytest.raises(TypeError, match="takes no input"):
        napari_useg.run_on_layer(viewer, "s", **KM, inputs={"scribbles": scrib})


def test_rgb_time_stack_is_segmented_per_frame():
    viewer = ViewerModel()
    frame = np.stack([two_regions()] * 3, axis=-1)
    movie = np.stack([frame, frame[:, ::-1]])  # (T, Y, X, 3)
    viewer.add_image(movie, name="movie", rgb=True)
    out = napari_useg.run_on_layer(viewer, "movie", **KM)
    assert out.data.shape == (2, 24, 32)
    assert same_partition(out.data[1], segment(movie[1], **KM))

