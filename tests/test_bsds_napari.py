"""The BSDS .mat reader and writer through napari (``viewer.open``, ``layer.save``)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io as sio

from napari_useg.io.bsds import read_bsds_gt, write_bsds_gt
from napari_useg.viewer.bsds_layers import bsds_layer_data, get_bsds_reader, write_bsds

pytest.importorskip("qtpy")


def _gt_file(tmp_path):
    a = np.ones((12, 16), np.uint16)
    a[:, 8:] = 2
    b = np.ones((12, 16), np.uint16)
    b[6:] = 3
    return write_bsds_gt(tmp_path / "3096.mat", [a, b]), [a, b]


def test_reader_declines_other_mat_files(tmp_path):
    sio.savemat(tmp_path / "weights.mat", {"w": np.ones((3, 3))})
    assert get_bsds_reader(str(tmp_path / "weights.mat")) is None
    (tmp_path / "junk.mat").write_bytes(b"garbage")
    assert get_bsds_reader(str(tmp_path / "junk.mat")) is None
    assert get_bsds_reader(str(tmp_path / "image.png")) is None
    p, _ = _gt_file(tmp_path)
    assert callable(get_bsds_reader(str(p)))
    assert callable(get_bsds_reader([str(p)]))
    assert get_bsds_reader([str(p), str(tmp_path / "weights.mat")]) is None


def test_layer_data_options(tmp_path):
    p, maps = _gt_file(tmp_path)
    per = bsds_layer_data(p, boundaries=True)
    assert [m["name"] for _, m, _ in per] == ["3096 annotator 1", "3096 annotator 2",
                                              "3096 annotator 1 boundaries",
                                              "3096 annotator 2 boundaries"]
    stacked = bsds_layer_data(p, stacked=True)
    assert len(stacked) == 1 and stacked[0][0].shape == (2, 12, 16)


def test_viewer_open_one_layer_per_annotator(make_napari_viewer, tmp_path):
    p, maps = _gt_file(tmp_path)
    viewer = make_napari_viewer()
    layers = viewer.open(str(p), plugin="napari-useg")
    assert [lay.name for lay in layers] == ["3096 annotator 1", "3096 annotator 2"]
    assert all(type(lay).__name__ == "Labels" for lay in layers)
    for lay, m in zip(layers, maps, strict=True):
        assert np.array_equal(lay.data, m)


def test_viewer_open_stacked_with_boundaries(make_napari_viewer, tmp_path):
    p, maps = _gt_file(tmp_path)
    viewer = make_napari_viewer()
    layers = viewer.open([str(p)], stack=True, plugin="napari-useg")
    assert [lay.name for lay in layers] == ["3096 annotators", "3096 boundaries"]
    assert layers[0].data.shape == (2, 12, 16)
    assert np.array_equal(layers[1].data.astype(bool), np.stack(read_bsds_gt(p).boundaries))


def test_layer_save_round_trip(make_napari_viewer, tmp_path):
    p, maps = _gt_file(tmp_path)
    viewer = make_napari_viewer()
    layers = viewer.open(str(p), plugin="napari-useg")
    out = tmp_path / "saved.mat"
    layers[0].save(str(out), plugin="napari-useg")
    back = read_bsds_gt(out)
    assert back.n_annotators == 1 and np.array_equal(back.segmentations[0], maps[0])
    # several layers: one annotator each, in layer order
    both = tmp_path / "both.mat"
    viewer.layers.selection = set(layers)
    viewer.layers.save(str(both), selected=True, plugin="napari-useg")
    back = read_bsds_gt(both)
    assert back.n_annotators == 2
    assert all(np.array_equal(a, b) for a, b in zip(back.segmentations, maps, strict=True))


def test_writer_renumbers_napari_background(tmp_path):
    lab = np.zeros((6, 6), np.int32)
    lab[2:, 2:] = 5
    (path,) = write_bsds(str(tmp_path / "bg.mat"), [(lab, {"name": "x"}, "labels")])
    seg = read_bsds_gt(path).segmentations[0]
    assert seg.min() == 1 and len(np.unique(seg)) == 2
    with pytest.raises(TypeError, match="Labels"):
        write_bsds(str(tmp_path / "img.mat"), [(lab, {"name": "im"}, "image")])
