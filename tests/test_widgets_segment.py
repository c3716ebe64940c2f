"""The segmentation widget in a real (Xvfb) napari viewer."""

from __future__ import annotations

import numpy as np
import pytest

from napari_useg import segment
from napari_useg.core.registry import all_methods
from napari_useg.viewer.output import META_KEY, is_edited

pytest.importorskip("qtpy")

WIDGET = "Unsupervised segmentation"
TIMEOUT = 30_000  # ms; runs here take well under a second but the machine is shared


def two_regions(h: int = 24, w: int = 32) -> np.ndarray:
    rng = np.random.default_rng(1)
    img = np.full((h, w), 40.0)
    img[:, w // 2:] = 200
    return np.clip(img + rng.normal(0, 3, img.shape), 0, 255).astype(np.uint8)


@pytest.fixture
def errors(monkeypatch):
    """Messages sent to napari's error notification by the widget."""
    from napari_useg.viewer._qt import segment_widget as _segment

    seen: list[str] = []
    monkeypatch.setattr(_segment, "show_error", seen.append)
    return seen


def dock(viewer):
    _, widget = viewer.window.add_plugin_dock_widget("napari-useg", WIDGET)
    return widget


def start_and_wait(qtbot, widget):
    widget.run()
    assert widget.worker is not None, widget.status.value
    assert not widget.run_button.enabled and widget.cancel_button.enabled
    wait_done(qtbot, widget)


def wait_done(qtbot, widget):
    # the widget drops its worker when `finished` reaches the main thread
    qtbot.waitUntil(lambda: widget.worker is None, timeout=TIMEOUT)


def set_kmeans(widget, n: int = 2):
    widget.method.value = "kmeans"
    widget.params["n_clusters"].value = n
    widget.params["window"].value = 1


def test_docks_and_builds_controls_from_declarations(make_napari_viewer, fake_methods):
    viewer = make_napari_viewer()
    widget = dock(viewer)
    from napari_useg.viewer._qt import SegmentWidget

    assert isinstance(widget, SegmentWidget)
    methods = all_methods()
    assert set(widget.method.choices) == set(methods)
    for name, m in methods.items():
        widget.method.value = name
        assert [w.name for w in widget.params] == [i.name for i in m.param_infos]
        assert widget.param_values() == m.defaults(m.default_preset)
        assert [w.name for w in widget.inputs] == [i.name for i in m.inputs]
        assert widget.preset.enabled == bool(m.presets)
        for info in m.param_infos:  # declared ranges reach the controls
            w = widget.params[info.name]
            if info.low is not None and info.type in (int, float):
                assert w.min == pytest.approx(info.low)
            if info.high is not None and info.type in (int, float):
                assert w.max == pytest.approx(info.high)
            if info.choices:
                assert tuple(w.choices) == tuple(info.choices)
    with_presets = [m for m in methods.values() if len(m.presets) >= 2]
    for m in with_presets:  # choosing a preset fills the values
        widget.method.value = m.name
        for preset in m.presets:
            widget.preset.value = preset
            assert widget.param_values() == m.defaults(preset)
    # a method none of whose presets is the default starts on, and returns to, the defaults
    widget.method.value = "kmeans"
    widget.method.value = "otsu"
    assert widget.preset.value == "(defaults)" and list(widget.preset.choices) == [
        "(defaults)", "watershed", "background"]
    assert widget.param_values() == methods["otsu"].defaults(None)
    assert widget.params.key_names == ["polarity", "background"]  # what users set first
    widget.preset.value = "watershed"
    assert widget.param_values()["watershed"] is True
    widget.preset.value = "(defaults)"
    assert widget.param_values() == methods["otsu"].defaults(None)
    from napari_useg import available_devices

    assert list(widget.device.choices) == available_devices()


def test_short_run_gives_labels_layer(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    img = two_regions()
    viewer.add_image(img, name="cells", scale=(0.5, 2.0), translate=(1.0, 2.0))
    widget = dock(viewer)
    set_kmeans(widget)
    widget.seed.value = 3
    start_and_wait(qtbot, widget)
    layer = viewer.layers["cells kmeans"]
    assert layer.data.shape == img.shape
    np.testing.assert_allclose(layer.scale, (0.5, 2.0))
    np.testing.assert_allclose(layer.translate, (1.0, 2.0))
    np.testing.assert_array_equal(layer.data,
                                  segment(img, "kmeans", n_clusters=2, window=1, seed=3))
    meta = layer.metadata[META_KEY]
    assert meta["method"] == "kmeans" and meta["seed"] == 3 and meta["status"] == "done"
    assert meta["params"]["n_clusters"] == 2 and meta["device"] == "cpu"
    assert {"version", "runtime"} <= set(meta) and not is_edited(layer)
    assert widget.run_button.enabled and not widget.cancel_button.enabled
    assert widget.progress.value == widget.progress.max
    # re-running updates the same layer; "keep previous result" adds one
    n = len(viewer.layers)
    start_and_wait(qtbot, widget)
    assert len(viewer.layers) == n and viewer.layers["cells kmeans"] is layer
    widget.keep_both.value = True
    start_and_wait(qtbot, widget)
    assert len(viewer.layers) == n + 1


@pytest.fixture
def one_torch_thread():
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: threads only add overhead on a shared machine
    yield
    torch.set_num_threads(n)


def test_torch_method_runs_in_worker(make_napari_viewer, qtbot, one_torch_thread):
    viewer = make_napari_viewer()
    viewer.add_image(np.stack([two_regions()] * 3, axis=-1), name="rgb", rgb=True)
    widget = dock(viewer)
    widget.method.value = "kanezaki"
    widget.preset.value = "fast"
    assert widget.device.enabled
    widget.params["max_iter"].value = 2
    widget.params["n_superpixels"].value = 50
    widget.device.value = "cpu"
    start_and_wait(qtbot, widget)
    layer = viewer.layers["rgb kanezaki"]
    meta = layer.metadata[META_KEY]
    assert layer.data.shape == (24, 32) and layer.data.min() >= 1
    assert meta["status"] == "done" and meta["device"] == "cpu"
    assert meta["preset"] == "fast (modified)" and meta["params"]["max_iter"] == 2


def test_cancel_stops_keeps_labels_and_reenables_run(make_napari_viewer, qtbot, fake_methods):
    viewer = make_napari_viewer()
    viewer.add_image(two_regions(), name="im")
    widget = dock(viewer)
    widget.method.value = "slowtest"  # 2000 steps of 5 ms
    widget.preview_every.value = 1
    widget.run()
    qtbot.waitUntil(lambda: widget.last_progress is not None
                    and widget.last_progress.labels is not None, timeout=TIMEOUT)
    steps = fake_methods["slow_steps"]
    at_cancel = steps[-1]
    widget.cancel()
    wait_done(qtbot, widget)
    # the worker checks for cancellation between two steps: at most one more step ran
    assert steps[-1] - at_cancel <= 1
    assert widget.run_button.enabled and not widget.cancel_button.enabled
    layer = viewer.layers["im slowtest"]
    meta = layer.metadata[META_KEY]
    assert meta["status"] == "cancelled"
    assert widget.last_progress.snap.step <= steps[-1] < 2000
    assert set(np.unique(layer.data)) == {1, 2}  # the last live labels stay
    assert "cancelled" in widget.status.value


def test_result_lands_on_layer_chosen_at_start(make_napari_viewer, qtbot, fake_methods):
    viewer = make_napari_viewer()
    viewer.add_image(two_regions(), name="a")
    other = viewer.add_image(two_regions(16, 16), name="b")
    widget = dock(viewer)
    widget.image.value = viewer.layers["a"]
    widget.method.value = "slowtest"
    widget.params["steps"].value = 40
    widget.run()
    target = widget.writer.layer
    widget.image.value = other  # the user switches layers mid-run
    viewer.layers.selection.active = other
    wait_done(qtbot, widget)
    assert target.name == "a slowtest" and target.data.shape == (24, 32)
    assert target.metadata[META_KEY]["status"] == "done"
    assert "b slowtest" not in viewer.layers


def test_invalid_layer_shows_error_notification(make_napari_viewer, qtbot, errors):
    viewer = make_napari_viewer()
    bad = two_regions().astype(np.float32)
    bad[2, 2] = np.nan
    viewer.add_image(bad, name="nan")
    widget = dock(viewer)
    set_kmeans(widget)
    n = len(viewer.layers)
    widget.run()
    assert widget.worker is None and widget.run_button.enabled
    assert len(errors) == 1 and "NaN" in errors[0]
    assert len(viewer.layers) == n
    # no image at all
    viewer.layers.clear()
    widget.run()
    assert len(errors) == 2 and "no Image layer" in errors[1]


def test_error_in_worker_becomes_notification(make_napari_viewer, qtbot, errors):
    # slice 0 validates, slice 1 holds NaN: the failure happens in the worker thread
    viewer = make_napari_viewer()
    stack = np.stack([two_regions(), two_regions()]).astype(np.float32)
    stack[1, 3, 3] = np.nan
    viewer.add_image(stack, name="st")
    widget = dock(viewer)
    set_kmeans(widget)
    start_and_wait(qtbot, widget)
    assert len(errors) == 1 and "NaN" in errors[0]
    assert widget.run_button.enabled
    meta = viewer.layers["st kmeans"].metadata[META_KEY]
    assert meta["status"] == "error" and meta["slices_done"] == 1


def test_edited_layer_asks_before_overwriting(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.add_image(two_regions(), name="im")
    widget = dock(viewer)
    set_kmeans(widget)
    start_and_wait(qtbot, widget)
    layer = viewer.layers["im kmeans"]
    layer.data[0, :4] = 7  # the user paints
    edited = layer.data.copy()
    asked: list[str] = []

    def answer(reply):
        def ask(lay):
            asked.append(lay.name)
            return reply
        return ask

    widget.ask_overwrite = answer("cancel")
    widget.run()
    assert widget.worker is None and asked == ["im kmeans"]
    np.testing.assert_array_equal(layer.data, edited)
    widget.ask_overwrite = answer("new")
    start_and_wait(qtbot, widget)
    np.testing.assert_array_equal(layer.data, edited)
    assert "im kmeans [1]" in viewer.layers
    widget.ask_overwrite = answer("overwrite")
    start_and_wait(qtbot, widget)
    assert len(asked) == 3 and not is_edited(layer) and (layer.data != 7).all()


def test_channels_stacks_and_inputs(make_napari_viewer, qtbot, fake_methods):
    viewer = make_napari_viewer()
    img = two_regions()
    viewer.add_image(np.stack([img, img[:, ::-1]]), name="chw")
    viewer.add_image(img, name="dapi")
    viewer.add_image(img[:, ::-1], name="gfp")
    scrib = np.zeros(img.shape, np.int32)
    scrib[:10] = 4
    viewer.add_labels(scrib, name="scribbles")
    widget = dock(viewer)
    # multichannel layer: the channel axis is offered and used
    widget.image.value = viewer.layers["chw"]
    assert 0 in list(widget.channel_axis.choices)
    widget.channel_axis.value = 0
    set_kmeans(widget, 2)
    start_and_wait(qtbot, widget)
    out = viewer.layers["chw kmeans"]
    assert out.data.shape == img.shape and out.metadata[META_KEY]["channel_axis"] == 0
    # several single-channel layers combined as channels
    widget.image.value = viewer.layers["dapi"]
    assert [lay.name for lay in widget.extra_channels.choices] == ["gfp"]
    widget.extra_channels.value = [viewer.layers["gfp"]]
    start_and_wait(qtbot, widget)
    assert viewer.layers["dapi+gfp kmeans"].data.shape == img.shape
    # the same single-channel image without channels is a stack of 2 slices
    widget.extra_channels.value = []
    widget.image.value = viewer.layers["chw"]
    widget.channel_axis.value = "none"
    start_and_wait(qtbot, widget)
    assert out.data.shape == (2, *img.shape)
    # extra inputs get a layer chooser generated from Method.inputs
    widget.image.value = viewer.layers["dapi"]
    widget.method.value = "echotest"
    assert [w.name for w in widget.inputs] == ["scribbles"]
    assert widget.inputs.native.isVisibleTo(widget.native)
    widget.inputs["scribbles"].value = viewer.layers["scribbles"]
    start_and_wait(qtbot, widget)
    res = viewer.layers["dapi echotest"].data
    assert len(np.unique(res[:10])) == 1 and res[0, 0] != res[-1, -1]


def test_runs_give_consensus_and_agreement_layer(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    img = two_regions()
    viewer.add_image(img, name="cells")
    widget = dock(viewer)
    set_kmeans(widget)
    widget.runs.value = 2
    start_and_wait(qtbot, widget)
    labels = viewer.layers["cells kmeans"]
    agreement = viewer.layers["cells kmeans agreement"]
    assert agreement.data.shape == img.shape and agreement.data.max() <= 1
    assert viewer.layers.index(agreement) < viewer.layers.index(labels)
    assert labels.metadata[META_KEY]["runs"] == 2
    assert "agreement of the runs" in widget.status.value
    assert not widget.segments.visible  # a consensus has no hierarchy to re-cut
