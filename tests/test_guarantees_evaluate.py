"""Evaluate: never replace a user's files, never a figure over fewer images than it says,
never a score kept from inputs that changed, never a traceback for an image with nothing
to score."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from napari_useg.cli import main
from napari_useg.evaluation import evaluate
from napari_useg.evaluation import jobs as evaluate_jobs


def _halves(col: int) -> np.ndarray:
    m = np.zeros((16, 16), np.uint8)
    m[:, col:] = 1
    return m


@pytest.fixture
def data(tmp_path) -> Path:
    """images/ + masks/ + pred/: three images; t2 has no mask; predictions for all."""
    root = tmp_path / "data"
    for d in ("images", "masks", "pred"):
        (root / d).mkdir(parents=True)
    rng = np.random.default_rng(0)
    for k in range(3):
        iio.imwrite(root / "images" / f"t{k}.png", rng.integers(0, 255, (16, 16), np.uint8))
        iio.imwrite(root / "pred" / f"t{k}.png", _halves(8) + 1)
        if k < 2:
            iio.imwrite(root / "masks" / f"t{k}.png", _halves(8))
    return root


def _run(data: Path, out: Path, *extra: str) -> int:
    return main(["evaluate", "--data", str(data), "--predictions", str(data / "pred"),
                 "--out", str(out), "--no-boundary", "-q", *extra])


def _hungarian(out: Path) -> dict[str, float]:
    with open(out / "per_image.csv", newline="") as fh:
        return {r["id"]: float(r["hungarian"]) for r in csv.DictReader(fh)}


def test_report_files_of_someone_else_are_never_replaced(data, tmp_path, capsys):
    out = tmp_path / "res"
    out.mkdir()
    (out / "summary.md").write_text("my notes")
    assert _run(data, out, "--allow-missing") == 2
    err = capsys.readouterr().err
    assert "summary.md" in err and "--overwrite" in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in out.iterdir()) == ["summary.md"]
    assert (out / "summary.md").read_text() == "my notes"
    # an unreadable config.json is not ours either
    (out / "config.json").write_text("{not json")
    assert _run(data, out, "--allow-missing") == 2
    assert (out / "config.json").read_text() == "{not json"
    # --overwrite replaces the report files, and the folder is ours from then on
    assert _run(data, out, "--allow-missing", "--overwrite") == 0
    assert (out / "summary.md").read_text().startswith("# napari-useg evaluate")
    assert _run(data, out, "--allow-missing") == 0  # resumed, no --overwrite needed
    # a folder holding anything else: refused; an empty one is fine
    other = tmp_path / "other"
    other.mkdir()
    (other / "per_image.csv").write_text("id\n")
    assert _run(data, other, "--allow-missing") == 2
    assert (other / "per_image.csv").read_text() == "id\n"
    (tmp_path / "empty").mkdir()
    assert _run(data, tmp_path / "empty", "--allow-missing") == 0


def test_images_without_a_mask_are_listed_counted_and_fail_the_run(data, tmp_path, capsys):
    out = tmp_path / "res"
    assert _run(data, out) == 1
    err = capsys.readouterr().err
    assert "1 of 3 image(s) not scored" in err and "t2: no annotation" in err
    assert "--allow-missing" in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_images"] == 2 and summary["n_dataset_images"] == 3
    assert summary["skipped"] == [{"id": "t2", "reason": "no annotation"}]
    md = (out / "summary.md").read_text()
    assert "1 of 3 image(s) not scored" in md and "- t2: no annotation" in md
    assert _run(data, out, "--allow-missing") == 0
    assert "t2: no annotation" in capsys.readouterr().err  # still listed
    res = evaluate(data, predictions=data / "pred", out=tmp_path / "py", boundary=False)
    assert not res.complete and res.skipped == [{"id": "t2", "reason": "no annotation"}]
    assert "(1 not scored)" in res.headline()


def test_a_changed_mask_or_prediction_is_rescored_on_resume(data, tmp_path, capsys):
    out = tmp_path / "res"
    assert _run(data, out, "--allow-missing") == 0
    assert _hungarian(out) == {"t0": 1.0, "t1": 1.0}
    iio.imwrite(data / "masks" / "t0.png", _halves(6))  # the annotation is corrected
    assert _run(data, out, "--allow-missing") == 0
    assert "1 image(s) evaluated before are recomputed" in capsys.readouterr().err
    fresh = tmp_path / "fresh"
    assert _run(data, fresh, "--allow-missing") == 0
    assert _hungarian(out) == _hungarian(fresh)
    assert _hungarian(out)["t0"] == pytest.approx(14 / 16)
    iio.imwrite(data / "pred" / "t1.png", _halves(4) + 1)  # a new prediction
    assert _run(data, out, "--allow-missing") == 0
    assert _hungarian(out)["t1"] == pytest.approx(12 / 16)
    rec = json.loads((out / "per_image" / "t1.json").read_text())
    assert set(rec["inputs"]) == {"image", "annotation", "prediction"}


def test_an_all_ignored_mask_is_reported_unscorable_not_a_traceback(data, tmp_path, capsys):
    iio.imwrite(data / "masks" / "t1.png", np.full((16, 16), 255, np.uint8))
    out = tmp_path / "res"
    rc = _run(data, out, "--ignore", "255")
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err
    assert "2 of 3 image(s) not scored" in err
    assert "t1: nothing to score: every ground-truth pixel is an ignore value [255]" in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_images"] == 1
    assert [s["id"] for s in summary["skipped"]] == ["t1", "t2"]
    assert _hungarian(out) == {"t0": 1.0}  # no made-up score for t1
    # nothing scorable at all: one clear sentence
    iio.imwrite(data / "masks" / "t0.png", np.full((16, 16), 255, np.uint8))
    assert _run(data, tmp_path / "none", "--ignore", "255", "--allow-missing") == 2
    err = capsys.readouterr().err
    assert "no image could be scored" in err and "Traceback" not in err


def test_a_prediction_numbered_from_zero_gets_the_covering_it_earns(data, tmp_path):
    """Dataset covering agrees with the per-image covering for 0-based predictions."""
    for k in range(3):
        iio.imwrite(data / "pred" / f"t{k}.png", _halves(8))  # labels 0 and 1: perfect
    res = evaluate(data, predictions=data / "pred", out=tmp_path / "res", boundary=False)
    assert [r["settings"][0]["covering"] for r in res.records] == [1.0, 1.0]
    assert res.summary["metrics"]["covering"]["ods"] == pytest.approx(1.0)


def test_an_image_of_another_size_than_its_mask_is_refused_before_the_method_runs(
        data, tmp_path, capsys, monkeypatch):
    iio.imwrite(data / "masks" / "t1.png", np.zeros((12, 16), np.uint8))
    ran = []
    real = evaluate_jobs._segment
    monkeypatch.setattr(evaluate_jobs, "_segment",
                        lambda image, *a, **k: ran.append(image.shape) or real(image, *a, **k))
    rc = main(["evaluate", "--data", str(data), "--method", "kmeans", "--n-clusters", "2",
               "--out", str(tmp_path / "res"), "--no-boundary", "--allow-missing", "-q"])
    err = capsys.readouterr().err
    assert rc == 2 and "t1.png is 16x16 but its ground truth is 12x16" in err
    assert "Traceback" not in err and ran == [(16, 16)]  # t0 only: t1 never segmented


def test_a_dataset_method_is_not_trained_when_an_image_and_its_mask_differ_in_size(
        data, tmp_path, capsys):
    iio.imwrite(data / "masks" / "t1.png", np.zeros((12, 16), np.uint8))
    out = tmp_path / "res"
    rc = main(["evaluate", "--data", str(data), "--method", "iic", "--steps", "1",
               "--input-size", "8", "--batch-size", "1", "--out", str(out), "-q"])
    err = capsys.readouterr().err
    assert rc == 2 and "image t1:" in err and "is 16x16 but its ground truth is 12x16" in err
    assert not (out / "model").exists()  # refused before any training
