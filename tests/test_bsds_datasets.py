"""Dataset folder loaders: BSDS500 layout and images/ + masks/, on tiny folders made here."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from napari_useg.io.bsds import write_bsds_gt
from napari_useg.io.datasets import detect_layout, load_dataset

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def make_bsds(root: Path, split: str | None = "val", n: int = 2) -> Path:
    img_dir = root / "images" / split if split else root / "images"
    gt_dir = root / "groundTruth" / split if split else root / "groundTruth"
    img_dir.mkdir(parents=True)
    gt_dir.mkdir(parents=True)
    for k in range(n):
        seg = np.ones((10, 12), np.uint16)
        seg[:, 6:] = 2
        iio.imwrite(img_dir / f"{100 + k}.jpg", (np.stack([seg * 100] * 3, -1)).astype(np.uint8))
        write_bsds_gt(gt_dir / f"{100 + k}.mat", [seg, np.where(seg == 2, 1, 3)])
    return root


def make_masks(root: Path, masks: str = "masks", n: int = 2) -> Path:
    (root / "images").mkdir(parents=True)
    (root / masks).mkdir()
    for k in range(n):
        m = np.zeros((8, 8), np.uint8)
        m[:, 4:] = 1
        m[0, 0] = 255
        iio.imwrite(root / "images" / f"a{k}.png", m * 80)
        iio.imwrite(root / masks / f"a{k}.png", m)
    iio.imwrite(root / "images" / "orphan.png", np.zeros((8, 8), np.uint8))
    return root


def test_bsds_layout(tmp_path):
    root = make_bsds(tmp_path / "bsds")
    assert detect_layout(root) == "bsds"
    ds = load_dataset(root)  # split defaults to val
    assert ds.kind == "bsds" and ds.split == "val" and [s.id for s in ds.samples] == ["100", "101"]
    s = ds.sample("101")
    assert ds.read_image(s).shape == (10, 12, 3)
    ann = ds.read_annotations(s)
    assert len(ann) == 2 and ann[0].dtype == np.uint16
    assert len(ds.read_boundaries(s)) == 2
    with pytest.raises(FileNotFoundError, match="split 'test'"):
        load_dataset(root, "test")
    with pytest.raises(KeyError):
        ds.sample("nope")


def test_bsds_layout_without_split(tmp_path):
    ds = load_dataset(make_bsds(tmp_path / "flat", split=None), "val")
    assert ds.split is None and len(ds) == 2


def test_masks_layout_and_ignore(tmp_path):
    root = make_masks(tmp_path / "m", masks="masks_semantic")
    assert detect_layout(root) == "masks"
    ds = load_dataset(root, ignore=255)
    assert ds.kind == "masks" and ds.ignore == (255,)
    assert [s.id for s in ds.samples] == ["a0", "a1"]
    assert [p.name for p in ds.unmatched] == ["orphan.png"]
    (mask,) = ds.read_annotations(ds.samples[0])
    assert mask.shape == (8, 8) and set(np.unique(mask)) == {0, 1, 255}
    bd = ds.read_boundaries(ds.samples[0])
    assert len(bd) == 1 and bd[0].any()


def test_unknown_layout(tmp_path):
    (tmp_path / "stuff").mkdir()
    with pytest.raises(ValueError, match="unknown dataset layout"):
        load_dataset(tmp_path)
    with pytest.raises(NotADirectoryError):
        load_dataset(tmp_path / "missing")


@pytest.mark.skipif(not (SHARED / "satellite" / "masks").is_dir(),
                    reason=f"shared satellite set not found at {SHARED / 'satellite'}")
def test_shared_layouts_are_detected():
    assert load_dataset(SHARED / "satellite", ignore=255).kind == "masks"
    assert load_dataset(SHARED / "microscopy").samples[0].annotation.parent.name == \
        "masks_semantic"
    assert len(load_dataset(SHARED / "bsds500", "val")) == 100
