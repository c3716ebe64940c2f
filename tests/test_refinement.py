"""Per-image refinement of a dataset-level model's classes, and the ``auto`` normalisation."""

from __future__ import annotations

import numpy as np
import pytest

import napari_useg
from napari_useg.core.fitting import normalise_collection
from napari_useg.core.image import objects_on_background
from napari_useg.core.refinement import (
    background_features,
    fit_class_gaussians,
    refine_labels,
)
from napari_useg.metrics import hungarian_accuracy
from napari_useg.nn.training import run_params

TINY_IIC = {"steps": 6, "batch_size": 2, "input_size": 32, "width": 0.1, "n_clusters": 2}


def _nuclei(seed: int, shape=(96, 128), dark_objects: bool = False
            ) -> tuple[np.ndarray, np.ndarray]:
    """Bright discs on a dark, slightly noisy background (or the inverse): image, mask."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    mask = np.zeros(shape, bool)
    for _ in range(5):
        cy, cx = rng.integers(12, shape[0] - 12), rng.integers(12, shape[1] - 12)
        mask |= (yy - cy) ** 2 + (xx - cx) ** 2 < rng.integers(25, 60)
    img = np.where(mask, 180.0, 30.0) + rng.normal(0, 4, shape)
    if dark_objects:
        img = 255.0 - img
    return np.clip(img, 0, 255).astype(np.uint8), mask


def _texture(seed: int, shape=(96, 128)) -> np.ndarray:
    """A land-cover-like image: large patches of different grey levels, no background."""
    rng = np.random.default_rng(seed)
    levels = rng.uniform(0, 255, (6, 8))
    img = np.kron(levels, np.ones((16, 16))) + rng.normal(0, 20, shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def test_background_features_remove_uneven_illumination():
    x = np.tile(np.linspace(0.0, 0.6, 80, dtype=np.float32), (60, 1))[..., None]
    x[20:28, 10:18] += 0.3  # an object on the dark end
    x[30:38, 60:68] += 0.3  # the same object on the bright end
    f = background_features(x, 21, dark=False)[..., 0]
    assert f[24, 14] == pytest.approx(f[34, 64], abs=0.02)  # same height after flattening
    assert abs(f[50, 40]) < 0.02 and f[24, 14] > 0.25
    # dark objects on a light background: a closing, so the object stays (negative)
    g = background_features(1.0 - x, 21, dark=True)[..., 0]
    assert g[24, 14] < -0.25 and abs(g[50, 40]) < 0.02


def test_refinement_fixes_a_level_shared_by_the_whole_image():
    """A network's classes as one intensity level miss the objects on the dark half; the
    refinement by the image's background-subtracted values finds them."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:64, :128]
    mask = np.zeros((64, 128), bool)
    for cy, cx in [(16, 16), (48, 40), (20, 80), (44, 110)]:
        mask |= (yy - cy) ** 2 + (xx - cx) ** 2 < 36
    ramp = np.linspace(0.0, 0.6, 128)[None]
    x = (ramp + 0.3 * mask + rng.normal(0, 0.01, mask.shape)).astype(np.float32)[..., None]
    p1 = 1 / (1 + np.exp(-(x[..., 0] - 0.5) * 5))  # "the network": one level, 0.5
    probs = np.stack([1 - p1, p1])
    plain = probs.argmax(0)
    assert hungarian_accuracy(plain + 1, mask.astype(int)) < 0.85
    feats = background_features(x, 21, dark=False)
    sample = feats.reshape(-1, 1), probs.reshape(2, -1).T
    gauss = fit_class_gaussians(*sample, weight=0.2)
    refined = refine_labels(feats, probs, gauss)
    assert hungarian_accuracy(refined + 1, mask.astype(int)) > 0.97
    # the classes keep the network's meaning: class 1 is the objects
    assert refined[mask].mean() > 0.9
    with pytest.raises(ValueError, match="same n"):
        fit_class_gaussians(feats.reshape(-1, 1), probs.reshape(2, -1).T[:5], 0.2)


def test_auto_normalisation_follows_the_collection():
    nuclei = [_nuclei(0)[0][..., None], _nuclei(1, dark_objects=True)[0][..., None],
              _nuclei(2)[0][..., None]]
    scenes = [_texture(s)[..., None] for s in range(3)]
    assert objects_on_background(nuclei) and not objects_on_background(scenes)
    data, norm = normalise_collection(nuclei, "auto")
    assert norm["dark_background"] and norm["auto"] == "per_image_dark"
    # the light-background image is inverted: its nuclei are bright like the others'
    assert data[1][_nuclei(1)[1]].mean() > 0.8 > data[1][~_nuclei(1)[1]].mean()
    _, norm = normalise_collection(scenes, "auto")
    assert norm == {"mode": "per_image", "percentiles": [1.0, 99.8], "auto": "per_image"}


@pytest.fixture(scope="module")
def nuclei_model():
    images = [_nuclei(s, dark_objects=s % 3 == 1)[0] for s in range(4)]
    return napari_useg.fit(images, "iic", device="cpu", seed=0, **TINY_IIC)


def test_auto_refinement_is_on_for_nuclei_and_off_for_scenes(nuclei_model):
    assert nuclei_model.params.refine == "auto" and nuclei_model.refines("main")
    assert not nuclei_model.refines("over")  # the over-clustering head is left as it is
    assert "per-image refinement: on (auto)" in nuclei_model.describe()
    scenes = napari_useg.fit([_texture(s) for s in range(2)], "iic", device="cpu", **TINY_IIC)
    assert not scenes.refines("main")
    assert "per-image refinement: off (auto)" in scenes.describe()
    # the paper preset does not refine
    paper = napari_useg.get_method("iic").build("paper", {})
    assert paper.refine == "off"


def test_refined_labels_differ_from_the_argmax_and_follow_the_image(nuclei_model):
    img, mask = _nuclei(7, dark_objects=True)
    refined = nuclei_model.predict(img)
    off = napari_useg.Model.__new__(type(nuclei_model))
    off.__dict__.update(nuclei_model.__dict__)
    off.params = type(nuclei_model.params)(**{**vars(nuclei_model.params), "refine": "off"})
    plain = off.predict(img)
    assert set(np.unique(refined)) <= {1, 2}
    assert hungarian_accuracy(refined, mask.astype(int)) > 0.95
    assert hungarian_accuracy(refined, mask.astype(int)) >= hungarian_accuracy(
        plain, mask.astype(int))


def test_refined_prediction_does_not_depend_on_the_tiling(nuclei_model):
    img, _ = _nuclei(5, shape=(150, 170))
    whole = nuclei_model.predict(img, tile_size=512)
    assert np.array_equal(nuclei_model.predict(img, tile_size=96), whole)  # 2 x 2 tiles
    assert np.array_equal(nuclei_model.predict(img, tile_size=64), whole)  # 3 x 3 tiles
    assert np.array_equal(nuclei_model.predict(img, tile_size=512), whole)  # same again
    big, _ = _nuclei(6, shape=(1100, 1600))  # 3 x 4 tiles of 512: fitted on 8 of them
    assert np.array_equal(nuclei_model.predict(big, tile_size=384), nuclei_model.predict(big))


def test_refinement_parameters_do_not_change_the_training_run():
    p = napari_useg.get_method("iic").build("fast", {})
    q = napari_useg.get_method("iic").build("fast", {"refine": "off", "refine_weight": 1.0})
    assert run_params(p) == run_params(q)
    assert "refine" not in run_params(p) and run_params(p)["crop_placement"] == "structure"


def test_bad_refinement_values_are_refused():
    with pytest.raises(ValueError, match="refine"):
        napari_useg.get_method("iic").build("fast", {"refine": "always"})
    with pytest.raises(ValueError, match="refine_weight"):
        napari_useg.get_method("inmars").build("fast", {"refine_weight": 0})
