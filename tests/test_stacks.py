"""Stacks from Python and the command line: every slice as segmented alone, ids aligned."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from napari_useg import iter_segment_stack, segment, segment_stack
from napari_useg.cli import main

KM = {"n_clusters": 2, "window": 1}


def moving_edge(t: int = 4, h: int = 24, w: int = 32) -> np.ndarray:
    """A bright region whose left edge moves right by 3 px a frame, with a little noise."""
    rng = np.random.default_rng(0)
    movie = np.full((t, h, w), 40.0)
    for k in range(t):
        movie[k, :, 8 + 3 * k:] = 200
    return np.clip(movie + rng.normal(0, 3, movie.shape), 0, 255).astype(np.uint8)


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    pairs = np.unique(np.stack([a.ravel(), b.ravel()]), axis=1).shape[1]
    return pairs == np.unique(a).size == np.unique(b).size


def test_each_slice_is_its_own_segmentation_with_ids_following_the_regions():
    movie = moving_edge()
    labels = segment_stack(movie, "kmeans", **KM)
    assert labels.shape == movie.shape and labels.dtype == np.int32
    for k in range(len(movie)):
        assert same_partition(labels[k], segment(movie[k], "kmeans", **KM))
    # the dark left column and the bright right column keep one id each through time
    assert len(np.unique(labels[:, :, 0])) == 1 and len(np.unique(labels[:, :, -1])) == 1
    assert labels[0, 0, 0] != labels[0, 0, -1]
    np.testing.assert_array_equal(labels, segment_stack(movie, "kmeans", **KM))


def test_rgb_and_channel_axis_stacks_keep_every_channel():
    movie = moving_edge()
    rgb = np.stack([movie, 255 - movie, movie // 2], axis=-1)  # (T, H, W, 3)
    out = segment_stack(rgb, "kmeans", **KM)
    assert out.shape == movie.shape
    assert same_partition(out[1], segment(rgb[1], "kmeans", **KM))
    # (T, C, H, W): the information is only in channel 1
    two = np.stack([np.full_like(movie, 90), movie], axis=1)
    out = segment_stack(two, "kmeans", channel_axis=1, **KM)
    assert out.shape == movie.shape and same_partition(out[2], segment(movie[2], "kmeans", **KM))


def test_a_stack_of_volumes_and_objects_with_background_zero():
    vol = np.zeros((2, 6, 20, 20), np.uint8)  # (T, Z, Y, X): two blobs, one leaves
    vol[:, 1:5, 2:9, 2:9] = 200
    vol[:, 1:5, 11:18, 11:18] = 200
    vol[1, :, 2:9, 2:9] = 0
    out = segment_stack(vol, "otsu", spatial_dims=3, result="instances", min_object_size=8)
    assert out.shape == vol.shape
    for t in range(2):
        alone = segment(vol[t], "otsu", spatial_dims=3, result="instances", min_object_size=8)
        np.testing.assert_array_equal(out[t] == 0, alone == 0)
    assert out[0, 2, 14, 14] == out[1, 2, 14, 14] > 0 and len(np.unique(out[1])) == 2


def test_progress_counts_slices_and_bad_input_is_refused_before_running():
    snaps = list(iter_segment_stack(moving_edge(3), "kmeans", **KM))
    assert [s.total for s in snaps] == [3] * len(snaps)
    assert snaps[-1].done and snaps[-1].step == 3 and snaps[-1].info["n_slices"] == 3
    assert [s.step for s in snaps] == sorted(s.step for s in snaps)
    with pytest.raises(ValueError, match="one image, not a stack"):
        segment_stack(np.zeros((16, 16), np.uint8), "kmeans")
    with pytest.raises(TypeError, match="unknown parameter"):
        iter_segment_stack(moving_edge(), "kmeans", n_clusterz=2)
    with pytest.raises(ValueError, match="one map per slice"):
        segment_stack(moving_edge(), "dfc", scribbles=np.zeros((24, 32), np.int32))


def test_cli_stack_writes_the_stack_and_refuses_what_it_cannot_write(tmp_path, capsys):
    src = tmp_path / "movie.tif"
    movie = moving_edge()
    tifffile.imwrite(src, movie, photometric="minisblack")
    out = tmp_path / "labels.tif"
    assert main(["segment", str(src), "--stack", "-m", "kmeans", "--n-clusters", "2",
                 "--window", "1", "-o", str(out), "-q"]) == 0
    np.testing.assert_array_equal(tifffile.imread(out), segment_stack(movie, "kmeans", **KM))
    assert "4 slices" in capsys.readouterr().out
    rc = main(["segment", str(src), "--stack", "--ucm", str(tmp_path / "u.mat"), "-q"])
    assert rc == 2 and "not with --stack" in capsys.readouterr().err


def test_several_runs_give_an_agreement_map_for_the_whole_stack():
    movie = moving_edge(3)
    last = list(iter_segment_stack(movie, "kmeans", runs=2, n_clusters=3, window=1))[-1]
    agreement = last.info["agreement"]
    assert agreement.shape == movie.shape and agreement.dtype == np.float32
    assert 0.0 <= agreement.min() <= agreement.max() <= 1.0
    for k in range(3):  # each slice's map is that slice's own
        alone = list(iter_segment_stack(movie[k:k + 1], "kmeans", runs=2, n_clusters=3,
                                        window=1))[-1].info["agreement"][0]
        np.testing.assert_array_equal(agreement[k], alone)
