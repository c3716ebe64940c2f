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
