"""Matched accuracy, partition scores, score_all and the dataset protocol on hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from napari_useg.metrics import (
    SCORE_KEYS,
    adjusted_rand_index,
    annotator_mean,
    bsds_accuracy,
    contingency,
    hungarian_accuracy,
    hungarian_match,
    many_to_one_accuracy,
    many_to_one_mapping,
    many_to_one_match,
    ods_ois,
    rand_index,
    score_all,
    variation_of_information,
)
from napari_useg.metrics.contingency import dense_ids

# A 4x4 case worked out by hand (see the comments of each test).
PRED = np.array([[1, 1, 2, 2],
                 [1, 1, 2, 2],
                 [3, 3, 3, 3],
                 [3, 3, 3, 3]])
GT = np.array([[1, 1, 1, 2],
               [1, 1, 1, 2],
               [1, 1, 3, 3],
               [3, 3, 3, 3]])
# contingency (rows pred 1..3, columns gt 1..3): [[4, 0, 0], [2, 2, 0], [2, 0, 6]]


def h2(p: float) -> float:
    return -(p * math.log2(p) + (1 - p) * math.log2(1 - p))


def test_contingency_of_the_hand_case():
    table, p, g = contingency(PRED, GT)
    assert table.tolist() == [[4, 0, 0], [2, 2, 0], [2, 0, 6]]
    assert p.tolist() == [1, 2, 3] and g.tolist() == [1, 2, 3]


def test_hungarian_hand_case():
    # best one-to-one: 1->1 (4), 2->2 (2), 3->3 (6): 12 of 16 pixels
    r = hungarian_match(PRED, GT)
    assert r.accuracy == 0.75
    assert r.mapping == {1: 1, 2: 2, 3: 3}
    assert hungarian_accuracy(PRED, GT) == 0.75
    assert np.array_equal(r.recolour(PRED), PRED)


def test_hungarian_unmatched_clusters_are_errors():
    pred = np.array([1, 2, 3, 4])
    gt = np.array([1, 1, 2, 2])
    r = hungarian_match(pred, gt)
    assert r.accuracy == 0.5  # two clusters cannot be matched
    assert len(r.mapping) == 2
    assert set(np.unique(r.recolour(pred, unmatched=0))) == {0, 1, 2}


def test_many_to_one_hand_case_and_transfer():
    # each cluster to its majority label: 1->1 (4), 2->1 (tie 2/2, smallest id), 3->3 (6)
    r = many_to_one_match(PRED, GT)
    assert r.accuracy == 0.75
    assert r.mapping == {1: 1, 2: 1, 3: 3}
    # over-clustering: 4 clusters on 2 labels are all right many-to-one
    over = np.array([[1, 2], [3, 4]])
    two = np.array([[5, 5], [6, 6]])
    assert many_to_one_accuracy(over, two) == 1.0
    assert hungarian_accuracy(over, two) == 0.5
    # mapping estimated on other images and applied here; unknown clusters are errors
    mapping = many_to_one_mapping([np.array([1, 1, 2]), np.array([3, 3])],
                                  [np.array([5, 5, 6]), np.array([6, 6])])
    assert mapping == {1: 5, 2: 6, 3: 6}
    assert many_to_one_accuracy(np.array([1, 2, 3, 9]), np.array([5, 6, 5, 6]),
                                mapping=mapping) == 0.5


def test_many_to_one_never_below_hungarian():
    rng = np.random.default_rng(1)
    for _ in range(5):
        p = rng.integers(0, 6, (20, 20))
        g = rng.integers(0, 4, (20, 20))
        assert many_to_one_accuracy(p, g) >= hungarian_accuracy(p, g) - 1e-12


def test_ignore_values():
    pred = np.array([1, 1, 2, 2])
    gt = np.array([7, 255, 8, 255])
    assert hungarian_accuracy(pred, gt, ignore=255) == 1.0
    assert many_to_one_accuracy(pred, gt, ignore=[255]) == 1.0
    assert score_all(pred, gt, ignore=255)["hungarian"] == 1.0
    with pytest.raises(ValueError, match="no pixels to score"):
        hungarian_accuracy(pred, np.full(4, 255), ignore=255)


def test_partition_scores_hand_case():
    # sum C(n_ij, 2) = 24, rows 40, columns 44, all pairs 120
    assert rand_index(PRED, GT) == pytest.approx(84 / 120)
    assert adjusted_rand_index(PRED, GT) == pytest.approx(14 / 41)
    # VOI = H(pred | gt) + H(gt | pred) = 0.75 + (0.25 * 1 + 0.5 * H(1/4, 3/4)) bits
    expected = 0.75 + 0.25 + 0.5 * h2(0.25)
    assert variation_of_information(PRED, GT) == pytest.approx(expected)
    assert variation_of_information(GT, PRED) == pytest.approx(expected)
    assert variation_of_information(PRED, GT, base=math.e) == pytest.approx(
        expected * math.log(2))
    assert adjusted_rand_index(PRED, PRED * 10) == 1.0
    assert variation_of_information(PRED, PRED + 3) == 0.0


def test_score_all_hand_case():
    s = score_all(PRED, GT)
    assert tuple(s) == SCORE_KEYS
    assert s["hungarian"] == 0.75
    assert s["many_to_one"] == 0.75
    # covering: gt 1 (8 px) best IoU 4/8, gt 2 (2 px) 2/4, gt 3 (6 px) 6/8
    assert s["covering"] == pytest.approx((8 * 0.5 + 2 * 0.5 + 6 * 0.75) / 16)
    assert s["pri"] == pytest.approx(0.7)
    assert s["voi"] == pytest.approx(1.0 + 0.5 * h2(0.25))
    assert s["ari"] == pytest.approx(14 / 41)


def test_score_all_several_annotators():
    other = np.ones_like(GT)
    s = score_all(PRED, [GT, other])
    s_stack = score_all(PRED, np.stack([GT, other]))
    assert s == s_stack
    assert s["hungarian"] == pytest.approx((0.75 + 0.5) / 2)  # one label: the largest cluster
    assert s["pri"] == pytest.approx((0.7 + rand_index(PRED, other)) / 2)
    # covering pools annotators: (9.5 + 16 * IoU(cluster 3, all)) / 32
    assert s["covering"] == pytest.approx((9.5 + 16 * 0.5) / 32)


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="shape"):
        score_all(PRED, GT[:3])
    with pytest.raises(ValueError, match="integer"):
        score_all(PRED.astype(float), GT)
    with pytest.raises(ValueError, match="different|got 1 predictions"):
        many_to_one_mapping([PRED], [GT, GT])
    with pytest.raises(TypeError):
        many_to_one_mapping(PRED, GT)


def test_dense_ids_matches_unique():
    rng = np.random.default_rng(0)
    for a in (rng.integers(0, 40, (30, 20)), rng.integers(-5, 5, 50), np.array([True, False]),
              rng.integers(0, 2**40, 64), np.zeros(0, int), np.array([3, 3], np.uint16)):
        ids, inv = dense_ids(a)
        ref_ids, ref_inv = np.unique(a, return_inverse=True)
        assert np.array_equal(ids, ref_ids) and ids.dtype == ref_ids.dtype
        assert np.array_equal(inv, ref_inv.ravel())


def test_protocol_mean_over_annotators_and_ods_ois():
    pred = np.array([[1, 1], [2, 2]])
    gts = [np.array([[1, 1], [2, 2]]), np.array([[1, 1], [1, 1]])]
    assert bsds_accuracy(pred, gts) == 0.75
    assert annotator_mean(pred, gts, many_to_one_accuracy) == 1.0
    r = ods_ois([[0.5, 0.9, 0.1], [0.7, 0.6, 0.8]])
    assert r.ods == pytest.approx(0.75) and r.ods_index == 1
    assert r.ois == pytest.approx(0.85) and r.ois_index.tolist() == [1, 2]
    low = ods_ois([[2.0, 1.0], [1.0, 3.0]], higher_is_better=False)
    assert low.ods == 1.5 and low.ods_index == 0 and low.ois == 1.0
    with pytest.raises(ValueError, match="NaN"):
        ods_ois([[np.nan]])
