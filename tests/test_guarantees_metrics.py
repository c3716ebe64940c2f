"""Metrics: never a score from nothing, never a silently ignored argument."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from napari_useg.metrics import (
    adjusted_rand_index,
    hungarian_accuracy,
    rand_index,
    score_all,
    variation_of_information,
)
from napari_useg.metrics.bsds import boundary_counts, region_counts

PARTITION = [rand_index, adjusted_rand_index, variation_of_information, hungarian_accuracy]


@pytest.mark.parametrize("metric", PARTITION)
def test_all_ignored_ground_truth_gives_no_score(metric):
    pred = np.array([[1, 2], [3, 4]])
    with pytest.raises(ValueError, match="no pixels to score"):
        metric(pred, np.full((2, 2), 255), ignore=255)


@pytest.mark.parametrize("metric", PARTITION)
def test_empty_maps_give_no_score(metric):
    with pytest.raises(ValueError, match="empty"):
        metric(np.zeros((0, 3), int), np.zeros((0, 3), int))


@pytest.mark.parametrize("metric", PARTITION)
@pytest.mark.parametrize("bad", ["255", 2.5, True, [1, "x"]])
def test_ignore_must_be_integers(metric, bad):
    a = np.array([[1, 2], [3, 4]])
    with pytest.raises(TypeError, match="ignore must be an integer"):
        metric(a, a, ignore=bad)


def test_segment_matches_refuse_all_ignored():
    from napari_useg.metrics.segments import segment_matches

    with pytest.raises(ValueError, match="no pixels to score"):
        segment_matches(np.ones((3, 3), int), np.full((3, 3), 255), ignore=255)
    # one annotator fully ignored, another not: still scored
    m = segment_matches(np.ones((3, 3), int), [np.full((3, 3), 255), np.ones((3, 3), int)],
                        ignore=255)
    assert m.n_gt == 1


def test_score_all_refuses_all_ignored():
    with pytest.raises(ValueError, match="no pixels to score"):
        score_all(np.ones((3, 3), int), np.zeros((3, 3), int), ignore=0)


def test_non_integer_ground_truth_is_refused():
    with pytest.raises(ValueError, match="integer"):
        rand_index(np.ones((2, 2), int), np.array([[0.5, 1.0], [1.0, 1.0]]))


def test_nan_ucm2_and_pb_are_refused():
    gt = [np.ones((3, 3), int)]
    ucm = np.zeros((7, 7))
    ucm[3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        region_counts(gt, ucm2=ucm, nthresh=3)
    pb = np.zeros((3, 3))
    pb[1, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        boundary_counts([np.zeros((3, 3), bool)], pb=pb, nthresh=3)


def test_masks_are_never_broadcast_and_mean_the_same_everywhere():
    gt = [np.array([[1, 1, 2], [1, 2, 2], [1, 2, 2]])]
    seg = np.array([[1, 1, 2], [1, 1, 2], [1, 2, 2]])
    with pytest.raises(ValueError, match="shape"):
        region_counts(gt, segs=[seg], mask=np.ones(3, bool))
    with pytest.raises(ValueError, match="shape"):
        boundary_counts([np.zeros((3, 3), bool)], segs=[seg], mask=np.ones(3, bool))
    two = np.full((3, 3), 2, np.uint8)
    with pytest.raises(ValueError, match="only 0 and 1"):
        region_counts(gt, segs=[seg], mask=two)
    with pytest.raises(ValueError, match="only 0 and 1"):
        boundary_counts([np.zeros((3, 3), bool)], segs=[seg], mask=two)
    with pytest.raises(ValueError, match="mask is empty"):
        region_counts(gt, segs=[seg], mask=np.zeros((3, 3), bool))
    ones = region_counts(gt, segs=[seg], mask=np.ones((3, 3), np.uint8))
    plain = region_counts(gt, segs=[seg])
    np.testing.assert_array_equal(ones.covering, plain.covering)


_maps = hnp.arrays(np.int64, st.tuples(st.integers(1, 6), st.integers(1, 6)),
                   elements=st.integers(0, 4))


@settings(max_examples=80, deadline=None)
@given(_maps, st.data())
def test_partition_metrics_match_a_float64_reference_on_scored_pixels(gt, data):
    pred = data.draw(hnp.arrays(np.int64, gt.shape, elements=st.integers(0, 4)))
    ignore = data.draw(st.sampled_from([None, 0]))
    keep = np.ones(gt.shape, bool) if ignore is None else gt != ignore
    if not keep.any():
        with pytest.raises(ValueError, match="no pixels to score"):
            rand_index(pred, gt, ignore=ignore)
        return
    p, g = pred[keep], gt[keep]
    n = p.size
    same_p = p[:, None] == p[None, :]
    same_g = g[:, None] == g[None, :]
    iu = np.triu_indices(n, 1)
    ri = 1.0 if n < 2 else float((same_p == same_g)[iu].mean())
    assert rand_index(pred, gt, ignore=ignore) == pytest.approx(ri, abs=1e-12)
