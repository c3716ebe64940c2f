"""Scoring Labels layers (napari_useg.viewer.scoring) on napari's ViewerModel: no window, no Qt."""

from __future__ import annotations

import numpy as np
import pytest
from napari.components import ViewerModel

from napari_useg.viewer.scoring import SCORE_HELP, pick_pair, score_help, score_layers


def test_score_layers_matches_metrics_module():
    metrics = pytest.importorskip("napari_useg.metrics")
    if not hasattr(metrics, "score_all"):
        pytest.skip("napari_useg.metrics.score_all is not available yet (evaluation issue)")
    rng = np.random.default_rng(0)
    gt = np.zeros((20, 20), np.int32)
    gt[:, 10:] = 1
    gt[15:, :] = 2
    pred = gt.copy() + 5
    pred[rng.random(gt.shape) < 0.1] = 9
    viewer = ViewerModel()
    viewer.add_labels(pred, name="pred", scale=(2.0, 2.0))
    viewer.add_labels(gt, name="gt", scale=(2.0, 2.0))
    scores = score_layers(viewer, "pred", "gt", add_matched=True, add_errors=True)
    assert scores == metrics.score_all(pred, gt, ignore=None)
    matched = viewer.layers["pred matched"].data
    np.testing.assert_array_equal(matched, metrics.hungarian_match(pred, gt).recolour(pred))
    errors = viewer.layers["pred errors"].data
    np.testing.assert_array_equal(errors.astype(bool), matched != gt)
    np.testing.assert_allclose(viewer.layers["pred errors"].scale, (2.0, 2.0))
    # computing again refreshes the derived layers instead of stacking new ones
    score_layers(viewer, "pred", "gt", zero_unannotated=True, add_matched=True,
                   add_errors=True)
    assert len(viewer.layers) == 4
    assert not viewer.layers["pred errors"].data[gt == 0].any()
    viewer.add_labels(np.zeros((3, 3), np.int32), name="tiny")
    with pytest.raises(ValueError, match="shape"):
        score_layers(viewer, "pred", "tiny")
    # several annotators as a (K, H, W) layer; a stack of predictions scored as a whole
    viewer.add_labels(np.stack([gt, gt.T[:20, :20]]), name="annotators")
    assert score_layers(viewer, "pred", "annotators") == metrics.score_all(
        pred, np.stack([gt, gt.T[:20, :20]]))
    viewer.add_labels(np.stack([pred, pred]), name="pred3")
    viewer.add_labels(np.stack([gt, gt]), name="gt3")
    assert score_layers(viewer, "pred3", "gt3")["hungarian"] == pytest.approx(
        scores["hungarian"])


def test_a_layer_is_never_scored_against_itself():
    viewer = ViewerModel()
    viewer.add_labels(np.ones((4, 4), np.int32), name="a")
    with pytest.raises(ValueError, match="same layer"):
        score_layers(viewer, "a", "a", add_matched=True)
    assert len(viewer.layers) == 1


def test_pick_pair_prefers_named_ground_truth_and_plain_results():
    assert pick_pair(["a"]) is None
    assert pick_pair(["gt", "pred"]) == (1, 0)
    assert pick_pair(["a", "b", "c"]) == (2, 1)
    names = ["nuclei ground truth", "nuclei kmeans", "nuclei kmeans matched"]
    assert pick_pair(names) == (1, 0)
    assert pick_pair(["img kanezaki", "manual annotation"]) == (0, 1)


def test_every_score_says_what_it_measures_and_which_way_is_better():
    metrics = pytest.importorskip("napari_useg.metrics")
    a = np.zeros((4, 4), int)
    a[:, 2:] = 1
    names = list(metrics.score_all(a, a))
    assert set(names) == set(SCORE_HELP)
    for name in names:
        assert "better" in score_help(name)
    assert "lower is better" in score_help("voi")
