"""Batch segmentation of folders (``napari_useg.batch``, ``napari-useg batch``) on Dask clusters.

One 2-process LocalCluster, started by the engine itself, serves the module
(worker start-up dominates the time); its teardown checks that no worker process
outlives it. The 1-worker comparison uses an in-process single-worker cluster.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import psutil
import pytest
import tifffile

from napari_useg import batch
from napari_useg.batch import outputs, records
from napari_useg.cli import build_parser, main
from napari_useg.cli._params import run_options
from napari_useg.core.options import RunOptions

KM = {"n_clusters": 3, "window": 1, "n_init": 2}


def _spawned_children() -> list[psutil.Process]:
    """Worker processes started from this one (not multiprocessing's resource tracker)."""
    out = []
    for p in psutil.Process().children(recursive=True):
        try:
            if "spawn_main" in " ".join(p.cmdline()):
                out.append(p)
        except psutil.Error:
            pass
    return out


def _assert_no_workers_left(timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while _spawned_children() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _spawned_children(), "worker processes leaked"


def _thread_env():
    return (os.environ.get("OMP_NUM_THREADS"), os.environ.get("OPENBLAS_NUM_THREADS"),
            os.environ.get("MALLOC_TRIM_THRESHOLD_"))


@pytest.fixture(scope="module")
def client2():
    """The engine's own LocalCluster, 2 single-threaded worker processes, for the module."""
    before = {p.pid for p in _spawned_children()}
    with batch.open_client(workers=2, threads_per_worker=1, quiet=True,
                           dashboard=False) as info:
        assert info.local and sorted(info.threads.values()) == [1, 1]
        started = {p.pid for p in _spawned_children()} - before
        assert len(started) == 2  # two worker processes
        env = info.client.run(_thread_env)
        assert all(v == ("1", "1", None) for v in env.values()), env
        yield info.client
    _assert_no_workers_left()


def _scene(k: int, shape=(24, 32)) -> np.ndarray:
    h, w = shape
    gt = np.ones(shape, np.int64)
    gt[:, w // 2 + k:] = 2
    gt[4:12, 3:10 + k] = 3
    colours = np.array([[0, 0, 0], [200, 40, 40], [40, 160, 60], [40, 60, 200]])
    rng = np.random.default_rng(k)
    return np.clip(colours[gt] + rng.normal(0, 20, (h, w, 3)), 0, 255).astype(np.uint8)


@pytest.fixture
def folder(tmp_path) -> Path:
    """Five small RGB images and one file that is not an image."""
    d = tmp_path / "in"
    d.mkdir()
    for k in range(5):
        iio.imwrite(d / f"img{k}.png", _scene(k))
    (d / "broken.png").write_bytes(b"this is not a PNG file")
    return d


def _labels(out: Path, stem: str) -> np.ndarray:
    return tifffile.imread(out / f"{stem}_labels.tif")


# ---------------------------------------------------------------------------- on a cluster


def test_run_failures_and_resume(client2, folder, tmp_path):
    out = tmp_path / "out"
    s = batch.run(folder, method="kmeans", out_dir=out, client=client2, seed=3, **KM)
    assert (s.succeeded, s.failed, s.skipped) == (5, 1, 0)
    assert s.exit_code == 1 and not s.ok
    bad = [r for r in s.results if r.status == "failed"]
    assert [r.image.name for r in bad] == ["broken.png"]
    assert "could not read" in bad[0].error
    rec = json.loads((out / "broken_labels.json").read_text())
    assert rec["status"] == "error" and rec["error"]["type"] == "ValueError"
    assert not (out / "broken_labels.tif").exists()
    # records describe the labels files and the run
    rec0 = json.loads((out / "img0_labels.json").read_text())
    assert rec0["status"] == "ok" and rec0["config"]["method"] == "kmeans"
    assert rec0["config"]["params"]["n_clusters"] == 3 and rec0["config"]["seed"] == 3
    assert rec0["labels"]["sha256"] == records.file_sha256(out / "img0_labels.tif")
    assert rec0["input"]["size"] == (folder / "img0.png").stat().st_size
    assert rec0["environment"]["worker"] in client2.scheduler_info()["workers"]
    assert rec0["runtime_s"] >= 0 and "napari_useg_version" in rec0["environment"]
    lab0 = _labels(out, "img0")
    assert lab0.shape == (24, 32) and lab0.max() == 3
    summary = json.loads((out / batch.runner.SUMMARY_NAME).read_text())
    assert (summary["succeeded"], summary["failed"], summary["skipped"]) == (5, 1, 0)
    # both workers took part (6 tasks, 2 single-threaded workers)
    workers = {json.loads(p.read_text())["environment"]["worker"]
               for p in out.glob("*_labels.json")}
    assert len(workers) == 2

    before = {k: _labels(out, f"img{k}") for k in range(5)}
    (out / "img1_labels.tif").unlink()  # deleted output
    raw = bytearray((out / "img2_labels.tif").read_bytes())  # corrupted output, same size
    raw[-20:] = bytes(20)
    (out / "img2_labels.tif").write_bytes(bytes(raw))
    (out / "img3_labels.json").write_text('{"format": 1, "status": "o')  # half-written record
    kept = {k: (out / f"img{k}_labels.tif").stat().st_mtime_ns for k in (0, 4)}
    time.sleep(0.05)
    s2 = batch.run(folder, method="kmeans", out_dir=out, client=client2, seed=3, **KM)
    status = {r.image.stem: r.status for r in s2.results}
    assert status == {"broken": "failed", "img0": "skipped", "img1": "succeeded",
                      "img2": "succeeded", "img3": "succeeded", "img4": "skipped"}
    assert (s2.succeeded, s2.failed, s2.skipped) == (3, 1, 2)
    for k in (0, 4):  # trusted outputs were not rewritten
        assert (out / f"img{k}_labels.tif").stat().st_mtime_ns == kept[k]
    for k in range(5):  # recomputed ones are valid again and identical (same seed)
        assert np.array_equal(_labels(out, f"img{k}"), before[k])
        chk = records.check_outputs(folder / f"img{k}.png", out / f"img{k}_labels.tif",
                                    out / f"img{k}_labels.json", s2.config)
        assert chk.state == "complete"


def test_same_labels_with_one_and_two_workers(client2, folder, tmp_path):
    import torch
    from distributed import Client

    from napari_useg.batch import engine

    (folder / "broken.png").unlink()
    # same threads per task in both runs: torch results may differ between thread counts
    a = batch.run(folder, method="kmeans", out_dir=tmp_path / "two", client=client2, seed=7,
                  threads_per_worker=1, **KM)
    saved = torch.get_num_threads()  # the in-process worker sets this process's threads
    try:
        with Client(processes=False, n_workers=1, threads_per_worker=1,
                    dashboard_address=":0") as one_worker:
            b = batch.run(str(folder / "*.png"), method="kmeans", out_dir=tmp_path / "one",
                          client=one_worker, seed=7, threads_per_worker=1, **KM)
    finally:
        torch.set_num_threads(saved)
        engine._THREADS_SET.clear()
    assert a.succeeded == b.succeeded == 5 and a.ok and b.ok
    for k in range(5):
        assert np.array_equal(_labels(tmp_path / "two", f"img{k}"),
                              _labels(tmp_path / "one", f"img{k}"))
    envs = {name: [json.loads(p.read_text())["environment"]
                   for p in (tmp_path / name).glob("*_labels.json")] for name in ("one", "two")}
    assert len({e["worker"] for e in envs["one"]}) == 1
    assert len({e["worker"] for e in envs["two"]}) == 2
    assert {e["threads"] for e in envs["one"] + envs["two"]} == {1}  # recorded for reproduction


def _where_and_which(item, obj):
    from distributed import get_worker

    return get_worker().address, id(obj), obj["size"]


def test_shared_object_is_sent_once_per_worker(client2):
    big = {"size": 123, "payload": np.zeros(1000)}
    outs = batch.map_images(_where_and_which, range(8), client=client2, shared=(big,))
    assert [o.index for o in outs] == list(range(8)) and all(o.ok for o in outs)
    ids: dict[str, set[int]] = {}
    for o in outs:
        addr, oid, size = o.value
        assert size == 123
        ids.setdefault(addr, set()).add(oid)
    assert all(len(v) == 1 for v in ids.values())  # one copy per worker, reused by every task


def _fails_on_odd(item):
    if item % 2:
        raise ValueError(f"odd item {item}")
    return item * 10


def test_engine_captures_errors_in_order(client2):
    outs = batch.map_images(_fails_on_odd, range(5), client=client2)
    assert [o.value for o in outs] == [0, None, 20, None, 40]
    assert [o.ok for o in outs] == [True, False, True, False, True]
    assert outs[1].error == "ValueError: odd item 1"
    assert isinstance(outs[3].exception, ValueError) and "_fails_on_odd" in outs[3].traceback


def test_model_is_loaded_once_and_predicts(client2, tmp_path):
    from napari_useg.core.params import build_params
    from napari_useg.methods.iic import IICModel, IICParams

    # an untrained (randomly initialised) IIC model is enough to check the plumbing
    p = build_params(IICParams, {"width": 0.125, "input_size": 16, "batch_size": 2})
    model = IICModel(p, IICModel.build_net(p, 3, True), n_channels=3, is_rgb=True)
    model.save(tmp_path / "m")
    imgs = [_scene(k, (32, 32)) for k in range(2)]
    d = tmp_path / "in"
    d.mkdir()
    for k, im in enumerate(imgs):
        iio.imwrite(d / f"m{k}.png", im)
    s = batch.run(d, model=tmp_path / "m", out_dir=tmp_path / "out", client=client2,
                  device="cpu")
    assert s.succeeded == 2 and s.ok
    for k, im in enumerate(imgs):
        assert np.array_equal(_labels(tmp_path / "out", f"m{k}"), model.predict(im))
    rec = json.loads((tmp_path / "out" / "m0_labels.json").read_text())
    assert rec["config"]["method"] == "iic" and rec["config"]["model"]["output"] == "main"
    assert rec["config"]["params"]["width"] == 0.125
    with pytest.raises(ValueError, match="trained with"):
        batch.run(d, method="kmeans", model=tmp_path / "m", out_dir=tmp_path / "o2",
                  client=client2)


@pytest.fixture(scope="module")
def over_model(tmp_path_factory):
    """A saved, untrained IIC model whose 24-class ``over`` head gives varied labels."""
    import torch

    from napari_useg.core.params import build_params
    from napari_useg.methods.iic import IICModel, IICParams

    p = build_params(IICParams, {"width": 0.125, "input_size": 16, "batch_size": 2})
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = IICModel(p, IICModel.build_net(p, 3, True), n_channels=3, is_rgb=True)
    path = tmp_path_factory.mktemp("model") / "m"
    model.save(path)
    return model, path


def _ramps(h: int, w: int, dtype=np.uint8, scale: int = 1) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    rgb = np.stack([(yy * 3) % 255, (xx * 3) % 255, ((yy + xx) * 2) % 255], -1)
    return (rgb * scale).astype(dtype)


def test_large_images_one_task_per_tile_into_zarr(client2, over_model, tmp_path):
    """Tiled tasks give exactly Model.predict's whole-image labels, as resumable zarr arrays."""
    import shutil

    import torch
    import zarr

    from napari_useg.io.images import read_image

    model, path = over_model
    d = tmp_path / "in"
    d.mkdir()
    iio.imwrite(d / "png.png", _ramps(70, 90))  # decoded once per worker
    # uint16, per-image percentiles; a tiled TIFF is read window by window (zarr view)
    tifffile.imwrite(d / "tiled.tif", _ramps(75, 66, np.uint16, 13), tile=(16, 16),
                     compression="zlib")
    tifffile.imwrite(d / "raw.tif", _ramps(60, 90)[::-1])  # uncompressed: memory-mapped
    iio.imwrite(d / "small.png", _ramps(30, 30))  # under the threshold: one task, TIFF
    tifffile.imwrite(d / "gray.tif", _ramps(40, 40)[..., 0])  # 1 channel: the model refuses
    out = tmp_path / "out"
    kw = {"model": path, "out_dir": out, "client": client2, "device": "cpu",
          "model_output": "over", "tile_size": 32, "tile_tasks_above": 1000}
    s = batch.run(d, **kw)
    assert (s.succeeded, s.failed) == (4, 1), [r.error for r in s.results]
    gray = json.loads((out / "gray_labels.json").read_text())
    assert gray["status"] == "error" and "channel" in gray["error"]["message"]
    (d / "gray.tif").unlink()
    saved = torch.get_num_threads()
    torch.set_num_threads(1)  # as the workers: scores differ in the last bits between counts
    try:
        refs = {stem: model.predict(read_image(next(d.glob(f"{stem}.*"))), output="over")
                for stem in ("png", "tiled", "raw", "small")}
    finally:
        torch.set_num_threads(saved)
    for stem in ("png", "tiled", "raw"):
        z = zarr.open_array(str(out / f"{stem}_labels.zarr"), mode="r")
        ref = refs[stem]
        assert len(np.unique(ref)) > 3  # labels vary across the tile borders
        assert np.array_equal(z[:], ref) and z.chunks == (32, 32) and z.dtype == np.uint16
        rec = json.loads((out / f"{stem}_labels.json").read_text())
        assert rec["labels"]["format"] == "zarr" and rec["labels"]["file"] == f"{stem}_labels.zarr"
        n_tiles = int(np.ceil(ref.shape[0] / 32) * np.ceil(ref.shape[1] / 32))
        assert rec["tiles"]["tasks"] == n_tiles and rec["tiles"]["margin"] >= 16
        assert rec["labels"]["n_labels"] == ref.max() and rec["environment"]["threads"] == 1
    small = json.loads((out / "small_labels.json").read_text())
    assert small["labels"]["format"] == "tif" and small["tiles"] is None
    assert np.array_equal(_labels(out, "small"), refs["small"])
    assert not list(out.glob("*.partial"))
    # resume: all trusted; then a corrupt chunk, a crash before the rename, a deleted array
    s2 = batch.run(d, **kw)
    assert s2.skipped == 4 and s2.results[0].labels == out / "png_labels.zarr"
    chunk = next(p for p in (out / "png_labels.zarr").rglob("*") if p.is_file()
                 and p.name != "zarr.json")
    chunk.write_bytes(chunk.read_bytes()[:-1] + b"x")
    os.replace(out / "raw_labels.zarr", out / "raw_labels.zarr.partial")
    shutil.rmtree(out / "tiled_labels.zarr")
    s3 = batch.run(d, **kw)
    status = {r.image.stem: r.status for r in s3.results}
    assert status == {"png": "succeeded", "raw": "succeeded", "small": "skipped",
                      "tiled": "succeeded"}
    assert not (out / "raw_labels.zarr.partial").exists()
    for stem in ("png", "raw", "tiled"):
        chk = records.check_outputs(next(d.glob(f"{stem}.*")), out / f"{stem}_labels.zarr",
                                    out / f"{stem}_labels.json", s3.config)
        assert chk.state == "complete"


def test_a_tiled_image_keeps_its_warning_in_the_record_once(client2, over_model, tmp_path):
    """A large image predicted tile by tile: the model's value warning is in its record, once."""
    import napari_useg

    model, path = over_model
    warned = napari_useg.load_model(path)
    warned.training = {"value_range": {"lo": [0, 0, 0], "hi": [255, 255, 255],
                                       "dtype": "uint8"}}
    warned.save(tmp_path / "m")
    d = tmp_path / "in"
    d.mkdir()
    tifffile.imwrite(d / "big.tif", _ramps(60, 70, np.uint16, 13))  # memory-mapped: checked
    out = tmp_path / "out"
    s = batch.run(d, model=tmp_path / "m", out_dir=out, client=client2, device="cpu",
                  model_output="over", tile_size=32, tile_tasks_above=100)
    rec = json.loads((out / "big_labels.json").read_text())
    assert s.succeeded == 1 and rec["tiles"]["tasks"] == 6
    assert len(rec["warnings"]) == 1 and "far outside the training range" in rec["warnings"][0]
    assert f"warning: {d / 'big.tif'}: this iic model" in str(s)


def test_zarr_format_for_a_per_image_method(client2, folder, tmp_path):
    """--format zarr for any method; auto accepts either format; tif replaces with overwrite."""
    import zarr

    import napari_useg

    (folder / "broken.png").unlink()
    out = tmp_path / "z"
    kw = {"method": "kmeans", "out_dir": out, "client": client2, "seed": 2, **KM}
    s = batch.run(str(folder / "img[01].png"), output_format="zarr", tile_size=16, **kw)
    assert s.succeeded == 2
    z = zarr.open_array(str(out / "img0_labels.zarr"), mode="r")
    ref = napari_useg.segment(iio.imread(folder / "img0.png"), "kmeans", seed=2, **KM)
    assert np.array_equal(z[:], ref) and z.chunks == (16, 16)
    assert batch.run(str(folder / "img[01].png"), **kw).skipped == 2  # auto: either format
    with pytest.raises(FileExistsError, match="written as zarr"):
        batch.run(str(folder / "img[01].png"), output_format="tif", **kw)
    s = batch.run(str(folder / "img[01].png"), output_format="tif", overwrite=True, **kw)
    assert s.succeeded == 2 and not (out / "img0_labels.zarr").exists()
    assert np.array_equal(_labels(out, "img0"), ref)
    with pytest.raises(ValueError, match="output_format"):
        batch.run(folder, output_format="png", **kw)
    argv = ["batch", str(folder / "img2.png"), "--method", "kmeans", "--n-clusters", "3",
            "--window", "1", "--n-init", "2", "--seed", "2", "--out", str(out), "--scheduler",
            client2.scheduler.address, "--format", "zarr", "--tile-size", "8", "-q"]
    assert main(argv) == 0
    assert zarr.open_array(str(out / "img2_labels.zarr"), mode="r").chunks == (8, 8)
    with pytest.raises(SystemExit):  # argparse: not a positive integer
        main([*argv[:-5], "--tile-tasks-above", "0", "-q"])


def test_unreachable_scheduler_is_one_line(tmp_path, capsys, monkeypatch, folder):
    from napari_useg.batch import engine

    with pytest.raises(batch.SchedulerUnreachableError, match="127.0.0.1:1") as info:
        with batch.open_client(scheduler="tcp://127.0.0.1:1", connect_timeout=0.5):
            pass
    assert isinstance(info.value, ConnectionError) and isinstance(info.value, ValueError)
    monkeypatch.setattr(engine, "CONNECT_TIMEOUT", 0.5)
    root = tmp_path / "data"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    iio.imwrite(root / "images" / "t0.png", _scene(0))
    iio.imwrite(root / "masks" / "t0.png", (_scene(0)[..., 0] > 120).astype(np.uint8))
    for argv in (["batch", str(folder), "--method", "kmeans", "--out", str(tmp_path / "o")],
                 ["evaluate", "--data", str(root), "--method", "kmeans", "--no-boundary",
                  "--out", str(tmp_path / "e")]):
        assert main([*argv, "--scheduler", "tcp://127.0.0.1:1", "-q"]) == 2
        err = capsys.readouterr().err
        assert "cannot reach the Dask scheduler at tcp://127.0.0.1:1" in err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert main(["batch", str(folder), "--method", "kmeans", "--out", str(tmp_path / "o"),
                 "--scheduler", "no-port", "-q"]) == 2
    assert "bad Dask scheduler address" in capsys.readouterr().err


def test_cli_round_trip(client2, folder, tmp_path, capsys, monkeypatch):
    out = tmp_path / "cli"
    addr = client2.scheduler.address
    # relative paths from another folder than the workers' working directory
    monkeypatch.chdir(tmp_path)
    argv = ["batch", "in", "--method", "kmeans", "--n-clusters", "3", "--window", "1",
            "--out", "cli", "--scheduler", addr, "--seed", "3", "-q"]
    assert main(argv) == 1  # broken.png failed
    rec = json.loads((out / "img0_labels.json").read_text())
    assert rec["environment"]["threads"] == 1  # host cores // task slots on the host
    text = capsys.readouterr()
    assert "5 succeeded, 1 failed, 0 skipped" in text.out and "broken.png" in text.out
    assert "1 image(s) failed" in text.err
    (folder / "broken.png").unlink()
    assert main(argv) == 0  # the failed record is not trusted: nothing left to fail
    assert "0 succeeded, 0 failed, 5 skipped" in capsys.readouterr().out
    assert _labels(out, "img0").max() == 3
    # other settings into the same folder: refused, then replaced with --overwrite
    argv2 = [a if a != "3" else "2" for a in argv]
    assert main(argv2) == 2
    assert "other settings" in capsys.readouterr().err
    assert main([*argv2, "--overwrite"]) == 0
    assert _labels(out, "img0").max() == 2


def test_evaluate_runs_on_the_engine(client2, tmp_path, capsys):
    """``napari-useg evaluate --scheduler`` gives the same per-image scores as a serial run."""
    import csv

    root = tmp_path / "data"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for k in range(3):
        img = _scene(k)
        iio.imwrite(root / "images" / f"t{k}.png", img)
        iio.imwrite(root / "masks" / f"t{k}.png", (img[..., 0] > 120).astype(np.uint8))
    base = ["evaluate", "--data", str(root), "--method", "kmeans", "--window", "1",
            "--sweep", "n_clusters=2,3", "--no-boundary", "--quiet"]
    assert main([*base, "--out", str(tmp_path / "serial")]) == 0
    addr = client2.scheduler.address
    assert main([*base, "--out", str(tmp_path / "dask"), "--scheduler", addr]) == 0
    rows = []
    for name in ("serial", "dask"):
        with open(tmp_path / name / "per_image.csv", newline="") as fh:
            rows.append([{k: v for k, v in r.items() if k != "seconds"}
                         for r in csv.DictReader(fh)])
    assert rows[0] == rows[1] and len(rows[0]) == 6
    capsys.readouterr()
    assert main([*base, "--out", str(tmp_path / "x"), "--scheduler", addr, "--jobs", "2"]) == 2
    assert "--jobs sizes a local cluster" in capsys.readouterr().err


def test_evaluate_on_the_engine_reports_an_unscorable_image(client2, tmp_path, capsys):
    """An image with nothing to score comes back from a worker as skipped, not an error."""
    root = tmp_path / "data"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for k in range(2):
        img = _scene(k)
        iio.imwrite(root / "images" / f"t{k}.png", img)
        mask = (img[..., 0] > 120).astype(np.uint8) if k == 0 else np.full((24, 32), 255,
                                                                             np.uint8)
        iio.imwrite(root / "masks" / f"t{k}.png", mask)
    rc = main(["evaluate", "--data", str(root), "--method", "kmeans", "--window", "1",
               "--n-clusters", "2", "--no-boundary", "--quiet", "--ignore", "255",
               "--out", str(tmp_path / "r"), "--scheduler", client2.scheduler.address])
    err = capsys.readouterr().err
    assert rc == 1 and "t1: nothing to score" in err and "Traceback" not in err
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["n_images"] == 1 and [s["id"] for s in summary["skipped"]] == ["t1"]


# ---------------------------------------------------------------------------- no cluster needed


def test_validation_before_any_compute(folder, tmp_path):
    out = tmp_path / "never"
    with pytest.raises(ValueError, match="unknown method"):
        batch.run(folder, method="nope", out_dir=out)
    with pytest.raises(ValueError, match="n_clusters"):
        batch.run(folder, method="kmeans", out_dir=out, n_clusters=0)
    with pytest.raises(TypeError, match="unknown parameter"):
        batch.run(folder, method="kmeans", out_dir=out, bogus=1)
    with pytest.raises(TypeError, match="seed"):
        batch.run(folder, method="kmeans", out_dir=out, seed=1.5)
    with pytest.raises(ValueError, match="not both"):
        batch.run(folder, method="kmeans", out_dir=out, scheduler="tcp://x:1", client=object())
    with pytest.raises(ValueError, match="own workers"):
        batch.run(folder, method="kmeans", out_dir=out, scheduler="tcp://x:1", workers=2)
    with pytest.raises(ValueError, match="workers must be >= 1"):
        batch.run(folder, method="kmeans", out_dir=out, workers=0)
    with pytest.raises(FileNotFoundError):
        batch.run(tmp_path / "missing", method="kmeans", out_dir=out)
    with pytest.raises(ValueError, match="same name stem"):
        iio.imwrite(tmp_path / "img0.tif", _scene(0))
        batch.run([folder, tmp_path / "img0.tif"], method="kmeans", out_dir=out)
    with pytest.raises(ValueError, match="give a method"):
        batch.run(folder, out_dir=out)
    assert not out.exists()  # nothing was created


def test_segment_file_and_output_checks(folder, tmp_path):
    """The per-image task, called in-process, and every verdict on its outputs."""
    out = tmp_path / "o"
    out.mkdir()
    cfg = {"method": "kmeans", "preset": None, "params": {"n_clusters": 2, "window": 1,
                                                          "n_init": 1, "max_iter": 30},
           "seed": 0, "channel_axis": None, "device": "cpu", "model": None}
    img = folder / "img0.png"
    lab, rec = outputs.output_paths(out, img)
    assert records.check_outputs(img, lab, rec, cfg).state == "missing"
    r = batch.segment_file(batch.BatchJob(str(img), str(lab), str(rec), cfg))
    assert r["status"] == "ok" and records.check_outputs(img, lab, rec, cfg).state == "complete"
    other = {**cfg, "seed": 1}
    assert records.check_outputs(img, lab, rec, other).state == "stale"
    with pytest.raises(FileExistsError, match="other settings"):
        batch.run(folder, method="kmeans", out_dir=out, n_clusters=2, window=1, n_init=1,
                  seed=1, device="cpu")
    os.utime(img, ns=(time.time_ns(), time.time_ns()))  # touched, same content: still trusted
    assert records.check_outputs(img, lab, rec, cfg).state == "complete"
    iio.imwrite(img, _scene(1))  # new content
    assert records.check_outputs(img, lab, rec, cfg).state == "stale"
    lab.write_bytes(b"II*\x00garbage")
    assert records.check_outputs(img, lab, rec, cfg).state == "incomplete"
    lab.unlink()
    assert records.check_outputs(img, lab, rec, cfg).state == "incomplete"
    bad = folder / "broken.png"
    blab, brec = outputs.output_paths(out, bad)
    r = batch.segment_file(batch.BatchJob(str(bad), str(blab), str(brec), cfg))
    assert r["status"] == "error" and not blab.exists()
    assert records.check_outputs(bad, blab, brec, cfg).state == "incomplete"


def test_a_warning_is_kept_in_the_image_record_and_summarised(tmp_path):
    """An image that segments with a warning: labels, the warning in its record, one line."""
    img = np.zeros((16, 16, 4), np.uint8)
    img[:, 8:, 3] = 255  # a 4th channel that is not alpha: kept as data, with a warning
    src = tmp_path / "rgbi.tif"
    tifffile.imwrite(src, img)
    out = tmp_path / "o"
    out.mkdir()
    cfg = {"method": "kmeans", "preset": None, "params": {"n_clusters": 2, "window": 1,
                                                          "n_init": 1, "max_iter": 30},
           "seed": 0, "channel_axis": None, "device": "cpu", "model": None}
    lab, rec = outputs.output_paths(out, src)
    r = batch.segment_file(batch.BatchJob(str(src), str(lab), str(rec), cfg))
    assert r["status"] == "ok" and lab.exists()
    assert len(r["warnings"]) == 1 and "4th channel" in r["warnings"][0]
    assert json.loads(rec.read_text())["warnings"] == r["warnings"]
    res = batch.runner._result_from_record(batch.BatchJob(str(src), str(lab), str(rec), cfg),
                                           r, "succeeded")
    text = str(batch.Summary([res], out))
    assert f"warning: {src}: image of shape (16, 16, 4)" in text


def test_find_images_and_layout(folder, tmp_path):
    names = [p.name for p in batch.find_images(folder)]
    assert names == sorted(names) and len(names) == 6
    assert [p.name for p in batch.find_images(str(folder / "img[12].png"))] == ["img1.png",
                                                                                 "img2.png"]
    (folder / "notes.txt").write_text("x")
    assert len(batch.find_images(folder)) == 6
    assert len(batch.find_images([folder, folder / "img1.png"])) == 6  # no repeats
    with pytest.raises(FileNotFoundError, match="no file matches"):
        batch.find_images(str(folder / "*.jpg"))
    assert batch.local_layout(workers=2, cores=8) == (2, 4)
    assert batch.local_layout(threads_per_worker=2, cores=8) == (4, 2)
    w, t = batch.local_layout(cores=4)
    assert w * t <= 4 and w >= 1
    with pytest.warns(UserWarning, match="oversubscribed"):
        batch.local_layout(workers=4, threads_per_worker=2, cores=4)
    with pytest.raises(TypeError):
        batch.local_layout(workers=1.5)


def test_lost_task_is_recorded_by_the_client(folder, tmp_path):
    """A task that never returns a record (its worker died) is still recorded as failed."""
    from napari_useg.batch.runner import _collect

    out = tmp_path / "o"
    out.mkdir()
    img = folder / "img0.png"
    lab, rec = outputs.output_paths(out, img)
    job = batch.BatchJob(str(img), str(lab), str(rec), {"method": "kmeans"})
    exc = RuntimeError("worker died")
    res = _collect(job, batch.Outcome(0, job, error="KilledWorker: worker died", exception=exc))
    assert res.status == "failed" and "worker died" in res.error
    written = json.loads(rec.read_text())
    assert written["status"] == "error" and written["error"]["message"] == "worker died"
    assert records.check_outputs(img, lab, rec, job.config).state == "incomplete"


def test_run_options_as_keywords_or_one_object(folder, tmp_path):
    """Seed, device, preset and channel axis: keywords or one RunOptions, checked by it."""
    out = tmp_path / "o"
    with pytest.raises(ValueError, match="not both"):
        batch.run(folder, method="kmeans", out_dir=out, options=RunOptions(seed=1), seed=2)
    with pytest.raises(TypeError, match="RunOptions"):
        batch.run(folder, method="kmeans", out_dir=out, options={"seed": 1})
    with pytest.raises(TypeError, match="channel_axis"):
        batch.run(folder, method="kmeans", out_dir=out, channel_axis="0")
    with pytest.raises(ValueError, match="unknown device"):
        batch.run(folder, method="kmeans", out_dir=out, device="tpu")
    assert not out.exists()
    out.mkdir()
    cfg = {"method": "kmeans", "preset": None, "params": {"n_clusters": 2, "window": 1,
                                                          "n_init": 1, "max_iter": 30},
           "seed": 4, "channel_axis": None, "device": "cpu", "model": None}
    img = folder / "img0.png"
    lab, rec = outputs.output_paths(out, img)
    assert batch.segment_file(batch.BatchJob(str(img), str(lab), str(rec), cfg))["status"] == "ok"
    km = {"n_clusters": 2, "window": 1, "n_init": 1}
    # the same settings either way: this run's outputs are kept (no cluster is started)
    assert batch.run(img, method="kmeans", out_dir=out, seed=4, **km).skipped == 1
    assert batch.run(img, method="kmeans", out_dir=out, options=RunOptions(seed=4),
                     **km).skipped == 1
    # the command line's run options are RunOptions' own, with their defaults
    args = build_parser(["batch"]).parse_args(["batch", str(img), "--out", str(out)])
    assert run_options(args) == RunOptions()
    args = build_parser(["batch"]).parse_args(["batch", str(img), "--out", str(out), "--seed",
                                               "4", "--device", "cpu", "--channel-axis", "2",
                                               "--preset", "fast"])
    assert run_options(args) == RunOptions(seed=4, device="cpu", channel_axis=2, preset="fast")


def test_public_names_resolve():
    for name in batch.__all__:
        assert getattr(batch, name) is not None


def test_tiled_tasks_of_a_refining_model_equal_predict(client2, tmp_path):
    """A model refining each image's classes fits the image once (first task); the tile
    tasks then label exactly as Model.predict does on the whole image."""
    import torch
    import zarr

    from napari_useg.core.params import build_params
    from napari_useg.methods.iic import IICModel, IICParams

    p = build_params(IICParams, {"width": 0.125, "input_size": 16, "batch_size": 2,
                                 "n_clusters": 2, "refine": "on", "refine_background": 15})
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = IICModel(p, IICModel.build_net(p, 3, True), n_channels=3, is_rgb=True)
    path = tmp_path / "m"
    model.save(path)
    d = tmp_path / "in"
    d.mkdir()
    image = _ramps(70, 90)
    iio.imwrite(d / "png.png", image)
    out = tmp_path / "out"
    s = batch.run(d, model=path, out_dir=out, client=client2, device="cpu", tile_size=32,
                  tile_tasks_above=1000)
    assert s.succeeded == 1, [r.error for r in s.results]
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ref = model.predict(image)
        off = IICModel(build_params(IICParams, {**vars(p), "refine": "off"}), model.net,
                       n_channels=3, is_rgb=True).predict(image)
    finally:
        torch.set_num_threads(saved)
    assert not np.array_equal(ref, off)  # the refinement changes labels here
    z = zarr.open_array(str(out / "png_labels.zarr"), mode="r")
    assert np.array_equal(z[:], ref)
