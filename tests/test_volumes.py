"""Volumes segmented as volumes: options, methods, patch training, spacing, napari."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import tifffile
import torch

from napari_useg import segment
from napari_useg.core.image import layout_shape, prepare_image
from napari_useg.core.instances import background_class, instances, label_objects
from napari_useg.core.options import RunOptions
from napari_useg.core.registry import get_method
from napari_useg.io.images import read_spacing
from napari_useg.metrics.instances import instance_scores
from napari_useg.nn.feature_net import FeatureNet, seeded
from napari_useg.nn.volume_loop import (
    focused_patch,
    patch_shape,
    predict_volume_labels,
    random_patch,
    supervoxel_focus,
    volume_tensor,
)
from volumes_synthetic import blob_volume

SPACING = (2.5, 1.0, 1.0)


def test_prepare_volume_layouts():
    vol = np.zeros((6, 8, 9), np.uint16)
    vol[2:4] = 1000
    p = prepare_image(vol, spatial_dims=3)
    assert p.data.shape == (6, 8, 9, 1) and p.shape == (6, 8, 9) and p.spatial_dims == 3
    stack = np.stack([vol, vol], axis=1)  # (Z, C, Y, X)
    p2 = prepare_image(stack, channel_axis=1, spatial_dims=3)
    assert p2.data.shape == (6, 8, 9, 2) and p2.n_channels == 2
    assert layout_shape(stack, 1, 3) == (6, 8, 9, 2)
    assert layout_shape(vol, None, 3) == (6, 8, 9, 1)
    with pytest.raises(ValueError, match="4-D with channel_axis"):
        prepare_image(stack, spatial_dims=3)
    with pytest.raises(ValueError, match="too small"):
        prepare_image(np.zeros((2, 8, 8)), spatial_dims=3)
    # 2-D behaviour unchanged by default
    assert prepare_image(np.zeros((8, 8), np.uint8)).data.shape == (8, 8, 1)
    with pytest.raises(ValueError, match="ambiguous"):
        prepare_image(vol)


def test_run_options_volume_fields():
    opts = RunOptions(spatial_dims=3, spacing=[2, 1, 1])
    assert opts.spacing == (2.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="spacing needs 3 values"):
        RunOptions(spatial_dims=3, spacing=(1, 1))
    with pytest.raises(ValueError, match="positive"):
        RunOptions(spatial_dims=3, spacing=(0, 1, 1))
    with pytest.raises(ValueError, match="spatial_dims"):
        RunOptions(spatial_dims=4)
    with pytest.raises(ValueError, match="result"):
        RunOptions(result="objects")


def test_2d_only_methods_refuse_volumes():
    vol, _ = blob_volume(shape=(8, 16, 16))
    with pytest.raises(ValueError, match="segments 2-D images only.*kanezaki.*kmeans.*otsu"):
        segment(vol, "slic", spatial_dims=3)
    assert get_method("kanezaki").volumes and not get_method("felzenszwalb").volumes


def test_blobs_recovered_in_volume_mode():
    """Four round (in physical units) blobs, flat in voxels (z spacing 2.5).

    Measured: otsu and 3-D k-means find the 4 objects (F1@0.5 = 1.0, mean F1 0.8);
    Kanezaki volume mode (``volume`` preset, 40 iterations, seed 0) finds the 4 objects
    too (F1@0.5 = 1.0) with mean F1 over IoU 0.5..0.95 of 0.40 from the network's own
    voxel labels (the preset; the same with uniform patches, ``patch_focus=0``), 0.23
    when they are voted over the supervoxels
    (``final_vote=True``): looser objects. Kanezaki is asserted at F1@0.5 >= 0.85 and
    mean F1 >= 0.3 to leave room for another thread count's float sums.
    """
    vol, truth = blob_volume()
    common = dict(spatial_dims=3, spacing=SPACING, result="instances", min_object_size=20)
    for method, kw, low, mean_low in [
            ("otsu", {}, 1.0, 0.7), ("kmeans", {"n_clusters": 2}, 1.0, 0.7),
            ("kanezaki", {"max_iter": 40, "n_superpixels": 2000, "device": "cpu"}, 0.85, 0.3)]:
        objects = segment(vol, method, **common, **kw)
        assert objects.shape == vol.shape
        scores = instance_scores(objects, truth)
        assert scores.f1_50 >= low and scores.mean_f1 >= mean_low, (method, scores)
    voted = segment(vol, "kanezaki", **common, max_iter=40, n_superpixels=2000, device="cpu",
                    final_vote=True)
    assert instance_scores(voted, truth).mean_f1 < scores.mean_f1


def test_patch_training_and_tiled_prediction_equal_whole_volume():
    """Tiles with a halo of n_conv voxels give the whole-volume argmax (eval-mode BN).

    Bound: identical labels except where two responses tie to within float32 rounding;
    responses differ by < 1e-4.
    """
    rng = np.random.default_rng(0)
    data = rng.random((12, 30, 26, 1), dtype=np.float32)
    with seeded(0):
        net = FeatureNet(1, 8, 6, 2, dims=3)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    patch = patch_shape(data.shape[:-1], 12, SPACING)
    assert patch == (5, 12, 12)
    for _ in range(5):  # patch training: the running statistics move
        x = volume_tensor(data[random_patch(data.shape[:-1], patch, rng)], "cpu")
        out = net(x)[0].reshape(6, -1).t()
        loss = torch.nn.functional.cross_entropy(out, out.argmax(1).detach())
        opt.zero_grad()
        loss.backward()
        opt.step()
    tiled = predict_volume_labels(net, data, patch, halo=2, device="cpu")
    net.eval()
    with torch.no_grad():
        whole_resp = net(volume_tensor(data, "cpu"))[0]
    whole = whole_resp.argmax(0).numpy()
    agree = float((tiled == whole).mean())
    assert agree >= 0.999, agree
    # a halo too small breaks it (the check is not vacuous)
    assert float((predict_volume_labels(net, data, patch, 0, "cpu") == whole).mean()) < agree


def test_kanezaki_volume_memory_follows_the_patch():
    m = get_method("kanezaki")
    p = m.build("volume")
    small = m.memory_needed((100, 100, 100), 1, p)
    big = m.memory_needed((400, 400, 400), 1, p)
    # the network part is paid once per patch: 64x the voxels cost far less than 64x
    assert big < 64 * small
    per_voxel_big = big / 400**3
    assert per_voxel_big < 128  # bytes per voxel of the volume itself


def test_spacing_honoured_by_resampled_copy():
    """A volume (z spacing 2) and its copy resampled to 1 along z give the same objects.

    Two touching balls: the distance-transform watershed needs the spacing to split them
    in the same place in both.
    """
    centres = [(0.5, 0.5, 0.36), (0.5, 0.5, 0.64)]
    vol, truth = blob_volume(shape=(14, 40, 40), spacing=(2.0, 1.0, 1.0), radius=7.0,
                             centres=centres, noise=0.0)
    fine = np.repeat(vol, 2, axis=0)
    a = segment(vol, "otsu", spatial_dims=3, spacing=(2.0, 1.0, 1.0), watershed=True,
                min_size=20)
    b = segment(fine, "otsu", spatial_dims=3, spacing=(1.0, 1.0, 1.0), watershed=True,
                min_size=40)
    assert int(a.max()) - 1 == int(b.max()) - 1 == 2
    back = b[::2]  # the fine result on the coarse grid
    scores = instance_scores(a - 1, back - 1)
    assert scores.f1_50 == 1.0 and scores.mean_f1 >= 0.9
    assert instance_scores(a - 1, truth).f1_50 == 1.0
    # without the spacing the coarse volume's objects are not split the same way
    objs_iso = label_objects(vol > 128, spacing=None, split=True, min_size=20)
    objs_sp = label_objects(vol > 128, spacing=(2.0, 1.0, 1.0), split=True, min_size=20)
    assert int(objs_sp.max()) == 2
    assert not np.array_equal(objs_iso, objs_sp)


def test_instances_output_and_background_rule():
    classes = np.ones((6, 20, 20), np.int32)
    classes[1:4, 2:8, 2:8] = 2
    classes[1:4, 12:18, 12:18] = 2
    assert background_class(classes) == 1
    objs = instances(classes, min_size=10)
    assert int(objs.max()) == 2 and objs.dtype == np.int32 and (objs[classes == 1] == 0).all()
    assert int(instances(classes, min_size=200).max()) == 0
    assert int(instances(classes, foreground=1, min_size=1).max()) == 1


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int8, np.int64])
def test_background_rule_holds_for_labels_from_zero_in_any_integer_type(dtype):
    """Label maps straight from a method may start at 0 in an unsigned type: the value
    outside every label (min - 1) must not wrap round to a label value (uint8: 255,
    which would then be left out of every region), nor warn."""
    top = 255 if dtype == np.uint8 else 1
    classes = np.zeros((4, 12, 12), dtype)
    classes[1:3, 2:6, 2:6] = top
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert background_class(classes) == 0
        assert background_class(top - classes) == top  # the larger region is label top
    with pytest.raises(ValueError, match="does not occur"):
        instances(classes, foreground=7)


def test_instance_scores_hand_made():
    true = np.zeros((4, 10), np.int32)
    true[:, 0:4] = 1
    true[:, 6:10] = 2
    # perfect
    s = instance_scores(true, true)
    assert s.f1_50 == 1.0 and s.mean_f1 == 1.0 and s.n_pred == s.n_true == 2
    # one object exact, one at IoU 3/4 (matched at 0.5..0.7, not from 0.75: strictly
    # greater), one extra
    pred = np.zeros_like(true)
    pred[:, 0:4] = 5
    pred[:, 7:10] = 9
    pred[0, 5] = 3
    s = instance_scores(pred, true)
    assert (s.n_pred, s.n_true) == (3, 2)
    assert s.at(0.5) == {"precision": 2 / 3, "recall": 1.0, "f1": 0.8}
    assert s.at(0.75)["f1"] == pytest.approx(2 * 1 / 5)
    assert s.tp.tolist() == [2, 2, 2, 2, 2, 1, 1, 1, 1, 1]
    # IoU exactly 0.5 does not match (strictly greater); two halves of one object
    halves = np.zeros_like(true)
    halves[:, 0:2] = 1
    halves[:, 2:4] = 2
    assert instance_scores(halves, (true == 1).astype(np.int32)).tp[0] == 0
    # empty prediction / empty truth
    assert instance_scores(np.zeros_like(true), true).f1_50 == 0.0
    assert instance_scores(np.zeros_like(true), np.zeros_like(true)).f1_50 == 1.0
    with pytest.raises(ValueError, match=r"\[0.5, 1\)"):
        instance_scores(true, true, thresholds=[0.3])


def test_cli_reads_imagej_spacing(tmp_path, capsys):
    from napari_useg.cli import main

    vol, _ = blob_volume(shape=(10, 32, 32))
    path = tmp_path / "vol.tif"
    tifffile.imwrite(path, vol, imagej=True, resolution=(1 / 0.5, 1 / 0.5),
                     metadata={"spacing": 2.0, "unit": "um", "axes": "ZYX"})
    assert read_spacing(path) == pytest.approx((2.0, 0.5, 0.5))
    out = tmp_path / "labels.tif"
    rc = main(["segment", str(path), "-m", "otsu", "--spatial-dims", "3", "--result",
               "instances", "--min-object-size", "10", "-o", str(out), "-q"])
    assert rc == 0
    assert "spacing from the file's metadata: (2.0, 0.5, 0.5)" in capsys.readouterr().out
    labels = tifffile.imread(out)
    assert labels.shape == vol.shape and int(labels.max()) == 4


def test_napari_volume_mode_round_trip():
    from napari.components import ViewerModel

    from napari_useg.viewer.segment_job import make_job, run_on_layer

    vol, truth = blob_volume()
    viewer = ViewerModel()
    viewer.add_image(vol, name="vol", scale=SPACING)
    out = run_on_layer(viewer, "vol", "otsu", spatial_dims=3)
    assert out.data.shape == vol.shape and out.data.ndim == 3
    assert tuple(out.scale) == SPACING
    meta = out.metadata["napari_useg"]
    assert meta["mode"] == "volume" and meta["spacing"] == list(SPACING)
    assert meta["n_slices"] == 1
    assert instance_scores(out.data - 1, truth).f1_50 == 1.0
    job = make_job(viewer.layers["vol"], "kmeans", spatial_dims=3, n_clusters=2)
    assert job.options.spacing == SPACING and job.source.n_slices == 1
    with pytest.raises(ValueError, match="2-D images only"):
        make_job(viewer.layers["vol"], "felzenszwalb", spatial_dims=3)
    flat = viewer.add_image(vol[0], name="flat")
    with pytest.raises(ValueError, match="volume mode needs"):
        make_job(flat, "otsu", spatial_dims=3)


def test_segment_widget_offers_volume_mode(make_napari_viewer):
    pytest.importorskip("qtpy")
    vol, _ = blob_volume(shape=(8, 24, 24))
    viewer = make_napari_viewer()
    viewer.add_image(vol, name="vol", scale=(2.0, 1.0, 1.0))
    _, widget = viewer.window.add_plugin_dock_widget("napari-useg", "Unsupervised segmentation")
    assert widget.mode.value == 2 and list(widget.mode.choices) == [2, 3]
    widget.method.value = "otsu"
    assert widget.make_job().source.n_slices == 8
    assert widget.reading.value.startswith("8 slices (8) of 24x24")
    widget.mode.value = 3
    job = widget.make_job()
    assert job.source.n_slices == 1 and job.options.spacing == (2.0, 1.0, 1.0)
    assert widget.reading.value == "one 8x24x24 volume, 1 channel"  # what Run will do
    assert not widget.estimate.visible  # the 2-D rates do not apply to a volume


def test_focused_patches_find_a_rare_object():
    """One small bright cube in a large dark volume: a uniform random patch rarely touches
    it; a focused patch (the supervoxel that stands out) holds it most of the time."""
    vol = np.zeros((20, 60, 60, 1), np.float32)
    vol[8:12, 30:36, 30:36] = 1.0
    sp = (np.arange(20)[:, None, None] // 4) * 144 + (np.arange(60)[None, :, None] // 5) * 12 \
        + np.arange(60)[None, None, :] // 5  # 5x12x12 boxes of 4x5x5 voxels
    sp = sp.astype(np.int64)
    n = int(sp.max()) + 1
    centroids, prob = supervoxel_focus(vol, sp, n)
    assert centroids.shape == (n, 3) and np.isclose(prob.sum(), 1.0)
    np.testing.assert_allclose(centroids[0], [1.5, 2.0, 2.0])
    bright = np.unique(sp[8:12, 30:36, 30:36])
    assert prob[bright].sum() > 0.99
    rng = np.random.default_rng(0)
    patch = (6, 12, 12)
    hits_focused = hits_random = 0
    for _ in range(200):
        crop = focused_patch(vol.shape[:3], patch, centroids[rng.choice(n, p=prob)], rng)
        assert all(s.start >= 0 and s.stop <= m for s, m in zip(crop, vol.shape[:3], strict=True))
        assert tuple(s.stop - s.start for s in crop) == patch
        hits_focused += vol[crop].max() > 0
        hits_random += vol[random_patch(vol.shape[:3], patch, rng)].max() > 0
    assert hits_focused > 190 and hits_random < 100


def test_focused_training_is_reproducible():
    """The volume preset draws focused patches: same seed, same labels; another seed
    draws other patches."""
    vol, _ = blob_volume()
    assert get_method("kanezaki").build("volume").patch_focus == 1.0
    a = segment(vol, "kanezaki", spatial_dims=3, spacing=SPACING, max_iter=5, seed=1)
    b = segment(vol, "kanezaki", spatial_dims=3, spacing=SPACING, max_iter=5, seed=1)
    np.testing.assert_array_equal(a, b)
    c = segment(vol, "kanezaki", spatial_dims=3, spacing=SPACING, max_iter=5, seed=1,
                patch_focus=0.0)
    assert c.shape == a.shape
