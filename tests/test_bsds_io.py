"""BSDS500 .mat reading and writing: round trips, the official structure, malformed files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io as sio

from napari_useg.io.bsds import (
    BSDSFormatError,
    is_bsds_gt,
    mat_version,
    read_bsds_gt,
    read_segs,
    read_ucm2,
    write_bsds_gt,
    write_segs,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
GT_FILE = SHARED / "bsds500" / "bench" / "groundTruth" / "2018.mat"
needs_shared = pytest.mark.skipif(not GT_FILE.is_file(),
                                  reason=f"BSDS500 ground truth not found at {GT_FILE}")


def _maps():
    a = np.ones((12, 16), np.uint16)
    a[:, 8:] = 2
    a[4:8, 2:6] = 3
    b = np.ones((12, 16), np.uint16)
    b[6:, :] = 2
    return [a, b]


def test_round_trip_exact(tmp_path):
    maps = _maps()
    p = write_bsds_gt(tmp_path / "x.mat", maps)
    gt = read_bsds_gt(p)
    assert gt.n_annotators == 2 and gt.shape == (12, 16) and gt.image_id == "x"
    for a, b in zip(maps, gt.segmentations, strict=True):
        assert b.dtype == np.uint16 and np.array_equal(a, b)
    # write what was read: identical again (segmentations and boundaries)
    q = write_bsds_gt(tmp_path / "y.mat", gt.segmentations, boundaries=gt.boundaries)
    gt2 = read_bsds_gt(q)
    for x, y in zip(gt.boundaries + gt.segmentations, gt2.boundaries + gt2.segmentations,
                    strict=True):
        assert np.array_equal(x, y)


def test_written_structure_is_the_official_one(tmp_path):
    p = write_bsds_gt(tmp_path / "x.mat", _maps())
    assert sio.whosmat(p) == [("groundTruth", (1, 2), "cell")]
    assert mat_version(p) == "v5"
    raw = sio.loadmat(p)["groundTruth"]
    assert raw.shape == (1, 2) and raw.dtype == object
    s = raw[0, 0]
    assert s.shape == (1, 1) and set(s.dtype.names) == {"Segmentation", "Boundaries"}
    assert s["Segmentation"][0, 0].dtype == np.uint16
    assert s["Boundaries"][0, 0].dtype == np.uint8  # MATLAB logical, as scipy reads it
    # logical arrays are written as MATLAB logicals
    sio.savemat(tmp_path / "flag.mat", {"b": read_bsds_gt(p).boundaries[0]})
    assert sio.whosmat(tmp_path / "flag.mat")[0][2] == "logical"


@needs_shared
def test_official_file_round_trip(tmp_path):
    gt = read_bsds_gt(GT_FILE)
    assert gt.n_annotators == 5 and gt.shape == (481, 321)
    p = write_bsds_gt(tmp_path / "2018.mat", gt.segmentations)  # boundaries derived
    back = read_bsds_gt(p)
    for a, b in zip(gt.boundaries, back.boundaries, strict=True):
        assert np.array_equal(a, b)  # derived exactly as the dataset's own
    ref = sio.loadmat(GT_FILE)["groundTruth"]
    ours = sio.loadmat(p)["groundTruth"]
    assert ref.shape == ours.shape and ref[0, 0].dtype == ours[0, 0].dtype
    for k in range(ref.shape[1]):
        for f in ("Segmentation", "Boundaries"):
            x, y = ref[0, k][f][0, 0], ours[0, k][f][0, 0]
            assert x.dtype == y.dtype and np.array_equal(x, y)


def test_overwrite_and_atomicity(tmp_path):
    p = tmp_path / "x.mat"
    write_bsds_gt(p, _maps())
    before = p.read_bytes()
    with pytest.raises(FileExistsError, match="exists"):
        write_bsds_gt(p, _maps()[:1])
    assert p.read_bytes() == before
    write_bsds_gt(p, _maps()[:1], overwrite=True)
    assert read_bsds_gt(p).n_annotators == 1
    # bad input raises before anything is written
    with pytest.raises(ValueError, match="labels"):
        write_bsds_gt(tmp_path / "zero.mat", [np.zeros((4, 4), int)])
    with pytest.raises(TypeError, match="integer"):
        write_bsds_gt(tmp_path / "float.mat", [np.zeros((4, 4))])
    with pytest.raises(ValueError, match=r"\.mat"):
        write_bsds_gt(tmp_path / "x.txt", _maps())
    assert sorted(f.name for f in tmp_path.iterdir()) == ["x.mat"]
    # relabel renumbers napari-style maps (0 = background) to 1..n
    z = np.zeros((4, 4), int)
    z[2:, 2:] = 7
    write_bsds_gt(tmp_path / "zero.mat", [z], relabel=True)
    assert read_bsds_gt(tmp_path / "zero.mat").segmentations[0].tolist() == (
        np.where(z == 7, 2, 1)).tolist()


def test_segs_round_trip(tmp_path):
    maps = _maps()
    p = write_segs(tmp_path / "s.mat", maps)
    back = read_segs(p)
    assert len(back) == 2 and all(np.array_equal(a, b) for a, b in zip(maps, back, strict=True))
    assert sio.whosmat(p) == [("segs", (1, 2), "cell")]
    with pytest.raises(BSDSFormatError, match="no 'segs'"):
        read_segs(write_bsds_gt(tmp_path / "gt.mat", maps))


def test_ucm2(tmp_path):
    sio.savemat(tmp_path / "u.mat", {"ucm2": np.zeros((7, 9))})
    assert read_ucm2(tmp_path / "u.mat").shape == (7, 9)
    sio.savemat(tmp_path / "bad.mat", {"ucm2": np.zeros((6, 9))})
    with pytest.raises(BSDSFormatError, match="odd shape"):
        read_ucm2(tmp_path / "bad.mat")


def _struct_cell(fields: dict) -> np.ndarray:
    names = list(fields)
    st = np.empty((1, 1), dtype=[(n, object) for n in names])
    for n, v in fields.items():
        st[0, 0][n] = v
    cell = np.empty((1, 1), dtype=object)
    cell[0, 0] = st
    return cell


@pytest.mark.parametrize("variables,message", [
    ({"other": np.ones((2, 2))}, "no 'groundTruth' variable"),
    ({"groundTruth": np.ones((2, 2))}, "must be a cell"),
    ({"groundTruth": _struct_cell({"Segmentation": np.ones((3, 3), np.uint16)})},
     "no field 'Boundaries'"),
    ({"groundTruth": _struct_cell({"Segmentation": np.ones((3, 3), np.uint16),
                                   "Boundaries": np.zeros((3, 4), bool)})},
     "Boundaries has shape"),
    ({"groundTruth": _struct_cell({"Segmentation": np.full((3, 3), 1.5),
                                   "Boundaries": np.zeros((3, 3), bool)})},
     "integer labels"),
    ({"groundTruth": _struct_cell({"Segmentation": np.ones((2, 3, 4), np.uint16),
                                   "Boundaries": np.zeros((2, 3, 4), bool)})},
     "Segmentation must be a 2-D"),
])
def test_malformed_files_name_file_and_problem(tmp_path, variables, message):
    p = tmp_path / "bad.mat"
    sio.savemat(p, variables)
    with pytest.raises(BSDSFormatError, match=message) as info:
        read_bsds_gt(p)
    assert str(p) in str(info.value)
    assert not is_bsds_gt(p)


def test_hdf5_and_non_mat_files(tmp_path):
    # a MATLAB v7.3 file: 512-byte text header, then an HDF5 superblock
    h5 = tmp_path / "v73.mat"
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5"
    h5.write_bytes(header.ljust(512, b" ") + b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    assert mat_version(h5) == "v7.3"
    with pytest.raises(BSDSFormatError, match="v7.3") as info:
        read_bsds_gt(h5)
    assert str(h5) in str(info.value)
    text = tmp_path / "notes.mat"
    text.write_text("not a matlab file at all " * 10)
    with pytest.raises(BSDSFormatError, match="notes.mat"):
        read_bsds_gt(text)
    assert not is_bsds_gt(text) and not is_bsds_gt(h5)
    assert not is_bsds_gt(tmp_path / "missing.mat")
    with pytest.raises(FileNotFoundError):
        read_bsds_gt(tmp_path / "missing.mat")
