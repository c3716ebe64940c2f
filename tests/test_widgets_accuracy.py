"""The accuracy widget in a real (Xvfb) napari viewer."""

from __future__ import annotations

import numpy as np
import pytest

from napari_useg import metrics

pytest.importorskip("qtpy")

WIDGET = "Segmentation accuracy"
needs_score_all = pytest.mark.skipif(
    not hasattr(metrics, "score_all"),
    reason="napari_useg.metrics.score_all (evaluation issue) is not available yet",
)


def maps():
    rng = np.random.default_rng(0)
    gt = np.zeros((20, 24), np.int32)
    gt[:, 12:] = 1
    gt[14:, :] = 2
    pred = gt + 4
    pred[rng.random(gt.shape) < 0.15] = 9
    return pred, gt


@pytest.fixture
def errors(monkeypatch):
    from napari_useg.viewer._qt import accuracy_widget as _accuracy

    seen: list[str] = []
    monkeypatch.setattr(_accuracy, "show_error", seen.append)
    return seen


@needs_score_all
def test_accuracy_widget_equals_metrics_module(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    pred, gt = maps()
    viewer.add_labels(gt, name="gt", scale=(2.0, 1.0))
    viewer.add_labels(pred, name="pred", scale=(2.0, 1.0))
    _, widget = viewer.window.add_plugin_dock_widget("napari-useg", WIDGET)
    from napari_useg.viewer._qt import AccuracyWidget

    assert isinstance(widget, AccuracyWidget)
    assert widget.prediction.value.name == "pred" and widget.ground_truth.value.name == "gt"
    widget.add_matched.value = True
    widget.add_errors.value = True
    scores = widget.compute()
    expected = metrics.score_all(pred, gt, ignore=None)
    assert scores == expected
    for key in ("hungarian", "many_to_one", "covering", "pri", "voi", "ari"):
        assert any(key in k.lower().replace("-", "_") for k in scores), key
    # the table shows every score, and copies as tab-separated text
    table = widget.table.to_dict("dict")["value"]
    assert list(table) == list(expected)
    text = widget.copy()
    from qtpy.QtWidgets import QApplication

    assert QApplication.clipboard().text() == text
    assert len(text.splitlines()) == len(expected) + 1
    # optional layers
    matched = viewer.layers["pred matched"]
    np.testing.assert_array_equal(matched.data, metrics.hungarian_match(pred, gt).recolour(pred))
    np.testing.assert_allclose(matched.scale, (2.0, 1.0))
    np.testing.assert_array_equal(viewer.layers["pred errors"].data.astype(bool),
                                  matched.data != gt)
    # "GT label 0 = unannotated"
    widget.zero_unannotated.value = True
    assert widget.compute() == metrics.score_all(pred, gt, ignore=0)
    assert len(viewer.layers) == 4  # derived layers refreshed, not stacked


def test_accuracy_widget_reports_bad_input(make_napari_viewer, errors):
    viewer = make_napari_viewer()
    viewer.add_labels(np.zeros((5, 5), np.int32), name="a")
    viewer.add_labels(np.zeros((6, 5), np.int32), name="b")
    _, widget = viewer.window.add_plugin_dock_widget("napari-useg", WIDGET)
    assert widget.compute() == {}
    assert len(errors) == 1 and "shape" in errors[0]


@needs_score_all
def test_accuracy_widget_never_scores_a_layer_against_itself(make_napari_viewer, errors):
    viewer = make_napari_viewer()
    pred, gt = maps()
    viewer.add_labels(gt, name="nuclei ground truth")
    _, widget = viewer.window.add_plugin_dock_widget("napari-useg", WIDGET)
    # docked with one Labels layer: both choices are that layer, and Compute refuses
    assert widget.prediction.value is widget.ground_truth.value
    assert "same layer" in widget.pair.value
    n = len(viewer.layers)
    assert widget.compute() == {}
    assert "same layer" in errors[-1] and len(viewer.layers) == n
    # a result appears: the pair follows it
    viewer.add_labels(pred, name="nuclei kmeans")
    assert widget.prediction.value.name == "nuclei kmeans"
    assert widget.ground_truth.value.name == "nuclei ground truth"
    scores = widget.compute()
    assert scores == metrics.score_all(pred, gt)
    assert "nuclei kmeans" in widget.pair.value and "nuclei ground truth" in widget.pair.value
    assert widget.copy().splitlines()[0] == "metric\tnuclei kmeans vs nuclei ground truth"
    # every score explains itself, and says which way is better
    native = widget.table.native
    for row in range(native.rowCount()):
        tip = native.verticalHeaderItem(row).toolTip()
        assert "better" in tip and tip == native.item(row, 0).toolTip()
    # another pair (or setting): the old numbers go
    viewer.add_labels(gt[::-1].copy(), name="other")
    assert widget.scores  # an unrelated layer keeps the pair and its scores
    widget.ground_truth.value = viewer.layers["other"]
    assert widget.scores == {} and widget.table.data.to_list() == []
    assert widget.pair.value == ""
    widget.compute()
    widget.zero_unannotated.value = True
    assert widget.scores == {}
    # a chosen layer removed: the choices follow, still two different layers
    widget.ground_truth.value = viewer.layers["nuclei ground truth"]
    viewer.layers.remove("nuclei kmeans")
    assert widget.prediction.value is not widget.ground_truth.value
    assert {lay.name for lay in (widget.prediction.value, widget.ground_truth.value)} == {
        "nuclei ground truth", "other"}
