"""Segmentation hierarchies: nested cuts, ucm2 round trip, cuts by count, recovery."""

from __future__ import annotations

import numpy as np
import pytest

from napari_useg import iter_segment, segment, segment_hierarchy
from napari_useg.core.hierarchy import (
    Hierarchy,
    build_hierarchy,
    colour_features,
    fine_regions,
    merge_regions,
)
from napari_useg.io.bsds import read_ucm2, write_ucm2
from napari_useg.metrics.accuracy import hungarian_accuracy
from napari_useg.metrics.bsds import ucm2_regions
from synthetic import three_regions
from volumes_synthetic import blob_volume


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    pairs = np.unique(np.stack([a.ravel(), b.ravel()]), axis=1).shape[1]
    return pairs == len(np.unique(a)) == len(np.unique(b))


def _quadrants(seed: int = 0, noise: float = 0.08) -> tuple[np.ndarray, np.ndarray]:
    """A 64x64 RGB image of four flat colour regions plus Gaussian noise, and its truth."""
    rng = np.random.default_rng(seed)
    truth = np.zeros((64, 64), np.int32)
    truth[:32, 32:] = 1
    truth[32:, :32] = 2
    truth[32:, 32:] = 3
    colours = np.array([[0.8, 0.2, 0.2], [0.2, 0.7, 0.2], [0.2, 0.3, 0.8], [0.7, 0.7, 0.3]])
    img = np.clip(colours[truth] + rng.normal(0, noise, (64, 64, 3)), 0, 1)
    return img, truth + 1


def _blocks(size: int = 4) -> np.ndarray:
    """256 square 4x4 regions of a 64x64 image."""
    rows, cols = np.indices((64, 64)) // size
    return rows * (64 // size) + cols + 1


@pytest.fixture(scope="module")
def hier() -> Hierarchy:
    img, _ = _quadrants()
    return build_hierarchy(_blocks(), colour_features(img, True))


def test_cuts_are_nested(hier: Hierarchy) -> None:
    """Every coarser cut is a union of regions of every finer cut."""
    cuts = [hier.cut(threshold=t) for t in np.linspace(0, 1, 11)]
    for fine, coarse in zip(cuts[:-1], cuts[1:], strict=True):
        assert coarse.max() <= fine.max()
        pairs = np.unique(np.stack([fine.ravel(), coarse.ravel()]), axis=1)
        # each fine region lies inside exactly one coarse region
        assert len(np.unique(pairs[0])) == pairs.shape[1]
    by_count = [hier.cut(n_segments=k) for k in (40, 10, 3, 1)]
    for fine, coarse in zip(by_count[:-1], by_count[1:], strict=True):
        pairs = np.unique(np.stack([fine.ravel(), coarse.ravel()]), axis=1)
        assert len(np.unique(pairs[0])) == pairs.shape[1]


@pytest.mark.parametrize("k", [1, 2, 4, 17, 60])
def test_cut_by_n_segments_gives_that_many(hier: Hierarchy, k: int) -> None:
    lab = hier.cut(n_segments=k)
    assert int(lab.max()) == k == len(np.unique(lab))
    assert hier.cut(threshold=hier.threshold_for(k)).max() <= k


def test_ucm2_round_trip_through_the_benchmark_reader(hier: Hierarchy, tmp_path) -> None:
    u = hier.ucm2()
    assert u.shape == (2 * 64 + 1, 2 * 64 + 1)
    path = write_ucm2(tmp_path / "x.mat", u)
    back = read_ucm2(path)
    np.testing.assert_array_equal(back, u)
    for t in (0.0, 0.2, 0.4, 0.6, 0.8, 0.99, 1.0):
        assert _same_partition(ucm2_regions(back, t), hier.cut(threshold=t)), t
    with pytest.raises(FileExistsError):
        write_ucm2(path, u)


def test_synthetic_regions_recovered() -> None:
    """Four noisy colour quadrants over 256 square regions: the 4-region cut finds them.

    Measured: Hungarian accuracy 1.000 for seeds 0-2 (noise std 0.08).
    """
    for seed in range(3):
        img, truth = _quadrants(seed)
        h = build_hierarchy(_blocks(), colour_features(img, True))
        assert h.n_regions == 256
        assert hungarian_accuracy(h.cut(n_segments=4), truth) > 0.99


def test_per_pixel_heights_do_not_depend_on_image_size() -> None:
    """One threshold means the same on an image and on its 2x enlargement (per pixel);
    the per-image heights put the last merge at 1 instead."""
    img, _ = _quadrants()
    feats = colour_features(img, True)
    big = np.kron(feats, np.ones((2, 2, 1)))
    small_h = build_hierarchy(_blocks(), feats)
    big_h = build_hierarchy(np.kron(_blocks(), np.ones((2, 2), np.int64)), big)
    np.testing.assert_allclose(small_h.heights, big_h.heights, rtol=1e-9)
    assert small_h.heights[-1] < 1.0
    last = build_hierarchy(_blocks(), feats, heights="last")
    assert last.heights[-1] == 1.0
    # the same merge order either way: only the heights differ
    np.testing.assert_array_equal(last.merges, small_h.merges)
    with pytest.raises(ValueError, match="heights must be"):
        build_hierarchy(_blocks(), feats, heights="per_image")


def _stripes() -> tuple[np.ndarray, np.ndarray]:
    """Three vertical 8x8 stripes: labels 1-2-3 and features 0, 0.5 and 1 (the two
    neighbour pairs at the same Ward cost)."""
    base = np.repeat(np.array([[1, 2, 3]]), 8, axis=1).repeat(8, axis=0)
    return base, (base - 1) / 2.0


def test_a_strong_boundary_makes_regions_merge_later() -> None:
    """Two neighbour pairs at the same Ward cost: with ``edge_power`` the pair across the
    weak boundary merges first, and swapping the boundaries swaps the order."""
    base, feats = _stripes()
    edges = np.zeros(base.shape)
    edges[:, 7:9] = 1.0  # between stripes 1 and 2
    h = build_hierarchy(base, feats, edges=edges, edge_power=1.0)
    assert _same_partition(h.cut(n_segments=2), np.where(base == 1, 1, 2))
    h = build_hierarchy(base, feats, edges=edges[:, ::-1], edge_power=1.0)
    assert _same_partition(h.cut(n_segments=2), np.where(base == 3, 2, 1))
    # the boundary term raises the height of the merge across the strong boundary
    plain = build_hierarchy(base, feats)
    assert build_hierarchy(base, feats, edges=edges, edge_power=4.0).heights[-1] > \
        plain.heights[-1]
    # costs far beyond one per pixel still give distinct heights below 1 (no tie at the
    # top, so a threshold can still cut between the last merges)
    steep = build_hierarchy(base, feats * 100, edges=edges, edge_power=8.0)
    assert np.all(np.diff(steep.heights) > 0) and steep.heights[-1] < 1.0
    assert steep.cut(threshold=steep.threshold_for(2)).max() == 2
    with pytest.raises(ValueError, match="edges of shape"):
        build_hierarchy(base, feats, edges=edges[:4], edge_power=1.0)


def test_kanezaki_fast_weighs_merges_by_the_colour_boundary() -> None:
    """The preset's ``edge_power`` reaches the hierarchy: without it the heights change;
    the two take the same regions and features."""
    img, gt = three_regions()
    with_edges = segment_hierarchy(img, "kanezaki", **SMALL)
    without = segment_hierarchy(img, "kanezaki", edge_power=0.0, **SMALL)
    assert with_edges.hierarchy.n_regions == without.hierarchy.n_regions
    assert not np.allclose(with_edges.hierarchy.heights, without.hierarchy.heights)
    assert hungarian_accuracy(with_edges.hierarchy.cut(n_segments=3), gt) > 0.95


def test_specks_beside_specks_join_a_larger_region_in_a_later_pass() -> None:
    """Two large regions with a chain of three thin slivers between them: one pass
    absorbs the two slivers that touch a large region, the middle one only in a second
    pass (before any other merge, so no cut keeps it apart)."""
    cols = np.r_[np.full(10, 1), 2, 3, 4, np.full(10, 5)]
    base = np.tile(cols, (8, 1))
    feats = np.select([base == 1, base == 5], [0.0, 1.0], 0.5)
    n = 5
    counts = np.bincount(base.ravel(), minlength=n + 1).astype(float)
    means = (np.bincount(base.ravel(), feats.ravel(), minlength=n + 1)
             / np.maximum(counts, 1))[:, None]
    one = merge_regions(base, counts, means, absorb_below=9)
    two = merge_regions(base, counts, means, absorb_below=9, absorb_passes=2)
    assert set(one.merges[:2, 0]) == {2, 4}
    assert set(two.merges[:3, 0]) == {2, 3, 4}
    assert two.cut(n_segments=2).max() == 2 and len(two.merges) == n - 1
    with pytest.raises(ValueError, match="absorb_passes"):
        merge_regions(base, counts, means, absorb_below=9, absorb_passes=0)


def test_hand_made_tree() -> None:
    base = np.array([[1, 1, 2], [3, 4, 4]])
    h = Hierarchy(base, np.array([[1, 2], [3, 4], [2, 4]]), np.array([0.1, 0.3, 1.0]),
                  default_threshold=0.2)
    assert h.labels.max() == 3
    assert _same_partition(h.cut(threshold=0.3), np.array([[1, 1, 1], [2, 2, 2]]))
    u = h.ucm2()
    assert u[1, 4] == pytest.approx(0.1)  # between pixels (0, 1) and (0, 2)
    assert u[2, 1] == pytest.approx(1.0)  # between pixels (0, 0) and (1, 0)
    with pytest.raises(ValueError, match="exactly one"):
        h.cut()
    with pytest.raises(ValueError, match="non-decreasing"):
        Hierarchy(base, np.array([[1, 2], [3, 4]]), np.array([0.5, 0.1]))


def test_fine_regions_split_disconnected_labels() -> None:
    lab = np.array([[1, 2, 1], [1, 2, 1]])
    assert fine_regions(lab).max() == 3
    over = np.array([[1, 1, 1], [2, 2, 2]])
    assert fine_regions(lab, over).max() == 6


SMALL = dict(n_features=8, n_clusters=8, max_iter=6, n_superpixels=100)


def test_default_cut_keeps_min_labels_segments() -> None:
    """A cut that would merge an image into fewer than min_labels segments (a threshold
    above every merge) stops at min_labels, and the hierarchy's default cut says so."""
    img, gt = three_regions()
    *_, last = iter_segment(img, "kanezaki", cut=1.0, **SMALL)
    h = last.info["hierarchy"]
    assert h.cut(threshold=1.0).max() == 1
    assert last.labels.max() == 3 and h.labels.max() == 3
    assert h.default_threshold < 1.0
    assert "lowered to" in last.message
    assert hungarian_accuracy(last.labels, gt) > 0.95
    *_, last = iter_segment(img, "kanezaki", cut=1.0, min_labels=1, **SMALL)
    assert last.labels.max() == 1


def test_segment_hierarchy_keeps_segment_labels() -> None:
    img, _ = three_regions()
    for method, params in (("kmeans", {"n_clusters": 3, "window": 1}),
                           ("felzenszwalb", {"scale": 50}),
                           ("kanezaki", SMALL), ("kanezaki", {**SMALL, "cut": 0.0})):
        res = segment_hierarchy(img, method, **params)
        np.testing.assert_array_equal(res.labels, segment(img, method, **params))
        assert res.hierarchy.shape == img.shape[:2]
        assert res.hierarchy.cut(n_segments=1).max() == 1


def test_backprop_methods_put_the_hierarchy_in_the_final_snapshot() -> None:
    img, gt = three_regions()
    for method in ("kanezaki", "dfc", "mmt"):
        *_, last = iter_segment(img, method, max_iter=4, n_features=8, n_clusters=8)
        h = last.info["hierarchy"]
        assert isinstance(h, Hierarchy)
        if method in ("kanezaki", "dfc"):  # the fast preset's result is the hierarchy's cut
            cut = {"kanezaki": 0.6, "dfc": 0.7}[method]
            assert h.default_threshold == cut or last.labels.max() == 3
            assert _same_partition(last.labels, h.labels)
            assert f"result: its hierarchy cut at {cut}" in last.message
        else:  # MMT keeps its own labels
            assert h.default_threshold == 0.0
    # the three regions are recovered by cutting kanezaki's hierarchy at 3 regions
    res = segment_hierarchy(img, "kanezaki")
    assert hungarian_accuracy(res.hierarchy.cut(n_segments=3), gt) > 0.95


def test_hierarchy_of_a_volume_merges_3d_regions_into_the_two_halves():
    """A volume of 4x4x4 blocks (fine regions) whose intensity is 0.2 in one half and 0.8
    in the other (plus noise): the 2-segment cut is the two halves, cuts are nested, and
    the BSDS ucm2 (a 2-D format) is refused with a clear error."""
    rng = np.random.default_rng(0)
    z, y, x = np.indices((8, 16, 16))
    half = (x >= 8).astype(np.int64)
    volume = np.where(half, 0.8, 0.2) + rng.normal(0, 0.02, half.shape)
    blocks = (z // 4) * 16 + (y // 4) * 4 + x // 4 + 1
    h = build_hierarchy(blocks, volume)
    assert h.shape == (8, 16, 16) and h.n_regions == 32
    two = h.cut(n_segments=2)
    assert hungarian_accuracy(two, half + 1) == 1.0
    four = h.cut(n_segments=4)
    assert all(len(np.unique(two[four == k])) == 1 for k in range(1, 5))  # nested
    with pytest.raises(ValueError, match="2-D format"):
        h.ucm2()


def test_segment_hierarchy_of_a_volume():
    """``segment_hierarchy`` on a volume: the labels are ``segment``'s; the hierarchy is over
    the 3-D regions (balls and background), cut down to one region."""
    vol, truth = blob_volume()
    kw = dict(spatial_dims=3, spacing=(2.5, 1.0, 1.0), n_clusters=2, window=3, seed=0)
    res = segment_hierarchy(vol, "kmeans", **kw)
    np.testing.assert_array_equal(res.labels, segment(vol, "kmeans", **kw))
    assert res.hierarchy.shape == vol.shape
    assert res.hierarchy.n_regions >= int(truth.max())
    assert int(res.hierarchy.cut(n_segments=1).max()) == 1


def test_a_fixed_pixel_scale_makes_a_threshold_mean_the_same_merges_at_any_size():
    """The same regions inside a larger image (a padding of very different value, merged
    last): with ``pixel_scale`` fixed the shared merges get the same heights; divided by
    each image's own size they do not."""
    rng = np.random.default_rng(1)
    feats = rng.normal(0.5, 0.1, (16, 16))
    fine = np.arange(256).reshape(16, 16) // 4 + 1
    padded = np.pad(feats, 16, constant_values=5.0)
    padded_fine = np.pad(fine, 16, constant_values=fine.max() + 1)
    for scale, same in ((1e4, True), (None, False)):
        small = build_hierarchy(fine, feats, pixel_scale=scale)
        large = build_hierarchy(padded_fine, padded, pixel_scale=scale)
        m = len(small.heights)
        assert np.array_equal(small.merges + 1, large.merges[:m])  # the padding is region 1
        assert np.allclose(small.heights, large.heights[:m]) is same
    with pytest.raises(ValueError, match="pixel_scale"):
        build_hierarchy(fine, feats, pixel_scale=0)


def test_absorbing_specks_first_gives_the_same_cuts_as_merging_them_one_by_one():
    """Two halves of a volume sprinkled with one-voxel specks of other values: joining the
    specks to their cheapest large neighbour first (``absorb_below``) gives the same
    partition as the greedy merging once the specks are merged, a full tree and
    non-decreasing heights."""
    rng = np.random.default_rng(2)
    half = (np.indices((6, 20, 20))[2] >= 10).astype(np.int64)
    value = np.where(half, 0.8, 0.2)
    specks = rng.random(half.shape) < 0.03
    value[specks] = rng.random(int(specks.sum()))
    fine = np.where(specks, 2 + np.arange(half.size).reshape(half.shape), half)
    base = fine_regions(fine)
    n = int(base.max())
    counts = np.bincount(base.ravel(), minlength=n + 1).astype(float)
    means = (np.bincount(base.ravel(), value.ravel(), minlength=n + 1)
             / np.maximum(counts, 1))[:, None]
    greedy = merge_regions(base, counts, means)
    fast = merge_regions(base, counts, means, absorb_below=2)
    assert n > 50 and len(fast.merges) == len(greedy.merges) == n - 1
    assert np.all(np.diff(fast.heights) >= 0)
    for k in (3, 2):  # the same partition (ids may differ)
        assert hungarian_accuracy(fast.cut(n_segments=k), greedy.cut(n_segments=k)) == 1.0
    assert hungarian_accuracy(fast.cut(n_segments=2), half + 1) > 0.95
    # with a boundary term: the specks still go first (plain Ward costs), then the
    # boundary-weighted merging of what is left, over the boundaries left
    edges = np.abs(np.gradient(value, axis=2))
    both = merge_regions(base, counts, means, absorb_below=2, edges=edges, edge_power=4.0)
    assert len(both.merges) == n - 1 and np.all(np.diff(both.heights) >= 0)
    k = int((counts[1:] < 2).sum())  # the one-voxel specks, each beside a half
    np.testing.assert_array_equal(both.merges[:k], fast.merges[:k])
    assert set(both.merges[:k, 0]) == set(np.flatnonzero(counts == 1))
    assert hungarian_accuracy(both.cut(n_segments=2), half + 1) > 0.95
