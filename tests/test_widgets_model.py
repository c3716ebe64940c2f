"""Dataset-level models on layers: the Qt-free jobs (model_jobs) and the model widget."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from napari.components import ViewerModel

import napari_useg
from napari_useg.viewer.model_jobs import (
    dataset_methods,
    make_prediction,
    make_training,
    predict_on_layer,
    train_on_layers,
)
from napari_useg.viewer.output import META_KEY, checksum, is_edited
from napari_useg.viewer.sources import images_from_layers
from synthetic import three_regions

#: Smallest settings that train in well under a second (see test_model_io.py).
TINY = {"iic": dict(steps=3, width=0.125, input_size=16, batch_size=2, device="cpu"),
        "inmars": dict(steps=2, channels=4, depth=2, input_size=16, batch_size=2,
                       superpixels=12, device="cpu"),
        "dfc_ref": dict(max_iter=3, n_features=8, n_clusters=8, work_size=16, batch_size=2,
                        device="cpu")}
WIDGET = "Train and apply a model (IIC, InMARS, DFC reference)"
TIMEOUT = 30_000  # ms


@pytest.fixture(autouse=True)
def one_torch_thread():
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: threads only add overhead on a shared machine
    yield
    torch.set_num_threads(n)


def rgb(seed: int, shape=(32, 40)) -> np.ndarray:
    return three_regions(shape, seed=seed)[0]


def run_until(job, should_stop):
    """Run a job, asking it to stop once ``should_stop()``; the result of its last item."""
    for p in job.iter():
        if not p.done and should_stop():
            job.stop()
    return p.result


# --------------------------------------------------------------------------- Qt-free core
def test_layers_become_a_collection_and_train_like_fit():
    v = ViewerModel()
    a, b = rgb(0), rgb(1)
    v.add_image(a, name="a", rgb=True)
    v.add_image(np.stack([b, a]), name="stack", rgb=True)  # a stack counts as two images
    imgs = images_from_layers(["a", "stack"], viewer=v)
    assert imgs.names == ["a", "stack[0]", "stack[1]"] and imgs.n_channels == 3 and imgs.rgb
    model = train_on_layers(v, ["a", "stack"], "iic", seed=2, **TINY["iic"])
    ref = napari_useg.fit([a, b, a], "iic", seed=2, **TINY["iic"])
    np.testing.assert_array_equal(model.predict(b), ref.predict(b))
    assert model.training["layers"] == ["a", "stack"] and model.training["images"] == 3
    assert set(dataset_methods()) == {"iic", "inmars", "dfc_ref"}


def test_dfc_reference_mode_trains_on_layers_like_fit():
    v = ViewerModel()
    a, b = rgb(0), rgb(1)
    v.add_image(a, name="a", rgb=True)
    v.add_image(b, name="b", rgb=True)
    model = train_on_layers(v, ["a", "b"], "dfc_ref", seed=3, **TINY["dfc_ref"])
    ref = napari_useg.fit([a, b], "dfc_ref", seed=3, **TINY["dfc_ref"])
    np.testing.assert_array_equal(model.predict(b), ref.predict(b))
    out = predict_on_layer(v, "b", model)
    np.testing.assert_array_equal(out.data, ref.predict(b))


def test_multichannel_layer_with_channel_axis_and_errors():
    v = ViewerModel()
    g = rgb(0)[..., 0]
    v.add_image(np.stack([g, g[::-1], g[:, ::-1]]), name="chw")   # (C, Y, X)
    v.add_image(g, name="gray")
    imgs = images_from_layers(["chw"], channel_axis=0, viewer=v)
    assert len(imgs.arrays) == 1 and imgs.arrays[0].shape == (32, 40, 3)
    with pytest.raises(ValueError, match="different numbers of channels"):
        images_from_layers(["chw", "gray"], channel_axis=0, viewer=v)
    # a (T, C, Y, X) layer: channel axis 1, every T is an image; labels of shape (T, Y, X)
    v.add_image(np.stack([np.stack([g, g[::-1]]), np.stack([g[::-1], g])]), name="tcyx")
    model = train_on_layers(v, "tcyx", "iic", channel_axis=1, **TINY["iic"])
    assert model.n_channels == 2 and model.training["images"] == 2
    out = predict_on_layer(v, "tcyx", model, channel_axis=1)
    assert out.data.shape == (2, 32, 40)
    second = model.predict(np.stack([g[::-1], g], -1), channel_axis=-1)
    np.testing.assert_array_equal(out.data[1], second)
    with pytest.raises(ValueError, match="no Image layer"):
        make_training([], "iic")
    with pytest.raises(ValueError, match="fitted per image"):
        make_training(["gray"], "kmeans", viewer=v)
    with pytest.raises(ValueError, match="input_size"):
        make_training(["gray"], "iic", viewer=v, input_size=15)
    with pytest.raises(TypeError, match="seed"):
        make_training(["gray"], "iic", viewer=v, seed="x")


def test_stop_keeps_exactly_the_steps_done():
    v = ViewerModel()
    a = rgb(0)
    v.add_image(a, name="a", rgb=True)
    # (the network's own classes: gamma follows the planned total, so the weights of the
    # two runs differ a little, and the per-image refinement would amplify that)
    job = make_training("a", "inmars", viewer=v, **dict(TINY["inmars"], steps=500,
                                                        refine="off"))
    model = run_until(job, lambda: job.last.step >= 3)
    assert job.last.step == 3 and job.stopped_at == 3
    assert model.training["stopped_at"] == 3 and model.training["planned_steps"] == 500
    ref = napari_useg.fit([a], "inmars", **dict(TINY["inmars"], steps=3, refine="off"))
    np.testing.assert_array_equal(model.predict(a), ref.predict(a))
    # with a checkpoint every 2 steps, stopping after step 3 keeps the model of step 2
    job = make_training("a", "iic", viewer=v, checkpoint_every=2, **dict(TINY["iic"], steps=50))
    model = run_until(job, lambda: job.last.step >= 3)
    assert model.training["stopped_at"] == 2
    ref = napari_useg.fit([a], "iic", **dict(TINY["iic"], steps=2))
    np.testing.assert_array_equal(model.predict(a), ref.predict(a))
    job = make_training("a", "iic", viewer=v, checkpoint_every=5, **dict(TINY["iic"], steps=50))
    assert run_until(job, lambda: True) is None  # before any checkpoint


def test_predict_on_layer_dask_stack_realign_and_edits():
    v = ViewerModel()
    a, b = rgb(0, (40, 48)), rgb(1, (40, 48))
    v.add_image(a, name="a", rgb=True)
    model = train_on_layers(v, "a", "iic", **TINY["iic"])
    v.add_image(da.from_array(np.stack([a, b]), chunks=(1, 16, 16, 3)), name="lazy", rgb=True,
                scale=(1, 0.5, 2))
    out = predict_on_layer(v, "lazy", model, tile_size=16)  # several tiles per slice
    assert out.name == "lazy iic labels" and out.data.shape == (2, 40, 48)
    np.testing.assert_allclose(out.scale, (1, 0.5, 2))
    np.testing.assert_array_equal(out.data[1], model.predict(b))
    meta = out.metadata[META_KEY]
    assert meta["method"] == "iic" and meta["output"] == "main" and not is_edited(out)
    over = predict_on_layer(v, "lazy", model, output="over")
    assert over.name == "lazy iic over labels" and over.data.max() <= 24
    # re-applying updates the same layer; ids are aligned to what it holds
    out.data = np.where(out.data > 0, 4 - out.data, 0)  # permute ids 1..3 -> 3..1 ...
    # ... as if napari-useg had written them (not a user edit)
    out.metadata = {**out.metadata, META_KEY: {**meta, "checksum": checksum(out.data)}}
    before = out.data.copy()
    again = predict_on_layer(v, "lazy", model)
    assert again is out
    np.testing.assert_array_equal(out.data, before)
    # a layer the user edited is never overwritten
    out.data[0, :3, :3] = 9
    edited = out.data.copy()
    new = predict_on_layer(v, "lazy", model)
    assert new is not out and new.name.startswith("lazy iic labels")
    np.testing.assert_array_equal(out.data, edited)
    with pytest.raises(ValueError, match="edited"):
        predict_on_layer(v, "lazy", model, on_edited="error")


def test_wrong_channel_count_is_a_clear_error():
    v = ViewerModel()
    v.add_image(rgb(0), name="a", rgb=True)
    v.add_image(rgb(0)[..., 0], name="gray")
    model = train_on_layers(v, "a", "iic", **TINY["iic"])
    with pytest.raises(ValueError, match=r"'gray'.*RGB images \(3 channel\(s\)\).*1 channel"):
        make_prediction("gray", model, viewer=v)
    with pytest.raises(ValueError, match="no model"):
        make_prediction("a", None, viewer=v)
    with pytest.raises(ValueError, match="no output"):
        make_prediction("a", model, output="nope", viewer=v)


# --------------------------------------------------------------------------- the widget
@pytest.fixture
def errors(monkeypatch):
    from napari_useg.viewer._qt import model_widget as _model

    seen: list[str] = []
    monkeypatch.setattr(_model, "show_error", seen.append)
    monkeypatch.setattr(_model, "show_warning", seen.append)
    return seen


def dock(viewer):
    _, widget = viewer.window.add_plugin_dock_widget("napari-useg", WIDGET)
    return widget


def wait_done(qtbot, widget):
    qtbot.waitUntil(lambda: widget.worker is None, timeout=TIMEOUT)


def set_tiny(widget, method="iic", **over):
    widget.method.value = method
    widget.device.value = "cpu"
    for k, v in dict(TINY[method], **over).items():
        if k != "device":
            widget.params[k].value = v


def test_widget_controls_follow_the_declarations(make_napari_viewer):
    viewer = make_napari_viewer()
    widget = dock(viewer)
    from napari_useg.viewer._qt import ModelWidget

    assert isinstance(widget, ModelWidget)
    methods = dataset_methods()
    assert set(widget.method.choices) == set(methods)
    for name, m in methods.items():
        widget.method.value = name
        assert [w.name for w in widget.params] == [i.name for i in m.param_infos]
        for preset in m.presets:
            widget.preset.value = preset
            assert widget.param_values() == m.defaults(preset)
    assert not widget.apply_button.enabled and not widget.save_button.enabled


def test_widget_trains_and_applies_dfc_reference_mode(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    a, b = rgb(0), rgb(1)
    viewer.add_image(a, name="a", rgb=True)
    viewer.add_image(b, name="b", rgb=True)
    widget = dock(viewer)
    assert "dfc_ref" in widget.method.choices
    set_tiny(widget, "dfc_ref")
    widget.seed.value = 2
    widget.train_layers.value = [viewer.layers["a"], viewer.layers["b"]]
    widget.train()
    wait_done(qtbot, widget)
    assert widget.model is not None and "trained 3 steps" in widget.status.value
    ref = napari_useg.fit([a, b], "dfc_ref", seed=2, **TINY["dfc_ref"])
    np.testing.assert_array_equal(widget.model.predict(b), ref.predict(b))
    widget.apply_image.value = viewer.layers["b"]
    assert list(widget.output.choices) == ["argmax"]
    widget.apply()
    wait_done(qtbot, widget)
    np.testing.assert_array_equal(viewer.layers["b dfc_ref labels"].data, ref.predict(b))


def test_widget_normalisation_choice_reaches_the_model(make_napari_viewer, qtbot):
    # mixed exposures need per-image normalisation (docs/benchmarks.md, microscopy)
    viewer = make_napari_viewer()
    viewer.add_image(rgb(0), name="a", rgb=True)
    widget = dock(viewer)
    assert widget.normalisation.value == "auto"  # the default (docs/benchmarks.md)
    set_tiny(widget, "iic")
    widget.train_layers.value = [viewer.layers["a"]]
    widget.normalisation.value = "dataset"
    assert widget.make_training().normalisation == "dataset"
    widget.train()
    wait_done(qtbot, widget)
    assert widget.model is not None
    assert widget.model.normalisation["mode"] == "dataset"


def test_widget_train_apply_save_load(make_napari_viewer, qtbot, tmp_path, errors):
    viewer = make_napari_viewer()
    a, b = rgb(0), rgb(1)
    viewer.add_image(a, name="a", rgb=True)
    viewer.add_image(np.stack([b, a]), name="st", rgb=True)
    viewer.add_image(a[..., 0], name="gray")
    widget = dock(viewer)
    set_tiny(widget, "iic")
    widget.seed.value = 1
    widget.train_layers.value = [viewer.layers["a"], viewer.layers["st"]]
    widget.train()
    assert widget.worker is not None and widget.stop_button.enabled
    wait_done(qtbot, widget)
    assert widget.model is not None and widget.progress.value == widget.progress.max
    assert "trained 3 steps" in widget.status.value
    ref = napari_useg.fit([a, b, a], "iic", seed=1, **TINY["iic"])
    np.testing.assert_array_equal(widget.model.predict(b), ref.predict(b))
    # apply to a stack layer
    widget.apply_image.value = viewer.layers["st"]
    assert list(widget.output.choices) == ["main", "over"]
    widget.apply()
    wait_done(qtbot, widget)
    out = viewer.layers["st iic labels"]
    assert out.data.shape == (2, 32, 40)
    np.testing.assert_array_equal(out.data[0], ref.predict(b))
    widget.output.value = "over"
    widget.apply()
    wait_done(qtbot, widget)
    assert "st iic over labels" in viewer.layers
    # save, load, identical labels
    widget.save_path.value = tmp_path / "m"
    widget.save()
    assert (tmp_path / "m" / "config.json").is_file() and widget.model_path
    widget.save()  # exists, not ticked: a clear message, no traceback
    assert errors and "exists" in errors[-1]
    trained = widget.model
    widget.load_path.value = tmp_path / "m"
    widget.load()
    assert widget.model is not trained
    np.testing.assert_array_equal(widget.model.predict(a), trained.predict(a))
    # wrong channel count: warned on load, error on apply, no layer added
    widget.apply_image.value = viewer.layers["gray"]
    widget.load()
    assert "expects 3 channel(s)" in errors[-1] and "'gray' has 1" in errors[-1]
    n = len(viewer.layers)
    widget.apply()
    assert widget.worker is None and len(viewer.layers) == n
    assert "1 channel(s)" in errors[-1] and "1 channel(s)" in widget.status.value
    widget.load_path.value = tmp_path / "nothing"
    widget.load()
    assert "could not load" in errors[-1]


def test_widget_stop_keeps_model(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.add_image(rgb(0), name="a", rgb=True)
    widget = dock(viewer)
    set_tiny(widget, "iic", steps=5000)
    widget.train_layers.value = [viewer.layers["a"]]
    widget.train()
    qtbot.waitUntil(lambda: widget.last_progress is not None
                    and widget.last_progress.snap.step >= 2, timeout=TIMEOUT)
    widget.stop()
    wait_done(qtbot, widget)
    tr = widget.model.training
    assert 2 <= tr["stopped_at"] < 5000 and tr["planned_steps"] == 5000
    assert "stopped" in widget.status.value and widget.train_button.enabled
    assert widget.apply_button.enabled


def test_widget_training_errors_become_notifications(make_napari_viewer, qtbot, errors):
    viewer = make_napari_viewer()
    bad = rgb(0).astype(np.float32) / 255
    bad[3, 3] = np.nan  # found when the worker reads the pixels
    viewer.add_image(bad, name="nan", rgb=True)
    widget = dock(viewer)
    widget.train()  # nothing selected
    assert widget.worker is None and "no Image layer selected" in errors[-1]
    set_tiny(widget, "iic")
    widget.train_layers.value = [viewer.layers["nan"]]
    widget.train()
    wait_done(qtbot, widget)
    assert "training failed" in errors[-1] and "NaN" in errors[-1]
    assert widget.model is None and widget.train_button.enabled
    widget.apply()
    assert "no model" in errors[-1]


def test_widget_never_overwrites_edited_labels(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.add_image(rgb(0), name="a", rgb=True)
    widget = dock(viewer)
    set_tiny(widget, "iic")
    widget.train_layers.value = [viewer.layers["a"]]
    widget.train()
    wait_done(qtbot, widget)
    widget.apply_image.value = viewer.layers["a"]
    widget.apply()
    wait_done(qtbot, widget)
    layer = viewer.layers["a iic labels"]
    layer.data[:4, :4] = 7  # the user paints
    edited = layer.data.copy()
    asked: list[str] = []

    def answer(reply):
        def ask(lay):
            asked.append(lay.name)
            return reply
        return ask

    widget.ask_overwrite = answer("cancel")
    widget.apply()
    assert widget.worker is None and asked == ["a iic labels"]
    widget.ask_overwrite = answer("new")
    widget.apply()
    wait_done(qtbot, widget)
    np.testing.assert_array_equal(layer.data, edited)
    assert "a iic labels [1]" in viewer.layers
    widget.ask_overwrite = answer("overwrite")
    widget.apply()
    wait_done(qtbot, widget)
    assert not is_edited(layer) and (layer.data != 7).all()


def test_widget_stop_during_apply_writes_nothing(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.add_image(rgb(0), name="a", rgb=True)
    viewer.add_image(rgb(1, (256, 256)), name="big", rgb=True)
    widget = dock(viewer)
    set_tiny(widget, "iic")
    widget.train_layers.value = [viewer.layers["a"]]
    widget.train()
    wait_done(qtbot, widget)
    widget.apply_image.value = viewer.layers["big"]
    widget.tile_size.value = 16  # 256 tiles: Stop comes long before the last one
    widget.apply()
    assert widget.stop_button.enabled
    widget.stop()
    wait_done(qtbot, widget)
    assert "stopped" in widget.status.value and "big iic labels" not in viewer.layers
    assert widget.apply_button.enabled and widget.train_button.enabled
