"""User files: never replaced without overwrite, never an input, always written atomically."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import tifffile

from napari_useg import fit, load_model
from napari_useg.cli import main
from napari_useg.core.atomic import atomic_folder, atomic_write, check_output
from napari_useg.core.model import is_model_folder
from napari_useg.io import read_image, write_labels


@pytest.fixture(scope="module")
def model():
    imgs = np.random.default_rng(0).integers(0, 255, (2, 32, 32), np.uint8)
    return fit(imgs, "iic", preset="fast", steps=1, input_size=16, batch_size=2)


def test_model_save_refuses_to_replace_a_folder_that_is_not_a_model(tmp_path, model):
    notes = tmp_path / "project"
    notes.mkdir()
    (notes / "notes.txt").write_text("precious")
    with pytest.raises(ValueError, match="not a model folder"):
        model.save(notes, overwrite=True)
    assert (notes / "notes.txt").read_text() == "precious"


def test_model_save_replaces_a_model_folder_only_when_it_holds_nothing_else(tmp_path, model):
    d = model.save(tmp_path / "m")
    assert is_model_folder(d)
    model.save(d, overwrite=True)  # a model folder: replaced
    (d / "mine.txt").write_text("x")
    with pytest.raises(ValueError, match="not a model folder"):
        model.save(d, overwrite=True)
    assert (d / "mine.txt").exists()
    assert oct(d.stat().st_mode & 0o777) != oct(0o700)  # a normal folder, not mkdtemp's 0700


def test_fit_cli_refuses_an_output_that_holds_or_is_an_input(tmp_path, capsys):
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for i in range(2):
        tifffile.imwrite(imgs / f"a{i}.tif", np.random.default_rng(i).integers(0, 255, (32, 32),
                                                                                np.uint8))
    for out in (imgs, tmp_path):
        rc = main(["fit", str(imgs), "--out", str(out), "--overwrite", "--steps", "1",
                   "--input-size", "16", "--batch-size", "2", "-q"])
        assert rc == 2
        assert "input" in capsys.readouterr().err
    assert sorted(p.name for p in imgs.iterdir()) == ["a0.tif", "a1.tif"]


def test_fit_cli_overwrite_never_deletes_a_folder_that_is_not_a_model(tmp_path, capsys):
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for i in range(2):
        tifffile.imwrite(imgs / f"a{i}.tif", np.random.default_rng(i).integers(0, 255, (32, 32),
                                                                                np.uint8))
    project = tmp_path / "project"
    project.mkdir()
    (project / "notes.txt").write_text("precious")
    rc = main(["fit", str(imgs), "--out", str(project), "--overwrite", "--steps", "1",
               "--input-size", "16", "--batch-size", "2", "-q"])
    err = capsys.readouterr().err
    assert rc == 2 and "not a model folder" in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in project.iterdir()) == ["notes.txt"]


def test_predict_cli_refuses_nan_weights_in_one_sentence(tmp_path, model, capsys):
    import torch

    d = model.save(tmp_path / "nan")
    state = torch.load(d / "weights.pt", weights_only=True)
    k = next(k for k, v in state.items() if v.is_floating_point())
    state[k] = torch.full_like(state[k], float("nan"))
    torch.save(state, d / "weights.pt")
    img = tmp_path / "img.tif"
    tifffile.imwrite(img, np.zeros((32, 32), np.uint8))
    out = tmp_path / "o.tif"
    rc = main(["predict", str(img), "--model", str(d), "-o", str(out), "-q"])
    err = capsys.readouterr().err
    assert rc == 2 and "NaN or infinite" in err and "Traceback" not in err
    assert not out.exists()


def test_segment_cli_never_writes_over_its_input(tmp_path, capsys):
    src = tmp_path / "x.tif"
    img = np.random.default_rng(0).integers(0, 255, (16, 16), np.uint8)
    tifffile.imwrite(src, img)
    rc = main(["segment", str(src), "-o", str(src), "--overwrite", "-m", "kmeans", "-q"])
    assert rc == 2 and "input" in capsys.readouterr().err
    np.testing.assert_array_equal(read_image(src), img)


@pytest.mark.parametrize("name,content", [("empty.png", b""), ("text.png", b"not an image")])
def test_unreadable_images_get_one_line_naming_the_file(tmp_path, capsys, name, content):
    src = tmp_path / name
    src.write_bytes(content)
    rc = main(["segment", str(src), "-o", str(tmp_path / "o.tif"), "-m", "kmeans", "-q"])
    err = capsys.readouterr().err
    assert rc == 2 and f"could not read {src}" in err
    assert ("empty (0 bytes)" in err) == (not content)
    assert len(err.strip().splitlines()) == 1 and "pip install" not in err
    assert not (tmp_path / "o.tif").exists()


def test_segment_cli_checks_every_output_before_computing(tmp_path, capsys):
    src = tmp_path / "x.tif"
    tifffile.imwrite(src, np.zeros((16, 16), np.uint8))
    out = tmp_path / "labels.tif"
    rc = main(["segment", str(src), "-o", str(out), "--overlay", str(tmp_path / "no" / "o.png"),
               "-m", "kmeans", "-q"])
    assert rc == 2 and "does not exist" in capsys.readouterr().err
    assert not out.exists()  # nothing written before the overlay's folder was found missing
    rc = main(["segment", str(src), "-o", str(tmp_path), "--overwrite", "-m", "kmeans", "-q"])
    assert rc == 2 and "is a folder" in capsys.readouterr().err


def test_write_labels_never_wraps_or_truncates(tmp_path):
    with pytest.raises(ValueError, match=">= 0"):
        write_labels(tmp_path / "neg.tif", np.array([[-1, 2]]))
    big = np.array([[1, 2**32 + 5]], np.int64)
    np.testing.assert_array_equal(read_image(write_labels(tmp_path / "big.tif", big)), big)
    assert not (tmp_path / "neg.tif").exists()


def test_write_labels_writes_the_format_its_suffix_names(tmp_path):
    lab = np.arange(16, dtype=np.int32).reshape(4, 4)
    png = write_labels(tmp_path / "l.png", lab)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    np.testing.assert_array_equal(read_image(png), lab)
    np.testing.assert_array_equal(np.load(write_labels(tmp_path / "l.npy", lab)), lab)
    with pytest.raises(ValueError, match="unsupported file type"):
        write_labels(tmp_path / "l.jpg", lab)
    with pytest.raises(ValueError, match="16-bit PNG"):
        write_labels(tmp_path / "big.png", lab + 70_000)


def test_check_output_rules(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(FileExistsError):
        check_output(tmp_path / "f")
    with pytest.raises(IsADirectoryError):
        check_output(tmp_path, overwrite=True)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        check_output(tmp_path / "no" / "f")
    with pytest.raises(ValueError, match="input"):
        check_output(tmp_path, overwrite=True, inputs=[tmp_path / "f"], folder=True)


def test_a_killed_writers_temporaries_are_cleaned_on_the_next_write(tmp_path):
    dest = tmp_path / "labels.tif"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".labels.tif.useg-{dead.pid}-abc.tif"
    stale.write_text("half")
    alive = tmp_path / f".labels.tif.useg-{os.getpid()}-abc.tif"
    alive.write_text("someone writing now")
    other = tmp_path / ".labels.tif.user-file"
    other.write_text("not ours")
    with atomic_write(dest) as tmp:
        tmp.write_text("new")
    assert dest.read_text() == "new"
    assert not stale.exists() and alive.exists() and other.exists()


def test_a_failed_block_leaves_the_old_content(tmp_path):
    dest = tmp_path / "f.txt"
    dest.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(dest, overwrite=True) as tmp:
        tmp.write_text("half")
        raise RuntimeError
    assert dest.read_text() == "old"
    d = tmp_path / "d"
    d.mkdir()
    (d / "a").write_text("old")
    with pytest.raises(RuntimeError), atomic_folder(d, overwrite=True) as tmp:
        (tmp / "a").write_text("half")
        raise RuntimeError
    assert (d / "a").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "f.txt"]


_WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from napari_useg.core.atomic import atomic_folder, atomic_write
    root = Path(sys.argv[1])
    print("ready", flush=True)
    i = 0
    while True:
        text = ("A" if i % 2 else "B") * 200_000
        with atomic_write(root / "f.txt", overwrite=True) as tmp:
            tmp.write_text(text)
        with atomic_folder(root / "d", overwrite=True) as tmp:
            (tmp / "one").write_text(text)
            (tmp / "two").write_text(text)
        i += 1
""")


def test_kill_at_any_moment_leaves_old_or_new_content(tmp_path):
    (tmp_path / "f.txt").write_text("B" * 200_000)
    (tmp_path / "d").mkdir()
    for name in ("one", "two"):
        (tmp_path / "d" / name).write_text("B" * 200_000)
    rng = np.random.default_rng(0)
    for _ in range(4):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path)],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(float(rng.uniform(0.05, 0.4)))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        f = (tmp_path / "f.txt").read_text()
        assert f in ("A" * 200_000, "B" * 200_000)
        one, two = ((tmp_path / "d" / n).read_text() for n in ("one", "two"))
        assert one == two and one in ("A" * 200_000, "B" * 200_000)


def test_damaged_or_foreign_models_get_one_clear_sentence(tmp_path, model, capsys):
    good = model.save(tmp_path / "good")
    img = tmp_path / "img.tif"
    tifffile.imwrite(img, np.zeros((32, 32), np.uint8))

    def predict(d):
        rc = main(["predict", str(img), "--model", str(d), "-o", str(tmp_path / "o.tif"), "-q"])
        err = capsys.readouterr().err
        assert rc == 2, err
        assert "Traceback" not in err and "weights_only" not in err
        return err

    cases = {
        "truncated": lambda d: (d / "weights.pt").write_bytes(
            (good / "weights.pt").read_bytes()[:100]),
        "foreign": lambda d: (d / "weights.pt").write_bytes(b"PK\x03\x04 not a model"),
        "pickle": lambda d: (d / "weights.pt").write_bytes(b"\x80\x04K\x01."),
    }
    for name, damage in cases.items():
        d = model.save(tmp_path / name)
        damage(d)
        assert "weights" in predict(d)
    d = model.save(tmp_path / "nokey")
    cfg = json.loads((d / "config.json").read_text())
    del cfg["method"]
    (d / "config.json").write_text(json.dumps(cfg))
    assert "lacks the key(s) ['method']" in predict(d)


def test_nan_weights_or_tampered_normalisation_are_refused(tmp_path, model):
    import torch

    d = model.save(tmp_path / "nan")
    state = torch.load(d / "weights.pt", weights_only=True)
    k = next(k for k, v in state.items() if v.is_floating_point())
    state[k] = torch.full_like(state[k], float("nan"))
    torch.save(state, d / "weights.pt")
    with pytest.raises(ValueError, match="NaN or infinite"):
        load_model(d)
    d = model.save(tmp_path / "norm")
    cfg = json.loads((d / "config.json").read_text())
    cfg["normalisation"] = {"mode": "dataset", "lo": [float("nan")], "hi": [1.0],
                            "dtype": "uint8"}
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="not finite"):
        load_model(d)


# ---------------------------------------------------------------------------- batch outputs


def _batch_inputs(folder):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        tifffile.imwrite(folder / f"{name}.tif", rng.integers(0, 255, (16, 16), np.uint8))
    return folder


_KM = ["-m", "kmeans", "--n-clusters", "2", "--window", "1", "-q"]


def test_batch_refuses_to_replace_a_file_it_did_not_write(tmp_path, capsys):
    imgs = _batch_inputs(tmp_path / "imgs")
    out = tmp_path / "out"
    out.mkdir()
    (out / "a_labels.tif").write_text("precious")
    rc = main(["batch", str(imgs), "--out", str(out), *_KM])
    err = capsys.readouterr().err
    assert rc == 2 and "a_labels.tif" in err and "not written by napari-useg" in err
    assert len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in out.iterdir()) == ["a_labels.tif"]
    assert (out / "a_labels.tif").read_text() == "precious"
    # labels written by another command of the package (segment, predict) are the user's
    (out / "a_labels.tif").unlink()
    write_labels(out / "a_labels.tif", np.ones((16, 16), np.uint8),
                 metadata={"method": "kmeans", "source": str(imgs / "a.tif")})
    assert main(["batch", str(imgs), "--out", str(out), *_KM]) == 2
    assert "a_labels.tif" in capsys.readouterr().err
    # a record-named JSON that is not ours, and a foreign summary: the same
    (out / "a_labels.tif").unlink()
    for name in ("b_labels.json", "batch_summary.json"):
        (out / name).write_text('{"mine": true}')
        assert main(["batch", str(imgs), "--out", str(out), *_KM]) == 2
        assert name in capsys.readouterr().err
        (out / name).unlink()
    # a foreign zarr-named folder is someone's too, and so is one named like a zarr
    # array being written
    for name in ("a_labels.zarr", "a_labels.zarr.partial"):
        (out / name).mkdir()
        (out / name / "data").write_text("mine")
        assert main(["batch", str(imgs), "--out", str(out), *_KM]) == 2
        assert name in capsys.readouterr().err
        assert (out / name / "data").read_text() == "mine"
        (out / name / "data").unlink()
        (out / name).rmdir()


def test_batch_overwrite_replaces_a_foreign_file_and_keeps_its_own(tmp_path):
    from distributed import Client

    from napari_useg import batch

    imgs = _batch_inputs(tmp_path / "imgs")
    out = tmp_path / "out"
    out.mkdir()
    (out / "a_labels.tif").write_text("not ours")
    kw = {"method": "kmeans", "out_dir": out, "n_clusters": 2, "window": 1}
    with Client(processes=False, n_workers=1, threads_per_worker=1,
                dashboard_address=":0") as client:
        with pytest.raises(FileExistsError, match="a_labels.tif"):
            batch.run(imgs, client=client, **kw)
        s = batch.run(imgs, client=client, overwrite=True, **kw)
        assert s.succeeded == 2
        assert read_image(out / "a_labels.tif").shape == (16, 16)
        # its own outputs are recognised: a rerun keeps them, no --overwrite needed
        assert batch.run(imgs, client=client, **kw).skipped == 2
        # a cut-short record beside labels of ours is rebuilt, not refused
        (out / "a_labels.json").write_text('{"format": 1, "sta')
        s = batch.run(imgs, client=client, **kw)
        assert (s.succeeded, s.skipped) == (1, 1)
    # reading from the output folder: its own labels are not inputs
    with pytest.raises(ValueError, match="no input images besides the outputs"):
        batch.run(out, **kw)


def test_batch_never_writes_over_an_input_in_the_same_folder(tmp_path, capsys):
    imgs = _batch_inputs(tmp_path / "imgs")
    mine = np.full((16, 16), 7, np.uint8)
    tifffile.imwrite(imgs / "a_labels.tif", mine)  # the user's image, named like an output
    for extra in ([], ["--overwrite"]):
        rc = main(["batch", str(imgs), "--out", str(imgs), *_KM, *extra])
        err = capsys.readouterr().err
        assert rc == 2 and "a_labels.tif" in err and "would replace an input" in err
    np.testing.assert_array_equal(read_image(imgs / "a_labels.tif"), mine)
    assert sorted(p.name for p in imgs.iterdir()) == ["a.tif", "a_labels.tif", "b.tif"]
