"""The widgets' run-option controls, generated from the RunOptions/FitOptions declarations."""

from __future__ import annotations

import numpy as np
import pytest

from napari_useg.core.device import available_devices
from napari_useg.core.options import NORMALISATIONS, FitOptions, RunOptions, option_infos

pytest.importorskip("qtpy")


def dock(viewer, name):
    _, widget = viewer.window.add_plugin_dock_widget("napari-useg", name)
    return widget


def test_both_widgets_build_their_run_controls_from_the_declarations(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((3, 16, 16), np.uint8), name="chw")
    seg = dock(viewer, "Unsupervised segmentation")
    infos = {i.name: i for i in option_infos(RunOptions)}
    assert seg.seed.value == infos["seed"].default and seg.seed.tooltip == infos["seed"].help
    assert seg.device.value == infos["device"].default
    assert list(seg.device.choices) == available_devices()
    assert [w.label for w in seg.run_controls] == [
        "channel axis", "preset", "seed", "device", "live update"]
    seg.method.value = "kmeans"
    seg.seed.value = 4
    seg.channel_axis.value = 0
    opts = seg.run_controls.options()
    assert type(opts) is RunOptions
    assert (opts.seed, opts.channel_axis, opts.preview_every) == (4, 0, 5)
    assert seg.make_job().options == opts

    model = dock(viewer, "Train and apply a model (IIC, InMARS, DFC reference)")
    fit = {i.name: i for i in option_infos(FitOptions)}
    assert tuple(model.normalisation.choices) == NORMALISATIONS == fit["normalisation"].choices
    model.seed.value = 2
    opts = model.run_controls.options()
    assert type(opts) is FitOptions
    assert (opts.seed, opts.checkpoint_every, opts.normalisation) == (2, 1, "auto")
    assert opts.preset == model.current_method.default_preset


def test_run_controls_refuse_what_is_not_declared():
    from napari_useg.viewer._qt.run_controls import RunControls

    with pytest.raises(ValueError, match="no option"):
        RunControls(RunOptions, ["normalisation"])  # a FitOptions field
    with pytest.raises(ValueError, match="choices"):
        RunControls(RunOptions, ["preset"])
    controls = RunControls(FitOptions, ["seed", "checkpoint_every"], values={"seed": 9})
    assert controls["checkpoint_every"].min == 1
    assert controls.options(device="cpu") == FitOptions(seed=9, device="cpu")


def test_combine_runs_control_follows_the_runs(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((16, 16), np.uint8), name="img")
    seg = dock(viewer, "Unsupervised segmentation")
    assert tuple(seg.combine.choices) == ("consensus", "contrast")
    assert not seg.combine.enabled  # one run: nothing to combine
    seg.runs.value = 3
    assert seg.combine.enabled
    seg.combine.value = "contrast"
    seg.method.value = "kmeans"
    opts = seg.make_job().options
    assert (opts.runs, opts.combine) == (3, "contrast")
    seg.runs.value = 1
    assert not seg.combine.enabled
