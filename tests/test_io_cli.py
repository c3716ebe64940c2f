"""File output and the command line: atomic writes, no silent overwrite, round trips."""

from __future__ import annotations

import json
import os

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile

from napari_useg.cli import main
from napari_useg.io import atomic_write, read_image, write_labels
from synthetic import three_regions


@pytest.fixture
def png(tmp_path):
    img, _ = three_regions((40, 48))
    p = tmp_path / "img.png"
    iio.imwrite(p, img)
    return p


def test_write_labels_round_trip_and_no_overwrite(tmp_path):
    lab = np.arange(12, dtype=np.int32).reshape(3, 4) + 1
    out = write_labels(tmp_path / "l.tif", lab, metadata={"method": "x"})
    np.testing.assert_array_equal(tifffile.imread(out), lab)
    assert json.loads(tifffile.TiffFile(out).pages[0].description)["method"] == "x"
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # readable like any new file
    with pytest.raises(FileExistsError, match="overwrite"):
        write_labels(out, lab * 2)
    np.testing.assert_array_equal(tifffile.imread(out), lab)  # untouched
    write_labels(out, lab * 2, overwrite=True)
    np.testing.assert_array_equal(tifffile.imread(out), lab * 2)


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    dest = tmp_path / "x.bin"
    with pytest.raises(RuntimeError), atomic_write(dest) as tmp:
        tmp.write_bytes(b"partial")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_read_image_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_image(tmp_path / "missing.png")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(ValueError, match="bad.png"):
        read_image(bad)


def test_cli_segment_round_trip(png, tmp_path, capsys):
    out, ov = tmp_path / "labels.tif", tmp_path / "overlay.png"
    rc = main(["segment", str(png), "--method", "kmeans", "--n-clusters", "3", "--window", "1",
               "-o", str(out), "--overlay", str(ov), "--quiet"])
    assert rc == 0
    labels = tifffile.imread(out)
    assert labels.shape == (40, 48) and labels.max() == 3
    meta = json.loads(tifffile.TiffFile(out).pages[0].description)
    assert meta["method"] == "kmeans" and meta["params"]["n_clusters"] == 3
    assert meta["seed"] == 0 and "runtime_s" in meta
    assert iio.imread(ov).shape == (40, 48, 3)
    # refuses to overwrite, leaves the file alone, and says how to allow it
    rc = main(["segment", str(png), "--method", "kmeans", "-o", str(out), "--quiet"])
    assert rc == 2 and "--overwrite" in capsys.readouterr().err
    np.testing.assert_array_equal(tifffile.imread(out), labels)
    assert main(["segment", str(png), "--method", "kmeans", "--n-clusters", "2", "-o", str(out),
                 "--overwrite", "--quiet"]) == 0
    assert tifffile.imread(out).max() == 2


def test_cli_kanezaki_with_progress(png, tmp_path, capsys):
    out = tmp_path / "k.tif"
    rc = main(["segment", str(png), "-o", str(out), "--max-iter", "3", "--n-features", "8",
               "--n-clusters", "8", "--seed", "1", "--device", "cpu"])
    assert rc == 0
    captured = capsys.readouterr()
    assert "kanezaki" in captured.err  # the progress bar
    assert "wrote" in captured.out
    assert tifffile.imread(out).shape == (40, 48)


def test_cli_bad_parameter_is_one_line_error(png, tmp_path, capsys):
    rc = main(["segment", str(png), "--max-iter", "-4", "-o", str(tmp_path / "x.tif")])
    err = capsys.readouterr().err
    assert rc == 2 and "max_iter" in err and "Traceback" not in err
    assert not (tmp_path / "x.tif").exists()


def test_cli_methods_lists_parameters(capsys):
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    assert "kanezaki" in out and "--n-superpixels" in out and "paper=" not in out.split()[0]
    assert main(["methods", "kanezaki", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)["kanezaki"]
    assert info["presets"]["paper"]["n_features"] == 100
    assert info["default_preset"] == "fast"


def test_cli_sample(tmp_path):
    out = tmp_path / "s.tif"
    assert main(["segment", "--sample", "--method", "slic", "-o", str(out), "--quiet"]) == 0
    assert tifffile.imread(out).shape == (300, 451)


def test_cli_segment_writes_ucm(tmp_path):
    from napari_useg.io.bsds import read_ucm2
    from napari_useg.metrics.bsds import ucm2_regions

    out = tmp_path / "s.tif"
    ucm = tmp_path / "s.mat"
    assert main(["segment", "--sample", "--method", "felzenszwalb", "-o", str(out), "--ucm",
                 str(ucm), "--quiet"]) == 0
    u = read_ucm2(ucm)
    assert u.shape == (601, 903)
    labels = tifffile.imread(out)
    # the default cut of Felzenszwalb's hierarchy is its own (connected) regions
    assert ucm2_regions(u, 0.0).max() >= labels.max()
    assert ucm2_regions(u, 1.0).max() == 1
