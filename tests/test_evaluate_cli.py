"""``napari-useg evaluate`` on tiny datasets generated here."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from napari_useg.cli import main
from napari_useg.evaluation import parse_sweeps
from napari_useg.evaluation import run as engine
from napari_useg.io.bsds import write_bsds_gt, write_segs


def _scene(k: int) -> tuple[np.ndarray, np.ndarray]:
    """A 24x32 RGB image of three flat regions (plus noise) and its labels 1..3."""
    gt = np.ones((24, 32), np.uint16)
    gt[:, 16 + k:] = 2
    gt[6:14, 4:12] = 3
    colours = np.array([[0, 0, 0], [200, 40, 40], [40, 160, 60], [40, 60, 200]])
    rng = np.random.default_rng(k)
    img = np.clip(colours[gt] + rng.normal(0, 4, (24, 32, 3)), 0, 255).astype(np.uint8)
    return img, gt


@pytest.fixture
def bsds_root(tmp_path) -> Path:
    root = tmp_path / "data"
    (root / "images" / "val").mkdir(parents=True)
    (root / "groundTruth" / "val").mkdir(parents=True)
    for k in range(2):
        img, gt = _scene(k)
        iio.imwrite(root / "images" / "val" / f"{10 + k}.png", img)
        other = gt.copy()  # a second annotator who also outlines a bottom band
        other[18:] = 4
        write_bsds_gt(root / "groundTruth" / "val" / f"{10 + k}.mat", [gt, other])
    return root


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_sweep_outputs_and_resume(bsds_root, tmp_path, monkeypatch, capsys):
    out = tmp_path / "res"
    args = ["evaluate", "--data", str(bsds_root), "--method", "kmeans", "--window", "1",
            "--sweep", "n_clusters=2,3", "--out", str(out), "--quiet"]
    assert main(args) == 0
    for name in ("per_image.csv", "summary.md", "summary.json", "pr.png", "config.json"):
        assert (out / name).is_file(), name
    assert (out / "pr.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = _read_csv(out / "per_image.csv")
    assert len(rows) == 4 and {r["params"] for r in rows} == {"n_clusters=2", "n_clusters=3"}
    summary = json.loads((out / "summary.json").read_text())
    m = summary["metrics"]
    for key in ("hungarian", "many_to_one", "covering", "pri", "voi", "boundary_f",
                "segment_ap@0.5", "segment_ap@0.7"):
        assert key in m, key
    # three flat colour regions: k-means with k=3 finds them (annotator 1 exactly)
    assert m["hungarian"]["ods_setting"] == "n_clusters=3"
    assert m["hungarian"]["ois"] >= m["hungarian"]["ods"] > 0.8
    assert m["boundary_f"]["ods"] > 0.8
    assert "seconds_per_image" in summary
    md = (out / "summary.md").read_text()
    assert "Hungarian accuracy" in md and "| n_clusters=3 |" in md
    # resume: nothing is recomputed (the per-image function must not run again)
    def boom(job):
        raise AssertionError(f"recomputed {job.id}")

    monkeypatch.setattr(engine, "evaluate_image", boom)
    assert main(args) == 0
    # other settings in the same folder: refused unless --overwrite
    capsys.readouterr()
    other = ["evaluate", "--data", str(bsds_root), "--method", "kmeans", "--window", "1",
             "--n-clusters", "2", "--out", str(out), "--quiet"]
    assert main(other) == 2
    assert "different evaluation" in capsys.readouterr().err
    monkeypatch.undo()
    assert main(other + ["--overwrite", "--limit", "1"]) == 0
    assert len(_read_csv(out / "per_image.csv")) == 1


def test_predictions_folder_and_segs(bsds_root, tmp_path, capsys):
    preds = tmp_path / "preds"
    preds.mkdir()
    _, gt0 = _scene(0)
    _, gt1 = _scene(1)
    np.save(preds / "10.npy", gt0.astype(np.int32))  # one setting
    write_segs(preds / "11.mat", [gt1, np.ones_like(gt1)])  # two "thresholds"
    # every image must have the same number of settings
    assert main(["evaluate", "--data", str(bsds_root), "--predictions", str(preds),
                 "--out", str(tmp_path / "res1"), "--quiet"]) == 2
    assert "numbers of settings" in capsys.readouterr().err
    (preds / "10.npy").unlink()
    write_segs(preds / "10.mat", [gt0, np.ones_like(gt0)])
    out = tmp_path / "res2"
    assert main(["evaluate", "--data", str(bsds_root), "--predictions", str(preds),
                 "--out", str(out), "--quiet"]) == 0
    m = json.loads((out / "summary.json").read_text())["metrics"]
    assert m["hungarian"]["ods_setting"] == "segs=1"
    # the prediction is annotator 1: its boundaries are all right; annotator 2's band is missed
    assert m["boundary_f"]["ods_precision"] == pytest.approx(1.0)
    assert 0.6 < m["boundary_f"]["ods_recall"] < 1.0
    assert m["covering"]["ods"] > 0.8


def test_masks_layout_with_ignore(tmp_path):
    root = tmp_path / "masks_data"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    img, gt = _scene(0)
    mask = (gt - 1).astype(np.uint8)
    mask[:3] = 255  # unannotated
    iio.imwrite(root / "images" / "t1.png", img)
    iio.imwrite(root / "masks" / "t1.png", mask)
    out = tmp_path / "res"
    assert main(["evaluate", "--data", str(root), "--method", "kmeans", "--window", "1",
                 "--n-clusters", "3", "--ignore", "255", "--no-boundary", "--out", str(out),
                 "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["ignore"] == [255]
    assert "boundary_f" not in summary["metrics"]
    assert summary["metrics"]["hungarian"]["ods"] > 0.95


def test_bad_arguments_fail_before_compute(bsds_root, tmp_path, capsys):
    base = ["evaluate", "--data", str(bsds_root), "--out", str(tmp_path / "r"), "--quiet"]
    assert main(base + ["--method", "kmeans", "--sweep", "n_clusters=2,x"]) == 2
    assert "n_clusters" in capsys.readouterr().err
    assert main(base + ["--method", "kmeans", "--sweep", "nope=1,2"]) == 2
    assert "no parameter 'nope'" in capsys.readouterr().err
    assert main(base + ["--method", "kmeans", "--jobs", "0"]) == 2
    assert main(base + ["--predictions", str(tmp_path / "missing")]) == 2
    assert main(["evaluate", "--data", str(tmp_path / "nowhere"), "--method", "kmeans",
                 "--quiet"]) == 2
    assert not (tmp_path / "r" / "per_image.csv").exists()


def test_parse_sweeps_grid():
    from napari_useg.core.registry import get_method

    grid = parse_sweeps(["n_clusters=2,3", "window=1,3"], get_method("kmeans"))
    assert grid == [{"n_clusters": 2, "window": 1}, {"n_clusters": 2, "window": 3},
                    {"n_clusters": 3, "window": 1}, {"n_clusters": 3, "window": 3}]
    with pytest.raises(ValueError, match="NAME=V1"):
        parse_sweeps(["n_clusters"], get_method("kmeans"))


@pytest.mark.slow
def test_parallel_jobs_match_serial(bsds_root, tmp_path):
    common = ["evaluate", "--data", str(bsds_root), "--method", "felzenszwalb", "--quiet"]
    assert main(common + ["--out", str(tmp_path / "a")]) == 0
    assert main(common + ["--out", str(tmp_path / "b"), "--jobs", "2"]) == 0
    a = _read_csv(tmp_path / "a" / "per_image.csv")
    b = _read_csv(tmp_path / "b" / "per_image.csv")
    for ra, rb in zip(a, b, strict=True):
        ra.pop("seconds")
        rb.pop("seconds")
        assert ra == rb


def test_hierarchy_scores_the_cuts_of_one_run(bsds_root, tmp_path, capsys):
    """--hierarchy N: one run per image, N threshold cuts scored as settings (ucm2 protocol)."""
    out = tmp_path / "hier"
    args = ["evaluate", "--data", str(bsds_root), "--method", "felzenszwalb", "--scale", "20",
            "--hierarchy", "5", "--out", str(out), "--quiet"]
    assert main(args) == 0
    rows = _read_csv(out / "per_image.csv")
    assert len(rows) == 10
    assert {r["params"] for r in rows} == {f"threshold={t:.4g}" for t in
                                           (1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6)}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["metrics"]["covering"]["ods"] > 0.5
    assert json.loads((out / "config.json").read_text())["hierarchy"] == 5
    assert main(["evaluate", "--data", str(bsds_root), "--method", "felzenszwalb",
                 "--hierarchy", "--sweep", "scale=10,20", "--out", str(tmp_path / "x"),
                 "--quiet"]) != 0
    assert "--sweep" in capsys.readouterr().err
