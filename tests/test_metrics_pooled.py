"""Pooled (whole-set) Hungarian and many-to-one accuracy on hand-made sets."""

from __future__ import annotations

import numpy as np
import pytest

from napari_useg.metrics import (
    hungarian_accuracy,
    many_to_one_accuracy,
    many_to_one_mapping,
    pooled_contingency,
    pooled_hungarian_accuracy,
    pooled_hungarian_match,
    pooled_many_to_one_accuracy,
    pooled_many_to_one_match,
)

# two images, each perfectly segmented on its own, but cluster 2 is class 1 in the
# first and class 0 in the second: the per-image mappings differ
A_PRED, A_GT = np.array([[1, 1], [2, 2]]), np.array([[0, 0], [1, 1]])
B_PRED, B_GT = np.array([[1, 1, 1], [1, 2, 2]]), np.array([[1, 1, 1], [1, 0, 0]])
PREDS, GTS = [A_PRED, B_PRED], [A_GT, B_GT]


def test_pooled_table_is_the_sum_of_the_tables():
    table, pred_ids, gt_ids = pooled_contingency(PREDS, GTS)
    assert pred_ids.tolist() == [1, 2] and gt_ids.tolist() == [0, 1]
    # cluster 1: 2 px of class 0 (A) + 4 px of class 1 (B); cluster 2: 2 + 2
    assert table.tolist() == [[2, 4], [2, 2]]


def test_pooled_hungarian_lower_than_per_image_exact_value():
    per_image = np.mean([hungarian_accuracy(p, g) for p, g in zip(PREDS, GTS, strict=True)])
    assert per_image == 1.0
    r = pooled_hungarian_match(PREDS, GTS)
    # one mapping: 1 -> 1 (4 px) and 2 -> 0 (2 px) of 10 pixels
    assert r.mapping == {1: 1, 2: 0}
    assert r.accuracy == pytest.approx(0.6)
    assert r.n_scored == 10
    assert pooled_hungarian_accuracy(PREDS, GTS) < per_image


def test_pooled_many_to_one_exact_value():
    per_image = np.mean([many_to_one_accuracy(p, g) for p, g in zip(PREDS, GTS, strict=True)])
    assert per_image == 1.0
    r = pooled_many_to_one_match(PREDS, GTS)
    assert r.mapping == {1: 1, 2: 0}  # tie of cluster 2 goes to the smallest class
    assert r.accuracy == pytest.approx(0.6)
    assert r.mapping == many_to_one_mapping(PREDS, GTS)


def test_pooled_equals_per_image_for_one_image():
    rng = np.random.default_rng(0)
    p, g = rng.integers(1, 5, (20, 30)), rng.integers(0, 3, (20, 30))
    assert pooled_hungarian_accuracy([p], [g]) == pytest.approx(hungarian_accuracy(p, g))
    assert pooled_many_to_one_accuracy([p], [g]) == pytest.approx(many_to_one_accuracy(p, g))


def test_mapping_estimated_on_a_subset_and_applied_to_the_rest():
    # estimated on A (1 -> 0, 2 -> 1), applied to B: 1 is class 1 there, 2 class 0: all wrong
    assert pooled_many_to_one_accuracy(PREDS, GTS, mapping_on=[0]) == 0.0
    assert pooled_hungarian_accuracy(PREDS, GTS, mapping_on=[0]) == 0.0
    # estimated on B, applied to A: also all wrong
    assert pooled_many_to_one_accuracy(PREDS, GTS, mapping_on=[1]) == 0.0
    c = [np.array([1, 1, 2, 3]), np.array([1, 2, 3, 3])]
    g = [np.array([0, 0, 1, 1]), np.array([0, 1, 1, 0])]
    # mapping from image 0: 1 -> 0, 2 -> 1, 3 -> 1; image 1 scores 3 of 4
    assert pooled_many_to_one_accuracy(c, g, mapping_on=[0]) == 0.75


def test_cluster_unseen_when_estimating_counts_as_error():
    preds = [np.array([1, 1]), np.array([1, 9])]
    gts = [np.array([0, 0]), np.array([0, 0])]
    assert pooled_many_to_one_accuracy(preds, gts, mapping_on=[0]) == 0.5


def test_ignore_and_shapes():
    preds = [np.array([1, 2, 2]), np.array([[1, 2], [2, 2]])]
    gts = [np.array([0, 1, 255]), np.array([[0, 255], [1, 1]])]
    assert pooled_hungarian_accuracy(preds, gts, ignore=255) == 1.0
    with pytest.raises(ValueError, match="image 1"):
        pooled_hungarian_accuracy([A_PRED, B_PRED], [A_GT, A_GT])
    with pytest.raises(ValueError, match="no images"):
        pooled_hungarian_accuracy([], [])
    with pytest.raises(ValueError, match="no pixels"):
        pooled_hungarian_accuracy([np.array([1])], [np.array([255])], ignore=255)
    with pytest.raises(ValueError, match="every image"):
        pooled_many_to_one_accuracy(PREDS, GTS, mapping_on=[0, 1])
    with pytest.raises(ValueError, match="outside"):
        pooled_many_to_one_accuracy(PREDS, GTS, mapping_on=[5])
    with pytest.raises(TypeError):
        pooled_hungarian_accuracy(np.stack([A_PRED, A_PRED]), [A_GT, A_GT])
