"""The segmentation widget says what it will do, how long it takes, and what the layer holds."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from napari_useg.core import registry
from napari_useg.core.params import param
from napari_useg.core.progress import Progress
from napari_useg.viewer.output import META_KEY

pytest.importorskip("qtpy")

WIDGET = "Unsupervised segmentation"
TIMEOUT = 30_000


def dock(viewer):
    _, widget = viewer.window.add_plugin_dock_widget("napari-useg", WIDGET)
    return widget


def wait_done(qtbot, widget):
    qtbot.waitUntil(lambda: widget.worker is None, timeout=TIMEOUT)


@dataclass(frozen=True)
class _EarlyParams:
    max_iter: int = param(10, "iterations", low=1, high=100)


def _early_run(image, p, ctx):
    """Stops at step 3 of ``max_iter``, saying why (as the learning methods do)."""
    labels = np.ones(image.shape[:2], np.int32)
    for step in range(1, 3):
        yield Progress(step=step, total=p.max_iter, n_labels=1)
    yield Progress(step=3, total=p.max_iter, n_labels=1, labels=labels, done=True,
                   message="stopped: labels stable")


@pytest.fixture
def early_method(monkeypatch):
    registry.all_methods()
    m = registry.Method(name="earlytest", title="early stop", summary="test",
                        reference="none", params=_EarlyParams, run=_early_run)
    monkeypatch.setitem(registry._REGISTRY, "earlytest", m)
    return m


def test_channel_axis_guessed_and_reading_shown_before_run(make_napari_viewer):
    viewer = make_napari_viewer()
    rng = np.random.default_rng(0)
    viewer.add_image(rng.random((3, 48, 40)), name="cyx")
    widget = dock(viewer)
    assert widget.image.value.name == "cyx"
    assert widget.channel_axis.value == 0
    assert "3 channels" in widget.reading.value and "48x40" in widget.reading.value
    assert widget.make_job().source.n_slices == 1
    widget.channel_axis.value = "none"  # the user says: slices
    assert widget.reading.value.startswith("3 slices")
    assert widget.make_job().source.n_slices == 3
    # a real stack (many slices) is read as slices; labelled axes are followed
    viewer.add_image(rng.random((12, 48, 40)), name="zyx")
    widget.image.value = viewer.layers["zyx"]
    assert widget.channel_axis.value == "none" and widget.reading.value.startswith("12 slices")
    viewer.add_image(rng.random((20, 48, 2)), name="yxc", metadata={"axes": "YXC"})
    widget.image.value = viewer.layers["yxc"]
    assert widget.channel_axis.value == 2 and "2 channels" in widget.reading.value


def test_image_defaults_to_the_active_layer_and_rgb_hides_extra_channels(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((16, 16)), name="first")
    rgb = viewer.add_image(np.zeros((16, 16, 3), np.uint8), name="photo", rgb=True)
    viewer.add_image(np.zeros((16, 16)), name="last")
    viewer.layers.selection.active = rgb
    widget = dock(viewer)
    assert widget.image.value is rgb
    assert widget.extra_channels.native.isHidden()  # nothing to combine with an RGB image
    assert widget.reading.value == "one 16x16 image, RGB"
    widget.image.value = viewer.layers["first"]
    assert not widget.extra_channels.native.isHidden()  # "last" has the same shape


def test_progress_line_shows_elapsed_and_remaining_time(make_napari_viewer, qtbot,
                                                        fake_methods):
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((16, 16)), name="im")
    widget = dock(viewer)
    widget.method.value = "slowtest"
    widget.params["steps"].value = 400
    widget.params["delay"].value = 0.005
    widget.run()
    qtbot.waitUntil(lambda: "left" in widget.status.value, timeout=TIMEOUT)
    assert "elapsed" in widget.status.value
    wait_done(qtbot, widget)
    assert widget.status.value.startswith("done in")


def test_long_preset_on_cpu_is_announced(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((512, 512)), name="big")
    widget = dock(viewer)
    widget.device.value = "cpu"
    widget.method.value = "kanezaki"
    widget.preset.value = "paper"
    assert not widget.estimate.native.isHidden()
    assert "may take about" in widget.estimate.value
    widget.preset.value = "fast"
    widget.params["max_iter"].value = 1
    assert widget.estimate.native.isHidden() and widget.estimate.value == ""
    widget.method.value = "kmeans"  # no estimate for classical methods
    assert widget.estimate.native.isHidden()


def test_cancel_reports_what_the_layer_holds(make_napari_viewer, qtbot, fake_methods):
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((16, 16)), name="im")
    widget = dock(viewer)
    widget.method.value = "slowtest"
    widget.preview_every.value = 5
    fake_methods["slow_steps"].clear()  # (the list holds a previous test's steps)
    widget.run()
    qtbot.waitUntil(lambda: len(fake_methods["slow_steps"]) >= 12, timeout=TIMEOUT)
    widget.cancel()
    wait_done(qtbot, widget)
    last = fake_methods["slow_steps"][-1]
    held = 5 * (last // 5)  # previews come every 5 steps
    layer = viewer.layers["im slowtest"]
    n = layer.metadata[META_KEY]["n_labels"]
    assert f"cancelled at step {last}/2000 (" in widget.status.value  # not the step's labels
    assert f"holds the labels of step {held}: {n} labels" in widget.status.value


def test_early_stop_says_why_and_errors_reset_the_bar(make_napari_viewer, qtbot,
                                                     early_method, monkeypatch):
    from napari_useg.viewer._qt import segment_widget as _segment

    monkeypatch.setattr(_segment, "show_error", lambda msg: None)
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((16, 16)), name="im")
    widget = dock(viewer)
    widget.method.value = "earlytest"
    widget.run()
    wait_done(qtbot, widget)
    assert widget.progress.value == widget.progress.max
    assert "stopped early at step 3 of 10: labels stable" in widget.status.value
    viewer.layers.remove("im")
    widget.run()  # nothing to segment: the error is not shown next to a full bar
    assert "no Image layer" in widget.status.value and widget.progress.value == 0


def test_closing_napari_mid_run_stops_the_worker(make_napari_viewer, qtbot, fake_methods):
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((16, 16)), name="im")
    widget = dock(viewer)
    widget.method.value = "slowtest"
    steps = fake_methods["slow_steps"]
    steps.clear()
    widget.run()
    qtbot.waitUntil(lambda: len(steps) >= 3, timeout=TIMEOUT)
    worker = widget.worker
    viewer.close()
    qtbot.waitUntil(lambda: not worker.worker.is_running, timeout=TIMEOUT)
    qtbot.wait(100)  # anything still queued for the deleted widgets arrives now
    assert worker.detached and steps[-1] < 2000
