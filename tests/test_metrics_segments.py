"""Segment precision / recall (Kanezaki 2018) on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from napari_useg.metrics import SegmentMatches, segment_matches, segment_pr
from napari_useg.metrics.segments import segment_components

PRED = np.array([[1, 1, 2, 2],
                 [1, 1, 2, 2],
                 [3, 3, 3, 3],
                 [3, 3, 3, 3]])
GT = np.array([[1, 1, 1, 2],
               [1, 1, 1, 2],
               [1, 1, 3, 3],
               [3, 3, 3, 3]])


def test_components_split_disconnected_clusters():
    lab = np.array([[1, 2, 1],
                    [1, 2, 1]])
    comp = segment_components(lab)
    assert comp.max() == 3  # cluster 1 is two segments
    assert len(np.unique(comp[:, 0])) == 1 and comp[0, 0] != comp[0, 2]
    diag = np.array([[1, 2], [2, 1]])
    assert segment_components(diag, connectivity=1).max() == 4
    assert segment_components(diag, connectivity=2).max() == 2
    with pytest.raises(ValueError, match="connectivity"):
        segment_components(diag, connectivity=3)


def test_hand_case():
    # best IoUs: segment 1 -> 4/8 (gt 1), segment 2 -> 2/4 (gt 2), segment 3 -> 6/8 (gt 3)
    m = segment_matches(PRED, GT)
    assert m.n_gt == 3
    assert m.sizes.tolist() == [8, 4, 4]  # ranked by decreasing size, ties in scan order
    assert m.best_iou.tolist() == pytest.approx([0.75, 0.5, 0.5])
    for t in (0.5, 0.7):  # IoU must exceed the threshold: only segment 3 is correct
        c = segment_pr(m, t)
        assert c.precision.tolist() == pytest.approx([1, 1 / 2, 1 / 3])
        assert c.recall.tolist() == pytest.approx([1 / 3] * 3)
        assert c.ap == pytest.approx(1 / 3)
        assert c.f == pytest.approx(2 * (1 / 3) * (1 / 3) / (2 / 3))
    c = segment_pr(segment_matches(PRED, GT, thresholds=(0.4,)), 0.4)
    assert c.final_precision == 1.0 and c.final_recall == 1.0 and c.ap == pytest.approx(1.0)


def test_perfect_and_pooled():
    m = segment_matches(GT, GT)
    assert segment_pr(m, 0.7).ap == pytest.approx(1.0)
    # two images pooled: ranking is over the whole set, recall over all gt segments
    pooled = SegmentMatches.concatenate([segment_matches(PRED, GT), m])
    assert pooled.n_gt == 6 and len(pooled.sizes) == 6
    assert np.all(np.diff(pooled.sizes) <= 0)
    c = segment_pr([segment_matches(PRED, GT), m], 0.5)
    assert c.final_recall == pytest.approx(4 / 6)
    assert c.final_precision == pytest.approx(4 / 6)
    back = SegmentMatches.from_arrays(pooled.to_arrays())
    assert segment_pr(back, 0.5).ap == pytest.approx(segment_pr(pooled, 0.5).ap)


def test_several_annotators_and_ignore():
    m = segment_matches(PRED, [GT, PRED])
    assert m.n_gt == 6
    assert m.best_iou.tolist() == pytest.approx([1, 1, 1])
    c = segment_pr(m, 0.5)
    assert c.final_precision == 1.0 and c.final_recall == pytest.approx(4 / 6)
    # ignored ground-truth pixels belong to no segment and leave the predicted areas
    gt = np.where(GT == 2, 255, GT)
    mi = segment_matches(PRED, gt, ignore=255)
    assert mi.n_gt == 2
    assert sorted(mi.sizes.tolist()) == [2, 4, 8]


def test_bad_input():
    with pytest.raises(ValueError, match="thresholds"):
        segment_matches(PRED, GT, thresholds=(1.5,))
    with pytest.raises(ValueError, match="shape"):
        segment_matches(PRED, GT[:2])
    with pytest.raises(ValueError, match="not among"):
        segment_pr(segment_matches(PRED, GT), 0.6)
