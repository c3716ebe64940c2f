"""The widgets fit a laptop screen (1366x768) docked as napari docks them."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("qtpy")

from qtpy.QtCore import QPoint, QRect  # noqa: E402

SCREEN = (1366, 768)


def settle(qtbot, ms: int = 200) -> None:
    qtbot.wait(ms)


def visible_in_dock(button, dock_widget) -> bool:
    """Whether the button lies entirely inside the visible part of its dock."""
    native = button.native
    top_left = native.mapTo(dock_widget, QPoint(0, 0))
    rect = QRect(top_left, native.size())
    # the visible area: the dock's rectangle clipped by every scroll viewport above the button
    visible = dock_widget.rect()
    parent = native.parentWidget()
    while parent is not None and parent is not dock_widget:
        if parent.objectName() == "qt_scrollarea_viewport":
            visible = visible.intersected(QRect(parent.mapTo(dock_widget, QPoint(0, 0)),
                                                parent.size()))
        parent = parent.parentWidget()
    window = dock_widget.window()
    visible = visible.intersected(QRect(dock_widget.mapFrom(window, QPoint(0, 0)), window.size()))
    return native.isVisible() and visible.contains(rect)


def inside_horizontally(widget, dock_widget) -> bool:
    """Whether the widget's right edge lies within the dock (no control cut off on the right)."""
    native = widget.native
    right = native.mapTo(dock_widget, QPoint(native.width(), 0)).x()
    return right <= dock_widget.rect().right() + 1


def dock_at_laptop_size(make_napari_viewer, qtbot, widget_name: str, setup=None):
    viewer = make_napari_viewer(show=True)
    viewer.add_image(np.zeros((64, 64, 3), np.uint8), name="img", rgb=True)
    if setup is not None:
        setup(viewer)
    window = viewer.window._qt_window
    window.resize(*SCREEN)
    dock, widget = viewer.window.add_plugin_dock_widget("napari-useg", widget_name)
    window.resize(*SCREEN)
    settle(qtbot)
    assert (window.width(), window.height()) == SCREEN, "the dock forces a larger window"
    return viewer, dock, widget


def test_segment_widget_run_visible_at_1366x768(make_napari_viewer, qtbot):
    viewer, dock, widget = dock_at_laptop_size(make_napari_viewer, qtbot,
                                               "Unsupervised segmentation")
    assert widget.method.value == "kanezaki"
    assert visible_in_dock(widget.run_button, dock)
    viewer.window._qt_window.grab().save("/tmp/uxm/seg.png")
    assert dock.width() <= 420, dock.width()
    # the paper's parameters wait in the collapsed advanced section, key ones on top
    assert not widget.advanced.expanded
    assert widget.params.key_names[:3] == ["n_clusters", "max_iter", "min_labels"]
    assert len(widget.params.key_names) <= 4
    assert "lr" in widget.params.advanced_names
    widget.advanced.toggle()
    settle(qtbot)
    assert widget.advanced.body.native.isVisible()
    for control in (widget.mode, widget.runs, widget.seed, widget.method):  # nothing cut off
        assert inside_horizontally(control, dock), control.label
    assert (window := viewer.window._qt_window).height() == SCREEN[1], window.height()
    for name in ("inmars", "dfc", "mmt", "kmeans", "slic", "otsu"):
        widget.advanced.expanded = False
        widget.method.value = name
        settle(qtbot, 50)
        assert visible_in_dock(widget.run_button, dock), name


def test_model_widget_train_visible_at_1366x768(make_napari_viewer, qtbot):
    viewer, dock, widget = dock_at_laptop_size(
        make_napari_viewer, qtbot, "Train and apply a model (IIC, InMARS, DFC reference)")
    for name in widget.method.choices:
        widget.method.value = name
        settle(qtbot, 50)
        assert visible_in_dock(widget.train_button, dock), name
    viewer.window._qt_window.grab().save("/tmp/uxm/model.png")
    assert dock.width() <= 420, dock.width()
    assert not widget.advanced.expanded
    # the "train on" list shows at least three rows
    native = widget.train_layers.native
    assert native.height() >= 3 * native.sizeHintForRow(0)


def test_accuracy_widget_compute_visible_at_1366x768(make_napari_viewer, qtbot):
    def labels(viewer):
        viewer.add_labels(np.ones((64, 64), np.int32), name="a")
        viewer.add_labels(np.ones((64, 64), np.int32), name="b")

    _, dock, widget = dock_at_laptop_size(make_napari_viewer, qtbot, "Segmentation accuracy",
                                          labels)
    assert visible_in_dock(widget.compute_button, dock)
