"""The model widget's wording and checks: folder dialog, channel count at selection, axis."""

from __future__ import annotations

import numpy as np
import pytest
from magicgui.types import FileDialogMode

from test_widgets_model import TIMEOUT, WIDGET, rgb, set_tiny

pytest.importorskip("qtpy")


@pytest.fixture(autouse=True)
def one_torch_thread():
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def dock(viewer):
    _, widget = viewer.window.add_plugin_dock_widget("napari-useg", WIDGET)
    return widget


def train(qtbot, widget, layers):
    widget.train_layers.value = layers
    widget.train()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=TIMEOUT)
    assert widget.model is not None, widget.status.value


def test_rgb_training_axis_agrees_with_the_segment_widget(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.add_image(rgb(0), name="a", rgb=True)
    viewer.add_image(np.zeros((3, 40, 40)), name="cyx")
    widget = dock(viewer)
    widget.train_layers.value = [viewer.layers["a"]]
    assert widget.channel_axis.native.currentText() == "RGB (last axis)"
    widget.train_layers.value = [viewer.layers["cyx"]]
    assert widget.channel_axis.value == 0  # guessed: 3 channels
    widget.apply_image.value = viewer.layers["cyx"]
    assert widget.apply_axis.value == 0


def test_save_uses_a_folder_dialog_and_wording(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer()
    viewer.add_image(rgb(0), name="a", rgb=True)
    viewer.add_image(rgb(1)[..., 0], name="gray")
    widget = dock(viewer)
    assert widget.save_path.mode == FileDialogMode.EXISTING_DIRECTORY
    set_tiny(widget, "iic")
    train(qtbot, widget, [viewer.layers["a"]])
    # a folder picked in the dialog holds other things: the model folder goes inside it
    (tmp_path / "notes.txt").write_text("keep me")
    widget.save_path.value = tmp_path
    widget.save()
    assert (tmp_path / "iic-model" / "config.json").is_file()
    assert (tmp_path / "notes.txt").read_text() == "keep me"
    widget.load_path.value = tmp_path / "iic-model"
    widget.load()
    assert widget.status.value.startswith("loaded the iic model from")


def test_channel_count_checked_when_the_layer_is_chosen(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.add_image(rgb(0), name="a", rgb=True)
    viewer.add_image(rgb(1)[..., 0], name="gray")
    widget = dock(viewer)
    set_tiny(widget, "iic")
    widget.apply_image.value = viewer.layers["a"]
    train(qtbot, widget, [viewer.layers["a"]])
    assert widget.apply_check.value == "" and widget.apply_check.native.isHidden()
    widget.apply_image.value = viewer.layers["gray"]  # said at selection, not at Apply
    assert "expects 3 channel(s)" in widget.apply_check.value
    assert "'gray' has 1 channel(s)" in widget.apply_check.value
    assert not widget.apply_check.native.isHidden()
    widget.apply_image.value = viewer.layers["a"]
    assert widget.apply_check.value == ""


def test_closing_napari_mid_training_stops_it(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.add_image(rgb(0), name="a", rgb=True)
    widget = dock(viewer)
    set_tiny(widget, "iic", steps=5000)
    widget.train_layers.value = [viewer.layers["a"]]
    widget.train()
    qtbot.waitUntil(lambda: widget.last_progress is not None, timeout=TIMEOUT)
    worker = widget.worker
    viewer.close()
    qtbot.waitUntil(lambda: not worker.worker.is_running, timeout=TIMEOUT)
    qtbot.wait(100)
    assert worker.detached and worker.job.stopping
