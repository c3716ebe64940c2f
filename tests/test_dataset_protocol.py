"""The papers' protocol for dataset-level methods in ``evaluate``: train once, pool the scores."""

from __future__ import annotations

import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from napari_useg.cli import main
from napari_useg.core.options import FitOptions
from napari_useg.evaluation import EvaluationConfig, dataset_protocol, evaluate_dataset_method
from napari_useg.evaluation import jobs as eval_jobs
from napari_useg.metrics import pooled_hungarian_accuracy, pooled_many_to_one_accuracy

SMALL = ["--steps", "2", "--width", "0.125", "--input-size", "16", "--batch-size", "2"]


@pytest.fixture
def masks_root(tmp_path) -> Path:
    """Three 32x32 grey images of bright discs on a dark background, masks 0/1."""
    root = tmp_path / "data"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    yy, xx = np.mgrid[:32, :32]
    for k in range(3):
        mask = ((yy - 10 - 4 * k) ** 2 + (xx - 16) ** 2 < 36 + 9 * k).astype(np.uint8)
        rng = np.random.default_rng(k)
        img = np.clip(30 + 170 * mask + rng.normal(0, 5, mask.shape), 0, 255).astype(np.uint8)
        iio.imwrite(root / "images" / f"im{k}.png", img)
        iio.imwrite(root / "masks" / f"im{k}.png", mask)
    return root


@pytest.fixture
def counted(monkeypatch):
    """Count training runs; fail if an image is segmented on its own (trained per image)."""
    calls = []
    real = dataset_protocol.iter_fit_with

    def counting(images, method, options, **params):
        calls.append(len(images))
        return real(images, method, options, **params)

    def per_image(*a, **k):
        raise AssertionError("a dataset-level method was run image by image")

    monkeypatch.setattr(dataset_protocol, "iter_fit_with", counting)
    monkeypatch.setattr(eval_jobs, "_segment", per_image)
    return calls


def test_evaluate_trains_once_and_reports_pooled_scores(masks_root, tmp_path, counted, capsys):
    out = tmp_path / "res"
    args = ["evaluate", "--data", str(masks_root), "--method", "iic", *SMALL, "--device", "cpu",
            "--out", str(out), "--no-boundary", "--quiet"]
    assert main(args) == 0
    assert counted == [3]  # one training run, on the three images
    assert "pooled Hungarian" in capsys.readouterr().out
    assert sorted(p.name for p in (out / "predictions").iterdir()) == [
        "im0.npy", "im1.npy", "im2.npy"]
    pooled = json.loads((out / "pooled.json").read_text())
    preds = [np.load(out / "predictions" / f"im{k}.npy") for k in range(3)]
    gts = [iio.imread(masks_root / "masks" / f"im{k}.png") for k in range(3)]
    assert pooled["hungarian"] == pytest.approx(pooled_hungarian_accuracy(preds, gts))
    assert pooled["many_to_one"] == pytest.approx(pooled_many_to_one_accuracy(preds, gts))
    summary = json.loads((out / "summary.json").read_text())
    assert pooled["hungarian_per_image"] == pytest.approx(summary["metrics"]["hungarian"]["ods"])
    assert pooled["trained_here"] and pooled["n_images"] == 3
    assert "iic model" in pooled["model_description"]
    md = (out / "summary.md").read_text()
    assert "Dataset protocol" in md and "| Hungarian accuracy |" in md
    # a rerun resumes: no training, same figures
    assert main(args) == 0
    assert counted == [3]
    assert json.loads((out / "pooled.json").read_text())["hungarian"] == pooled["hungarian"]
    # a saved model applied to the set: no training, same labels
    other = tmp_path / "res2"
    assert main(["evaluate", "--data", str(masks_root), "--model", str(out / "model"),
                 "--out", str(other), "--no-boundary", "--quiet"]) == 0
    assert counted == [3]
    again = json.loads((other / "pooled.json").read_text())
    assert again["hungarian"] == pooled["hungarian"] and not again["trained_here"]


def test_other_settings_in_the_same_folder_are_refused(masks_root, tmp_path, counted, capsys):
    out = tmp_path / "res"
    base = ["evaluate", "--data", str(masks_root), "--method", "iic", "--device", "cpu",
            "--out", str(out), "--no-boundary", "--quiet"]
    assert main([*base, *SMALL]) == 0
    assert main([*base, *SMALL, "--seed", "1"]) != 0  # refused, with the difference
    assert "differs in ['seed']" in capsys.readouterr().err
    assert main([*base, *SMALL, "--seed", "1", "--overwrite"]) == 0
    assert counted == [3, 3]


def test_mapping_estimated_on_a_subset(masks_root, tmp_path):
    cfg = EvaluationConfig(masks_root, "iic", out=tmp_path / "r", boundary=False,
                           params=dict(steps=2, width=0.125, input_size=16, batch_size=2))
    res = evaluate_dataset_method(cfg, FitOptions(device="cpu"), mapping_on=[0])
    preds = [np.load(tmp_path / "r" / "predictions" / f"im{k}.npy") for k in range(3)]
    gts = [iio.imread(masks_root / "masks" / f"im{k}.png") for k in range(3)]
    assert res.pooled["mapping_on"] == [0]
    assert res.pooled["many_to_one"] == pytest.approx(
        pooled_many_to_one_accuracy(preds, gts, mapping_on=[0]))
    assert res.trained and res.model_dir == tmp_path / "r" / "model"


def test_sweeps_and_model_with_parameters_are_refused(masks_root, tmp_path):
    with pytest.raises(ValueError, match="trained once"):
        evaluate_dataset_method(EvaluationConfig(masks_root, "iic", sweeps=["steps=1,2"],
                                                 out=tmp_path / "r"))
    with pytest.raises(FileNotFoundError, match="no model folder"):
        dataset_protocol.model_method(tmp_path)
