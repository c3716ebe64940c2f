"""The segments slider of the segmentation widget in a real (Xvfb) napari viewer."""

from __future__ import annotations

import numpy as np
import pytest

from napari_useg.viewer.output import META_KEY, is_edited

pytest.importorskip("qtpy")

TIMEOUT = 30_000  # ms


def blocks() -> np.ndarray:
    rng = np.random.default_rng(0)
    img = np.zeros((32, 33))
    for i, level in enumerate([20, 60, 100, 140, 180, 220]):
        r, c = divmod(i, 3)
        img[r * 16:(r + 1) * 16, c * 11:(c + 1) * 11] = level
    return np.clip(img + rng.normal(0, 1, img.shape), 0, 255).astype(np.uint8)


def n_segments(labels: np.ndarray) -> int:
    return int(np.unique(labels[labels > 0]).size)


def run_and_wait(qtbot, widget) -> None:
    widget.run()
    assert widget.worker is not None, widget.status.value
    assert not widget.segments.enabled  # no re-cut while a run goes
    qtbot.waitUntil(lambda: widget.worker is None, timeout=TIMEOUT)


def test_slider_recuts_the_result_instantly(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.add_image(blocks(), name="img")
    _, widget = viewer.window.add_plugin_dock_widget("napari-useg", "Unsupervised segmentation")
    assert widget.segments.native.isHidden()
    # a method without a hierarchy: no slider
    widget.method.value = "kmeans"
    widget.params["n_clusters"].value = 2
    widget.params["window"].value = 1
    run_and_wait(qtbot, widget)
    assert widget.segments.native.isHidden()
    widget.method.value = "felzenszwalb"
    run_and_wait(qtbot, widget)
    layer = viewer.layers["img felzenszwalb"]
    assert not widget.segments.native.isHidden() and widget.segments.enabled
    assert widget.segments.min == 1 and widget.segments.max >= 6
    assert widget.segments.value == n_segments(layer.data)
    for k in (3, 1, 5):
        widget.segments.value = k
        assert n_segments(layer.data) == k
        assert layer.metadata[META_KEY]["granularity"] == {"n_segments": k}
        assert f"{k} segments" in widget.status.value and not is_edited(layer)
    # a new run replaces the layer's labels by the method's own result and its metadata
    run_and_wait(qtbot, widget)
    assert "granularity" not in layer.metadata[META_KEY]
    assert widget.segments.value == n_segments(layer.data)
