"""The evaluation engine called from Python (no argparse), and the metrics/io layering."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

import napari_useg
from napari_useg.core.options import RunOptions
from napari_useg.evaluation import (
    EvaluationConfig,
    evaluate,
    iter_evaluate,
    prepare_evaluation,
    run_evaluation,
)


@pytest.fixture
def masks_root(tmp_path) -> Path:
    """images/ + masks/: two 20x24 images of two colour halves (plus a little noise)."""
    root = tmp_path / "data"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for k in range(2):
        mask = np.zeros((20, 24), np.uint8)
        mask[:, 10 + k:] = 1
        colour = np.where(mask[..., None] == 1, [220, 30, 30], [20, 40, 200])
        noise = np.random.default_rng(k).normal(0, 3, (20, 24, 3))
        img = np.clip(colour + noise, 0, 255).astype(np.uint8)
        iio.imwrite(root / "images" / f"im{k}.png", img)
        iio.imwrite(root / "masks" / f"im{k}.png", mask)
    return root


def test_engine_from_python_writes_the_cli_files(masks_root, tmp_path):
    out = tmp_path / "res"
    config = EvaluationConfig(data=masks_root, method="kmeans", params={"window": 1},
                              sweeps=["n_clusters=2,3"], out=out, boundary=False)
    plan = prepare_evaluation(config, RunOptions(seed=1, device="cpu"))
    assert len(plan.jobs) == 2 and plan.resumed == 0
    assert all(j.options.seed == 1 and j.options.preview_every == 0 for j in plan.jobs)
    snaps = list(iter_evaluate(plan))
    assert [s.step for s in snaps] == [0, 1, 2, 2] and snaps[-1].done
    res = snaps[-1].info["result"]
    for name in ("per_image.csv", "summary.md", "summary.json", "pr.png", "config.json"):
        assert (out / name).is_file(), name
    assert res.labels == ["n_clusters=2", "n_clusters=3"]
    assert res.summary["metrics"]["hungarian"]["ods_setting"] == "n_clusters=2"
    assert res.summary["metrics"]["hungarian"]["ods"] == pytest.approx(1.0)
    assert json.loads((out / "config.json").read_text())["seed"] == 1
    # the same run again resumes every image
    again = run_evaluation(config, RunOptions(seed=1, device="cpu"))
    assert again.resumed == 2 and again.summary == res.summary


def test_evaluate_keyword_front_door(masks_root, tmp_path):
    res = evaluate(masks_root, "kmeans", out=tmp_path / "r", n_clusters=2, window=1,
                   boundary=False, device="cpu")
    assert res.summary["n_images"] == 2
    assert res.config["device"] == "cpu" and res.config["settings"] == [
        {"n_clusters": 2, "window": 1}]
    assert "Hungarian ODS 1.0000" in res.headline()


def test_config_checks(masks_root, tmp_path):
    with pytest.raises(ValueError, match="either a method or a predictions"):
        EvaluationConfig(data=masks_root)
    with pytest.raises(ValueError, match="jobs"):
        EvaluationConfig(data=masks_root, method="kmeans", jobs=0)
    with pytest.raises(ValueError, match="both fixed and in --sweep"):
        prepare_evaluation(EvaluationConfig(data=masks_root, method="kmeans",
                                            params={"n_clusters": 2},
                                            sweeps=["n_clusters=2,3"], out=tmp_path / "r"))
    assert not (tmp_path / "r").exists()  # nothing written before the checks pass


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_metrics_never_import_io_or_evaluation():
    metrics = Path(napari_useg.__file__).parent / "metrics"
    for path in sorted(metrics.rglob("*.py")):
        bad = {m for m in _imported_modules(path)
               if m.startswith(("napari_useg.io", "napari_useg.evaluation", "napari_useg.cli"))}
        assert not bad, f"{path.relative_to(metrics.parent)} imports {sorted(bad)}"
